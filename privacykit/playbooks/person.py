"""Finding the person: the ``resolve_subject`` and ``discover`` steps of every kind.

Owns :class:`PersonSteps`, the one implementation of the two read-only steps erasure and
access both start with (and :func:`incomplete_reason`, the one wording of "discovery did
not finish"). They run :class:`~privacykit.playbooks.discovery.DiscoveryRun` on the job:
``resolve_subject`` finds what the subject names directly, ``discover`` follows
identities and profiles to a fixed point. Only GET requests are sent.

A job skips both when it already knows the person (an erasure resumed from its recorded
plan); a job without its subject that still needs discovery stops for review.

Fail closed: an answer Zendesk gave that cannot be trusted (a malformed body, any
non-transient :class:`~privacykit.errors.ZendeskError`, a shape the discovery cannot read)
stops the subject for review with a reason naming the endpoint -- never "no data found".
Transient failures (no answer, 5xx, 429) propagate: the caller retries or reports them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from privacykit.errors import ZendeskError
from privacykit.playbooks.discovery import Discovery, DiscoveryClient, DiscoveryRun
from privacykit.playbooks.engine import Halt
from privacykit.playbooks.loader import Step
from privacykit.playbooks.policy import DiscoveryPolicy
from privacykit.playbooks.reasons import is_transient, why
from privacykit.playbooks.subjects import Subject

__all__ = ["PersonJob", "PersonSteps", "incomplete_reason", "untrusted_answer"]

NO_SUBJECT = "the run was interrupted before discovery finished; give the SUBJECT again to continue"


class PersonJob(Protocol):
    """What the person steps read and write on a job (any kind's RunContext)."""

    subject: Subject | None
    run: DiscoveryRun | None
    discovery: Discovery | None

    def needs_discovery(self) -> bool: ...


def incomplete_reason(discovery: Discovery) -> str | None:
    """Why ``discovery`` cannot support a conclusion (a bound stopped it), or None."""
    if discovery.limit_reached is None:
        return None
    return (
        f"discovery stopped at a bound: {discovery.limit_reached}; the person may have more "
        "records: raise the playbook's discovery bounds and run again"
    )


def untrusted_answer(exc: BaseException, what: str = "discovery") -> Halt | None:
    """The review halt for an error that means an answer cannot be trusted, or None when
    ``exc`` is transient (or not about Zendesk's answers at all)."""
    if isinstance(exc, ZendeskError):
        if is_transient(exc):
            return None
        return Halt(
            "needs_review",
            "needs_review",
            (f"{what} could not complete: Zendesk's answer cannot be trusted ({why(exc)})",),
        )
    if isinstance(exc, TypeError | ValueError | KeyError | AttributeError):
        # A shape the client's validation let through: still not a conclusion.
        return Halt(
            "needs_review",
            "needs_review",
            (
                f"{what} could not complete: an answer from Zendesk had an unexpected shape "
                f"({type(exc).__name__})",
            ),
        )
    return None


class PersonSteps:
    """``resolve_subject`` and ``discover`` for any playbook kind.

    ``check`` is called before each discovery round (a batch stops there when aborted);
    ``on_change(job, what)`` is told ``"resolved"`` and ``"discovered"`` (progress)."""

    def __init__(
        self,
        client: DiscoveryClient,
        policy: DiscoveryPolicy,
        *,
        check: Callable[[], None] | None = None,
        on_change: Callable[[PersonJob, str], None] | None = None,
    ) -> None:
        self.client = client
        self.policy = policy
        self.check = check
        self.on_change = on_change

    def functions(self) -> dict[str, Callable[[PersonJob, Step], Halt | None]]:
        return {"resolve_subject": self.resolve_subject, "discover": self.discover}

    def _changed(self, job: PersonJob, what: str) -> None:
        if self.on_change is not None:
            self.on_change(job, what)

    def resolve_subject(self, job: PersonJob, step: Step) -> Halt | None:
        """The users (and, for an identifier query, the profile) the subject names."""
        if not job.needs_discovery():
            return None
        if job.subject is None:
            return Halt("needs_review", "needs_review", (NO_SUBJECT,))
        job.run = DiscoveryRun(self.client, job.subject, self.policy)
        try:
            job.run.resolve()
        except (ZendeskError, TypeError, ValueError, KeyError, AttributeError) as exc:
            halt = untrusted_answer(exc)
            if halt is None:
                raise
            job.run = None
            return halt
        self._changed(job, "resolved")
        return None

    def discover(self, job: PersonJob, step: Step) -> Halt | None:
        """Every user, identity and profile of the person, to a fixed point or a bound."""
        if not job.needs_discovery() or job.run is None:
            return None
        try:
            job.discovery = job.run.expand(self.check)
        except (ZendeskError, TypeError, ValueError, KeyError, AttributeError) as exc:
            halt = untrusted_answer(exc)
            if halt is None:
                raise
            return halt
        self._changed(job, "discovered")
        return None
