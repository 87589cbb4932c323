"""``python -m bottle_bundle <daemon>[,<daemon>...]`` (the image's ``bottle-bundle``)."""

import sys

from .supervisor import main

sys.exit(main())
