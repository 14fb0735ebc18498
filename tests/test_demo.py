"""`make demo` (#15 "Done means"): the demo person's conversation is erased and the
signed report's ticket table lists it, by ids only. Runs the demo as `make demo` does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from privacykit.sandbox.seed import DEMO_ERASE_WORDS


def test_make_demo_shows_a_conversation_erased_and_the_report_listing_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRIVACYKIT_", "ZENDESK_"))}
    env["TMPDIR"] = str(tmp_path)  # the demo's home (mkdtemp) lands in the test's directory
    done = subprocess.run(
        [sys.executable, "-m", "privacykit.demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "Her conversations:" in out
    for words in DEMO_ERASE_WORDS:
        assert f"she wrote {words!r}: in Zendesk now: nowhere" in out
    table = out.split("the signed report's ticket table lists", 1)[1].split("\n\n", 1)[0]
    assert "ticket 1 (requested): deleted -- soft-deleted, permanently deleted" in table
    assert "ticket 3 (ccd): redacted -- her comment(s) " in table
    # Ids and actions only: no subject line or comment text of hers in the table.
    for text in (*DEMO_ERASE_WORDS, "Saddle squeaks", "Order late"):
        assert text not in table
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("privacykit-demo-")]
