"""``make soak``: the crash-anywhere and fault soak of :mod:`bench.crash_soak`, then the
kill-anywhere soak of the conversations' shared ticket jobs (:mod:`bench.ticket_soak`,
120 kills over as many trials as it takes).

Run: ``python -m bench.soak [--subjects 60] [--kills 40] [--seed 1] [--json]`` (the
options are :mod:`bench.crash_soak`'s; run :mod:`bench.ticket_soak` alone for its own).
"""

from __future__ import annotations

import sys

from bench.crash_soak import main as crash_main
from bench.ticket_soak import main as ticket_main

__all__ = ["main"]


def main() -> int:
    users = crash_main()
    tickets = ticket_main([])
    return max(users, tickets)


if __name__ == "__main__":
    sys.exit(main())
