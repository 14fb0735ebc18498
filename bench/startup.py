"""Start-up time: how long ``privacykit --help`` takes in a fresh process, against the floor
``python -c "import click"`` in the same venv (medians of N, runs interleaved so load on
the machine hits both alike).

Every command pays this before doing anything, so it is the floor of a cron run or a
resumed erasure. The goal (#11) is ``--help`` within 2.5x of importing click. Also timed:
``--version``, one command's own ``--help`` (``erase``, which imports its module) and how
long ``playbook validate`` takes to refuse hostile input (#14: a 500-byte YAML alias bomb
and 20,000 levels of nesting, both exit 2 with one line).

Run: ``python -m bench.startup [--runs 15] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["GOAL_RATIO", "HEADLINE", "main", "run"]

HEADLINE = ("help_ms", "click_ms", "ratio")
GOAL_RATIO = 2.5

ALIAS_BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(ord('b') + i)}: &{chr(ord('b') + i)} [{', '.join(['*' + chr(ord('a') + i)] * 10)}]\n"
    for i in range(9)
)
DEEP_NESTING = "[" * 20_000 + "]" * 20_000 + "\n"


def _privacykit() -> list[str]:
    """The installed console script next to this interpreter (what an operator runs)."""
    script = Path(sys.executable).with_name("privacykit")
    if script.is_file():
        return [str(script)]
    found = shutil.which("privacykit")
    return [found] if found else [sys.executable, "-m", "privacykit"]


def _time(cmd: list[str], expect: int) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=False
    )
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != expect:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}, expected {expect}")
    return elapsed


def run(runs: int) -> dict[str, Any]:
    pk = _privacykit()
    with tempfile.TemporaryDirectory() as tmp:
        bomb = Path(tmp) / "bomb.yaml"
        bomb.write_text(ALIAS_BOMB)
        deep = Path(tmp) / "deep.yaml"
        deep.write_text(DEEP_NESTING)
        cases = {
            "click": ([sys.executable, "-c", "import click"], 0),
            "help": ([*pk, "--help"], 0),
            "version": ([*pk, "--version"], 0),
            "erase_help": ([*pk, "erase", "--help"], 0),
            "alias_bomb": ([*pk, "playbook", "validate", str(bomb)], 2),
            "deep_nesting": ([*pk, "playbook", "validate", str(deep)], 2),
        }
        for cmd, expect in cases.values():  # warm the page cache; not counted
            _time(cmd, expect)
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(max(1, runs)):
            for name, (cmd, expect) in cases.items():
                samples[name].append(_time(cmd, expect))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    return {
        "runs": max(1, runs),
        "command": " ".join([Path(pk[0]).name, *pk[1:]]),
        **{f"{name}_ms": round(value, 1) for name, value in medians.items()},
        "help_min_ms": round(min(samples["help"]), 1),
        "help_max_ms": round(max(samples["help"]), 1),
        "ratio": round(medians["help"] / medians["click"], 2),
        "goal_ratio": GOAL_RATIO,
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
            f"privacykit --help: median {result['help_ms']:.0f} ms over {result['runs']} runs "
            f"(min {result['help_min_ms']:.0f}, max {result['help_max_ms']:.0f}); "
            f"python -c 'import click' {result['click_ms']:.0f} ms; "
            f"ratio {result['ratio']:.2f} (goal <= {GOAL_RATIO})"
        )
        print(
            f"--version {result['version_ms']:.0f} ms, erase --help {result['erase_help_ms']:.0f}"
            f" ms; refusing an alias bomb {result['alias_bomb_ms']:.0f} ms, 20,000 levels "
            f"of nesting {result['deep_nesting_ms']:.0f} ms"
        )
    return result


if __name__ == "__main__":
    main()
