"""The typed edges of the request engine: what the steps need from the ledger and Zendesk.

Owns the :class:`typing.Protocol` s the playbook code is written against, so mypy and a
reader can follow every call without ``Any``: :class:`RequestLedger` (the part of
:class:`privacykit.ledger.Ledger` a request uses), :class:`ErasureClient` (the part of
:class:`privacykit.zendesk.ZendeskClient` the erasure steps use, on top of discovery's
read-only :class:`~privacykit.playbooks.discovery.DiscoveryClient`). The real classes
satisfy them structurally; tests may pass small fakes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from privacykit.playbooks.discovery import DiscoveryClient

if TYPE_CHECKING:
    from privacykit.ledger.checkpoint import Checkpoint
    from privacykit.ledger.records import ArtifactRecord, Entry, RequestRecord

__all__ = ["ErasureClient", "RequestLedger"]


class RequestLedger(Protocol):
    """The ledger as one request's engine uses it (see ARCHITECTURE "Ledger")."""

    @property
    def home(self) -> Path: ...
    def subject_ref(self, normalised_identifier: str) -> str: ...
    def create_request(
        self,
        kind: str,
        subject_ref: str,
        *,
        received_at: date | str,
        identity_verified_at: date | str | None = None,
        playbook_name: str | None = None,
        playbook_sha256: str | None = None,
        operator: str | None = None,
        batch_id: str | None = None,
        tool_version: str | None = None,
        status: str = "open",
        case_ref: str | None = None,
        identity_method: str | None = None,
    ) -> str: ...
    def get_request(self, request_id: str) -> RequestRecord: ...
    def find_open_request(self, kind: str, subject_ref: str) -> RequestRecord | None: ...
    def list_requests(
        self,
        status: str | Iterable[str] | None = None,
        kind: str | None = None,
        overdue: bool = False,
        *,
        today: date | None = None,
    ) -> list[RequestRecord]: ...
    def record(
        self, request_id: str, step_key: str, phase: str, data: dict[str, Any] | None = None
    ) -> int: ...
    def step_state(self, request_id: str, step_key: str) -> str: ...
    def step_outcome(self, request_id: str, step_key: str) -> dict[str, Any] | None: ...
    def set_status(self, request_id: str, status: str, reason: str | None = None) -> None: ...
    def set_case_ref(self, request_id: str, case_ref: str) -> RequestRecord: ...
    def set_identity_verified(
        self, request_id: str, verified_at: date | str, method: str | None = None
    ) -> None: ...
    def entries(self, request_id: str | None = None) -> list[Entry]: ...
    def artifacts(self, request_id: str | None = None) -> list[ArtifactRecord]: ...
    def add_artifact(self, request_id: str, path: Path | str, kind: str) -> str: ...
    def checkpoint(self) -> Checkpoint: ...


class ErasureClient(DiscoveryClient, Protocol):
    """What the erasure steps send to Zendesk (besides discovery's reads)."""

    def profile_by_id(self, profile_id: str) -> dict[str, Any]: ...
    def replace_profile(self, profile_id: str, profile: dict[str, Any]) -> dict[str, Any]: ...
    def delete_profile(self, profile_id: str) -> None: ...
    def soft_delete_user(self, user_id: int) -> dict[str, Any]: ...
    def show_deleted_user(self, user_id: int) -> dict[str, Any]: ...
    def permanently_delete_user(self, user_id: int) -> dict[str, Any]: ...
    def compliance_deletion_statuses(
        self, user_id: int, application: str | None = None
    ) -> list[dict[str, Any]]: ...
    def requested_tickets(self, user_id: int) -> list[dict[str, Any]]: ...
    def destroy_many(self, user_ids: Sequence[int]) -> dict[str, Any]: ...
    def show_job_status(self, job_id: str) -> dict[str, Any]: ...
