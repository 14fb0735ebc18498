"""Playbook loading and validation: errors name file, line and key; the CLI around it."""

from __future__ import annotations

import pytest

from privacykit.errors import PlaybookError
from privacykit.playbooks.loader import builtin_playbook_dir, load_playbook, load_playbook_text
from privacykit.playbooks.policy import ErasurePolicy

ERASURE = builtin_playbook_dir() / "erasure.yaml"

MINIMAL = """\
schema: privacykit.playbook/1
name: tiny
kind: erasure
art19_recipients:
  none_reason: no recipients
steps:
  - resolve_subject
  - discover
  - check_safety
  - evidence
"""


def _error(text: str, file: str = "pb.yaml") -> PlaybookError:
    with pytest.raises(PlaybookError) as info:
        load_playbook_text(text, file=file)
    return info.value


def test_shipped_erasure_playbook_is_valid() -> None:
    book = load_playbook(ERASURE)
    assert book.kind == "erasure"
    assert book.step_names() == [
        "resolve_subject",
        "discover",
        "discover_tickets",
        "check_safety",
        "replace_profiles",
        "erase_tickets",
        "soft_delete_users",
        "permanently_delete_users",
        "permanently_delete_tickets",
        "poll_compliance",
        "evidence",
    ]
    policy = ErasurePolicy.from_playbook(book)
    assert policy.profiles == "delete"
    assert policy.protected_roles == {"agent", "admin"}
    assert policy.personal_identifier_types is None
    assert len(book.sha256) == 64


def test_minimal_playbook_gets_defaults() -> None:
    book = load_playbook_text(MINIMAL)
    assert book.policy["profiles"] == "delete"
    assert book.policy["discovery"]["max_rounds"] == 8
    assert book.policy["protected_roles"] == ["agent", "admin"]


def test_unknown_policy_key_names_line_and_key() -> None:
    text = MINIMAL + "policy:\n  profile_sources: [shop:customer]\n  profilez: delete\n"
    err = _error(text)
    assert (err.file, err.line, err.key) == ("pb.yaml", 13, "policy.profilez")
    assert str(err).startswith("pb.yaml:13: policy.profilez: unknown key")


def test_bad_choice_names_value_line() -> None:
    err = _error(MINIMAL + "policy:\n  profiles: shred\n")
    assert (err.line, err.key) == (12, "policy.profiles")
    assert "'delete', 'keep_scrubbed'" in str(err)


def test_nested_list_item_error() -> None:
    text = MINIMAL + (
        "policy:\n"
        "  retain:\n"
        "    identifiers:\n"
        "      - type: member_id\n"
        "        article: Art. 17(3)(b)\n"
        "        why: invoices\n"
        "      - type: loyalty_id\n"
        "        why: no article\n"
    )
    err = _error(text)
    assert err.key == "policy.retain.identifiers[1].article"
    assert err.line == 17
    assert "required key is missing" in str(err)


def test_bad_source_type_pair() -> None:
    err = _error(MINIMAL + "policy:\n  profile_sources:\n    - shop\n")
    assert (err.line, err.key) == (13, "policy.profile_sources[0]")
    assert "source:type" in str(err)


def test_unknown_step_names_its_line() -> None:
    err = _error(MINIMAL.replace("  - check_safety\n", "  - chek_safety\n"))
    assert (err.line, err.key) == (9, "steps[2]")
    assert "unknown erasure step 'chek_safety'" in str(err)


def test_step_order_is_enforced() -> None:
    text = MINIMAL.replace(
        "  - check_safety\n",
        "  - check_safety\n  - permanently_delete_users\n  - soft_delete_users\n",
    )
    err = _error(text)
    assert err.key == "steps[3]"
    assert "'permanently_delete_users' must come after 'soft_delete_users'" in str(err)


def test_missing_required_step() -> None:
    err = _error(MINIMAL.replace("  - check_safety\n", ""))
    assert "required step 'check_safety' is missing" in str(err)


def test_evidence_must_be_last() -> None:
    err = _error(
        MINIMAL.replace("  - evidence\n", "").replace(
            "  - discover\n", "  - discover\n  - evidence\n"
        )
    )
    assert "'evidence' must be the last step" in str(err)


def test_keep_scrubbed_needs_a_reason() -> None:
    err = _error(MINIMAL + "policy:\n  profiles: keep_scrubbed\n")
    assert err.key == "policy.profiles"
    assert "keep_profiles" in str(err)


def test_art19_needs_recipients_or_a_reason() -> None:
    err = _error(MINIMAL.replace("  none_reason: no recipients\n", "  recipients: []\n"))
    assert err.key == "art19_recipients"


def test_syntax_error_has_a_line() -> None:
    err = _error("schema: privacykit.playbook/1\nname: [unclosed\nkind: erasure\n")
    assert err.line is not None and err.line >= 2
    assert "YAML syntax error" in str(err)


def test_duplicate_key_is_an_error() -> None:
    err = _error(MINIMAL + "policy:\n  profiles: delete\n  profiles: delete\n")
    assert (err.line, err.key) == (13, "policy.profiles")


def test_python_tags_are_refused() -> None:
    err = _error(MINIMAL + "policy:\n  profiles: !!python/object/apply:os.system ['true']\n")
    assert (err.line, err.key) == (12, "policy.profiles")
    assert "unsupported YAML" in str(err)


def test_unknown_kind() -> None:
    err = _error(MINIMAL.replace("kind: erasure", "kind: shredding"))
    assert (err.line, err.key) == (3, "kind")
    assert "unknown playbook kind 'shredding'" in str(err)


def test_empty_and_non_mapping() -> None:
    assert "empty" in str(_error(""))
    assert "a playbook is a mapping" in str(_error("- a\n- b\n"))
