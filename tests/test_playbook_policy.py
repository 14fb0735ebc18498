"""Erasure policy decisions without a network: what happens to each profile and user."""

from __future__ import annotations

from typing import Any

from privacykit.playbooks.loader import load_playbook_text
from privacykit.playbooks.policy import ErasurePolicy, plan_profile, protected_reason

BASE = """\
schema: privacykit.playbook/1
name: p
kind: erasure
art19_recipients: {none_reason: none}
steps: [resolve_subject, discover, check_safety, replace_profiles, evidence]
"""


def policy(extra: str = "") -> ErasurePolicy:
    return ErasurePolicy.from_playbook(load_playbook_text(BASE + extra))


def profile(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "01PROFILE",
        "user_id": "10003",
        "source": "shop",
        "type": "customer",
        "name": "Jane Doe",
        "identifiers": [
            {"type": "email", "value": "jane@example.com"},
            {"type": "member_id", "value": "M-7"},
        ],
        "attributes": {"tier": "gold", "favourite_colour": "red"},
    }
    data.update(overrides)
    return data


RETAIN_MEMBER = """\
policy:
  retain:
    identifiers:
      - {type: member_id, article: Art. 17(3)(b), why: tax law keeps invoices 10 years}
    attributes:
      - {key: tier, article: Art. 17(3)(e), why: pending dispute}
"""


def test_default_policy_deletes_profiles_outright() -> None:
    plan = plan_profile(profile(), policy())
    assert plan.action == "delete"
    assert plan.replacement is None
    assert (plan.identifiers_removed, plan.identifiers_kept) == (2, 0)
    assert (plan.attributes_removed, plan.attributes_kept) == (2, 0)
    assert plan.evidence_action == "deleted" and not plan.events_remain
    assert plan.user_id == 10003
    assert plan.source_type == "shop:customer"


def test_retained_identifier_is_replaced_then_deleted_by_default() -> None:
    plan = plan_profile(profile(), policy(RETAIN_MEMBER))
    assert plan.action == "scrub_then_delete"
    assert plan.needs_put and plan.needs_delete
    assert plan.replacement == {
        "source": "shop",
        "type": "customer",
        "name": "Erased person",
        "identifiers": [{"type": "member_id", "value": "M-7"}],
        "attributes": {"tier": "gold"},
    }
    assert (plan.identifiers_removed, plan.identifiers_kept) == (1, 1)
    assert (plan.attributes_removed, plan.attributes_kept) == (1, 1)


def test_keep_scrubbed_policy_scrubs_and_says_why() -> None:
    pol = policy(
        RETAIN_MEMBER
        + "  profiles: keep_scrubbed\n"
        + "  keep_profiles: {article: Art. 17(3)(b), why: billing history}\n"
    )
    plan = plan_profile(profile(), pol)
    assert plan.action == "scrub"
    assert plan.evidence_action == "scrubbed"
    assert plan.events_remain
    assert plan.why == "Art. 17(3)(b): billing history"
    assert plan.needs_put and not plan.needs_delete
    exceptions = pol.exceptions()
    assert {
        "article": "Art. 17(3)(b)",
        "kept": "identifier type 'member_id' on profiles",
        "why": "tax law keeps invoices 10 years",
    } in exceptions
    assert any(e["kept"] == "scrubbed Sunshine profiles and their events" for e in exceptions)


def test_keep_scrubbed_deletes_when_nothing_would_remain() -> None:
    pol = policy(
        "policy:\n  profiles: keep_scrubbed\n  keep_profiles: {article: Art. 17(3)(b), why: x}\n"
    )
    assert plan_profile(profile(), pol).action == "delete"


def test_already_clean_profile_is_retained_unchanged() -> None:
    pol = policy(
        RETAIN_MEMBER
        + "  profiles: keep_scrubbed\n"
        + "  keep_profiles: {article: Art. 17(3)(b), why: billing}\n"
    )
    clean = profile(
        name="Erased person",
        identifiers=[{"type": "member_id", "value": "M-7"}],
        attributes={"tier": "gold"},
    )
    plan = plan_profile(clean, pol)
    assert plan.action == "retain"
    assert plan.evidence_action == "retained" and plan.events_remain
    assert not plan.needs_put and not plan.needs_delete


def test_personal_lists_narrow_what_is_removed() -> None:
    pol = policy(
        "policy:\n  personal:\n    identifier_types: [email, phone_number]\n"
        "    attribute_keys: [favourite_colour]\n"
        "  profiles: keep_scrubbed\n  keep_profiles: {article: Art. 17(3)(b), why: x}\n"
    )
    plan = plan_profile(profile(), pol)
    assert plan.action == "scrub"
    assert plan.replacement is not None
    assert plan.replacement["identifiers"] == [{"type": "member_id", "value": "M-7"}]
    assert plan.replacement["attributes"] == {"tier": "gold"}


def test_summary_has_no_values() -> None:
    plan = plan_profile(profile(), policy(RETAIN_MEMBER))
    text = repr(plan) + repr(plan.summary())
    for secret in ("jane", "M-7", "gold", "red", "Jane Doe"):
        assert secret not in text


def test_protected_roles_and_owner() -> None:
    pol = policy()
    assert protected_reason({"id": 5, "role": "end-user"}, pol) is None
    assert protected_reason({"id": 6, "role": "admin"}, pol) == (
        "agent or admin users are never erased by default: user 6 (admin)"
    )
    assert "user 7 (agent)" in (protected_reason({"id": 7, "role": "agent"}, pol) or "")
    relaxed = policy("policy:\n  protected_roles: []\n")
    assert protected_reason({"id": 7, "role": "agent"}, relaxed) is None
    assert "owner" in (protected_reason({"id": 1, "role": "admin", "owner": True}, relaxed) or "")
