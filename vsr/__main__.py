"""``python -m vsr``: the same command as the ``vsr`` console script."""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
