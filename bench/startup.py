"""Start-up time: how long ``privacykit --help`` takes in a fresh process (median of N).

Every command pays this before doing anything, so it is the floor of a cron run or a
resumed erasure. Run: ``python -m bench.startup [--runs 15] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

__all__ = ["HEADLINE", "main", "run"]

HEADLINE = ("median_ms", "min_ms", "max_ms")


def run(runs: int) -> dict[str, Any]:
    samples = []
    for _ in range(max(1, runs)):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "privacykit", "--help"],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
        samples.append((time.perf_counter() - started) * 1000)
    return {
        "runs": len(samples),
        "median_ms": round(statistics.median(samples), 1),
        "min_ms": round(min(samples), 1),
        "max_ms": round(max(samples), 1),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    result = run(args.runs)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"privacykit --help: median {result['median_ms']:.0f} ms over {result['runs']} runs "
            f"(min {result['min_ms']:.0f}, max {result['max_ms']:.0f})"
        )
    return result


if __name__ == "__main__":
    main()
