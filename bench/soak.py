"""``make soak``: the crash-anywhere and fault soak of :mod:`bench.crash_soak`.

Run: ``python -m bench.soak [--subjects 60] [--kills 40] [--seed 1] [--json]``.
"""

from __future__ import annotations

import sys

from bench.crash_soak import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
