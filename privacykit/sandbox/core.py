"""The sandbox state's foundation: the lock, the virtual clock, generated ids.

Owns :class:`StateCore`, the bottom of the layered
:class:`~privacykit.sandbox.state.SandboxState`. Each resource module adds one layer
(jobs → users → organizations → profiles → tickets → comments → user deletion) on top of
the one below, so a rule that spans resources (a ticket blocks its requester's deletion;
a permanent deletion removes profiles) lives in the higher layer that can see both.
Every layer keeps its own records and resets them in :meth:`StateCore._clear` (each
override calls ``super()._clear()`` first).
"""

from __future__ import annotations

import random
import threading

from privacykit.sandbox.limits import VirtualClock

__all__ = ["StateCore"]

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class StateCore:
    """Lock, clock, random stream and the counters every layer draws ids from."""

    def __init__(
        self,
        clock: VirtualClock,
        *,
        rng_seed: int | None = None,
        admin_email: str = "dpo@sandbox.test",
        subdomain: str = "sandbox",
    ) -> None:
        self.clock = clock
        # Re-entrant: public methods call each other (a seeding helper calls the API rule).
        self.lock = threading.RLock()
        self.base_url = "http://127.0.0.1"
        self.subdomain = subdomain
        self.admin_email = admin_email
        self._rng = random.Random(rng_seed)
        with self.lock:
            self._clear()

    def _clear(self) -> None:
        """Forget every record (layers extend this)."""
        self._next_seq = 1

    def _now(self) -> str:
        return self.clock.iso()

    def _seq(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def _ulid(self) -> str:
        """A ULID-like id: 48-bit millisecond timestamp + 80 random bits, Crockford base32."""
        millis = int(self.clock.epoch() * 1000) & ((1 << 48) - 1)
        number = (millis << 80) | self._rng.getrandbits(80)
        chars = []
        for _ in range(26):
            chars.append(_CROCKFORD[number & 31])
            number >>= 5
        return "".join(reversed(chars))

    def _settle(self) -> None:
        """Apply whatever the virtual clock has made due (layers extend this; callers
        hold the lock). Called before every API answer and by the inspection helpers."""
