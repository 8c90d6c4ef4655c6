"""Which home a bearer token belongs to, answered from memory.

Every valid (unrevoked) token's hash is held here, so authenticating a request costs no
database round trip, and a flood of made-up tokens costs none either: whatever is not in the
directory is unknown. The directory follows the database by a cheap fingerprint of the tokens
table (count, newest id, newest creation, revocations), read at most every ``max_age`` seconds
(the bound on how long a revoked token keeps working) and reloaded whole only when it changed.

A token the directory does not know may be newer than the last check: the request then waits
for the next check, which starts at most :data:`MISS_RECHECK_SECONDS` after the previous one,
so a new home's first report is answered within about a second, and a stranger's flood shares
one query a second, however fast it comes.

While the database is unreachable, tokens known within :data:`OUTAGE_GRACE_SECONDS` keep
working; an unknown token then raises the database's error (the caller answers 503).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..storage.models import HomeToken

#: A token not in the directory waits for a check started at most this long after the last.
MISS_RECHECK_SECONDS = 1.0
#: While the database is unreachable, a directory checked this recently still answers.
OUTAGE_GRACE_SECONDS = 600.0

_TOKENS = HomeToken.__table__
_FINGERPRINT = select(
    func.count(),
    func.max(_TOKENS.c.id),
    func.max(_TOKENS.c.created_at),
    func.count(_TOKENS.c.revoked_at),
    func.max(_TOKENS.c.revoked_at),
)
_VALID = select(_TOKENS.c.token_hash, _TOKENS.c.home_id).where(_TOKENS.c.revoked_at.is_(None))


class TokenDirectory:
    """Token hash -> home id for every valid token, kept in step with the database."""

    def __init__(self, engine: AsyncEngine, max_age: float) -> None:
        self.engine = engine
        self._max_age = max_age
        self._homes: dict[str, str] = {}
        self._fingerprint: tuple[Any, ...] | None = None
        #: When the last check started, and when one last succeeded (monotonic).
        self._check_started = -float("inf")
        self._checked = -float("inf")
        self._check: asyncio.Task[None] | None = None
        #: Why the last check failed, if it did.
        self._failure: SQLAlchemyError | OSError | None = None

    def __len__(self) -> int:
        return len(self._homes)

    async def home(self, digest: str) -> str | None:
        """The home of the valid token with this hash, else None.

        Raises the database's error only when it cannot be asked and the directory is too
        old, or does not know the token (see the module's docstring)."""
        if time.monotonic() - self._checked >= self._max_age:
            await self._refresh(min(self._max_age, MISS_RECHECK_SECONDS), digest)
        if (home_id := self._homes.get(digest)) is not None:
            return home_id
        await self._refresh(MISS_RECHECK_SECONDS, digest)
        return self._homes.get(digest)

    async def _refresh(self, spacing: float, digest: str) -> None:
        """Be answered by a check that started after this call (or is in flight), starting
        one no sooner than ``spacing`` seconds after the previous one started."""
        asked = time.monotonic()
        while self._check is None and self._check_started < asked:
            if (wait := self._check_started + spacing - time.monotonic()) > 0:
                await asyncio.sleep(wait)
                continue
            self._check_started = time.monotonic()
            self._check = asyncio.create_task(self._check_database())
        if self._check is not None:
            await asyncio.shield(self._check)
        if self._failure is not None:
            if time.monotonic() - self._checked < OUTAGE_GRACE_SECONDS and digest in self._homes:
                return
            raise self._failure

    async def _check_database(self) -> None:
        try:
            async with self.engine.connect() as connection:
                fingerprint = tuple((await connection.execute(_FINGERPRINT)).one())
                if fingerprint != self._fingerprint:
                    self._homes = dict((await connection.execute(_VALID)).tuples().all())
                    self._fingerprint = fingerprint
        except (SQLAlchemyError, OSError) as err:
            self._failure = err
        else:
            self._failure = None
            self._checked = time.monotonic()
        finally:
            self._check = None
