"""What a run of the delivery activity tells Temporal while it runs: the delivery's progress."""

from __future__ import annotations

import asyncio

from temporalio import activity

from domain.activity_contract import HEARTBEAT_EVERY_SECONDS, AttemptProgress


class ProgressHeartbeats:
    """Heartbeats the delivery's progress for as long as the attempt runs.

    They prove the worker alive through every wait (the registry read, a slow
    POST), so a live attempt is never timed out and repeated, and a dead one
    is noticed within the heartbeat timeout. An attempt that ends sooner than
    the first beat sends none: its result or failure says it all.
    """

    def __init__(self, progress: AttemptProgress) -> None:
        self._progress = progress
        self._task: asyncio.Task[None] | None = None
        # A local activity (a delivery's first attempt) has no heartbeats: the workflow task
        # it runs in is its proof of life, and its failure carries its progress.
        self._live = not activity.info().is_local

    def record(self, progress: AttemptProgress) -> None:
        """A POST was made, or the run is held back. Either is sent at once (the next
        run reads the counts from it), but a success: it ends the run with its record."""
        self._progress = progress
        if progress.last is None or not progress.last.succeeded:
            self.send()

    @property
    def progress(self) -> AttemptProgress:
        return self._progress

    def send(self) -> None:
        if self._live:
            activity.heartbeat(self._progress.model_dump(mode="json"))

    async def __aenter__(self) -> ProgressHeartbeats:
        if self._live:
            self._task = asyncio.create_task(self._beat())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._task:
            self._task.cancel()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY_SECONDS)
            self.send()
