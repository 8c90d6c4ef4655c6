"""The notifier's two background loops: planning (what is due) and sending (the outbox)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
from datetime import datetime, timedelta
import logging
import threading
import time

from sqlalchemy.ext.asyncio import AsyncEngine

from ..clock import utcnow
from ..metrics import Metrics
from ..storage.db import create_engine
from ..storage.sqlite_file import guard_file
from .outbox import Dispatcher
from .plan import NotifySettings, PlanResult, plan, plan_lock

_LOGGER = logging.getLogger(__name__)

#: Passes and the sender wake this long after each point of the grid (a timer may fire a
#: little early, and a pass at 08:00 must not see 07:59:59.999).
GRID_LATE = 0.05
#: A pass longer than this share of the interval (10 s of a minute) is logged as a warning,
#: with what it wrote and where its time went: passes of one minute must not run into the next.
SLOW_PASS = 1 / 6


class Notifier:
    """Plans once per ``interval`` and sends what is due; one per relay process.

    Planning and sending run as two loops, so a morning with thousands of summaries to send
    never holds back the planning of an urgent alert. Plans start on the wall clock's grid of
    the interval (every replica at :00 of each minute); replicas then plan one after the other
    (the lock). A summary is composed in the pass at its minute; a crowd's excess is written
    ahead, due at its minute (relay/notifications/plan.py), and the sender wakes on the same
    grid: those go at 08:00, not once the 08:00 pass is through.

    The planning loop runs in a thread of its own, with its own event loop and engine: a pass
    over 100,000 homes is seconds of Python, which on the serving loop would hold every report
    and health check for that long (measured: bench/scale.py). In its thread it only shares
    the interpreter (the GIL, switched every 0.5 ms), so requests are slower meanwhile, not
    stopped. An in-memory SQLite database cannot be opened twice: it plans on the serving loop.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        dispatcher: Dispatcher,
        settings: NotifySettings,
        clock: Callable[[], datetime] = utcnow,
        metrics: Metrics | None = None,
    ) -> None:
        """Nothing runs until :meth:`start` (or a test calls :meth:`tick`)."""
        self.engine = engine
        self.dispatcher = dispatcher
        self.settings = settings
        self.clock = clock
        self.metrics = metrics or Metrics()
        self._tasks: list[asyncio.Task[None]] = []
        self._planned = asyncio.Event()
        self._planner: threading.Thread | None = None
        self._stop_planning = threading.Event()
        #: Homes could not report while this relay was down: their silence counts from here.
        self.started_at = clock()
        #: How often passes run, once started (a crowd's summaries are then written ahead).
        self.interval: timedelta | None = None
        self.ticks = 0
        self.errors = 0
        #: When the pass in progress began (``time.monotonic``; waiting for the lock counts).
        self._pass_began: float | None = None

    async def plan(self, engine: AsyncEngine | None = None) -> PlanResult:
        """Decide what is due and write it to the outbox (on ``engine``, default the relay's)."""
        self._pass_began = time.monotonic()
        try:
            async with (engine or self.engine).begin() as connection:
                # 'now' is read once this replica may plan: after the other's plan committed.
                await connection.run_sync(plan_lock)
                started = time.perf_counter()
                result = await connection.run_sync(
                    plan, self.clock(), self.settings, self.started_at, self.interval
                )
        finally:
            self._pass_began = None
        seconds = time.perf_counter() - started
        self.metrics.plan.observe(seconds)
        self.ticks += 1
        if self.interval is not None and seconds > SLOW_PASS * self.interval.total_seconds():
            _LOGGER.warning("planning took %.1f s: %s", seconds, result.describe())
        else:
            _LOGGER.debug("planned in %.1f s: %s", seconds, result.describe())
        return result

    def planning_for(self) -> float:
        """How long the pass in progress has run, waiting for the lock included (0 when none):
        a pass that hangs shows here before it ends, if it ever does."""
        began = self._pass_began
        return 0.0 if began is None else time.monotonic() - began

    async def tick(self) -> PlanResult:
        """Plan, then send what is due (what the two loops do, once, in order)."""
        result = await self.plan()
        await self.dispatcher.run_once(self.clock())
        return result

    def start(self, interval: float) -> None:
        """Plan every ``interval`` seconds and send as soon as something is planned."""
        self.interval = timedelta(seconds=interval)
        self._tasks = [asyncio.create_task(self._send_forever(interval))]
        if self.engine.url.database in (None, "", ":memory:"):
            self._tasks.append(asyncio.create_task(self._plan_forever(interval, self.engine)))
            return
        serving = asyncio.get_running_loop()
        self._stop_planning.clear()
        self._planner = threading.Thread(
            target=self._planning_thread, args=(interval, serving), name="hpoll-plan", daemon=True
        )
        self._planner.start()

    async def stop(self) -> None:
        """Stop both loops (a message being sent is claimed and retried if cut off; a plan
        pass cut off rolls back, and the next one does its work)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._planner is not None:
            self._stop_planning.set()
            await asyncio.to_thread(self._planner.join)
            self._planner = None
        self.dispatcher.close()

    def _planning_thread(self, interval: float, serving: asyncio.AbstractEventLoop) -> None:
        async def main() -> None:
            engine = create_engine(self.engine.url.render_as_string(hide_password=False))
            guard_file(engine.sync_engine)
            planning = asyncio.create_task(self._plan_forever(interval, engine, serving))
            try:
                await asyncio.to_thread(self._stop_planning.wait)
            finally:
                planning.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await planning
                await engine.dispose()

        asyncio.run(main())

    async def _plan_forever(
        self,
        interval: float,
        engine: AsyncEngine,
        serving: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        while True:
            try:
                await self.plan(engine)
                if serving is None:
                    self._planned.set()
                else:
                    serving.call_soon_threadsafe(self._planned.set)
            except Exception:
                self.errors += 1
                _LOGGER.exception("planning notifications failed; retrying next tick")
            await asyncio.sleep(interval - time.time() % interval + GRID_LATE)

    async def _send_forever(self, interval: float) -> None:
        while True:
            # Woken by each plan and on the interval's grid (summaries written ahead are due
            # there, not when that pass is through), retries that came due between included.
            next_grid = interval - time.time() % interval + GRID_LATE
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._planned.wait(), next_grid)
            self._planned.clear()
            try:
                await self.dispatcher.run_once(self.clock())
            except Exception:
                self.errors += 1
                _LOGGER.exception("sending notifications failed; retrying")
