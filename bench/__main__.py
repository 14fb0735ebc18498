"""Run every benchmark and print a summary table: ``python -m bench [--quick] [name ...]``.

Adding a benchmark is one line: its module name in ``BENCHES``. Each bench runs with
``--json`` (its figures are parsed from its output when ``main`` returns an exit code) and
the run ends with one performance table (throughput vs the documented limit and vs a naive
baseline, client overhead, report render+sign, ledger verify, start-up) and the machine it
ran on. ``--quick`` uses smaller sizes (``QUICK_ARGS``) so the whole run takes minutes.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import platform
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
    "access_bench",
    "startup",
]

# Smaller sizes for ``--quick``: same measurements, minutes instead of tens of minutes.
QUICK_ARGS: dict[str, list[str]] = {
    "access_bench": ["--tickets", "500", "--small", "20"],
    "client_overhead": ["--requests", "1500", "--rounds", "1"],
    "governor_at_limit": ["--windows", "3"],
    "ledger_bench": ["--entries", "100000"],
    "erasure_throughput": ["--subjects", "1400", "--time-scale", "50"],
    "evidence_bench": ["--rounds", "8"],
    "startup": ["--runs", "7"],
}


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


def _call(module: Any, argv: list[str]) -> tuple[Any, dict[str, Any]]:
    """Run one bench's ``main`` with ``--json``; its output is echoed and its figures kept."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = module.main([*argv, "--json"])
    text = buffer.getvalue()
    print(text, end="", flush=True)
    figures: dict[str, Any] = result if isinstance(result, dict) else {}
    if not figures:
        start = text.find("{")
        with contextlib.suppress(ValueError):
            parsed = json.loads(text[start:]) if start >= 0 else None
            figures = parsed if isinstance(parsed, dict) else {}
    return result, figures


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    return (
        f"{os.cpu_count()} CPUs (nproc), {cpu}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def _get(figures: dict[str, Any], *path: str) -> Any:
    value: Any = figures
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def summary(all_figures: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(measure, figure, context) rows of the performance table."""
    rows: list[tuple[str, str, str]] = []
    erasure = all_figures.get("erasure_throughput", {})
    if erasure:
        limit = _get(erasure, "settings", "permanent_delete_limit") or 700
        pipe = _get(erasure, "pipeline", "windows", "per_full_window")
        base = _get(erasure, "baseline", "windows", "per_full_window")
        rows.append(
            (
                "erasure throughput (pipeline)",
                f"{_fmt(pipe, ',.0f')} deletions / 10 min",
                f"{_fmt(_get(erasure, 'pipeline', 'windows', 'of_limit'), '.1%')} of the "
                f"documented {limit}; 429s "
                f"{_fmt(_get(erasure, 'pipeline', 'rate_limited_share'), '.2%')}",
            )
        )
        for key, label in (
            ("headers_2023", "erasure throughput (2023 header names)"),
            ("plan_400", "erasure throughput (400 requests/min plan)"),
            ("tickets_3", "erasure throughput (3 tickets per subject)"),
        ):
            other = erasure.get(key)
            if not isinstance(other, dict):
                continue
            rows.append(
                (
                    label,
                    f"{_fmt(_get(other, 'windows', 'per_full_window'), ',.0f')} deletions / 10 min",
                    f"{_fmt(other.get('saturation'), '.1%')} of {limit}; "
                    f"{_fmt(other.get('requests_per_subject'), '.2f')} requests/subject; "
                    f"binds: {other.get('binds')}; account budget "
                    f"{_fmt(other.get('account_utilisation'), '.1%')} used; 429s "
                    f"{_fmt(other.get('rate_limited_share'), '.2%')}",
                )
            )
        speedup = f"{pipe / base:.1f}x" if pipe and base else "n/a"
        rows.append(
            (
                "erasure throughput (naive sequential)",
                f"{_fmt(base, ',.0f')} deletions / 10 min",
                f"{_fmt(_get(erasure, 'baseline', 'windows', 'of_limit'), '.1%')} of the limit; "
                f"pipeline is {speedup} faster",
            )
        )
    client = all_figures.get("client_overhead", {})
    if client:
        rows.append(
            (
                "client overhead",
                f"{_fmt(client.get('client_rps_threads'), ',.0f')} req/s",
                f"raw httpx {_fmt(client.get('httpx_rps_threads'), ',.0f')} req/s; "
                f"{_fmt(client.get('overhead_us_per_request'), ',.0f')} us/request added",
            )
        )
    evidence = all_figures.get("evidence_bench", {})
    if evidence:
        rows.append(
            (
                "report render + sign",
                f"{_fmt(evidence.get('render_sign_ms'), ',.0f')} ms",
                f"produce_report (checkpoint, render, sign, store) "
                f"{_fmt(evidence.get('produce_ms'), ',.0f')} ms; bundle verify "
                f"{_fmt(evidence.get('verify_bundle_ms'), ',.0f')} ms",
            )
        )
    access = all_figures.get("access_bench", {})
    if access:
        rows.append(
            (
                f"access, one person with {access.get('tickets')} tickets",
                f"{_fmt(access.get('seconds'), ',.1f')} s, peak "
                f"{_fmt(access.get('peak_rss_mb'), ',.0f')} MB",
                f"{access.get('comments_per_ticket')} comments each; "
                f"{_fmt(access.get('requests_per_subject'), ',')} requests; peak with "
                f"{access.get('small_tickets')} tickets "
                f"{_fmt(access.get('peak_rss_small_mb'), ',.0f')} MB",
            )
        )
    ledger = all_figures.get("ledger_bench", {})
    if ledger:
        rows.append(
            (
                "ledger verify",
                f"{_fmt(ledger.get('verify_per_s'), ',.0f')} entries/s",
                f"{_fmt(ledger.get('entries'), ',')} entries, "
                f"{_fmt(ledger.get('verify_cpu_per_s'), ',.0f')}/s of CPU; appends "
                f"{_fmt(ledger.get('batched_append_per_s'), ',.0f')}/s batched, "
                f"{_fmt(ledger.get('durable_append_per_s'), ',.0f')}/s durable; first "
                f"checkpoint of a run {ledger.get('checkpoint_seconds_cold')} s",
            )
        )
    governor = all_figures.get("governor_at_limit", {})
    if governor:
        styles = governor.get("styles")
        if not isinstance(styles, dict) or not styles:
            styles = {str(governor.get("header_style", "2024")): governor}
        for style, figures in styles.items():
            rows.append(
                (
                    f"governor at the account limit ({style} headers)",
                    f"{_fmt(figures.get('efficiency'), '.1%')} of the budget used",
                    f"429s {figures.get('rate_limited')}",
                )
            )
    startup = all_figures.get("startup", {})
    if startup:
        rows.append(
            (
                "start-up (privacykit --help)",
                f"{_fmt(startup.get('help_ms'), ',.0f')} ms",
                f"{_fmt(startup.get('ratio'), '.2f')}x `python -c 'import click'` "
                f"({_fmt(startup.get('click_ms'), ',.0f')} ms; goal <= "
                f"{startup.get('goal_ratio')}x); `--version` "
                f"{_fmt(startup.get('version_ms'), ',.0f')} ms; medians of "
                f"{startup.get('runs')} fresh processes",
            )
        )
        rows.append(
            (
                "hostile playbook refused (exit 2)",
                f"{_fmt(startup.get('alias_bomb_ms'), ',.0f')} ms",
                f"500-byte YAML alias bomb; 20,000 levels of nesting "
                f"{_fmt(startup.get('deep_nesting_ms'), ',.0f')} ms (whole process)",
            )
        )
    return rows


def print_summary(all_figures: dict[str, dict[str, Any]]) -> None:
    rows = summary(all_figures)
    if not rows:
        return
    print()
    print(f"machine: {machine()}")
    print("| measure | figure | context |")
    print("|---|---|---|")
    for measure, figure, context in rows:
        print(f"| {measure} | {figure} | {context} |")


def run(names: list[str], quick: bool = False) -> int:
    rows: list[tuple[str, str, float, str]] = []
    all_figures: dict[str, dict[str, Any]] = {}
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
            result, all_figures[name] = _call(module, QUICK_ARGS.get(name, []) if quick else [])
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
                _headline(module, all_figures[name] or result),
            )
        )
        print(flush=True)
    width = max(len(r[0]) for r in rows) if rows else 5
    print(f"{'bench':<{width}}  status   seconds  figures")
    for name, status, seconds, figures in rows:
        print(f"{name:<{width}}  {status:<7} {seconds:8.1f}  {figures}")
    print_summary(all_figures)
    return 0 if all(r[1] in ("ok", "missing") for r in rows) else 1


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    quick = "--quick" in args
    names = [a for a in args if a != "--quick"] or BENCHES
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown bench: {', '.join(unknown)}; one of {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    return run(names, quick=quick)


if __name__ == "__main__":
    sys.exit(main())
