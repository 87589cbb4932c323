"""``python -m bottle_ref.images``: see `bottle_ref.images.build`."""

from .build import main

raise SystemExit(main())
