"""`make demo`: a real erasure, end to end, against the embedded sandbox Zendesk.

Starts an in-process :class:`~privacykit.sandbox.SandboxServer` with the ``demo`` seed,
points ``ZENDESK_*`` at it and ``PRIVACYKIT_HOME`` at a fresh temporary directory, then
runs the same commands an operator would type (printed before each one): a dry run, the
erasure of the demo person, a resume once Zendesk's compliance deletion has finished (the
sandbox's clock is moved forward instead of waiting an hour), the ledger and the evidence
bundle, verified. Exits 0 when every command ended as expected.

Every person in the sandbox is fictitious (``privacykit.sandbox.seed``).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import click

from privacykit.evidence.keys import CERT_FILE, keys_dir
from privacykit.sandbox import SandboxServer
from privacykit.sandbox.seed import (
    DEMO_ACCESS_EMAIL,
    DEMO_AGENT_EMAIL,
    DEMO_ERASE_EMAIL,
    DEMO_ERASE_WORDS,
)

__all__ = ["main"]

# Compliance deletions in the sandbox finish within an hour of virtual time.
_COMPLIANCE_WAIT = 2 * 3600.0


def _run(args: Sequence[str], expect: int = 0) -> bool:
    """Run one ``privacykit`` command in this process, as typed; True if its exit code is
    the expected one."""
    from privacykit.cli import cli

    click.secho(f"\n$ privacykit {' '.join(args)}", bold=True)
    try:
        code = cli.main(list(args), prog_name="privacykit", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except SystemExit as exc:  # pragma: no cover - commands raise click exceptions
        code = exc.code if isinstance(exc.code, int) else 1
    code = int(code or 0)
    if code != expect:
        click.secho(f"(exit code {code}, expected {expect})", fg="red")
    return code == expect


def _latest_erasure(home: Path) -> str | None:
    from privacykit.ledger import Ledger

    with Ledger.open(home) as ledger:
        requests = ledger.list_requests(kind="erasure")
    return requests[-1].request_id if requests else None


def _show_evidence(home: Path, request_id: str) -> None:
    from privacykit.ledger import Ledger

    with Ledger.open(home) as ledger:
        records = [e.data for e in ledger.entries(request_id) if e.step_key == "evidence"]
    if records:
        click.secho(f"\nEvidence record of {request_id} (in the ledger):", bold=True)
        click.echo(json.dumps(records[-1], indent=2, sort_keys=True))


def _show_conversations(sandbox: SandboxServer, home: Path, request_id: str) -> bool:
    """Her conversations (#15): where her own sentences are in Zendesk now (the sandbox
    looks everywhere) and what the signed report lists per ticket. True if they are gone."""
    from privacykit.ledger import Ledger

    with Ledger.open(home) as ledger:
        records = [e.data for e in ledger.entries(request_id) if e.step_key == "evidence"]
    click.secho("\nHer conversations:", bold=True)
    gone = True
    for words in DEMO_ERASE_WORDS:
        where = sandbox.state.find_text(words)
        gone &= not where
        click.echo(f"  she wrote {words!r}: in Zendesk now: {', '.join(where) or 'nowhere'}")
    click.echo("  the signed report's ticket table lists (ids only, never subjects or texts):")
    for row in (records[-1].get("tickets") or []) if records else []:
        done = [
            what
            for what, flag in (
                ("soft-deleted", row["soft_deleted"]),
                ("permanently deleted", row["permanently_deleted"]),
            )
            if flag
        ]
        if row["comments_redacted"]:
            done.append("her comment(s) " + ", ".join(map(str, row["comments_redacted"])))
        click.echo(
            f"    ticket {row['ticket_id']} ({row['relation']}): {row['action']}"
            + (f" -- {', '.join(done)}" if done else "")
        )
    return gone


def _latest_report(home: Path, request_id: str) -> Path | None:
    """The newest signed PDF report stored for the request."""
    from privacykit.ledger import Ledger

    with Ledger.open(home) as ledger:
        reports = [a for a in ledger.artifacts(request_id) if a.kind == "report"]
        return ledger.artifact_path(reports[-1].sha256) if reports else None


def _access_demo(home: Path) -> bool:
    """Access request (#6): everything the sandbox holds on the access demo person, as
    data.json, CSVs and a signed report, read-only."""
    out = home / "access-answer"
    ok = _run(["access", DEMO_ACCESS_EMAIL, "--out", str(out)])
    if ok:
        names = ", ".join(sorted(p.name for p in out.iterdir()))
        click.echo(f"Delivered to the person ({out}): {names}")
    return ok


def main() -> None:
    started = time.monotonic()
    ok = True
    handover: tuple[Path | None, Path] | None = None
    with SandboxServer(seed="demo", time_scale=60.0, rng_seed=1) as sandbox:
        home = Path(tempfile.mkdtemp(prefix="privacykit-demo-"))
        os.environ.update(sandbox.env())
        for key in ("ZENDESK_SUBDOMAIN", "ZENDESK_OAUTH_TOKEN"):
            os.environ.pop(key, None)
        os.environ["PRIVACYKIT_HOME"] = str(home)
        os.environ.setdefault("PRIVACYKIT_OPERATOR", "demo-dpo")
        click.secho("privacykit demo", bold=True)
        click.echo(f"Sandbox Zendesk:  {sandbox.url} (seed 'demo', fictitious people)")
        click.echo(f"PRIVACYKIT_HOME:  {home}")

        # 1. What would happen: the demo person, her tickets, and an agent (refused by
        #    default). A dry run exits 1 when any subject would stop for review (#12), which
        #    the agent does.
        ok &= _run(["erase", "--dry-run", DEMO_ERASE_EMAIL, DEMO_AGENT_EMAIL], expect=1)
        # 2. Erase for real: profiles, her conversations, soft and permanent deletion,
        #    evidence.
        ok &= _run(["erase", "--yes", DEMO_ERASE_EMAIL])
        # 3. Zendesk finishes its compliance deletion later; --resume records completion.
        click.secho(
            f"\n(moving the sandbox clock {_COMPLIANCE_WAIT / 3600:.0f} hours forward: "
            "Zendesk completes the compliance deletion)",
            dim=True,
        )
        sandbox.advance(_COMPLIANCE_WAIT)
        ok &= _run(["erase", "--resume", "--yes"])
        request_id = _latest_erasure(home)
        if request_id is None:
            click.secho("no erasure request was recorded", fg="red")
            ok = False
        else:
            # 4. The proof: the ledger, the evidence record, a verifiable bundle.
            ok &= _run(["ledger", "show", request_id])
            _show_evidence(home, request_id)
            ok &= _show_conversations(sandbox, home, request_id)
            bundle = home / "erasure-evidence.zip"
            ok &= _run(["evidence", "export", "--request", request_id, "--out", str(bundle)])
            ok &= _run(["evidence", "verify", str(bundle)])
            handover = (_latest_report(home, request_id), bundle)
        # 5. An access request (Art. 15/20) for another person.
        ok &= _access_demo(home)
        ok &= _run(["ledger", "verify"])

    elapsed = time.monotonic() - started
    if handover is not None:
        report, bundle = handover
        cert = keys_dir(home) / CERT_FILE
        click.secho("\nWhat the DPO keeps and hands over:", bold=True)
        click.echo(f"  signed erasure report (PDF): {report}")
        click.echo(f"  evidence bundle (verified):  {bundle}")
        click.echo(f"  access answer:               {home / 'access-answer'}")
        click.echo(
            f"  check the PDF yourself:      .venv/bin/pyhanko sign validate "
            f"--trust {cert} --trust-replace {report}"
        )
    if ok:
        click.secho(f"\nDemo finished in {elapsed:.1f} s; everything is in {home}", fg="green")
    else:
        click.secho(f"\nDemo failed after {elapsed:.1f} s; see above ({home})", fg="red")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
