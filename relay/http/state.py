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
    notifier: Notifier | None = None
    #: token hash -> (home id, monotonic time it was confirmed); valid tokens only.
    token_cache: dict[str, tuple[str, float]] = field(default_factory=dict)
    #: token hash -> monotonic time it was found unknown (a flood of made-up tokens costs one
    #: lookup per token per UNKNOWN_TOKEN_SECONDS, not one per request).
    unknown_tokens: dict[str, float] = field(default_factory=dict)
    #: The last /healthz write probe: (monotonic time, None or why the store cannot commit).
    probed: tuple[float, str | None] | None = None
    probe_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: Big bodies are parsed one at a time (see views.PARSE_INLINE_CHARS).
    big_parses: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))


RELAY: web.AppKey[Relay] = web.AppKey("relay")
