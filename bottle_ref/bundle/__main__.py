"""``python -m bottle_ref.bundle <daemon>[,<daemon>...]`` (the image's ``bottle-bundle``)."""

import sys

from .supervisor import main

sys.exit(main())
