"""The notifier's two background loops: planning (what is due) and sending (the outbox)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from datetime import datetime
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from ..clock import utcnow
from .outbox import Dispatcher
from .plan import NotifySettings, PlanResult, plan

_LOGGER = logging.getLogger(__name__)


class Notifier:
    """Plans once per ``interval`` and sends what is due; one per relay process.

    Planning and sending run as two loops, so a morning with thousands of summaries to send
    never holds back the planning of an urgent alert.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        dispatcher: Dispatcher,
        settings: NotifySettings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """Nothing runs until :meth:`start` (or a test calls :meth:`tick`)."""
        self.engine = engine
        self.dispatcher = dispatcher
        self.settings = settings
        self.clock = clock
        self._tasks: list[asyncio.Task[None]] = []
        self._planned = asyncio.Event()
        #: Homes could not report while this relay was down: their silence counts from here.
        self.started_at = clock()
        self.ticks = 0
        self.errors = 0

    async def plan(self) -> PlanResult:
        """Decide what is due and write it to the outbox."""
        now = self.clock()
        async with self.engine.begin() as connection:
            result = await connection.run_sync(plan, now, self.settings, self.started_at)
        self.ticks += 1
        return result

    async def tick(self) -> PlanResult:
        """Plan, then send what is due (what the two loops do, once, in order)."""
        result = await self.plan()
        await self.dispatcher.run_once(self.clock())
        return result

    def start(self, interval: float) -> None:
        """Plan every ``interval`` seconds and send as soon as something is planned."""
        self._tasks = [
            asyncio.create_task(self._plan_forever(interval)),
            asyncio.create_task(self._send_forever(interval)),
        ]

    async def stop(self) -> None:
        """Stop both loops (a message being sent is claimed and retried if cut off)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _plan_forever(self, interval: float) -> None:
        while True:
            try:
                await self.plan()
                self._planned.set()
            except Exception:
                self.errors += 1
                _LOGGER.exception("planning notifications failed; retrying next tick")
            await asyncio.sleep(interval)

    async def _send_forever(self, interval: float) -> None:
        while True:
            # Woken by each plan; retries that come due between plans are picked up too.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._planned.wait(), interval)
            self._planned.clear()
            try:
                await self.dispatcher.run_once(self.clock())
            except Exception:
                self.errors += 1
                _LOGGER.exception("sending notifications failed; retrying")
