"""What the request handlers share: one :class:`Relay` per application, at ``app[RELAY]``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from ..config import Settings
from ..ingest import IngestWriter
from ..metrics import Metrics
from ..notifications.worker import Notifier
from ..ratelimit import RateLimiter
from .directory import TokenDirectory


@dataclass
class Relay:
    """What the request handlers share."""

    settings: Settings
    engine: AsyncEngine
    writer: IngestWriter
    metrics: Metrics
    limiter: RateLimiter
    #: Per client address: refused requests (401, 400, 413, 415, 422, 408).
    refusals: RateLimiter
    #: Which home each valid token belongs to.
    tokens: TokenDirectory
    notifier: Notifier | None = None
    #: The last /healthz write probe: (monotonic time, None or why the store cannot commit).
    probed: tuple[float, str | None] | None = None
    probe_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: Big bodies are parsed one at a time (see views.PARSE_INLINE_CHARS).
    big_parses: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))


RELAY: web.AppKey[Relay] = web.AppKey("relay")
