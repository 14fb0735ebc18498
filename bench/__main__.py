"""Run every benchmark and print a summary table: ``python -m bench [name ...]``.

Adding a benchmark is one line: its module name in ``BENCHES``.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from typing import Any

BENCHES = [
    "client_overhead",
    "governor_at_limit",
    "ledger_bench",
    "erasure_throughput",
    "evidence_bench",
]


def _headline(module: Any, result: Any) -> str:
    if isinstance(result, int) and not isinstance(result, bool):
        return f"exit {result}"
    if not isinstance(result, dict):
        return ""
    keys = getattr(module, "HEADLINE", None)
    if keys is None:
        keys = [k for k, v in result.items() if isinstance(v, int | float)][:3]
    shown = []
    for key in keys:
        value = result.get(key)
        if isinstance(value, float):
            shown.append(f"{key}={value:,.2f}")
        elif value is not None:
            shown.append(f"{key}={value:,}" if isinstance(value, int) else f"{key}={value}")
    return "  ".join(shown)


def run(names: list[str]) -> int:
    rows: list[tuple[str, str, float, str]] = []
    for name in names:
        print(f"== bench.{name}", flush=True)
        start = time.perf_counter()
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"bench.{name}":
                raise
            rows.append((name, "missing", 0.0, ""))
            continue
        try:
            result = module.main([])
        except Exception:  # one failing bench must not hide the others' figures
            traceback.print_exc()
            rows.append((name, "error", time.perf_counter() - start, ""))
            continue
        failed = isinstance(result, int) and not isinstance(result, bool) and result != 0
        rows.append(
            (
                name,
                "FAILED" if failed else "ok",
                time.perf_counter() - start,
                _headline(module, result),
            )
        )
        print(flush=True)
    width = max(len(r[0]) for r in rows) if rows else 5
    print(f"{'bench':<{width}}  status   seconds  figures")
    for name, status, seconds, figures in rows:
        print(f"{name:<{width}}  {status:<7} {seconds:8.1f}  {figures}")
    return 0 if all(r[1] in ("ok", "missing") for r in rows) else 1


def main(argv: list[str] | None = None) -> int:
    names = list(sys.argv[1:] if argv is None else argv) or BENCHES
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown bench: {', '.join(unknown)}; one of {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    return run(names)


if __name__ == "__main__":
    sys.exit(main())
