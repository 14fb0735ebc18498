"""Collection: the read-only steps of the access playbook (GET requests only).

Owns :class:`Collector` (the step functions ``resolve_subject`` .. ``collect_compliance``
as the step engine calls them), the :class:`AccessClient` protocol they need, what they
report as searched (:data:`ACCESS_ENDPOINTS`, :data:`ACCESS_SYSTEMS`), and :func:`collect`,
which runs them outside a request (tests, tools). Discovery itself is the shared
:mod:`privacykit.playbooks.discovery`, never a copy of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from privacykit.errors import NotFoundError
from privacykit.playbooks.access.job import AccessJob, Collected, as_int, without
from privacykit.playbooks.access.kind import AccessPolicy, default_steps
from privacykit.playbooks.discovery import Discovery, DiscoveryClient, DiscoveryRun
from privacykit.playbooks.engine import Halt
from privacykit.playbooks.loader import Step
from privacykit.playbooks.subjects import Subject

__all__ = ["ACCESS_ENDPOINTS", "ACCESS_SYSTEMS", "AccessClient", "Collector", "collect"]

ACCESS_ENDPOINTS = {
    "related": "GET /api/v2/users/{id}/related",
    "events": "GET /api/v2/user_profiles/{id}/events",
    "tickets": "GET /api/v2/users/{id}/tickets/requested",
    "compliance": "GET /api/v2/users/{id}/compliance_deletion_statuses",
}
ACCESS_SYSTEMS = {
    "events": "Sunshine profile events",
    "tickets": "Zendesk Support tickets (requested)",
    "compliance": "Zendesk compliance deletion statuses",
}


class AccessClient(DiscoveryClient, Protocol):
    """The read-only part of :class:`privacykit.zendesk.ZendeskClient` access uses."""

    def user_related(self, user_id: int) -> dict[str, Any]: ...
    def requested_tickets(self, user_id: int) -> list[dict[str, Any]]: ...
    def compliance_deletion_statuses(
        self, user_id: int, application: str | None = None
    ) -> list[dict[str, Any]]: ...
    def iter_profile_events(self, profile_id: str) -> Iterator[dict[str, Any]]: ...


class Collector:
    """The read-only steps of the access playbook (GET requests only). Each takes the job
    and its playbook step, as :class:`~privacykit.playbooks.engine.Engine` calls them."""

    def __init__(self, client: AccessClient, policy: AccessPolicy) -> None:
        self.client = client
        self.policy = policy

    def functions(self) -> dict[str, Callable[[AccessJob, Step], Halt | None]]:
        return {
            "resolve_subject": self.step_resolve_subject,
            "discover": self.step_discover,
            "collect_records": self.step_collect_records,
            "collect_events": self.step_collect_events,
            "collect_tickets": self.step_collect_tickets,
            "collect_compliance": self.step_collect_compliance,
        }

    def step_resolve_subject(self, job: AccessJob, step: Step) -> Halt | None:
        """The users the subject names directly (shared discovery)."""
        job.run = DiscoveryRun(self.client, job.subject, self.policy.discovery)
        job.run.resolve()
        return None

    def step_discover(self, job: AccessJob, step: Step) -> Halt | None:
        """Every user, identity and profile of the person, to a fixed point."""
        if job.run is None:
            raise RuntimeError("discover needs resolve_subject first")
        job.discovery = job.run.expand()
        if job.discovery.limit_reached:
            job.incomplete.append(
                f"discovery stopped at a bound: {job.discovery.limit_reached}; "
                "the export would be incomplete"
            )
        return None

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

    def step_collect_tickets(self, job: AccessJob, step: Step) -> Halt | None:
        """The tickets each user requested."""
        found = self._found(job)
        job.systems.append(ACCESS_SYSTEMS["tickets"])
        job.endpoints.add(ACCESS_ENDPOINTS["tickets"])
        for uid in found.user_ids():
            try:
                requested = self.client.requested_tickets(uid)
            except NotFoundError:
                requested = []
            for ticket in requested:
                job.tickets.append(
                    {**without(ticket, self.policy.ticket_exclude_fields), "user_id": uid}
                )
        return None

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


def collect(client: AccessClient, subject: Subject, policy: AccessPolicy) -> Collected:
    """Discover the person (shared discovery) and gather every record Zendesk holds on
    them, with the steps ``policy`` enables, in the default order. Read-only: GET requests
    only. Zendesk errors other than "not found" propagate."""
    collector = Collector(client, policy)
    job = AccessJob(subject)
    functions = collector.functions()
    for name in default_steps(policy):
        if name in functions:
            functions[name](job, Step(name, {}))
    return job.collected(policy)
