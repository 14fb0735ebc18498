"""Evidence benchmark: median time to render + sign one report, and to verify a bundle.

Builds a temporary home with a ledger and a signing key, then for a typical erasure
record (2 users, 3 profiles, 24 steps, one Art. 17(3) exception) measures, over N rounds
after 2 warm-up rounds:

* ``render_ms``: template -> markup -> reportlab PDF (unsigned);
* ``sign_ms``: PAdES signature with pyHanko (B-B, no timestamp);
* ``render_sign_ms``: both, the figure the issue asks for;
* ``produce_ms``: the whole ``produce_report`` (checkpoint, context with redaction, render,
  sign, store as a ledger artifact);
* ``verify_bundle_ms``: ``verify_bundle`` on a bundle of 10 requests with their reports;
* ``integrity_first_ms`` / ``integrity_next_ms``: the check that no report is signed over a
  ledger that does not verify (:func:`privacykit.evidence.integrity.require_verified`) on a
  ledger of ``ledger_entries`` entries: the full verification the first report of a run
  pays, and what every later report of the same run pays (entries since, and the request's
  row against its entries) -- with ``batch_integrity_s`` the total for a batch of
  ``batch`` reports, against ``batch_if_full_each_s`` had every report verified in full.

Run: ``python -m bench.evidence_bench [--rounds N] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from privacykit.evidence import export_bundle, init_keys, produce_report, sign_pdf, verify_bundle
from privacykit.evidence.integrity import forget, require_verified
from privacykit.evidence.render import render_pdf
from privacykit.evidence.reports import build_context
from privacykit.ledger import Ledger

__all__ = ["HEADLINE", "main", "run"]

HEADLINE = ["render_sign_ms", "produce_ms", "verify_bundle_ms", "integrity_next_ms"]
DEFAULT_ROUNDS = 30
LEDGER_REQUESTS = 400  # x ~12 entries: a ledger a few months into production use
BATCH = 50


def _record(rid: str, ref: str) -> dict[str, Any]:
    return {
        "schema": "privacykit.erasure-evidence/1",
        "request_id": rid,
        "subject_ref": ref,
        "outcome": "erased",
        "reasons": [],
        "gdpr": {
            "ground": "Art. 17(1)(a)",
            "exceptions": [
                {"article": "Art. 17(3)(b)", "kept": "member_id on profiles", "why": "tax law"}
            ],
        },
        "searched": {
            "systems": ["Zendesk Support users", "Sunshine profiles"],
            "endpoints": [f"GET /api/v2/endpoint/{i}" for i in range(8)],
            "profile_sources": ["webshop:customer", "coolbikes:rider"],
        },
        "counts": {"users": 2, "identities": 4, "profiles": 3, "profiles_deleted": 2},
        "users": [
            {"user_id": 100 + i, "role": "end-user", "identities": 2, "profiles": 1}
            for i in range(2)
        ],
        "profiles": [
            {
                "profile_id": f"01HPROFILE{i:04d}",
                "source_type": "webshop:customer",
                "action": "deleted",
            }
            for i in range(3)
        ],
        "compliance": [
            {"user_id": 100 + i, "application": app, "status": "complete", "at": "2026-01-15"}
            for i in range(2)
            for app in ("support", "chat")
        ],
        "steps": [
            {"step": f"step:{i}:user:100", "at": "2026-01-15T10:00:00Z", "outcome": "ok"}
            for i in range(24)
        ],
        "art19_recipients": {"recipients": [], "none_reason": "no recipients configured"},
        "playbook": {"name": "erasure", "sha256": "ab" * 32},
    }


def _grow(ledger: Ledger, requests: int) -> None:
    """Requests with a realistic handful of entries each (intents, outcomes, status)."""
    with ledger.batch():
        for i in range(requests):
            ref = ledger.subject_ref(f"email:person-{i}@example.test")
            rid = ledger.create_request("erasure", ref, received_at="2026-01-10")
            ledger.set_status(rid, "in_progress")
            for user in range(2):
                uid = 1000 + 10 * i + user
                for step in ("soft_delete", "permanent_delete"):
                    ledger.record(rid, f"{step}:user:{uid}", "intent", {"user_id": uid})
                    ledger.record(rid, f"{step}:user:{uid}", "outcome", {"status": 204})
            ledger.set_status(rid, "completed")
    ledger.checkpoint()


def _integrity(ledger: Ledger, rounds: int) -> dict[str, float]:
    def first() -> None:
        forget(ledger)
        require_verified(ledger)

    first_ms = _median_ms(max(3, rounds // 5), first)
    samples = []
    for i in range(max(rounds, 5)):
        ref = ledger.subject_ref(f"email:batch-{i}@example.test")
        rid = ledger.create_request("erasure", ref, received_at="2026-01-11")
        for step in ("soft_delete", "permanent_delete"):
            ledger.record(rid, f"{step}:user:{i}", "intent", {"user_id": i})
            ledger.record(rid, f"{step}:user:{i}", "outcome", {"status": 204})
        ledger.set_status(rid, "completed")
        start = time.perf_counter()
        require_verified(ledger, rid)
        samples.append((time.perf_counter() - start) * 1000)
    next_ms = statistics.median(samples)
    return {
        "integrity_first_ms": round(first_ms, 2),
        "integrity_next_ms": round(next_ms, 2),
        "batch_integrity_s": round((first_ms + (BATCH - 1) * next_ms) / 1000, 3),
        "batch_if_full_each_s": round(BATCH * first_ms / 1000, 3),
    }


def _median_ms(rounds: int, action: Callable[[], Any]) -> float:
    for _ in range(2):
        action()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def run(rounds: int = DEFAULT_ROUNDS) -> dict[str, Any]:
    home = Path(tempfile.mkdtemp(prefix="pk-evidence-bench-"))
    home.chmod(0o700)
    try:
        keys = init_keys(home, organisation="Bench Ltd")
        with Ledger.open(home) as ledger:
            ref = ledger.subject_ref("email:bench@example.test")
            rid = ledger.create_request("erasure", ref, received_at="2026-01-15")
            record = _record(rid, ref)
            context = build_context(ledger, rid, "erasure", record, keys=keys)
            unsigned = render_pdf("erasure.xml.j2", context)

            render_ms = _median_ms(rounds, lambda: render_pdf("erasure.xml.j2", context))
            sign_ms = _median_ms(rounds, lambda: sign_pdf(unsigned, keys))
            render_sign_ms = _median_ms(
                rounds, lambda: sign_pdf(render_pdf("erasure.xml.j2", context), keys)
            )
            produce_ms = _median_ms(
                rounds, lambda: produce_report(ledger, rid, "erasure", record, home=home, keys=keys)
            )

            rids = []
            for i in range(10):
                other = ledger.subject_ref(f"email:bench-{i}@example.test")
                r = ledger.create_request("erasure", other, received_at="2026-01-16")
                produce_report(ledger, r, "erasure", _record(r, other), home=home, keys=keys)
                rids.append(r)
            bundle = home / "bundle.zip"
            export_bundle(ledger, bundle, request_ids=rids, home=home)
            verify_ms = _median_ms(max(3, rounds // 5), lambda: verify_bundle(bundle))
            pdf_kib = len(unsigned) / 1024
            _grow(ledger, LEDGER_REQUESTS)
            integrity = _integrity(ledger, rounds)
            entries = ledger.size
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return {
        "rounds": rounds,
        "render_ms": round(render_ms, 2),
        "sign_ms": round(sign_ms, 2),
        "render_sign_ms": round(render_sign_ms, 2),
        "produce_ms": round(produce_ms, 2),
        "verify_bundle_ms": round(verify_ms, 2),
        "bundle_requests": 10,
        "report_kib": round(pdf_kib, 1),
        "ledger_entries": entries,
        "batch": BATCH,
        **integrity,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.evidence_bench")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(max(1, args.rounds))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"render + sign one erasure report: median {result['render_sign_ms']:.1f} ms "
            f"(render {result['render_ms']:.1f} ms, sign {result['sign_ms']:.1f} ms; "
            f"{result['report_kib']} KiB unsigned)"
        )
        print(f"produce_report end to end:        median {result['produce_ms']:.1f} ms")
        print(
            f"verify a bundle of {result['bundle_requests']} requests: "
            f"median {result['verify_bundle_ms']:.1f} ms"
        )
        print(
            f"no signature over an unverified ledger ({result['ledger_entries']} entries): "
            f"first report of a run {result['integrity_first_ms']:.1f} ms (full verify), "
            f"each later one {result['integrity_next_ms']:.2f} ms; a batch of "
            f"{result['batch']}: {result['batch_integrity_s']:.2f} s "
            f"(full verify each time: {result['batch_if_full_each_s']:.2f} s)"
        )
    return result


if __name__ == "__main__":
    main()
