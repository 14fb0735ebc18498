"""Crash anywhere, small and fast (#8): a batch erasure of 8 people in a separate process,
SIGKILLed 3 times at seeded random moments and resumed; the sandbox (also a separate
process) must show every user permanently deleted exactly once, the ledger must verify and
every request must have a signed report. The full soak is ``make soak``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def crash_soak() -> object:
    # The harness lives in bench/ (not an installed package): import it from the checkout.
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module("bench.crash_soak")


def test_killed_batch_erasure_resumes_to_exactly_once(crash_soak: object) -> None:
    result = crash_soak.crash_trial(subjects=8, kills=3, seed=3, max_delay=1.5)  # type: ignore[attr-defined]
    assert result.failures == []
    assert result.completed == 8
    assert result.runs >= 2
