"""SUBJECT parsing: the four ways an operator names a person, validated strictly.

Owns :class:`Subject`, :func:`parse_subject` and :func:`read_subjects` (arguments plus
``--from-file``). Forms:

* ``jane@example.com`` -- an email address;
* ``user:<zendesk id>`` -- a Zendesk user id (digits);
* ``ext:<external_id>`` -- a Zendesk ``external_id``;
* ``source:type:identifier_type:value`` -- a Sunshine profile identifier query: exactly four
  non-empty parts, split on the first three colons (the docs define ``:`` as the delimiter of
  the first three parts only, so the value may itself contain colons, e.g. a URN).

The prefixes ``user:`` and ``ext:`` are reserved: ``user:...`` is always a user id, never an
identifier query for a profile source named "user".

Errors never repeat the offending text: a subject is personal data, so messages name the
argument position or the file line instead.

Subjects on a command line are visible to every local user (``ps``) and stay in shell
history, so ``--from-file -`` reads them from standard input (:data:`STDIN`). A subjects
file is read whole before any request is sent, so it is bounded: at most
:data:`MAX_SUBJECTS_FILE_BYTES` and :data:`MAX_SUBJECTS_LINES` lines (split bigger batches).
"""

from __future__ import annotations

import csv
import io
import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from privacykit.errors import SubjectError

__all__ = [
    "MAX_SUBJECTS_FILE_BYTES",
    "MAX_SUBJECTS_LINES",
    "STDIN",
    "Subject",
    "SubjectKind",
    "parse_subject",
    "read_subjects",
    "read_subjects_file",
]

SubjectKind = Literal["email", "user", "external_id", "identifier"]

# Deliberately conservative: one "@", no whitespace, a dotted domain of letters, digits and
# hyphens. Quoted local parts and IP-literal domains are legal in RFC 5321 but Zendesk does
# not accept them as identities either.
_EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@"
    r"(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)
# Profile source, type and identifier type: the docs show lowercase words with underscores;
# we accept letters, digits, "_", "-" and "." and nothing that would confuse the query syntax.
_NAME_PART = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
_USER_ID = re.compile(r"^[1-9][0-9]{0,19}$")
# Identifier types whose values Zendesk lower-cases (Profiles API: "When the value for
# identifier types 'email' and 'twitter' are added or modified, any upper case letters are
# automatically converted to lower case").
_LOWERCASED_TYPES = frozenset({"email", "twitter"})
_MAX_VALUE = 1000

STDIN = "-"  # ``--from-file -``: subjects from standard input, never on the command line
# A batch that large takes about a day at Zendesk's 700 permanent deletions per 10 minutes.
MAX_SUBJECTS_LINES = 100_000
MAX_SUBJECTS_FILE_BYTES = 16 * 1024 * 1024

FORMS_HELP = "an email, user:<id>, ext:<external_id> or source:type:identifier_type:value"


@dataclass(frozen=True)
class Subject:
    """One person as the operator named them. ``repr`` never shows the value.

    ``kind`` is one of ``email``, ``user``, ``external_id`` and ``identifier``; ``value`` is
    the normalised value (lower-cased email, the user id digits, the external id as given,
    or the identifier value). For identifier queries ``source``, ``profile_type`` and
    ``identifier_type`` hold the other three parts.
    """

    kind: SubjectKind
    value: str = field(repr=False)
    source: str | None = None
    profile_type: str | None = None
    identifier_type: str | None = None

    @property
    def key(self) -> str:
        """The normalised identifier the ledger hashes (``ledger.subject_ref(subject.key)``),
        also used to merge duplicates. External ids compare case-insensitively (Users API:
        "The API treats the id as case insensitive")."""
        if self.kind == "email":
            return f"email:{self.value}"
        if self.kind == "user":
            return f"user:{self.value}"
        if self.kind == "external_id":
            return f"ext:{self.value.lower()}"
        return f"identifier:{self.query}"

    @property
    def query(self) -> str:
        """The identifier query ``source:type:identifier_type:value`` (identifier subjects)."""
        if self.kind != "identifier":
            raise ValueError("only identifier subjects have an identifier query")
        return f"{self.source}:{self.profile_type}:{self.identifier_type}:{self.value}"

    @property
    def source_type(self) -> str | None:
        """``source:type`` of an identifier subject, else None."""
        if self.kind != "identifier":
            return None
        return f"{self.source}:{self.profile_type}"

    @property
    def user_id(self) -> int:
        """The Zendesk user id of a ``user:`` subject."""
        if self.kind != "user":
            raise ValueError("only user subjects have a user id")
        return int(self.value)

    def describe(self) -> str:
        """A description safe to print or log: the form, never the value."""
        if self.kind == "user":
            return f"user:{self.value}"  # a Zendesk id, not personal data on its own
        if self.kind == "identifier":
            return f"identifier query {self.source}:{self.profile_type}:{self.identifier_type}:…"
        return {"email": "email address", "external_id": "external id"}[self.kind]


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text)


def parse_subject(text: str, *, where: str = "SUBJECT") -> Subject:
    """Parse and normalise one SUBJECT. ``where`` names it in errors (e.g. "line 3").

    Raises :class:`SubjectError` (exit 2) for anything that is not exactly one of the four
    forms; the message never contains the text itself."""
    raw = text.strip()
    if not raw:
        raise SubjectError(f"{where}: empty subject; expected {FORMS_HELP}")
    if _has_control(raw) or any(ch.isspace() for ch in raw):
        raise SubjectError(f"{where}: subject contains whitespace or control characters")
    if len(raw) > _MAX_VALUE:
        raise SubjectError(f"{where}: subject is longer than {_MAX_VALUE} characters")

    lowered = raw.lower()
    if lowered.startswith("user:"):
        ident = raw[5:]
        if not _USER_ID.match(ident):
            raise SubjectError(f"{where}: user:<id> needs a positive numeric Zendesk user id")
        return Subject("user", ident)
    if lowered.startswith("ext:"):
        ext = raw[4:]
        if not ext:
            raise SubjectError(f"{where}: ext:<external_id> needs a non-empty external id")
        return Subject("external_id", ext)
    if ":" in raw:
        parts = raw.split(":", 3)
        if len(parts) != 4 or not all(parts):
            raise SubjectError(
                f"{where}: an identifier query needs exactly four non-empty parts "
                "source:type:identifier_type:value"
            )
        source, profile_type, identifier_type, value = parts
        for label, part in (
            ("source", source),
            ("type", profile_type),
            ("identifier_type", identifier_type),
        ):
            if not _NAME_PART.match(part):
                raise SubjectError(
                    f"{where}: identifier query {label} may use only letters, digits, '_', '-', '.'"
                )
        if identifier_type.lower() in _LOWERCASED_TYPES:
            value = value.lower()
        if identifier_type.lower() == "email" and not _EMAIL.match(value):
            raise SubjectError(f"{where}: identifier query value is not a valid email address")
        return Subject("identifier", value, source, profile_type, identifier_type)
    if "@" in raw:
        if not _EMAIL.match(raw):
            raise SubjectError(f"{where}: not a valid email address")
        return Subject("email", raw.lower())
    raise SubjectError(f"{where}: not a subject; expected {FORMS_HELP}")


def _dedupe(subjects: Iterable[Subject]) -> list[Subject]:
    seen: set[str] = set()
    out: list[Subject] = []
    for subject in subjects:
        if subject.key not in seen:
            seen.add(subject.key)
            out.append(subject)
    return out


def _is_csv_header(line: str) -> bool:
    try:
        row = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return False
    return "subject" in [cell.strip().lower() for cell in row]


def _read_bounded(path: str | Path) -> bytes:
    """At most ``MAX_SUBJECTS_FILE_BYTES + 1`` bytes of the file or standard input."""
    limit = MAX_SUBJECTS_FILE_BYTES + 1
    if str(path) == STDIN:
        stream = getattr(sys.stdin, "buffer", None)
        if stream is not None:
            return bytes(stream.read(limit))
        return sys.stdin.read(limit).encode("utf-8")
    # Not only regular files: `--from-file <(command)` is a pipe, and reading is bounded.
    with open(path, "rb") as handle:
        return handle.read(limit)


def read_subjects_file(path: str | Path) -> list[Subject]:
    """Subjects from a file (``-``: standard input): one per line, or a CSV with a
    ``subject`` column (detected from the first meaningful line). Blank lines and lines
    starting with ``#`` are ignored; duplicates are merged. Errors name the file (or
    ``stdin``) and line; nothing is read lazily, so a bad line is reported before any
    request is sent. Bounded: :data:`MAX_SUBJECTS_FILE_BYTES`, :data:`MAX_SUBJECTS_LINES`."""
    name = "stdin" if str(path) == STDIN else str(path)
    try:
        raw = _read_bounded(path)
    except FileNotFoundError:
        raise SubjectError(f"{name}: subjects file not found") from None
    except OSError as exc:
        raise SubjectError(f"{name}: cannot read subjects file: {exc.strerror}") from None
    if len(raw) > MAX_SUBJECTS_FILE_BYTES:
        raise SubjectError(
            f"{name}: subjects file is larger than {MAX_SUBJECTS_FILE_BYTES // 2**20} MiB; "
            "split it into several batches"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SubjectError(f"{name}: subjects file is not UTF-8 text") from None

    # Newlines are counted before splitting, so 16 MiB of them never becomes a huge list.
    too_many = max(text.count("\n"), text.count("\r")) > MAX_SUBJECTS_LINES
    lines = [] if too_many else text.splitlines()
    if too_many or len(lines) > MAX_SUBJECTS_LINES:
        raise SubjectError(
            f"{name}: subjects file has more than {MAX_SUBJECTS_LINES:,} lines; "
            "split it into several batches"
        )
    first = next(
        (i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")),
        None,
    )
    subjects: list[Subject] = []
    if first is not None and _is_csv_header(lines[first]):
        reader = csv.reader(io.StringIO("\n".join(lines[first:])))
        try:
            header = [cell.strip().lower() for cell in next(reader)]
            column = header.index("subject")
            for row in reader:
                lineno = first + reader.line_num
                if not row or all(not cell.strip() for cell in row):
                    continue
                if row[0].lstrip().startswith("#"):
                    continue
                if column >= len(row):
                    raise SubjectError(f"{name}:{lineno}: row has no 'subject' column")
                subjects.append(parse_subject(row[column], where=f"{name}:{lineno}"))
        except csv.Error:
            raise SubjectError(f"{name}:{first + reader.line_num}: malformed CSV row") from None
    else:
        for index, line in enumerate(lines, start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            subjects.append(parse_subject(stripped, where=f"{name}:{index}"))
    return _dedupe(subjects)


def read_subjects(args: Sequence[str] = (), from_file: str | Path | None = None) -> list[Subject]:
    """All subjects of one invocation: the arguments (named "SUBJECT 1", "SUBJECT 2", ...)
    then the file's (``-``: standard input), duplicates merged, order kept. Everything is
    validated before the caller sends a single request."""
    subjects = [parse_subject(arg, where=f"SUBJECT {i}") for i, arg in enumerate(args, start=1)]
    if from_file is not None:
        subjects.extend(read_subjects_file(from_file))
    return _dedupe(subjects)
