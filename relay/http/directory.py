"""Which home a bearer token belongs to, answered from memory.

Every valid (unrevoked) token's hash is held here, so authenticating a request costs no
database round trip, and a flood of made-up tokens costs none either: whatever is not in the
directory is unknown. The directory follows the table through ``token_generation``, a counter
that triggers bump in every transaction changing ``home_tokens`` (migration 0006): it is read
when the directory is ``max_age`` seconds old (the bound on how long a revoked token keeps
working), and the tokens are reloaded, a few thousand rows at a time, only when it moved.

A token the directory does not know may be newer than the last check: the request then waits
for a check that starts after it arrived, at most :data:`MISS_RECHECK_SECONDS` after the
previous one started, so a new home's first report is answered within about a second, and a
stranger's flood shares one query a second, however fast it comes.

A known token waits for a due check at most :data:`CHECK_PATIENCE_SECONDS`, and is then
answered from memory, for as long as the directory is younger than
:data:`OUTAGE_GRACE_SECONDS`: a database outage does not stop homes the relay already knows
(their reports still get 503 until the database is back; status reads and limits work).
Beyond that, and for a token the directory does not know, the outage is an error (503).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
import contextlib
import math
import time

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ..storage.models import HOME_TOKENS, TOKEN_GENERATION

#: A token not in the directory waits for a check started at most this long after the last.
MISS_RECHECK_SECONDS = 1.0
#: A known token waits for a due check at most this long, then is answered from memory.
CHECK_PATIENCE_SECONDS = 1.0
#: While the database is unreachable, a directory checked this recently still answers.
OUTAGE_GRACE_SECONDS = 600.0
#: Tokens read per step of a reload (the event loop gets its turn between steps).
RELOAD_ROWS = 1_000

_GENERATION = select(TOKEN_GENERATION.c.value).where(TOKEN_GENERATION.c.id == 1)
_VALID = select(HOME_TOKENS.c.token_hash, HOME_TOKENS.c.home_id).where(
    HOME_TOKENS.c.revoked_at.is_(None)
)


class TokenDirectory:
    """Token hash -> home id for every valid token, kept in step with the database."""

    def __init__(
        self,
        engine: AsyncEngine,
        max_age: float,
        recover: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.engine = engine
        self._max_age = max_age
        #: After a failed check: what makes the next connections fresh (the writer's
        #: ``recover``; on SQLite a connection opened while the file was read-only keeps every
        #: later one read-only until all are closed).
        self._recover = recover
        self._homes: dict[str, str] = {}
        self._generation: int | None = None
        #: When the last check started, and when one last succeeded (monotonic).
        self._check_started = -math.inf
        self._checked = -math.inf
        self._check: asyncio.Task[None] | None = None
        #: Why the last check failed, if it did.
        self._failure: SQLAlchemyError | OSError | None = None

    def __len__(self) -> int:
        return len(self._homes)

    def fresh(self, digest: str) -> str | None:
        """The home of the token with this hash when the directory can answer at once (it
        knows the token and no check is due), else None: then ask :meth:`home`."""
        if time.monotonic() - self._checked < self._max_age:
            return self._homes.get(digest)
        return None

    async def home(self, digest: str) -> str | None:
        """The home of the valid token with this hash, else None.

        Raises :class:`ConnectionError` when the database cannot be asked and the directory
        is too old, or does not know the token (see the module's docstring)."""
        now = time.monotonic()
        if now - self._checked >= self._max_age:
            known = self._vouches_for(digest)
            failing = self._failure is not None
            await self._check_since(
                # After a failed check, only a newer one will do (and a known token does
                # not wait for it: the database is likely still down).
                now if failing else min(self._checked + self._max_age, now),
                min(self._max_age, MISS_RECHECK_SECONDS),
                None if not known else 0.0 if failing else CHECK_PATIENCE_SECONDS,
            )
            self._raise_unless_known(digest)
        if (home_id := self._homes.get(digest)) is not None:
            return home_id
        await self._check_since(now, MISS_RECHECK_SECONDS, None)
        self._raise_unless_known(digest)
        return self._homes.get(digest)

    def _vouches_for(self, digest: str) -> bool:
        """Whether the token is known, and the directory recent enough to answer alone."""
        return digest in self._homes and time.monotonic() - self._checked < OUTAGE_GRACE_SECONDS

    async def _check_since(self, since: float, spacing: float, patience: float | None) -> None:
        """Until a check started at or after ``since`` has ended (one is started no sooner
        than ``spacing`` seconds after the previous one); with ``patience``, at most that
        many seconds (the check goes on without this caller)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(patience):
                while self._check is not None or self._check_started < since:
                    if self._check is None:
                        if (wait := self._check_started + spacing - time.monotonic()) > 0:
                            await asyncio.sleep(wait)
                            continue
                        self._check_started = time.monotonic()
                        self._check = asyncio.create_task(self._check_database())
                    await asyncio.shield(self._check)

    def _raise_unless_known(self, digest: str) -> None:
        """After a failed check: nothing to say for a token known recently enough, else the
        outage is the caller's error (a fresh one each time: the stored failure is shared)."""
        if self._failure is None or self._vouches_for(digest):
            return
        raise ConnectionError("the database cannot be asked about tokens") from self._failure

    async def _check_database(self) -> None:
        try:
            async with self.engine.connect() as connection:
                generation = await connection.scalar(_GENERATION)
                if generation is None or generation != self._generation:
                    homes: dict[str, str] = {}
                    rows = await connection.stream(_VALID)
                    async for part in rows.partitions(RELOAD_ROWS):
                        homes.update((digest, home_id) for digest, home_id in part)
                    self._homes = homes
                    self._generation = generation
        except (SQLAlchemyError, OSError) as err:
            self._failure = err
            if self._recover is not None:
                await self._recover()
        else:
            self._failure = None
            self._checked = time.monotonic()
        finally:
            self._check = None
