"""``reasons.why``: one safe line per error (#14: a disk that filled up while the batch's
reports were signed showed only ``no signed report: OSError``, thirty times)."""

from __future__ import annotations

import errno

from privacykit.errors import LedgerError
from privacykit.playbooks.reasons import why


def test_an_os_error_says_what_the_system_said_but_never_the_path() -> None:
    exc = OSError(errno.ENOSPC, "No space left on device", "/srv/jane.doe@example.com/out.pdf")
    assert why(exc) == "OSError: No space left on device"
    full = PermissionError(errno.EACCES, "Permission denied", "/home/jane.doe@example.com")
    assert why(full) == "PermissionError: Permission denied"


def test_an_os_error_without_an_errno_is_named_by_its_type_only() -> None:
    # Free text may quote anything (a path, a file's contents): never shown.
    assert why(OSError("/srv/jane.doe@example.com: no")) == "OSError"
    assert why(OSError(999_999, "made-up text with jane.doe@example.com")).startswith("OSError")
    assert "example.com" not in why(OSError(999_999, "made-up text with jane.doe@example.com"))


def test_our_own_errors_keep_their_message() -> None:
    assert why(LedgerError("the ledger could not be written")) == (
        "LedgerError: the ledger could not be written"
    )
