"""Discovery: every Zendesk user, identity and Sunshine profile of one person, read-only.

Owns :func:`discover` and :class:`Discovery` (shared by erasure and access). Starting from
the subject, discovery searches users by email / external id / phone, fetches each user's
identities and profiles, runs identifier queries over the policy's profile ``source:type``
pairs for every identifier it has seen, and repeats until no new user, identifier or
profile appears -- or a bound in :class:`~privacykit.playbooks.policy.DiscoveryPolicy` is
reached, which the result says (an incomplete discovery must not drive an erasure).

Profiles attached to a different user (for example the anonymous user Zendesk creates for
a profile whose identifiers match no identity) that share the person's identifiers are
part of the person, and so is that user.

Only GET requests are sent. The result holds records in memory for the caller; what it
reports for logs and the ledger (:meth:`Discovery.summary`) is ids and counts, never
contents.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from privacykit.errors import NotFoundError
from privacykit.playbooks.policy import DiscoveryPolicy
from privacykit.playbooks.subjects import Subject

__all__ = [
    "ENDPOINTS",
    "SEARCHED_SYSTEMS",
    "Discovery",
    "DiscoveryClient",
    "DiscoveryRun",
    "Identifier",
    "as_int",
    "discover",
    "identifiers_of_identity",
    "identifiers_of_profile",
    "merge_counts",
]

SEARCHED_SYSTEMS = ["Zendesk Support users", "Zendesk user identities", "Sunshine profiles"]

# Endpoint templates, for the "what was searched" part of evidence (never with values).
ENDPOINTS = {
    "search": "GET /api/v2/users/search",
    "show_user": "GET /api/v2/users/{id}",
    "identities": "GET /api/v2/users/{id}/identities",
    "profiles_for_user": "GET /api/v2/users/{id}/profiles",
    "profile_by_identifier": (
        "GET /api/v2/user_profiles?identifier={source:type:identifier_type:value}"
    ),
}

# Identity types as identifier types. Documented: a "google" identity "will be internally
# matched with an identifier type of 'email'".
_IDENTITY_AS_IDENTIFIER = {"google": "email", "phone": "phone_number"}
_LOWERCASED = frozenset({"email", "twitter"})


class DiscoveryClient(Protocol):
    """The read-only part of :class:`privacykit.zendesk.ZendeskClient` discovery uses."""

    def show_user(self, user_id: int) -> dict[str, Any]: ...
    def search_users(
        self, query: str | None = None, external_id: str | None = None
    ) -> list[dict[str, Any]]: ...
    def user_identities(self, user_id: int) -> list[dict[str, Any]]: ...
    def profiles_for_user(self, user_id: int) -> list[dict[str, Any]]: ...
    def profile_by_identifier(self, query: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Identifier:
    """An identifier of the person: a type (``email``, ``phone_number``, ``member_id``...)
    and its value, normalised the way Zendesk compares them. ``repr`` hides the value."""

    type: str
    value: str = field(repr=False)

    @classmethod
    def of(cls, type_: Any, value: Any) -> Identifier | None:
        kind = _IDENTITY_AS_IDENTIFIER.get(str(type_), str(type_))
        if value is None or not kind:
            return None
        text = str(value).strip()
        if not text:
            return None
        if kind in _LOWERCASED:
            text = text.lower()
        return cls(kind, text)


def identifiers_of_identity(identity: Mapping[str, Any]) -> Identifier | None:
    return Identifier.of(identity.get("type"), identity.get("value"))


def identifiers_of_profile(profile: Mapping[str, Any]) -> list[Identifier]:
    out = []
    for item in profile.get("identifiers") or []:
        if isinstance(item, Mapping):
            ident = Identifier.of(item.get("type"), item.get("value"))
            if ident is not None:
                out.append(ident)
    return out


def as_int(value: Any) -> int | None:
    """``value`` as an int (ids arrive as numbers or digit strings), else None. Booleans
    are not ids."""
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass
class Discovery:
    """What discovery found for one subject. Records live here, in memory only.

    ``users`` (user JSON by id, including inactive ones), ``identities`` (list per user id),
    ``profiles`` (profile JSON by profile id), ``direct_user_ids`` (the users the subject
    named itself), ``ambiguities`` (reasons the subject may not be one person),
    ``limit_reached`` (the bound that stopped discovery, or None), ``missing_user_ids``
    (ids referenced but not found, e.g. ``user:<id>`` of nobody) and what was searched."""

    subject: Subject
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    identities: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    identifiers: set[Identifier] = field(default_factory=set, repr=False)
    direct_user_ids: list[int] = field(default_factory=list)
    via: dict[int, str] = field(default_factory=dict)
    ambiguities: list[str] = field(default_factory=list)
    limit_reached: str | None = None
    missing_user_ids: list[int] = field(default_factory=list)
    profile_sources: list[str] = field(default_factory=list)
    endpoints_used: set[str] = field(default_factory=set)
    request_counts: dict[str, int] = field(default_factory=dict)
    rounds: int = 0

    @property
    def found(self) -> bool:
        """Whether Zendesk holds anything on the subject."""
        return bool(self.users or self.profiles)

    @property
    def complete(self) -> bool:
        return self.limit_reached is None

    def user_ids(self) -> list[int]:
        return sorted(self.users)

    def profiles_of(self, user_id: int) -> list[dict[str, Any]]:
        return [p for p in self.profiles.values() if as_int(p.get("user_id")) == user_id]

    def counts(self) -> dict[str, int]:
        return {
            "users": len(self.users),
            "identities": sum(len(v) for v in self.identities.values()),
            "profiles": len(self.profiles),
            "identifiers": len(self.identifiers),
        }

    def searched(self) -> dict[str, Any]:
        """What was searched, for "no data found" and evidence: systems, endpoint
        templates, profile sources and how many requests of each kind (no values)."""
        return {
            "systems": list(SEARCHED_SYSTEMS),
            "endpoints": sorted(ENDPOINTS[name] for name in self.endpoints_used),
            "profile_sources": list(self.profile_sources),
            "requests": dict(sorted(self.request_counts.items())),
            "rounds": self.rounds,
        }

    def summary(self) -> dict[str, Any]:
        """Ids and counts only (safe for the ledger)."""
        return {
            "counts": self.counts(),
            "user_ids": self.user_ids(),
            "direct_user_ids": sorted(self.direct_user_ids),
            "profile_ids": sorted(self.profiles),
            "ambiguities": len(self.ambiguities),
            "limit_reached": self.limit_reached,
            "missing_user_ids": sorted(self.missing_user_ids),
            "searched": self.searched(),
        }


class _LimitReached(Exception):
    pass


class DiscoveryRun:
    """One discovery in steps: :meth:`resolve` (the subject's direct matches), then
    :meth:`expand` (to the fixed point). :func:`discover` runs both."""

    def __init__(self, client: DiscoveryClient, subject: Subject, policy: DiscoveryPolicy) -> None:
        self.client = client
        self.policy = policy
        sources = list(policy.profile_sources)
        if subject.source_type and subject.source_type not in sources:
            sources.append(subject.source_type)
        self.sources = sources
        self.result = Discovery(subject=subject, profile_sources=sources)
        self.queried: set[tuple[str, Identifier]] = set()
        self.searched_ids: set[Identifier] = set()
        self.pending_users: list[int] = []
        self.expanded_users: set[int] = set()
        self.queries = 0

    # -- bookkeeping ---------------------------------------------------------------------

    def _count(self, name: str) -> None:
        self.result.endpoints_used.add(name)
        self.result.request_counts[name] = self.result.request_counts.get(name, 0) + 1

    def _call(self, name: str, fn: Callable[[], Any]) -> Any:
        self._count(name)
        return fn()

    def add_user(self, user: Mapping[str, Any], via: str) -> int | None:
        uid = as_int(user.get("id"))
        if uid is None:
            return None
        if uid not in self.result.users:
            if len(self.result.users) >= self.policy.max_users:
                raise _LimitReached(f"max_users ({self.policy.max_users})")
            self.result.users[uid] = dict(user)
            self.result.via[uid] = via
            self.pending_users.append(uid)
        return uid

    def add_identifier(self, ident: Identifier | None) -> None:
        if ident is not None:
            self.result.identifiers.add(ident)

    def add_profile(self, profile: Mapping[str, Any]) -> None:
        pid = str(profile.get("id") or "")
        if not pid or pid in self.result.profiles:
            return
        if len(self.result.profiles) >= self.policy.max_profiles:
            raise _LimitReached(f"max_profiles ({self.policy.max_profiles})")
        self.result.profiles[pid] = dict(profile)
        source_type = f"{profile.get('source', '')}:{profile.get('type', '')}"
        for ident in identifiers_of_profile(profile):
            self.add_identifier(ident)
            # Identifiers are unique within a source:type, so querying this profile's own
            # source with its own identifier would only find it again.
            self.queried.add((source_type, ident))
        uid = as_int(profile.get("user_id"))
        if uid is not None and uid not in self.result.users:
            try:
                user = self._call("show_user", lambda: self.client.show_user(uid))
            except NotFoundError:
                if uid not in self.result.missing_user_ids:
                    self.result.missing_user_ids.append(uid)
            else:
                self.add_user(user, via="profile")

    # -- seeds ---------------------------------------------------------------------------

    def seed(self) -> None:
        subject = self.result.subject
        if subject.kind == "user":
            try:
                user = self._call("show_user", lambda: self.client.show_user(subject.user_id))
            except NotFoundError:
                self.result.missing_user_ids.append(subject.user_id)
                return
            uid = self.add_user(user, via="subject")
            if uid is not None:
                self.result.direct_user_ids.append(uid)
            return
        if subject.kind == "email":
            ident = Identifier("email", subject.value)
        elif subject.kind == "external_id":
            ident = Identifier("external_id", subject.value)
        else:
            maybe = Identifier.of(subject.identifier_type, subject.value)
            assert maybe is not None  # parse_subject guarantees a non-empty value
            ident = maybe
            try:
                profile = self._query(subject.query, subject.source_type or "", ident)
            except NotFoundError:
                profile = None
            if profile is not None:
                before = set(self.result.users)
                self.add_profile(profile)
                self.result.direct_user_ids.extend(sorted(set(self.result.users) - before))
        self.add_identifier(ident)
        direct = self._search_users(ident, via="subject")
        for uid in direct:
            if uid not in self.result.direct_user_ids:
                self.result.direct_user_ids.append(uid)
        if len(self.result.direct_user_ids) > 1:
            self.result.ambiguities.append(
                f"the subject matches {len(self.result.direct_user_ids)} users: "
                + ", ".join(str(u) for u in sorted(self.result.direct_user_ids))
            )

    # -- searches ------------------------------------------------------------------------

    def _search_users(self, ident: Identifier, via: str) -> list[int]:
        """Users holding exactly this identifier (search results are filtered: Zendesk's
        search matches partial values and other fields too)."""
        if ident in self.searched_ids:
            return []
        self.searched_ids.add(ident)
        # Assumption: the search syntax takes ``email:`` and ``phone:`` property keywords
        # (the Users API docs only say a query "can specify a partial or full value of any
        # user property, including name, email address, notes, or phone"). Whatever the
        # search matches, only users holding exactly this identifier are kept below.
        if ident.type == "external_id":
            found = self._call("search", lambda: self.client.search_users(external_id=ident.value))
        elif ident.type == "email":
            found = self._call(
                "search", lambda: self.client.search_users(query=f"email:{ident.value}")
            )
        elif ident.type == "phone_number":
            found = self._call(
                "search", lambda: self.client.search_users(query=f"phone:{ident.value}")
            )
        else:
            return []
        matched: list[int] = []
        for user in found:
            uid = as_int(user.get("id"))
            if uid is None:
                continue
            if uid in self.result.users:
                if self._holds(uid, ident):
                    matched.append(uid)
                continue
            identities = self._identities(uid)
            if self._holds(uid, ident, user=user, identities=identities):
                self.add_user(user, via=via)
                self.result.identities[uid] = identities
                matched.append(uid)
        return matched

    def _identities(self, uid: int) -> list[dict[str, Any]]:
        if uid in self.result.identities:
            return self.result.identities[uid]
        try:
            return list(self._call("identities", lambda: self.client.user_identities(uid)))
        except NotFoundError:
            return []

    def _holds(
        self,
        uid: int,
        ident: Identifier,
        *,
        user: Mapping[str, Any] | None = None,
        identities: list[dict[str, Any]] | None = None,
    ) -> bool:
        user = user if user is not None else self.result.users.get(uid, {})
        identities = identities if identities is not None else self.result.identities.get(uid, [])
        if ident.type == "external_id":
            ext = user.get("external_id")
            # Documented: "The API treats the id as case insensitive."
            return ext is not None and str(ext).lower() == ident.value.lower()
        if ident.type == "phone_number" and _digits(user.get("phone")) == _digits(ident.value):
            return True
        for item in identities:
            other = identifiers_of_identity(item)
            if other is not None and other.type == ident.type:
                if other.value == ident.value or (
                    ident.type == "phone_number" and _digits(other.value) == _digits(ident.value)
                ):
                    return True
        return False

    def _query(self, query: str, source_type: str, ident: Identifier) -> dict[str, Any] | None:
        self.queried.add((source_type, ident))
        if self.queries >= self.policy.max_identifier_queries:
            raise _LimitReached(f"max_identifier_queries ({self.policy.max_identifier_queries})")
        self.queries += 1
        return dict(
            self._call("profile_by_identifier", lambda: self.client.profile_by_identifier(query))
        )

    # -- expansion -----------------------------------------------------------------------

    def expand_user(self, uid: int) -> None:
        if uid in self.expanded_users:
            return
        self.expanded_users.add(uid)
        user = self.result.users[uid]
        identities = self._identities(uid)
        self.result.identities[uid] = identities
        for item in identities:
            self.add_identifier(identifiers_of_identity(item))
        self.add_identifier(Identifier.of("external_id", user.get("external_id")))
        try:
            profiles = self._call("profiles_for_user", lambda: self.client.profiles_for_user(uid))
        except NotFoundError:
            profiles = []
        for profile in profiles:
            self.add_profile(profile)

    def round(self) -> bool:
        """One pass; returns whether anything new appeared."""
        before = (len(self.result.users), len(self.result.identifiers), len(self.result.profiles))
        while self.pending_users:
            self.expand_user(self.pending_users.pop(0))
        for ident in sorted(self.result.identifiers, key=lambda i: (i.type, i.value)):
            self._search_users(ident, via="identifier")
            for source_type in self.sources:
                if (source_type, ident) in self.queried:
                    continue
                query = f"{source_type}:{ident.type}:{ident.value}"
                try:
                    profile = self._query(query, source_type, ident)
                except NotFoundError:
                    continue
                if profile is not None:
                    self.add_profile(profile)
        while self.pending_users:
            self.expand_user(self.pending_users.pop(0))
        after = (len(self.result.users), len(self.result.identifiers), len(self.result.profiles))
        return after != before

    def finish(self) -> None:
        """Ambiguity: a user reached only through a shared identifier who has an email
        address of their own may be another person."""
        direct = set(self.result.direct_user_ids)
        subject = self.result.subject
        if subject.kind == "email":
            for uid in sorted(direct):
                primary = [
                    i
                    for i in self.result.identities.get(uid, [])
                    if identifiers_of_identity(i) == Identifier("email", subject.value)
                ]
                if primary and not any(i.get("primary") for i in primary):
                    self.result.ambiguities.append(
                        f"the email address is a secondary identity of user {uid}, "
                        "whose primary email is different"
                    )
        for uid in sorted(set(self.result.users) - direct):
            has_email = any(
                (identifiers_of_identity(i) or Identifier("", "")).type == "email"
                for i in self.result.identities.get(uid, [])
            )
            if has_email and direct:
                self.result.ambiguities.append(
                    f"user {uid} was reached through a shared identifier and has an email "
                    "address of its own"
                )

    def resolve(self) -> Discovery:
        """Find what the subject names directly (bounded like the rest)."""
        try:
            self.seed()
        except _LimitReached as exc:
            self.result.limit_reached = str(exc)
        return self.result

    def expand(self, check: Callable[[], None] | None = None) -> Discovery:
        """Repeat rounds until nothing new appears or a bound is reached. ``check`` is
        called before each round (a batch uses it to stop at a boundary)."""
        if self.result.limit_reached is not None:
            return self.result
        try:
            for _ in range(self.policy.max_rounds):
                if check is not None:
                    check()
                self.result.rounds += 1
                if not self.round():
                    break
            else:
                self.result.limit_reached = f"max_rounds ({self.policy.max_rounds})"
            self.finish()
        except _LimitReached as exc:
            self.result.limit_reached = str(exc)
        return self.result


def _digits(value: Any) -> str:
    return "".join(ch for ch in str(value or "") if ch.isdigit())


def discover(client: DiscoveryClient, subject: Subject, policy: DiscoveryPolicy) -> Discovery:
    """Find every user, identity and profile of the person named by ``subject``.

    Read-only (GET requests only). Stops at a fixed point, or at a bound of ``policy``
    (then ``result.limit_reached`` says which and ``result.complete`` is false). Zendesk
    errors other than "not found" propagate."""
    run = DiscoveryRun(client, subject, policy)
    run.resolve()
    return run.expand()


def merge_counts(discoveries: Iterable[Discovery]) -> dict[str, int]:
    """Sum of counts over several discoveries (batch summaries)."""
    total: dict[str, int] = {}
    for item in discoveries:
        for key, value in item.counts().items():
            total[key] = total.get(key, 0) + value
    return total
