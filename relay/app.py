"""Assembling and running the relay: engine, writer, HTTP app, retention."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
from datetime import timedelta
import logging

from aiohttp import web
import aiohttp_jinja2
import jinja2
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from .config import Settings
from .http.dashboard.views import DASHBOARD, Dashboard, setup as setup_dashboard
from .http.directory import TokenDirectory
from .http.middleware import REQUEST_LOG, RequestLog, request_context
from .http.routes import add_routes
from .http.state import RELAY, Relay
from .ingest import IngestWriter
from .metrics import Metrics
from .notifications.outbox import Dispatcher
from .notifications.plan import NotifySettings
from .notifications.worker import Notifier
from .ratelimit import RateLimiter
from .storage.db import create_engine, require_current_schema
from .storage.retention import prune
from .storage.sqlite_file import guard_file

_LOGGER = logging.getLogger(__name__)
PRUNE_EVERY = timedelta(hours=1)


async def _prune_forever(engine: AsyncEngine, retention_days: int) -> None:
    while True:
        try:
            pruned = await prune(engine, retention_days)
            if pruned.reports or pruned.messages:
                _LOGGER.info(
                    "pruned %d reports and %d messages older than %d days",
                    pruned.reports,
                    pruned.messages,
                    retention_days,
                )
        except SQLAlchemyError as err:
            _LOGGER.error("pruning failed: %s", type(err).__name__)
        await asyncio.sleep(PRUNE_EVERY.total_seconds())


def create_app(settings: Settings, engine: AsyncEngine | None = None) -> web.Application:
    """The aiohttp application; the engine is created (and disposed) by it unless given."""
    app = web.Application(middlewares=[request_context], client_max_size=settings.max_body_bytes)
    app[REQUEST_LOG] = requests = RequestLog(every=settings.log_every_request)
    add_routes(app)
    aiohttp_jinja2.setup(
        app, loader=jinja2.PackageLoader("relay.http", "templates"), autoescape=True
    )
    setup_dashboard(app)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        own_engine = engine is None
        db = engine or create_engine(settings.db_url)
        try:
            guard_file(db.sync_engine)
            await require_current_schema(db)
            metrics = Metrics()
            writer = IngestWriter(db, metrics)
            writer.start()
        except BaseException:
            if own_engine:
                await db.dispose()
            raise
        try:
            app[RELAY] = Relay(
                settings,
                db,
                writer,
                metrics,
                RateLimiter(settings.rate_per_second, settings.rate_burst),
                RateLimiter(settings.refusals_per_second, settings.refusals_burst),
                TokenDirectory(db, settings.token_cache_seconds, writer.recover),
            )
            pruner = asyncio.create_task(_prune_forever(db, settings.retention_days))
            # Caregivers' URLs are decrypted only to send; no key is made up unless needed.
            box = settings.secret_box() if settings.notify_seconds else None
            notifier = Notifier(
                db,
                Dispatcher(db, box),
                NotifySettings(timedelta(minutes=settings.escalate_minutes), settings.public_url),
                metrics=metrics,
            )
            app[RELAY].notifier = notifier
            if settings.notify_seconds > 0:
                notifier.start(settings.notify_seconds)
            app[DASHBOARD] = dashboard = Dashboard(
                db, settings.public_url, settings.secret_box, notifier.dispatcher.send
            )
            dashboard.bands.start()
            try:
                yield
            finally:
                await dashboard.bands.stop()
                await notifier.stop()
                pruner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pruner
        finally:
            try:
                # Also when starting failed after the writer started: its interpreter closes.
                await writer.stop()
                requests.flush()
            finally:
                if own_engine:
                    await db.dispose()

    app.cleanup_ctx.append(lifecycle)
    return app
