"""What the request handlers share: one :class:`Relay` per application, at ``app[RELAY]``."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from ..config import Settings
from ..ingest import IngestWriter
from ..metrics import Metrics
from ..notifications.worker import Notifier
from ..ratelimit import RateLimiter


@dataclass
class Relay:
    """What the request handlers share."""

    settings: Settings
    engine: AsyncEngine
    writer: IngestWriter
    metrics: Metrics
    limiter: RateLimiter
    notifier: Notifier | None = None
    #: token hash -> (home id, monotonic time it was confirmed); valid tokens only.
    token_cache: dict[str, tuple[str, float]] = field(default_factory=dict)


RELAY: web.AppKey[Relay] = web.AppKey("relay")
