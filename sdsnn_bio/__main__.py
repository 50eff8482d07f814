"""``python -m sdsnn_bio`` is the ``sdsnn-bio`` command."""

import sys

from .cli import main

sys.exit(main())
