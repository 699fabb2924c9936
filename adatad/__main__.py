"""``python -m adatad``: the same command line as the ``adatad`` console script."""

import sys

from adatad.cli import main

sys.exit(main())
