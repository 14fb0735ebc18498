"""SUBJECT parsing: the four forms, strict validation, files, and no personal data in errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from privacykit.errors import SubjectError
from privacykit.playbooks.subjects import parse_subject, read_subjects, read_subjects_file


def test_email_is_lowercased_and_keyed() -> None:
    subject = parse_subject("  Jane.Doe+x@Example.COM ")
    assert subject.kind == "email"
    assert subject.value == "jane.doe+x@example.com"
    assert subject.key == "email:jane.doe+x@example.com"


def test_user_id() -> None:
    subject = parse_subject("user:12345")
    assert (subject.kind, subject.user_id, subject.key) == ("user", 12345, "user:12345")
    assert parse_subject("USER:7").user_id == 7


def test_external_id_keeps_case_but_keys_case_insensitively() -> None:
    subject = parse_subject("ext:ABC-123")
    assert subject.kind == "external_id"
    assert subject.value == "ABC-123"
    assert subject.key == "ext:abc-123"
    assert parse_subject("ext:abc-123").key == subject.key


def test_identifier_query_value_may_contain_colons() -> None:
    subject = parse_subject("crm:contact:urn:id:a:b:c")
    assert subject.kind == "identifier"
    assert (subject.source, subject.profile_type, subject.identifier_type) == (
        "crm",
        "contact",
        "urn",
    )
    assert subject.value == "id:a:b:c"
    assert subject.query == "crm:contact:urn:id:a:b:c"
    assert subject.source_type == "crm:contact"


def test_identifier_query_email_value_is_lowercased() -> None:
    subject = parse_subject("shop:customer:email:Jane@Example.com")
    assert subject.query == "shop:customer:email:jane@example.com"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "SUBJECT: empty subject"),
        ("user:", "user:<id> needs a positive numeric Zendesk user id"),
        ("user:0", "user:<id> needs a positive numeric Zendesk user id"),
        ("user:12a", "user:<id> needs a positive numeric Zendesk user id"),
        ("ext:", "ext:<external_id> needs a non-empty external id"),
        ("shop:customer:email", "exactly four non-empty parts"),
        ("shop::email:x", "exactly four non-empty parts"),
        ("shop:customer:email:", "exactly four non-empty parts"),
        ("sh op:customer:email:x", "whitespace"),
        ("shop:cust/omer:member_id:1", "type may use only letters"),
        ("shop:customer:email:not-an-email", "not a valid email address"),
        ("jane@", "not a valid email address"),
        ("jane@@example.com", "not a valid email address"),
        ("jane@example", "not a valid email address"),
        ("janedoe", "not a subject; expected an email"),
        ("jane\x1b[2J@example.com", "control characters"),
    ],
)
def test_malformed_subjects_are_rejected(text: str, message: str) -> None:
    with pytest.raises(SubjectError) as info:
        parse_subject(text)
    assert message in str(info.value)
    assert info.value.exit_code == 2


def test_error_never_repeats_the_subject() -> None:
    with pytest.raises(SubjectError) as info:
        parse_subject("secret-person@", where="SUBJECT 3")
    assert "secret-person" not in str(info.value)
    assert str(info.value).startswith("SUBJECT 3: ")


def test_repr_hides_the_value() -> None:
    subject = parse_subject("jane@example.com")
    assert "jane" not in repr(subject)
    assert "jane" not in subject.describe()


def test_plain_file_with_comments_blanks_and_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "subjects.txt"
    path.write_text("# erasure batch\n\njane@example.com\nuser:42\nJANE@example.com\n  \next:A1\n")
    subjects = read_subjects_file(path)
    assert [s.key for s in subjects] == ["email:jane@example.com", "user:42", "ext:a1"]


def test_csv_file_with_subject_column(tmp_path: Path) -> None:
    path = tmp_path / "subjects.csv"
    path.write_text(
        'ticket,subject,note\n101,jane@example.com,"a, b"\n102,user:7,\n103,jane@example.com,dup\n'
    )
    assert [s.key for s in read_subjects_file(path)] == ["email:jane@example.com", "user:7"]


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "subjects.txt"
    path.write_text("jane@example.com\n# comment\nuser:abc\n")
    with pytest.raises(SubjectError, match=r"subjects\.txt:3: user:<id> needs"):
        read_subjects_file(path)


def test_bad_csv_row_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "subjects.csv"
    path.write_text("subject,id\njane@example.com,1\n\nnope,2\n")
    with pytest.raises(SubjectError, match=r"subjects\.csv:4: not a subject"):
        read_subjects_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SubjectError, match="subjects file not found"):
        read_subjects_file(tmp_path / "nope.txt")


def test_arguments_and_file_merge(tmp_path: Path) -> None:
    path = tmp_path / "s.txt"
    path.write_text("user:1\njane@example.com\n")
    subjects = read_subjects(["jane@example.com", "user:2"], path)
    assert [s.key for s in subjects] == ["email:jane@example.com", "user:2", "user:1"]


def test_argument_errors_are_numbered() -> None:
    with pytest.raises(SubjectError, match="^SUBJECT 2: "):
        read_subjects(["user:1", "user:x"])
