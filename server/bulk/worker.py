"""The export worker: an asyncio task per PriorGate process running :class:`ExportRunner` rounds in a
thread, like the PAS notification delivery worker. Several processes may each run one: the job lease
(``jobs.py``) keeps a job with one of them at a time."""

from __future__ import annotations

import asyncio
import logging

from .runner import ExportRunner

log = logging.getLogger("priorgate.bulk")


class ExportWorker:
    def __init__(self, runner: ExportRunner, poll_interval: float) -> None:
        self.runner = runner
        self._poll_interval = poll_interval
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def wake(self) -> None:
        """Look for work now (from the event loop, e.g. after a kick-off)."""
        if self._wake is not None:
            self._wake.set()

    async def _loop(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            try:
                busy = await asyncio.to_thread(self.runner.run_once)
            except Exception:  # a database hiccup must not end the worker
                log.exception("bulk export round failed")
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
        self._task = asyncio.create_task(self._loop(), name="priorgate-bulk-export")

    async def stop(self, grace: float = 10.0) -> None:
        """Stop after the current round; a round still busy after ``grace`` seconds is left to finish in
        its thread (its job's lease runs out and another process restarts it if it never finishes)."""
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
