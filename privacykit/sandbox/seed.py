"""Seed data for the sandbox: ``none`` (just the account) and ``demo`` (a small help desk).

Owns the well-known demo people, so tests, the demo and the docs can name them:

==========================  ==================================================================
``DEMO_OWNER_EMAIL``        the account owner (admin; can never be deleted)
``DEMO_ADMIN_EMAIL``        a second admin
``DEMO_AGENT_EMAIL``        an agent (erasure must refuse agents by default)
``DEMO_ERASE_EMAIL``        end user with two profiles in different sources
                            (``coolbikes:rider`` and ``webshop:customer``); the coolbikes one
                            also carries ``DEMO_ERASE_PHONE``, which is the identity of a
                            second, anonymous user (``DEMO_ANON_SOURCE`` profile); two closed
                            tickets (so soft deletion is allowed), one a conversation with an
                            agent and an attachment; she is CC'd on, and wrote a comment in,
                            ``DEMO_OTHER_EMAIL``'s open ticket (``DEMO_ERASE_WORDS`` are in
                            her comments)
``DEMO_ACCESS_EMAIL``       end user with a twitter identity, two profiles and
                            ``DEMO_ACCESS_EVENTS`` Sunshine events (more than one page at
                            ``page[size]=10``), user fields (alias, notes, details, tags,
                            ``user_fields``), a membership of ``DEMO_ORGANIZATION`` (a sole
                            trader's); conversations: a solved ticket with several comments,
                            an attachment, ``DEMO_OTHER_EMAIL`` CC'd and writing in the thread,
                            and a satisfaction rating; he follows a second ticket
``DEMO_BLOCKED_EMAIL``      end user who is the requester of an open ticket (soft deletion is
                            refused with 422) and has one profile
``DEMO_OTHER_EMAIL``        another customer, in both demo people's conversations
==========================  ==================================================================

Every name, email and phone number is fictitious (example.com / example.org, 555 numbers).
The data is deterministic for a given ``rng_seed``.
"""

from __future__ import annotations

import random

from privacykit.sandbox.state import SandboxState

__all__ = [
    "DEMO_ACCESS_EMAIL",
    "DEMO_ACCESS_EVENTS",
    "DEMO_ADMIN_EMAIL",
    "DEMO_AGENT_EMAIL",
    "DEMO_ANON_SOURCE",
    "DEMO_BLOCKED_EMAIL",
    "DEMO_ERASE_EMAIL",
    "DEMO_ERASE_PHONE",
    "DEMO_ERASE_WORDS",
    "DEMO_ORGANIZATION",
    "DEMO_OTHER_EMAIL",
    "DEMO_OWNER_EMAIL",
    "DEMO_PROFILE_SOURCES",
    "SEEDS",
    "seed_state",
]

DEMO_OWNER_EMAIL = "owner@example.org"
DEMO_ADMIN_EMAIL = "ada.admin@example.org"
DEMO_AGENT_EMAIL = "agent.smith@example.org"
DEMO_ERASE_EMAIL = "erin.erase@example.com"
DEMO_ERASE_PHONE = "+15555550100"
DEMO_ACCESS_EMAIL = "alex.access@example.com"
DEMO_ACCESS_EVENTS = 12
DEMO_BLOCKED_EMAIL = "blake.blocked@example.com"
DEMO_OTHER_EMAIL = "casey.customer@example.com"
DEMO_ORGANIZATION = "Alex Access Cycles"
#: Sentences only Erin wrote (her closed conversation and her comment elsewhere).
DEMO_ERASE_WORDS = ("Saddle CB-1001 still squeaks", "Erin here: my order WS-2001 is late too")
DEMO_ANON_SOURCE = "smsclub:member"
DEMO_PROFILE_SOURCES = ("coolbikes:rider", "webshop:customer", DEMO_ANON_SOURCE)
SEEDS = ("none", "demo")

_FIRST = ("Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lea")
_LAST = ("Sample", "Example", "Testley", "Demo", "Placeholder", "Mock", "Fictio", "Dummy")
_EVENT_TYPES = ("page_viewed", "order_placed", "ride_started", "ride_finished", "newsletter_opened")


def seed_state(
    state: SandboxState, name: str, *, users: int = 50, rng_seed: int | None = None
) -> None:
    """Reset ``state`` and load the named seed."""
    if name not in SEEDS:
        raise ValueError(f"unknown seed {name!r}; choose one of {', '.join(SEEDS)}")
    if users < 0:
        raise ValueError("users must be zero or more")
    state.reset()
    if name == "demo":
        _demo(state, users, random.Random(0 if rng_seed is None else rng_seed))


def _demo(state: SandboxState, users: int, rng: random.Random) -> None:
    state.add_user("Ada Admin", email=DEMO_ADMIN_EMAIL, role="admin", verified=True)
    state.add_user("Agent Smith", email=DEMO_AGENT_EMAIL, role="agent", verified=True)
    state.add_user("Aaron Agentson", email="aaron.agent@example.org", role="agent", verified=True)

    # A number first known only from an SMS club sign-up: an anonymous user is created.
    anon_source, anon_type = DEMO_ANON_SOURCE.split(":")
    anon = state.put_profile(
        anon_source,
        anon_type,
        [
            {"type": "phone_number", "value": DEMO_ERASE_PHONE},
            {"type": "member_no", "value": "SMS-0001"},
        ],
        attributes={"opt_in": True},
    )

    erin = state.add_user(
        "Erin Erase", email=DEMO_ERASE_EMAIL, verified=True, external_id="cust-erin-0001"
    )
    # The coolbikes profile carries the same phone number: already another user's
    # identity, so Zendesk keeps it as a shared number on Erin (no new identity).
    rider = state.put_profile(
        "coolbikes",
        "rider",
        [
            {"type": "email", "value": DEMO_ERASE_EMAIL},
            {"type": "phone_number", "value": DEMO_ERASE_PHONE},
            {"type": "coolbike_id", "value": "CB-1001"},
        ],
        user_id=erin["id"],
        name="Erin Erase",
        attributes={"favorite_color": "teal", "saddle_height": "81cm"},
    )
    shop = state.put_profile(
        "webshop",
        "customer",
        [{"type": "email", "value": DEMO_ERASE_EMAIL}, {"type": "member_id", "value": "WS-2001"}],
        user_id=erin["id"],
        attributes={"tier": "silver"},
    )
    agent = state.user_by_email(DEMO_AGENT_EMAIL)
    assert agent is not None
    casey = state.add_user("Casey Customer", email=DEMO_OTHER_EMAIL, verified=True)
    state.add_ticket(erin["id"], "closed", "Saddle squeaks")
    squeak = state.add_ticket(
        erin["id"],
        "open",
        "Saddle squeaks again",
        description=f"{DEMO_ERASE_WORDS[0]}, call me on {DEMO_ERASE_PHONE}.",
        assignee_id=agent["id"],
    )
    state.add_comment(
        squeak["id"],
        agent["id"],
        "Sorry to hear that, Erin. Could you send a photo of the saddle?",
    )
    state.add_comment(
        squeak["id"],
        erin["id"],
        "Here it is.",
        attachments=[("saddle.jpg", b"\xff\xd8\xff\xe0 demo saddle photo")],
    )
    state.add_comment(squeak["id"], agent["id"], "Replaced under warranty.", public=False)
    state.set_ticket_status(squeak["id"], "closed")
    # Someone else's ticket Erin was CC'd on and wrote in: only her comment is hers.
    late = state.add_ticket(
        casey["id"],
        "open",
        "Order late",
        description="My order WS-7007 has not arrived.",
        ccs=[erin["id"]],
    )
    state.add_comment(late["id"], erin["id"], f"{DEMO_ERASE_WORDS[1]}.")
    state.add_comment(late["id"], agent["id"], "Both orders ship tomorrow.")
    for profile in (rider, shop, anon):
        state.add_event(profile["id"], type="page_viewed", description="Viewed the pricing page")

    alex = state.add_user(
        "Alex Access",
        email=DEMO_ACCESS_EMAIL,
        verified=True,
        alias="Lex",
        notes="Prefers e-mail over phone.",
        details="Kerb Street 7, Aarhus",
        tags=["vip", "cyclist"],
        user_fields={"loyalty_number": "LOY-2002", "birthday": "1990-02-03"},
    )
    cycles = state.add_organization(
        DEMO_ORGANIZATION,
        details="Sole trader: Alex Access",
        notes="Invoices to Kerb Street 7",
        domain_names=["alexaccess.example.com"],
        tags=["sole-trader"],
        organization_fields={"vat_number": "DK-99999999"},
    )
    state.add_membership(alex["id"], cycles["id"])
    state.add_identity(alex["id"], "twitter", "alexaccess_demo")
    alex_rider = state.put_profile(
        "coolbikes",
        "rider",
        [
            {"type": "email", "value": DEMO_ACCESS_EMAIL},
            {"type": "coolbike_id", "value": "CB-1002"},
        ],
        user_id=alex["id"],
        attributes={"favorite_color": "orange", "rides": 42},
    )
    alex_shop = state.put_profile(
        "webshop",
        "customer",
        [{"type": "email", "value": DEMO_ACCESS_EMAIL}, {"type": "member_id", "value": "WS-2002"}],
        user_id=alex["id"],
        attributes={"tier": "gold", "newsletter": True},
    )
    for index in range(DEMO_ACCESS_EVENTS):
        target = alex_rider if index % 2 == 0 else alex_shop
        state.add_event(
            target["id"],
            type=_EVENT_TYPES[index % len(_EVENT_TYPES)],
            description=f"Demo event {index + 1}",
            properties={"sequence": index + 1, "channel": "web" if index % 3 else "app"},
        )
    order = state.add_ticket(
        alex["id"],
        "open",
        "Where is my order?",
        description="Order WS-2002 was due Monday. Tracking says nothing.",
        ccs=[casey["id"]],
        organization_id=cycles["id"],
    )
    state.add_comment(order["id"], agent["id"], "Checking with the warehouse, Alex.")
    state.add_comment(
        order["id"],
        casey["id"],
        "Casey here, CC'd by Alex: mine is missing too (order WS-7007).",
    )
    state.add_comment(
        order["id"],
        alex["id"],
        "Receipt attached.",
        attachments=[("receipt-WS-2002.pdf", b"%PDF-1.4 demo receipt for WS-2002")],
    )
    state.add_comment(order["id"], agent["id"], "Found it: delivered today.")
    state.add_comment(order["id"], agent["id"], "Customer called; resolved.", public=False)
    state.set_ticket_status(order["id"], "solved")
    state.set_satisfaction_rating(order["id"], "good", "Quick and friendly, thanks!")
    shared = state.add_ticket(casey["id"], "pending", "Group ride sign-up", followers=[alex["id"]])
    state.add_comment(shared["id"], agent["id"], "Alex is following this for the club.")

    blake = state.add_user("Blake Blocked", email=DEMO_BLOCKED_EMAIL, verified=True)
    state.put_profile(
        "webshop",
        "customer",
        [{"type": "email", "value": DEMO_BLOCKED_EMAIL}, {"type": "member_id", "value": "WS-2003"}],
        user_id=blake["id"],
    )
    state.add_ticket(blake["id"], "open", "Refund still pending")

    for index in range(1, users + 1):
        first = _FIRST[index % len(_FIRST)]
        last = _LAST[(index // len(_FIRST)) % len(_LAST)]
        email = f"demo.user{index:04d}@example.com"
        user = state.add_user(f"{first} {last} {index}", email=email, verified=rng.random() < 0.7)
        if index % 2 == 0:
            profile = state.put_profile(
                "coolbikes",
                "rider",
                [
                    {"type": "email", "value": email},
                    {"type": "coolbike_id", "value": f"CB-{5000 + index}"},
                ],
                user_id=user["id"],
                attributes={"rides": rng.randint(0, 200)},
            )
            for _ in range(rng.randint(0, 3)):
                state.add_event(
                    profile["id"], type=rng.choice(_EVENT_TYPES), description="Demo activity"
                )
        if index % 3 == 0:
            state.put_profile(
                "webshop",
                "customer",
                [
                    {"type": "email", "value": email},
                    {"type": "member_id", "value": f"WS-{7000 + index}"},
                ],
                user_id=user["id"],
                attributes={"tier": rng.choice(("bronze", "silver", "gold"))},
            )
        if index % 5 == 0:
            state.add_ticket(
                user["id"], rng.choice(("open", "pending", "solved", "closed")), "Demo request"
            )
