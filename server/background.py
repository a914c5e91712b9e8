"""A background loop of rounds for one PriorGate process: the PAS notification delivery worker and the
bulk export worker each run one. A round that found work is followed at once by the next; an idle round
waits for :meth:`RoundLoop.wake` or the poll interval. Work claimed by a round carries a lease in the
database, so a process that stops mid-round leaves it to another process (or to its own restart)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

Round = Callable[[], Awaitable[object]]  # one round; a truthy result means it found work


class RoundLoop:
    def __init__(self, name: str, round: Round, poll_interval: float, log: logging.Logger) -> None:
        self._name = name
        self._round = round
        self._poll_interval = poll_interval
        self._log = log
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        """Start a round now (call from the event loop, e.g. after a route queued work)."""
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            try:
                busy = bool(await self._round())
            except Exception:  # a database hiccup must not end the loop for good
                self._log.exception("%s: a round failed", self._name)
                busy = False
            if busy or self._stopping:
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_interval)
            except TimeoutError:
                pass
            self._wake.clear()

    def start(self) -> None:
        self._stopping = False
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self, grace: float = 10.0) -> None:
        """Finish the current round, then stop. A round still busy after ``grace`` seconds is cancelled:
        the work it claimed is taken up again when its lease ends."""
        if self._task is None:
            return
        self._stopping = True
        self.wake()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=grace)
        except TimeoutError:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._task = None
