"""Crash anywhere, small and fast (#8, #11): a batch erasure of 8 people in a separate
process, SIGKILLed 3 times at seeded random moments and resumed; the sandbox (also a
separate process) must show every user permanently deleted exactly once, the ledger must
verify and every request must have a signed report. The long kill-anywhere runs (60 people,
40 kills, faults, a 429 storm) are ``make soak``; the harness is ``bench/crash_soak.py``,
importable because pytest puts the repository root on ``sys.path`` (``pythonpath``)."""

from __future__ import annotations

from bench.crash_soak import crash_trial


def test_killed_batch_erasure_resumes_to_exactly_once() -> None:
    result = crash_trial(subjects=8, kills=3, seed=3, max_delay=1.5)
    assert result.failures == []
    assert result.completed == 8
    assert result.kills >= 1  # the seeded first kill comes 0.4 s in, long before the end
    assert result.runs >= 2
