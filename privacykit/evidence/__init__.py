"""Evidence: signing keys, signed PDF reports, and bundles a regulator verifies offline.

Public API (docs/ARCHITECTURE.md "Evidence records"):

* :func:`produce_report` -- render an evidence record with the request's ledger metadata,
  sign it (PAdES), store it as a ledger artifact; returns :class:`Report` (path, sha256).
* :func:`init_keys`, :func:`ensure_keys`, :func:`load_keys` -- the signing certificate.
* :func:`export_bundle`, :func:`verify_bundle` -- evidence bundles (zip) for regulators.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from privacykit._lazy import lazy_exports

if TYPE_CHECKING:
    from privacykit.evidence.bundle import (
        BundleReport,
        ExportResult,
        export_bundle,
        verify_bundle,
    )
    from privacykit.evidence.keys import (
        SigningKeys,
        ensure_keys,
        init_keys,
        load_keys,
    )
    from privacykit.evidence.reports import (
        Report,
        produce_report,
        reproduce_report,
        request_reports,
    )
    from privacykit.evidence.sign import (
        SignatureCheck,
        sign_pdf,
        validate_signed_pdf,
    )

__all__ = [
    "BundleReport",
    "ExportResult",
    "Report",
    "SignatureCheck",
    "SigningKeys",
    "ensure_keys",
    "export_bundle",
    "init_keys",
    "load_keys",
    "produce_report",
    "reproduce_report",
    "request_reports",
    "sign_pdf",
    "validate_signed_pdf",
    "verify_bundle",
]

# Imported on first use (see privacykit._lazy): importing this package stays cheap.
_EXPORTS = {
    "privacykit.evidence.bundle": (
        "BundleReport",
        "ExportResult",
        "export_bundle",
        "verify_bundle",
    ),
    "privacykit.evidence.keys": (
        "SigningKeys",
        "ensure_keys",
        "init_keys",
        "load_keys",
    ),
    "privacykit.evidence.reports": (
        "Report",
        "produce_report",
        "reproduce_report",
        "request_reports",
    ),
    "privacykit.evidence.sign": (
        "SignatureCheck",
        "sign_pdf",
        "validate_signed_pdf",
    ),
}
lazy_exports(__name__, _EXPORTS)
