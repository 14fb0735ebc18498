"""privacykit: GDPR/privacy compliance automation for Zendesk.

Erasure (Art. 17) and access (Art. 15/20) requests run from playbooks, every step
recorded in a tamper-evident local ledger, with signed PDF evidence and bundles a
regulator can verify offline. See README.md.
"""

from privacykit.errors import PrivacykitError, UsageError

__all__ = ["PrivacykitError", "UsageError", "__version__"]

__version__ = "0.1.0"
