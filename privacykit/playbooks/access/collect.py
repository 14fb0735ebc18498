"""Collection: the read-only steps of the access playbook (GET requests only).

Owns :class:`Collector` (the step functions ``resolve_subject`` .. ``collect_compliance``
as the step engine calls them; the ticket steps live in :mod:`.tickets`), the
:class:`AccessClient` protocol they need, what they report as searched
(:data:`ACCESS_ENDPOINTS`, :data:`ACCESS_SYSTEMS`), and :func:`collect`, which runs them
outside a request (tests, tools). Discovery itself is the shared
:mod:`privacykit.playbooks.discovery`, never a copy of it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from privacykit.errors import NotFoundError
from privacykit.playbooks.access.job import AccessJob, Collected, as_int, without
from privacykit.playbooks.access.kind import AccessPolicy, default_steps
from privacykit.playbooks.access.tickets import TicketClient, TicketCollector
from privacykit.playbooks.discovery import Discovery, DiscoveryClient
from privacykit.playbooks.engine import Halt
from privacykit.playbooks.loader import Step
from privacykit.playbooks.person import PersonSteps, incomplete_reason
from privacykit.playbooks.subjects import Subject

__all__ = ["ACCESS_ENDPOINTS", "ACCESS_SYSTEMS", "AccessClient", "Collector", "collect"]

ACCESS_ENDPOINTS = {
    "related": "GET /api/v2/users/{id}/related",
    "events": "GET /api/v2/user_profiles/{id}/events",
    "organizations": "GET /api/v2/users/{id}/organizations",
    "memberships": "GET /api/v2/users/{id}/organization_memberships",
    "compliance": "GET /api/v2/users/{id}/compliance_deletion_statuses",
}
ACCESS_SYSTEMS = {
    "events": "Sunshine profile events",
    "organizations": "Zendesk organizations and organization memberships",
    "compliance": "Zendesk compliance deletion statuses",
}


class AccessClient(DiscoveryClient, TicketClient, Protocol):
    """The read-only part of :class:`privacykit.zendesk.ZendeskClient` access uses."""

    def user_related(self, user_id: int) -> dict[str, Any]: ...
    def user_organizations(self, user_id: int) -> list[dict[str, Any]]: ...
    def user_organization_memberships(self, user_id: int) -> list[dict[str, Any]]: ...
    def compliance_deletion_statuses(
        self, user_id: int, application: str | None = None
    ) -> list[dict[str, Any]]: ...
    def iter_profile_events(self, profile_id: str) -> Iterator[dict[str, Any]]: ...


class Collector:
    """The read-only steps of the access playbook (GET requests only). Each takes the job
    and its playbook step, as :class:`~privacykit.playbooks.engine.Engine` calls them."""

    def __init__(self, client: AccessClient, policy: AccessPolicy, out: Path) -> None:
        self.client = client
        self.policy = policy
        self.tickets = TicketCollector(client, policy, out)
        self.person = PersonSteps(client, policy.discovery)

    def functions(self) -> dict[str, Callable[[AccessJob, Step], Halt | None]]:
        return {
            "resolve_subject": self.person.resolve_subject,
            "discover": self.step_discover,
            "collect_records": self.step_collect_records,
            "collect_events": self.step_collect_events,
            **self.tickets.functions(),
            "collect_organizations": self.step_collect_organizations,
            "collect_compliance": self.step_collect_compliance,
        }

    def step_discover(self, job: AccessJob, step: Step) -> Halt | None:
        """Every user, identity and profile of the person (the shared person steps); a
        discovery stopped by a bound makes the export incomplete."""
        halt = self.person.discover(job, step)
        reason = incomplete_reason(job.discovery) if job.discovery is not None else None
        if reason is not None:
            job.incomplete.append(reason)
        return halt

    def _found(self, job: AccessJob) -> Discovery:
        if job.discovery is None:
            raise RuntimeError("this step needs discover first")
        return job.discovery

    def step_collect_records(self, job: AccessJob, step: Step) -> Halt | None:
        """User records (minus excluded fields) with their related counts. Identities and
        profiles (with identifiers and attributes) come from discovery as Zendesk sent them."""
        found = self._found(job)
        job.endpoints.add(ACCESS_ENDPOINTS["related"])
        for uid in found.user_ids():
            user = without(found.users[uid], self.policy.user_exclude_fields)
            try:
                related: Mapping[str, Any] = self.client.user_related(uid)
            except NotFoundError:
                related = {}
            inner = related.get("user_related", related)
            user["related"] = {k: v for k, v in inner.items() if v is None or isinstance(v, int)}
            job.users.append(user)
        return None

    def step_collect_events(self, job: AccessJob, step: Step) -> Halt | None:
        """Every Sunshine event of every profile, all pages (``links`` is an array there)."""
        found = self._found(job)
        limit = int(step.options.get("max_per_profile", self.policy.max_events_per_profile))
        job.systems.append(ACCESS_SYSTEMS["events"])
        if found.profiles:
            job.endpoints.add(ACCESS_ENDPOINTS["events"])
        for pid in sorted(found.profiles):
            count = 0
            try:
                for event in self.client.iter_profile_events(pid):
                    if count >= limit:
                        job.incomplete.append(
                            f"profile {pid} has more than {limit} events "
                            "(collect_events.max_per_profile); the export would be incomplete"
                        )
                        break
                    job.events.append({**event, "profile_id": event.get("profile_id") or pid})
                    count += 1
            except NotFoundError:
                pass  # the profile went away since discovery: it holds nothing any more
            job.events_per_profile[pid] = count
        return None

    def step_collect_organizations(self, job: AccessJob, step: Step) -> Halt | None:
        """The organizations each user belongs to, and the memberships themselves."""
        found = self._found(job)
        job.systems.append(ACCESS_SYSTEMS["organizations"])
        job.endpoints.update((ACCESS_ENDPOINTS["organizations"], ACCESS_ENDPOINTS["memberships"]))
        excluded = self.policy.organization_exclude_fields
        for uid in found.user_ids():
            try:
                organizations = self.client.user_organizations(uid)
                memberships = self.client.user_organization_memberships(uid)
            except NotFoundError:
                # Gone since discovery, or no such endpoint: nothing may be concluded.
                job.incomplete.append(
                    f"the organizations of user {uid} answered 404; the export would be incomplete"
                )
                continue
            for organization in organizations:
                oid = as_int(organization.get("id"))
                if oid is None:
                    job.incomplete.append(
                        "an organization without a valid id; the export would be incomplete"
                    )
                    continue
                job.organizations.setdefault(oid, without(organization, excluded))
            for membership in memberships:
                mid = as_int(membership.get("id"))
                if mid is None:
                    job.incomplete.append(
                        "an organization membership without a valid id; "
                        "the export would be incomplete"
                    )
                    continue
                job.memberships.setdefault(mid, without(membership, {"url"}))
        return None

    def finish(self, job: AccessJob) -> None:
        """After the read-only steps: the conversations as the answer shows them (the
        ``others`` policy applied), in a second spool, in the collecting thread."""
        talk = job.conversations
        if talk.spool is not None:
            talk.present(talk.spool.directory / "presented")

    def step_collect_compliance(self, job: AccessJob, step: Step) -> Halt | None:
        """Zendesk's compliance deletion history of each user, if any."""
        found = self._found(job)
        job.systems.append(ACCESS_SYSTEMS["compliance"])
        job.endpoints.add(ACCESS_ENDPOINTS["compliance"])
        for uid in found.user_ids():
            try:
                statuses = self.client.compliance_deletion_statuses(uid)
            except NotFoundError:
                statuses = []  # documented: 404 "if the user is not in the account"
            for status in statuses:
                job.compliance.append({**status, "user_id": as_int(status.get("user_id")) or uid})
        return None


def collect(
    client: AccessClient, subject: Subject, policy: AccessPolicy, *, work: Path | None = None
) -> Collected:
    """Discover the person (shared discovery) and gather every record Zendesk holds on
    them, with the steps ``policy`` enables, in the default order. Read-only: GET requests
    only. Zendesk errors other than "not found" propagate.

    With ``work`` (an owner-only directory), tickets are spooled there as in a request and
    attachments downloaded; ``result.conversations.remove()`` cleans up. Without it (tests,
    tools), the spool is temporary, the presented tickets are returned as a list and
    attachments are listed, not downloaded."""
    if work is not None:
        return _collect(client, subject, policy, work)
    with tempfile.TemporaryDirectory(prefix="privacykit-collect-") as tmp:
        lean = replace(policy, collect_attachments=False, playbook=None)
        collected = _collect(client, subject, lean, Path(tmp))
        try:
            collected.gathered.counts()  # while the spool is there
            collected.gathered.tickets = list(collected.gathered.tickets)
        finally:
            if collected.conversations is not None:
                collected.conversations.remove()
        return collected


def _collect(client: AccessClient, subject: Subject, policy: AccessPolicy, work: Path) -> Collected:
    collector = Collector(client, policy, work)
    job = AccessJob(subject, request_id="collect")
    functions = collector.functions()
    try:
        for name in default_steps(policy):
            if name in functions:
                functions[name](job, Step(name, {}))
        collector.finish(job)
    except BaseException:
        job.conversations.remove()
        raise
    return job.collected(policy)
