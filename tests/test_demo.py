"""`make demo` never breaks silently: the demo runs as an operator would start it (a
subprocess, `python -m privacykit.demo`, bounded by a timeout), exits 0 and shows what it
promises: a signed erasure report, a verified evidence bundle, `ledger verify` ok."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from pypdf import PdfReader

from privacykit.sandbox.seed import DEMO_ERASE_WORDS

# Generous: the demo takes a few seconds of CPU, far more wall time on a loaded machine.
DEMO_TIMEOUT = 300


def test_make_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ZENDESK_", "PRIVACYKIT_"))
    }
    # The demo keeps its home for the DPO to look at: here it lands in tmp_path.
    env.update({"TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"})
    done = subprocess.run(
        [sys.executable, "-m", "privacykit.demo"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=DEMO_TIMEOUT,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "(exit code " not in out, out  # no command ended with an unexpected exit code
    assert re.search(r"^Demo finished in [\d.]+ s; everything is in ", out, re.M), out[-2000:]

    # A signed erasure report, stored in the demo's home, stating the final status.
    report = re.search(r"signed erasure report \(PDF\): (\S+\.pdf)$", out, re.M)
    assert report, out[-2000:]
    pdf = Path(report.group(1))
    assert pdf.is_file() and pdf.is_relative_to(tmp_path)
    text = " ".join(" ".join((page.extract_text() or "").split()) for page in PdfReader(pdf).pages)
    assert "Status completed" in text, text[:1500]

    # The evidence bundle, verified by `evidence verify`.
    bundle = re.search(r"evidence bundle \(verified\): +(\S+\.zip)$", out, re.M)
    assert bundle and Path(bundle.group(1)).is_file(), out[-2000:]
    verify = out.split("$ privacykit evidence verify ", 1)[1]
    assert re.search(r"^OK \S+\.zip$", verify, re.M), verify[:1000]
    assert "signed report(s) intact and trusted" in verify

    # The ledger verifies after everything the demo did.
    ledger = out.split("$ privacykit ledger verify", 1)[1]
    assert re.search(r"^ok: \d+ entries, \d+ requests, \d+ checkpoints", ledger, re.M), ledger[:500]

    # Her conversations (#15): her sentences are nowhere in Zendesk afterwards, and the
    # report's ticket table lists what was done to each ticket by ids only.
    assert "Her conversations:" in out
    for words in DEMO_ERASE_WORDS:
        assert f"she wrote {words!r}: in Zendesk now: nowhere" in out
    table = out.split("the signed report's ticket table lists", 1)[1].split("\n\n", 1)[0]
    assert "ticket 1 (requested): deleted -- soft-deleted, permanently deleted" in table
    assert "ticket 3 (ccd): redacted -- her comment(s) " in table
    for words in (*DEMO_ERASE_WORDS, "Saddle squeaks", "Order late"):
        assert words not in table
