"""``jti`` replay protection for client assertions (RFC 7523 §3 item 7; SMART Backend Services).

An assertion's ``jti`` is remembered until the assertion expires; a second use inside that window is a
replay. The protocol is async so the database-backed store (shared by all workers) fits behind it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class ReplayStore(Protocol):
    async def first_use(self, namespace: str, jti: str, expires_at: datetime, now: datetime) -> bool:
        """Record ``jti`` under ``namespace`` (the client id) until ``expires_at``.

        True on first use; False when it was already recorded and has not expired (a replay).
        """
        ...


class ReplayStoreFull(Exception):
    """The in-memory store is at capacity with live entries; refuse rather than forget (fail closed)."""


@dataclass
class InMemoryReplayStore:
    """A per-process TTL set. Correct for one worker only; multi-worker deployments use the DB store."""

    max_entries: int = 100_000
    _seen: dict[tuple[str, str], datetime] = field(default_factory=dict)

    async def first_use(self, namespace: str, jti: str, expires_at: datetime, now: datetime) -> bool:
        key = (namespace, jti)
        known = self._seen.get(key)
        if known is not None and known > now:
            return False
        if len(self._seen) >= self.max_entries:
            self._purge(now)
            if len(self._seen) >= self.max_entries:
                raise ReplayStoreFull("replay store is full")
        self._seen[key] = expires_at
        return True

    def _purge(self, now: datetime) -> None:
        for key in [k for k, until in self._seen.items() if until <= now]:
            del self._seen[key]

    def __len__(self) -> int:
        return len(self._seen)
