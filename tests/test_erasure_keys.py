"""The erasure's step keys as types, and the history both the engine and the audit read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from privacykit.playbooks.erasure.history import ErasureHistory
from privacykit.playbooks.erasure.keys import StepKey, StepKind


@pytest.mark.parametrize(
    ("key", "text"),
    [
        (StepKey.soft_delete(12), "soft_delete:user:12"),
        (StepKey.permanent_delete(7), "permanent_delete:user:7"),
        (StepKey.blocked(3), "blocked:user:3"),
        (StepKey.compliance(4), "compliance:user:4"),
        (StepKey.profile_replace("01HAB_c-d"), "profile:replace:01HAB_c-d"),
        (StepKey.profile_delete("p1"), "profile:delete:p1"),
        (StepKey.profile_gone("p2"), "profile:gone:p2"),
        (StepKey.ticket_delete(5), "ticket:soft_delete:5"),
        (StepKey.ticket_delete_many(5), "ticket:soft_delete_many:5"),
        (StepKey.ticket_purge(5), "ticket:purge:5"),
    ],
)
def test_keys_are_written_and_read_back_by_one_definition(key: StepKey, text: str) -> None:
    assert str(key) == text
    assert StepKey.parse(text) == key


@pytest.mark.parametrize(
    "text",
    [
        "evidence",
        "plan",
        "soft_delete:user:",
        "soft_delete:user:-1",
        "soft_delete:user:1.5",
        "soft_delete:user:١٢",  # non-ASCII digits are not a Zendesk id
        "profile:delete:a/b",
        "other:user:1",
        "ledger:status",
    ],
)
def test_other_keys_are_not_erasure_steps(text: str) -> None:
    assert StepKey.parse(text) is None


def test_targets_are_typed() -> None:
    with pytest.raises(TypeError):
        StepKey(StepKind.SOFT_DELETE, "12")
    with pytest.raises(TypeError):
        StepKey(StepKind.PROFILE_DELETE, 12)
    with pytest.raises(TypeError):
        StepKey(StepKind.SOFT_DELETE, True)


@dataclass
class E:
    step_key: str
    phase: str
    data: dict[str, Any]
    ts: str = "2026-01-01T00:00:00Z"


def test_history_follows_the_ledgers_rules() -> None:
    history = ErasureHistory.from_entries(
        [
            E("plan", "info", {"users": []}),
            E("soft_delete:user:1", "intent", {"user_id": 1}),
            E("soft_delete:user:1", "outcome", {"result": "ok"}, "2026-01-01T00:00:01Z"),
            E("permanent_delete:user:1", "intent", {}),
            E("permanent_delete:user:1", "outcome", {"result": "unknown"}),
            E("soft_delete:user:2", "intent", {}),
            E("soft_delete:user:2", "outcome", {"result": "failed"}),
            E("soft_delete:user:3", "outcome", {"state": "permanently_deleted"}, "T3"),
            E("profile:delete:p1", "outcome", {"user_id": 1}),
            E("profile:gone:p2", "info", {}),
            E("blocked:user:2", "info", {"ticket_ids": [5, "x", True, 6]}),
            E("compliance:user:1", "info", {"complete": False}, "T9"),
        ]
    )
    assert history.plan == {"users": []} and history.destructive_started
    one, two, three = history.users[1], history.users[2], history.users[3]
    assert one.soft_deleted and not one.permanently_deleted and one.permanent.state == "intent"
    assert one.soft_deleted_at == "2026-01-01T00:00:01Z"
    assert not two.soft_deleted and two.blocking_tickets == [5, 6]
    assert three.permanently_deleted and three.permanently_deleted_at == "T3"
    assert history.profiles["p1"].delete.done and history.profiles["p1"].user_id == 1
    assert history.profiles["p2"].gone
    assert one.compliance == {"complete": False} and history.last_compliance_poll == "T9"
