"""`privacykit access` end to end over real HTTP against the sandbox: files, schema, CSVs,
signed report, ledger, batch, faults, read-only proof, not-found, ambiguity, bad input."""

from __future__ import annotations

import csv
import hashlib
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pypdf import PdfReader
from test_access_collect import JANE, SHARED_PHONE, seed_person

from privacykit.cli import cli
from privacykit.config import ZendeskConfig
from privacykit.evidence.keys import load_keys
from privacykit.evidence.sign import validate_signed_pdf
from privacykit.ledger import Ledger
from privacykit.playbooks.access import (
    CSV_TABLES,
    REPORT_FILE,
    AccessPolicy,
    csv_cell,
    csv_tables,
    prepare_output_dir,
    run_access,
)
from privacykit.playbooks.access.schema import validate
from privacykit.playbooks.loader import load_playbook
from privacykit.playbooks.subjects import parse_subject
from privacykit.sandbox import SandboxServer
from privacykit.zendesk import ZendeskClient

PLAYBOOK = Path(__file__).resolve().parent.parent / "playbooks" / "access.yaml"
CSV_NAMES = [f"{t.name}.csv" for t in CSV_TABLES]


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, ["access", *args], catch_exceptions=False)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def check_delivery(
    directory: Path, home: Path, *, report: bool = True, found: bool = True
) -> dict[str, Any]:
    """Everything a delivered answer must be: owner-only files, data.json valid against its
    schema, every CSV equal to the JSON (no CSVs when nothing was found), and a signed
    report that validates (when reports are produced)."""
    assert mode(directory) == 0o700
    names = sorted(p.name for p in directory.iterdir() if p.name != "attachments")
    expected = [
        "data.json",
        "index.html",
        *(CSV_NAMES if found else []),
        *([REPORT_FILE] if report else []),
    ]
    assert names == sorted(expected)
    assert all(mode(directory / n) == 0o600 for n in names)
    export = json.loads((directory / "data.json").read_text(encoding="utf-8"))
    validate(export)
    assert export["found"] is found
    if found:
        for name, (columns, records) in csv_tables(export).items():
            rows = read_csv(directory / f"{name}.csv")
            assert len(rows) == len(records), name
            for row, record in zip(rows, records, strict=True):
                assert row == {c: csv_cell(record.get(c)) for c in columns}, name
    if report:
        pdf = (directory / REPORT_FILE).read_bytes()
        check = validate_signed_pdf(pdf, [load_keys(home).certificate])
        assert check.ok, check.problem()
    return export


def report_text(path: Path) -> str:
    return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_single_subject_end_to_end(
    sandbox: Any, zendesk_env: dict[str, str], home: Path, evidence_home: Path, tmp_path: Path
) -> None:
    people = seed_person(sandbox.state, events=150)
    out = tmp_path / "answer"
    result = invoke(JANE, "--out", str(out), "--json", "--playbook", str(PLAYBOOK))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    [request] = summary["requests"]
    assert request["outcome"] == "data_found" and request["out_dir"] == str(out)
    # The machine output names the subject by position and keyed reference only.
    assert JANE not in result.output

    export = check_delivery(out, home)
    assert export["found"] is True and export["request_id"] == request["request_id"]
    assert {u["id"] for u in export["users"]} == {people["jane"]["id"], people["anon_user_id"]}
    assert {p["id"] for p in export["profiles"]} == {
        people["shop"]["id"],
        people["anon_profile"]["id"],
    }
    assert export["counts"]["events"] == 153 and len(export["events"]) == 153
    assert export["counts"]["tickets"] == 2
    assert export["processing"]["controller"].startswith("Example Support Ltd")
    # The formula-looking attribute is inert in the CSV, exact in the JSON.
    attrs = read_csv(out / "profile_attributes.csv")
    assert {"profile_id": people["shop"]["id"], "key": "tier", "value": "'=gold"} in attrs
    assert {"attribute": "=gold"} == {
        "attribute": next(p for p in export["profiles"] if p["id"] == people["shop"]["id"])[
            "attributes"
        ]["tier"]
    }

    # Read-only: every request this run sent was a GET.
    methods = {entry["method"] for entry in sandbox.request_log()}
    assert methods == {"GET"}

    # The report is a summary, not the data: no email, phone or event text in it.
    text = report_text(out / REPORT_FILE)
    assert request["request_id"] in text
    for personal in (JANE, SHARED_PHONE, "janedoe", "order 1", "My bike"):
        assert personal not in text
    assert "Sunshine profile events" in text

    # The ledger: the request, the sha256 of every delivered file and the report, no data.
    with Ledger.open(home) as ledger:
        req = ledger.get_request(request["request_id"])
        assert req.kind == "access" and req.status == "completed"
        assert req.subject_ref == ledger.subject_ref(parse_subject(JANE).key)
        entries = ledger.entries(request["request_id"])
        dump = json.dumps([e.to_dict() for e in entries])
        for personal in (JANE, SHARED_PHONE, "janedoe", "Jane Doe", "order 1", "My bike"):
            assert personal not in dump
        delivered = next(e for e in entries if e.step_key == "deliver").data["files"]
        assert {f["name"]: f["sha256"] for f in delivered} == {
            n: sha256(out / n) for n in ["data.json", "index.html", *CSV_NAMES]
        }
        report_entry = next(e for e in entries if e.step_key == "deliver:report").data
        assert report_entry["sha256"] == sha256(out / REPORT_FILE)
        evidence = next(e for e in entries if e.step_key == "evidence").data
        assert evidence["schema"] == "privacykit.access-evidence/2"
        assert evidence["counts"]["events"] == 153
        assert ledger.verify().ok
        assert ledger.latest_checkpoint() is not None
        assert ledger.latest_checkpoint().size == len(ledger.entries())  # type: ignore[union-attr]


def test_not_found_subject_gets_a_report(
    sandbox: Any, zendesk_env: dict[str, str], home: Path, evidence_home: Path, tmp_path: Path
) -> None:
    seed_person(sandbox.state, events=0)
    out = tmp_path / "nobody"
    result = invoke("nobody@example.com", "--out", str(out), "--playbook", str(PLAYBOOK))
    assert result.exit_code == 0, result.output
    assert "no data found" in result.output
    export = check_delivery(out, home, found=False)
    assert export["counts"]["users"] == 0
    assert "GET /api/v2/users/search" in export["searched"]["endpoints"]
    text = report_text(out / REPORT_FILE)
    assert "no_data_found" in text and "/api/v2/users/search" in text
    assert "Zendesk Support users" in text
    with Ledger.open(home) as ledger:
        [req] = ledger.list_requests(kind="access")
        assert req.status == "completed" and req.status_reason == "no_data_found"


def test_batch_writes_one_directory_per_request(
    sandbox: Any, zendesk_env: dict[str, str], home: Path, evidence_home: Path, tmp_path: Path
) -> None:
    people = seed_person(sandbox.state, events=4)
    subjects = tmp_path / "subjects.csv"
    subjects.write_text(
        "subject,note\n"
        f"{JANE},first\n"
        f"user:{people['other']['id']},second\n"
        "nobody@example.com,third\n"
        f"{JANE.upper()},duplicate\n",
        encoding="utf-8",
    )
    out = tmp_path / "batch"
    result = invoke(
        "--from-file",
        str(subjects),
        "--out",
        str(out),
        "--json",
        "--no-report",
        "--playbook",
        str(PLAYBOOK),
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert [r["outcome"] for r in summary["requests"]] == [
        "data_found",
        "data_found",
        "no_data_found",
    ]
    ids = [r["request_id"] for r in summary["requests"]]
    assert sorted(p.name for p in out.iterdir()) == sorted(ids)
    exports = [
        check_delivery(out / rid, home, report=False, found=found)
        for rid, found in zip(ids, [True, True, False], strict=True)
    ]
    assert all(r["report"] is None for r in summary["requests"])
    assert {u["id"] for u in exports[0]["users"]} == {people["jane"]["id"], people["anon_user_id"]}
    assert [u["id"] for u in exports[1]["users"]] == [people["other"]["id"]]
    # Nobody's data leaks into another's answer.
    assert JANE not in json.dumps(exports[1]) and "other@example.com" not in json.dumps(exports[0])
    assert {entry["method"] for entry in sandbox.request_log()} == {"GET"}
    with Ledger.open(home) as ledger:
        assert sorted(r.request_id for r in ledger.list_requests(kind="access")) == sorted(ids)
        assert all(r.status == "completed" for r in ledger.list_requests(kind="access"))


@pytest.fixture
def faulty_sandbox() -> Iterator[Any]:
    with SandboxServer(seed="none", time_scale=600.0, fault_rate=0.15, rng_seed=7) as server:
        yield server


def test_faults_injected_and_the_run_still_completes(
    faulty_sandbox: Any, home: Path, evidence_home: Path, tmp_path: Path
) -> None:
    people = seed_person(faulty_sandbox.state, events=250)
    other = seed_other_people(faulty_sandbox.state, 5)
    policy = AccessPolicy.from_playbook(load_playbook(PLAYBOOK))
    subjects = [parse_subject(JANE), *(parse_subject(f"user:{uid}") for uid in other)]
    out = prepare_output_dir(tmp_path / "faulty")
    config = ZendeskConfig.from_env(faulty_sandbox.env())
    with (
        ZendeskClient(
            config, backoff_initial=0.01, backoff_max=0.05, max_attempts=8, timeout=5.0
        ) as client,
        Ledger.open(home) as ledger,
    ):
        # workers=1: a window of 4 jobs in flight, smaller than the batch of 6.
        run = run_access(
            subjects,
            out,
            policy=policy,
            client=client,
            ledger=ledger,
            home=home,
            workers=1,
            produce_reports=False,
        )
        assert client.stats.snapshot()["retries"] > 0, "no fault was injected"
    assert run.exit_code == 0, [r.as_dict() for r in run.results]
    jane = check_delivery(out / run.results[0].request_id, home, report=False)
    assert jane["counts"]["events"] == 253 and jane["counts"]["users"] == 2
    assert {p["id"] for p in jane["profiles"]} == {
        people["shop"]["id"],
        people["anon_profile"]["id"],
    }
    assert [r.position for r in run.results] == [1, 2, 3, 4, 5, 6]
    for result in run.results[1:]:
        export = check_delivery(out / result.request_id, home, report=False)
        assert export["counts"]["events"] == 20
    faults = [e for e in faulty_sandbox.request_log() if e.get("fault")]
    assert faults and {e["method"] for e in faulty_sandbox.request_log()} == {"GET"}


def seed_other_people(state: Any, n: int) -> list[int]:
    ids = []
    for i in range(n):
        user = state.add_user(f"Person {i}", email=f"person{i}@example.com", verified=True)
        profile = state.put_profile(
            "coolbikes",
            "rider",
            [{"type": "email", "value": f"person{i}@example.com"}],
            user_id=user["id"],
        )
        for j in range(20):
            state.add_event(profile["id"], type="page_viewed", description=f"p{j}")
        ids.append(user["id"])
    return ids


def test_ambiguous_subject_needs_review_until_confirmed(
    sandbox: Any, zendesk_env: dict[str, str], home: Path, evidence_home: Path, tmp_path: Path
) -> None:
    """Jane's phone number is also the identity of a user with an email of their own: that
    may be another person, whose data must not be handed to Jane unchecked."""
    sandbox.state.add_user("Sam Shared", email="sam@example.com", phone=SHARED_PHONE, verified=True)
    jane = sandbox.state.add_user("Jane Doe", email=JANE, verified=True)
    sandbox.state.put_profile(
        "webshop",
        "customer",
        [{"type": "email", "value": JANE}, {"type": "phone_number", "value": SHARED_PHONE}],
        user_id=jane["id"],
    )
    out = tmp_path / "amb"
    result = invoke(JANE, "--out", str(out), "--json", "--no-report", "--playbook", str(PLAYBOOK))
    assert result.exit_code == 1, result.output
    [request] = json.loads(result.output)["requests"]
    assert request["outcome"] == "needs_review" and request["files"] == []
    assert any("shared identifier" in r for r in request["reasons"])
    assert not out.exists()  # nothing delivered: no empty answer folder is left behind
    with Ledger.open(home) as ledger:
        assert ledger.get_request(request["request_id"]).status == "needs_review"

    confirmed = invoke(
        JANE,
        *("--out", str(out), "--json", "--confirm-ambiguous", "--no-report"),
        *("--playbook", str(PLAYBOOK)),
    )
    assert confirmed.exit_code == 0, confirmed.output
    [again] = json.loads(confirmed.output)["requests"]
    assert again["request_id"] == request["request_id"]  # the same request, resumed
    export = check_delivery(out, home, report=False)
    assert len(export["users"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["not-a-subject"], "SUBJECT 1"),
        (["a:b:c"], "four non-empty parts"),
        ([JANE, "--received", "yesterday"], "--received"),
        ([JANE, "--playbook", "erasure"], "not an access playbook"),
        ([JANE, "--playbook", "no-such-playbook"], "no playbook named"),
        ([JANE, "--from-file", "/nonexistent/subjects.txt"], "not found"),
    ],
)
def test_input_errors_are_one_line_exit_2_nothing_sent(
    sandbox: Any,
    zendesk_env: dict[str, str],
    home: Path,
    evidence_home: Path,
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    out = tmp_path / "never"
    result = CliRunner().invoke(cli, ["access", *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert sandbox.request_log() == []
    assert not out.exists()


def test_missing_out_and_non_empty_out(
    sandbox: Any, zendesk_env: dict[str, str], home: Path, evidence_home: Path, tmp_path: Path
) -> None:
    result = CliRunner().invoke(cli, ["access", JANE])
    assert result.exit_code == 2 and "--out" in result.output
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "someone-else.txt").write_text("x")
    result = CliRunner().invoke(cli, ["access", JANE, "--out", str(busy)])
    assert result.exit_code == 2 and "not empty" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert sandbox.request_log() == []
    seed_person(sandbox.state, events=0)
    busy.chmod(0o755)
    forced = invoke(JANE, "--out", str(busy), "--force", "--no-report", "--playbook", str(PLAYBOOK))
    assert forced.exit_code == 0, forced.output
    assert (busy / "someone-else.txt").read_text() == "x"
    assert (busy / "data.json").exists()
    assert mode(busy) == 0o755  # not privacykit's directory: its mode is left alone


def test_wrong_credentials_exit_2_before_anything_is_recorded(
    sandbox: Any,
    zendesk_env: dict[str, str],
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZENDESK_API_TOKEN", "wrong-token-value-123")
    out = tmp_path / "x"
    result = CliRunner().invoke(
        cli, ["access", JANE, "--out", str(out), "--playbook", str(PLAYBOOK)]
    )
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        "Error: Zendesk refused the credentials (401): check ZENDESK_EMAIL/ZENDESK_API_TOKEN "
        "or ZENDESK_OAUTH_TOKEN\n",
    )
    assert [(e["method"], e["path"]) for e in sandbox.request_log()] == [
        ("GET", "/api/v2/users/me")
    ]
    assert not out.exists()
    assert not (home / "ledger.sqlite3").exists()  # nothing recorded: no ledger at all


def test_the_playbook_steps_drive_the_run(
    sandbox: Any, zendesk_env: dict[str, str], home: Path, evidence_home: Path, tmp_path: Path
) -> None:
    """A DPO's copy without the events and tickets steps: those endpoints are never called
    and the answer says what was (and was not) searched."""
    seed_person(sandbox.state, events=5)
    lite = tmp_path / "access-lite.yaml"
    text = PLAYBOOK.read_text(encoding="utf-8")
    # Drop the events step and the ticket steps (collect_tickets with its options, and
    # collect_attachments, which needs it).
    start = text.index("  - step: collect_tickets")
    end = text.index("  - collect_organizations")
    lite.write_text(
        (text[:start] + text[end:])
        .replace("name: access\n", "name: access-lite\n")
        .replace("  - collect_events ", "  # - collect_events "),
        encoding="utf-8",
    )
    out = tmp_path / "lite"
    result = invoke(JANE, "--out", str(out), "--no-report", "--playbook", str(lite))
    assert result.exit_code == 0, result.output
    export = check_delivery(out, home, report=False)
    assert export["events"] == [] and export["tickets"] == []
    assert export["counts"]["profiles"] == 2
    assert "Sunshine profile events" not in export["searched"]["systems"]
    assert "Support tickets and their comments (not in this playbook)" in export["not_covered"]
    paths = [entry["path"] for entry in sandbox.request_log()]
    assert not any(p.endswith("/events") or "/tickets" in p for p in paths)
    assert any(p.endswith("/compliance_deletion_statuses") for p in paths)
    with Ledger.open(home) as ledger:
        [req] = ledger.list_requests(kind="access")
        assert req.playbook_name == "access-lite"


def test_crash_mid_batch_then_rerun_resumes_the_open_request(
    sandbox: Any,
    zendesk_env: dict[str, str],
    home: Path,
    evidence_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Killed while the second answer was being written: that request is still open, the
    next run answers it under the same id, and no work files are left behind."""
    import privacykit.playbooks.access.runner as runner

    people = seed_person(sandbox.state, events=2)
    real = runner.deliver
    calls = {"n": 0}

    def crash_on_second(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("power cut")
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "deliver", crash_on_second)
    out = tmp_path / "resume"
    other = f"user:{people['other']['id']}"
    with pytest.raises(RuntimeError, match="power cut"):
        invoke(JANE, other, "--out", str(out), "--playbook", str(PLAYBOOK))
    with Ledger.open(home) as ledger:
        first, second = sorted(ledger.list_requests(kind="access"), key=lambda r: r.created_at)
        assert (first.status, second.status) == ("completed", "in_progress")
        assert ledger.latest_checkpoint() is not None  # checkpointed despite the crash
    assert not (out / second.request_id / REPORT_FILE).exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no work files left

    monkeypatch.setattr(runner, "deliver", real)
    rerun = invoke(JANE, other, "--out", str(out), "--force", "--json", "--playbook", str(PLAYBOOK))
    assert rerun.exit_code == 0, rerun.output
    ids = [r["request_id"] for r in json.loads(rerun.output)["requests"]]
    assert ids[1] == second.request_id  # the unfinished request is answered under its id
    assert ids[0] != first.request_id  # a finished one is a new request (answered anew)
    check_delivery(out / second.request_id, home)
    with Ledger.open(home) as ledger:
        assert ledger.get_request(second.request_id).status == "completed"
        assert ledger.verify().ok


def test_killed_while_signing_the_report_is_signed_by_the_next_run(
    sandbox: Any,
    zendesk_env: dict[str, str],
    home: Path,
    evidence_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The final status is written before the report is signed (the report states it); a
    run killed in between owes the report, and the next run signs it from the ledger."""
    import privacykit.evidence as evidence

    seed_person(sandbox.state, events=1)
    real = evidence.produce_report

    def power_cut(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("power cut")

    monkeypatch.setattr(evidence, "produce_report", power_cut)
    out = tmp_path / "owed"
    with pytest.raises(RuntimeError, match="power cut"):
        invoke(JANE, "--out", str(out), "--playbook", str(PLAYBOOK))
    with Ledger.open(home) as ledger:
        [req] = ledger.list_requests(kind="access")
        assert req.status == "completed"
        assert [a for a in ledger.artifacts(req.request_id) if a.kind == "report"] == []
    assert not (out / REPORT_FILE).exists()

    monkeypatch.setattr(evidence, "produce_report", real)
    again = invoke(JANE, "--out", str(tmp_path / "again"), "--playbook", str(PLAYBOOK))
    assert again.exit_code == 0, again.output
    with Ledger.open(home) as ledger:
        reports = [a for a in ledger.artifacts(req.request_id) if a.kind == "report"]
        assert len(reports) == 1  # the owed report, signed from the ledger's evidence
        assert ledger.verify().ok


def test_hostile_names_from_zendesk_stay_inert(
    sandbox: Any, zendesk_env: dict[str, str], home: Path, evidence_home: Path, tmp_path: Path
) -> None:
    """Attribute keys are chosen by whoever set up the account: markup prints literally in
    the report, a formula stays text in the CSV, and the ledger keeps neither as markup."""
    jane = sandbox.state.add_user("Jane Doe", email=JANE, verified=True)
    sandbox.state.put_profile(
        "webshop",
        "customer",
        [{"type": "email", "value": JANE}],
        user_id=jane["id"],
        attributes={"<font size=90>big</font>": "x", "=HYPERLINK(1)": "y"},
    )
    out = tmp_path / "hostile"
    result = invoke(JANE, "--out", str(out), "--playbook", str(PLAYBOOK))
    assert result.exit_code == 0, result.output
    check_delivery(out, home)
    keys = {row["key"] for row in read_csv(out / "profile_attributes.csv")}
    assert keys == {"<font size=90>big</font>", "'=HYPERLINK(1)"}
    text = report_text(out / REPORT_FILE)
    assert "attribute:<font size=90>big</font>" in text


def test_batch_folders_named_by_case_reference(
    sandbox: Any, home: Path, zendesk_client: ZendeskClient, tmp_path: Path
) -> None:
    people = seed_person(sandbox.state, events=1)
    policy = AccessPolicy.from_playbook(load_playbook(PLAYBOOK))
    subjects = [parse_subject(JANE), parse_subject(f"user:{people['other']['id']}")]
    out = prepare_output_dir(tmp_path / "cases")
    with Ledger.open(home) as ledger:
        run = run_access(
            subjects,
            out,
            policy=policy,
            client=zendesk_client,
            ledger=ledger,
            home=home,
            produce_reports=False,
            case_refs=["DSAR-2024-17", None],
        )
    assert run.exit_code == 0
    first, second = run.results
    assert first.out_dir == out / "DSAR-2024-17"
    assert second.out_dir == out / second.request_id
    assert sorted(p.name for p in out.iterdir()) == sorted(["DSAR-2024-17", second.request_id])
    check_delivery(out / "DSAR-2024-17", home, report=False)


@pytest.mark.parametrize(
    ("endpoint", "kind"),
    [
        ("GET /api/v2/users/search", "users_null"),
        ("GET /api/v2/users/search", "empty"),
        ("GET /api/v2/users/search", "bad_id"),
        ("GET /api/v2/users/search", "html"),
        ("GET /api/v2/users/{id}/identities", "identities_object"),
        ("GET /api/v2/users/{id}/profiles", "profiles_string"),
    ],
)
def test_a_malformed_answer_is_never_no_data_found(
    sandbox: Any,
    zendesk_env: dict[str, str],
    home: Path,
    tmp_path: Path,
    endpoint: str,
    kind: str,
) -> None:
    """Fail closed (#12): a 200 whose body cannot be trusted stops the answer for review,
    naming the endpoint; nothing is delivered, nothing is called 'no data found'."""
    seed_person(sandbox.state, events=0)
    sandbox.configure({"malformed": {endpoint: kind}})
    out = tmp_path / "answer"
    result = invoke(JANE, "--out", str(out), "--no-report", "--json", "--playbook", str(PLAYBOOK))
    assert result.exit_code == 1, result.output
    [request] = json.loads(result.stdout)["requests"]
    assert request["outcome"] == "needs_review" and request["files"] == []
    assert [r for r in request["reasons"] if endpoint in r], request["reasons"]
    assert not out.exists()  # nothing delivered: no empty answer folder is left behind
    assert {e["method"] for e in sandbox.request_log()} == {"GET"}
    with Ledger.open(home) as ledger:
        [req] = ledger.list_requests(kind="access")
        assert req.status == "needs_review" and endpoint in (req.status_reason or "")
