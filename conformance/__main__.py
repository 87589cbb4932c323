"""``python -m conformance``: same as the ``bottle-conformance`` command."""

import sys

from .cli import main

sys.exit(main())
