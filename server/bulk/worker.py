"""The export worker: an asyncio task per PriorGate process running :class:`ExportRunner` rounds in a
thread, like the PAS notification delivery worker. Several processes may each run one: the job lease
(``jobs.py``) keeps a job with one of them at a time."""

from __future__ import annotations

import asyncio
import logging

from server.background import RoundLoop

from .runner import ExportRunner

log = logging.getLogger("priorgate.bulk")


class ExportWorker:
    def __init__(self, runner: ExportRunner, poll_interval: float) -> None:
        self.runner = runner
        self._rounds = RoundLoop("priorgate-bulk-export", self._round, poll_interval, log)

    async def _round(self) -> bool:
        return await asyncio.to_thread(self.runner.run_once)

    def wake(self) -> None:
        """Look for work now (from the event loop, e.g. after a kick-off)."""
        self._rounds.wake()

    def start(self) -> None:
        self._rounds.start()

    async def stop(self, grace: float = 10.0) -> None:
        """Stop after the current round; a round still busy after ``grace`` seconds is left to finish in
        its thread (its job's lease runs out and another process restarts it if it never finishes)."""
        await self._rounds.stop(grace)
