"""Secrets and personal data scan (#8): run every main command against the sandbox with a
recognisable fake API token and subject, then scan everything the run produced.

Produced means: every file under ``PRIVACYKIT_HOME`` (raw bytes, so SQLite pages, WAL and
journal files too; PDFs also as pypdf-extracted text), the evidence bundle's members
(unzipped, PDFs extracted), the access export directory, each command's stdout/stderr and
a DEBUG log of every logger. Nothing may contain the token (nor the Basic credential built
from it); only the access export's ``data.json``, ``index.html``, CSVs and attachments may
contain the subject's data.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from privacykit.cli import cli
from privacykit.sandbox import SandboxServer

TOKEN = "pkFAKEtoken7f3a9c2e51Zq"
AGENT = "dpo@sandbox.test"
EMAIL = "quentin.zyxsecret.8c1f@example.com"
PHONE = "+15550199876"
NAME = "Quentin Zyxsecretson"
EXTERNAL_ID = "ext-zyxsecret-8c1f2d"
MEMBER_ID = "MZYX-774411"

SUBJECT_NEEDLES = {
    "email": EMAIL,
    "email (url-encoded)": EMAIL.replace("@", "%40"),
    "email local part": "quentin.zyxsecret",
    "phone": PHONE,
    "phone digits": PHONE.lstrip("+"),
    "name": NAME,
    "surname": "Zyxsecretson",
    "external id": EXTERNAL_ID,
    "profile identifier": MEMBER_ID,
}
TOKEN_NEEDLES = {
    "token": TOKEN,
    "basic credential": base64.b64encode(f"{AGENT}/token:{TOKEN}".encode()).decode(),
}


@pytest.fixture
def fake_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(
        seed="none", time_scale=600.0, fault_rate=0.0, rng_seed=7, api_token=TOKEN, email=AGENT
    ) as sb:
        user = sb.state.add_user(
            NAME, email=EMAIL, phone=PHONE, external_id=EXTERNAL_ID, verified=True
        )
        sb.state.put_profile(
            "webshop",
            "customer",
            [{"type": "email", "value": EMAIL}, {"type": "member_id", "value": MEMBER_ID}],
            user_id=user["id"],
            name=NAME,
            attributes={"nickname": NAME},
        )
        sb.state.add_ticket(user["id"], "closed", f"Order question from {NAME}")
        yield sb


def _texts_of(name: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    """The raw bytes, and for PDFs and zips what is inside them."""
    yield name, data
    if data.startswith(b"%PDF"):
        reader = PdfReader(io.BytesIO(data))
        text = "\n".join(page.extract_text() or "" for page in reader.pages)
        meta = json.dumps({k: str(v) for k, v in (reader.metadata or {}).items()})
        yield f"{name} (text)", (text + meta).encode()
    elif data.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                yield from _texts_of(f"{name}!{member}", archive.read(member))


def _hits(blob: bytes, needles: dict[str, str]) -> list[str]:
    low = blob.lower()
    return [label for label, value in needles.items() if value.lower().encode() in low]


def test_no_token_anywhere_and_subject_data_only_in_the_access_export(
    fake_sandbox: SandboxServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    out = tmp_path / "export"
    bundle = tmp_path / "bundle.zip"
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    env: dict[str, Any] = {
        **fake_sandbox.env(),
        "PRIVACYKIT_HOME": str(home),
        "ZENDESK_SUBDOMAIN": None,
        "ZENDESK_OAUTH_TOKEN": None,
        "PRIVACYKIT_TSA_URL": None,
    }
    assert env["ZENDESK_API_TOKEN"] == TOKEN

    log_file = tmp_path / "debug.log"
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s %(args)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)

    runner = CliRunner()

    def run(step: str, *args: str, codes: tuple[int, ...] = (0,)) -> str:
        result = runner.invoke(cli, list(args), env=env)
        (outputs / f"{step}.stdout").write_text(result.stdout)
        (outputs / f"{step}.stderr").write_text(result.stderr)
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(
            result.exception
        )
        assert result.exit_code in codes, (step, result.output)
        return result.stdout

    try:
        run("keys-init", "keys", "init", "--organisation", "Scan Test Ltd")
        run("access", "access", EMAIL, "--out", str(out), "--json")
        erased = json.loads(run("erase", "erase", EMAIL, "--yes", "--json", "--quiet"))
        run("erase-resume", "erase", "--resume", "--yes", "--quiet")
        audited = json.loads(run("audit", "audit", "--report", "--json", codes=(0, 1)))
        listing = json.loads(run("ledger-list", "ledger", "list", "--json"))
        # `ledger list` shows data subject requests; the audit run is shown as well.
        request_ids = [r["request_id"] for r in listing["requests"]]
        assert len(request_ids) >= 2  # access, erasure
        request_ids.append(audited["audit_request_id"])
        run("ledger-export", "ledger", "export", "--format", "json")
        for rid in request_ids:
            run(f"ledger-show-{rid}", "ledger", "show", rid, "--json")
            run(f"evidence-show-{rid}", "evidence", "show", rid)
        run("ledger-verify", "ledger", "verify")
        export_args = [a for rid in request_ids for a in ("--request", rid)]
        run("evidence-export", "evidence", "export", "--out", str(bundle), *export_args)
        run("evidence-verify", "evidence", "verify", str(bundle), "--json")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()

    # The run did what it says, so the scan below looks at real artefacts.
    assert fake_sandbox.state.user_by_email(EMAIL) is None
    assert erased
    assert (out / "data.json").is_file()
    assert any(p.suffix == ".pdf" for p in home.rglob("*"))
    assert any(p.name.endswith(("-wal", ".db", ".sqlite", ".sqlite3")) for p in home.rglob("*"))

    export_files = {
        p
        for p in out.rglob("*")
        if p.name in ("data.json", "index.html")
        or p.suffix == ".csv"
        or p.relative_to(out).parts[0] == "attachments"
    }
    # The positive control: the scanner finds the subject where it must be.
    assert _hits((out / "data.json").read_bytes(), SUBJECT_NEEDLES)

    scanned = 0
    token_leaks: list[str] = []
    subject_leaks: list[str] = []
    files = [*home.rglob("*"), *out.rglob("*"), bundle, log_file, *outputs.iterdir()]
    for path in files:
        if not path.is_file():
            continue
        for name, blob in _texts_of(str(path.relative_to(tmp_path)), path.read_bytes()):
            scanned += 1
            token_leaks += [f"{name}: {hit}" for hit in _hits(blob, TOKEN_NEEDLES)]
            if path not in export_files:
                subject_leaks += [f"{name}: {hit}" for hit in _hits(blob, SUBJECT_NEEDLES)]
    assert scanned > 30
    assert log_file.stat().st_size > 0
    assert token_leaks == []
    assert subject_leaks == []
