"""`privacykit sandbox`: run the local sandbox Zendesk (see :mod:`privacykit.sandbox`)."""

from __future__ import annotations

import ipaddress
import signal
import sys
import threading
from types import FrameType

import click

from privacykit.sandbox import SandboxServer
from privacykit.sandbox.faults import MALFORMED_KINDS
from privacykit.sandbox.limits import HEADER_STYLES
from privacykit.sandbox.seed import SEEDS

__all__ = ["register", "sandbox", "serve"]


@click.group(short_help="A faithful local Zendesk for tests and demos.")
def sandbox() -> None:
    """A faithful local Zendesk (Users, Profiles, Tickets APIs) for tests and demos."""


def _loopback_host(ctx: click.Context, param: click.Parameter, value: str) -> str:
    # The sandbox accepts a fixed token and has unauthenticated control endpoints: binding
    # anything but loopback would expose them to the network, so it is refused (exit 2).
    if value == "localhost":
        return value
    try:
        if ipaddress.ip_address(value.strip("[]")).is_loopback:
            return value
    except ValueError:
        pass
    raise click.BadParameter("must be a loopback address such as 127.0.0.1 or ::1")


@sandbox.command(short_help="Serve the sandbox on loopback until interrupted.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    callback=_loopback_host,
    help="Address to bind (loopback only).",
)
@click.option(
    "--port",
    default=0,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="0 picks a free port.",
)
@click.option(
    "--seed",
    "seed_name",
    default="demo",
    show_default=True,
    type=click.Choice(SEEDS),
    help="Initial data.",
)
@click.option(
    "--users",
    default=50,
    show_default=True,
    type=click.IntRange(0, 1_000_000),
    help="Demo end users.",
)
@click.option(
    "--time-scale",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0.0, min_open=True),
    help="Run the clock K times faster: every window and delay is K times shorter.",
)
@click.option(
    "--fault-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0.0, 1.0),
    help="Probability of an injected 5xx, slow answer or dropped connection.",
)
@click.option(
    "--rate-limit",
    default=700,
    show_default=True,
    type=click.IntRange(min=1),
    help="Account requests per minute.",
)
@click.option(
    "--profiles-limit",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Profiles API requests per minute.",
)
@click.option(
    "--permanent-delete-limit",
    default=700,
    show_default=True,
    type=click.IntRange(min=1),
    help="Permanent deletions per 10 minutes.",
)
@click.option(
    "--header-style",
    default="2024",
    show_default=True,
    type=click.Choice(HEADER_STYLES),
    help="Rate-limit header spelling: 2023 (rate-limit-*, zendesk-rate-limit-<endpoint>) "
    "or 2024 (ratelimit-*, zendesk-ratelimit-<endpoint>).",
)
@click.option(
    "--retry-after",
    default=None,
    type=click.FloatRange(min=0.0),
    help="Retry-After seconds every 429 carries (default: the real wait).",
)
@click.option(
    "--malformed",
    "malformed",
    multiple=True,
    metavar="'METHOD /PATH=KIND'",
    help="Answer an endpoint with a malformed 200 body, e.g. "
    "'GET /api/v2/users/search=users_null' (kinds: " + ", ".join(MALFORMED_KINDS) + ").",
)
@click.option(
    "--slow-drip",
    default=None,
    type=click.FloatRange(min=0.0, min_open=True),
    metavar="SECONDS",
    help="Answer one body byte every SECONDS virtual seconds (at most --slow-drip-bytes).",
)
@click.option(
    "--slow-drip-bytes",
    default=100,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Bytes dripped per answer before the rest is sent.",
)
@click.option(
    "--job-delay",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=0.0, min_open=True),
    help="Virtual seconds a background job takes.",
)
@click.option(
    "--job-ttl",
    default=3600.0,
    show_default=True,
    type=click.FloatRange(min=0.0, min_open=True),
    help="Virtual seconds a finished job's status stays readable.",
)
@click.option(
    "--rng-seed",
    default=None,
    type=int,
    help="Seed for generated data and faults (reproducible runs).",
)
@click.option(
    "--token", default="sandbox-token", show_default=True, help="API token the sandbox accepts."
)
@click.option(
    "--email",
    default="dpo@sandbox.test",
    show_default=True,
    help="Agent email the sandbox accepts.",
)
def serve(
    host: str,
    port: int,
    seed_name: str,
    users: int,
    time_scale: float,
    fault_rate: float,
    rate_limit: int,
    profiles_limit: int,
    permanent_delete_limit: int,
    header_style: str,
    retry_after: float | None,
    malformed: tuple[str, ...],
    slow_drip: float | None,
    slow_drip_bytes: int,
    job_delay: float,
    job_ttl: float,
    rng_seed: int | None,
    token: str,
    email: str,
) -> None:
    """Serve the sandbox until interrupted; the first line is `listening on http://HOST:PORT`.

    Point privacykit at it with ZENDESK_URL=http://HOST:PORT, ZENDESK_EMAIL and
    ZENDESK_API_TOKEN (defaults: dpo@sandbox.test / sandbox-token). Control endpoints
    live under /_sandbox/ (log, config, clock, seed, tickets, state).
    """
    table: dict[str, str] = {}
    for item in malformed:
        endpoint, sep, kind = item.rpartition("=")
        if not sep or " " not in endpoint.strip():
            raise click.BadParameter("use 'METHOD /PATH=KIND'", param_hint="--malformed")
        table[endpoint.strip()] = kind.strip()
    drip = None if slow_drip is None else {"interval": slow_drip, "max_bytes": slow_drip_bytes}
    try:
        server = SandboxServer(
            host,
            port,
            seed=seed_name,
            users=users,
            time_scale=time_scale,
            fault_rate=fault_rate,
            rng_seed=rng_seed,
            account_limit=rate_limit,
            profiles_limit=profiles_limit,
            permanent_delete_limit=permanent_delete_limit,
            api_token=token,
            email=email,
            header_style=header_style,
            retry_after=retry_after,
            malformed=table,
            slow_drip=drip,
        )
        server.configure({"job_delay": job_delay, "job_ttl": job_ttl})
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        # The first line tells scripts where to connect; flush so a pipe sees it now.
        sys.stdout.write(f"listening on {server.url}\n")
        sys.stdout.flush()
        counts = server.state.counts()
        click.echo(
            f"seed {seed_name}: {counts['users']} users, {counts['profiles']} profiles, "
            f"{counts['tickets']} tickets; time scale {time_scale:g}, fault rate {fault_rate:g}, "
            f"header style {header_style}",
            err=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def register(cli: click.Group) -> None:
    """Add this module's commands to the root group."""
    cli.add_command(sandbox)
