"""Caregivers' dashboard accounts: one-time sign-in links, sessions, optional passwords, roles.

Every secret handed to a browser or a message (link tokens, session tokens) is 256 random bits
and only its SHA-256 is stored, so a copy of the database signs nobody in. Passwords are
hashed with argon2id (argon2-cffi's defaults, RFC 9106's second recommended profile).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Delete, delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.clock import utcnow
from relay.messages.document import Button, Document, para
from relay.storage.models import CAREGIVERS, SIGN_IN_LINKS, WEB_SESSIONS
from relay.tokens import token_hash

LINK_LIFETIME = timedelta(minutes=15)
#: A session unused this long is over; a used one still ends at its absolute expiry.
SESSION_IDLE = timedelta(hours=24)
SESSION_ABSOLUTE = timedelta(days=7)
#: last_seen_at is written at most this often (a page load is a read, not a write).
TOUCH_EVERY = timedelta(minutes=5)
PASSWORD_MIN_LENGTH = 10
ROLES = ("caregiver", "operator")

_HASHER = PasswordHasher()
#: Verified against when the name is unknown, so both cases cost one argon2 verification.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))


def invitation(link: str, expires: datetime) -> Document:
    """The message that carries a sign-in link (sent through the caregiver's own channel)."""
    return Document(
        "Sign in to hpoll",
        "normal",
        (
            para("Your link to the hpoll dashboard, where you see the homes you watch."),
            Button("Sign in", link),
            para(
                f"It works once, until {expires:%H:%M} UTC. "
                "If you did not ask for it, ignore this message.",
                aside=True,
            ),
        ),
    )


class AccountError(ValueError):
    """Refused, with a message for the person (never names which secret was wrong)."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who a signed-in request belongs to."""

    caregiver_id: int
    name: str
    operator: bool
    session_id: int
    csrf_token: str


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just made: the cookie value (shown to the browser once) and its row."""

    token: str
    viewer: Viewer


class Accounts:
    """Sign-in state in the relay's database (works the same across replicas)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def caregiver_id(self, ref: str) -> int:
        """A caregiver's id from a name or an id; AccountError when there is none."""
        condition = CAREGIVERS.c.name == ref
        if ref.isdigit():
            condition = condition | (CAREGIVERS.c.id == int(ref))
        async with self._engine.connect() as connection:
            found = await connection.scalar(select(CAREGIVERS.c.id).where(condition))
        if found is None:
            raise AccountError(f"no caregiver '{ref}'")
        return int(found)

    async def create_link(self, caregiver_id: int) -> tuple[str, datetime]:
        """A fresh one-time sign-in token for a caregiver and when it expires."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        async with self._engine.begin() as connection:
            await connection.execute(
                SIGN_IN_LINKS.insert().values(
                    caregiver_id=caregiver_id,
                    token_hash=token_hash(token),
                    created_at=now,
                    expires_at=now + LINK_LIFETIME,
                )
            )
            # Old links are useless once expired: keep the table small.
            await connection.execute(
                delete(SIGN_IN_LINKS).where(SIGN_IN_LINKS.c.expires_at < now - LINK_LIFETIME)
            )
        return token, now + LINK_LIFETIME

    async def redeem_link(self, token: str) -> int:
        """Use a link once: the caregiver's id, or AccountError (unknown, used or expired).

        The compare-and-swap (``used_at IS NULL``) makes two simultaneous uses sign in once.
        """
        now = utcnow()
        async with self._engine.begin() as connection:
            caregiver_id = await connection.scalar(
                update(SIGN_IN_LINKS)
                .where(
                    SIGN_IN_LINKS.c.token_hash == token_hash(token),
                    SIGN_IN_LINKS.c.used_at.is_(None),
                    SIGN_IN_LINKS.c.expires_at > now,
                )
                .values(used_at=now)
                .returning(SIGN_IN_LINKS.c.caregiver_id)
            )
        if caregiver_id is None:
            raise AccountError("this sign-in link is unknown, used or expired")
        return int(caregiver_id)

    async def check_password(self, name: str, password: str) -> int:
        """The caregiver's id if the name and password fit; AccountError otherwise."""
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(CAREGIVERS.c.id, CAREGIVERS.c.password_hash).where(
                        CAREGIVERS.c.name == name.strip()
                    )
                )
            ).first()
        stored = row.password_hash if row is not None and row.password_hash else None
        try:
            _HASHER.verify(stored or _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            stored = None
        if row is None or stored is None:
            raise AccountError("wrong name or password")
        if _HASHER.check_needs_rehash(stored):
            await self.set_password(row.id, password)
        return int(row.id)

    async def set_password(self, caregiver_id: int, password: str | None) -> None:
        """Set (or with None remove) a caregiver's password."""
        if password is not None and len(password) < PASSWORD_MIN_LENGTH:
            raise AccountError(f"a password needs at least {PASSWORD_MIN_LENGTH} characters")
        hashed = _HASHER.hash(password) if password is not None else None
        async with self._engine.begin() as connection:
            await connection.execute(
                update(CAREGIVERS)
                .where(CAREGIVERS.c.id == caregiver_id)
                .values(password_hash=hashed)
            )

    async def set_role(self, caregiver_id: int, role: str) -> None:
        """Make a caregiver an operator (sees every home) or an ordinary caregiver."""
        if role not in ROLES:
            raise AccountError(f"unknown role '{role}' (one of {', '.join(ROLES)})")
        async with self._engine.begin() as connection:
            await connection.execute(
                update(CAREGIVERS).where(CAREGIVERS.c.id == caregiver_id).values(role=role)
            )

    async def start_session(self, caregiver_id: int, replaces: str | None = None) -> NewSession:
        """A new session (a new token: sign-in rotates it; the one it replaces ends)."""
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = utcnow()
        async with self._engine.begin() as connection:
            await connection.execute(_ended_sessions(now))
            if replaces:
                await connection.execute(
                    delete(WEB_SESSIONS).where(WEB_SESSIONS.c.token_hash == token_hash(replaces))
                )
            session_id = await connection.scalar(
                WEB_SESSIONS.insert()
                .values(
                    token_hash=token_hash(token),
                    caregiver_id=caregiver_id,
                    csrf_token=csrf,
                    created_at=now,
                    last_seen_at=now,
                    expires_at=now + SESSION_ABSOLUTE,
                )
                .returning(WEB_SESSIONS.c.id)
            )
            row = (
                await connection.execute(
                    select(CAREGIVERS.c.name, CAREGIVERS.c.role).where(
                        CAREGIVERS.c.id == caregiver_id
                    )
                )
            ).one()
        assert session_id is not None
        viewer = Viewer(caregiver_id, row.name, row.role == "operator", session_id, csrf)
        return NewSession(token, viewer)

    async def viewer(self, token: str) -> Viewer | None:
        """The session's caregiver, or None (unknown, idle too long, or past its expiry)."""
        now = utcnow()
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(
                        WEB_SESSIONS.c.id,
                        WEB_SESSIONS.c.caregiver_id,
                        WEB_SESSIONS.c.csrf_token,
                        WEB_SESSIONS.c.last_seen_at,
                        WEB_SESSIONS.c.expires_at,
                        CAREGIVERS.c.name,
                        CAREGIVERS.c.role,
                    )
                    .join(CAREGIVERS, CAREGIVERS.c.id == WEB_SESSIONS.c.caregiver_id)
                    .where(WEB_SESSIONS.c.token_hash == token_hash(token))
                )
            ).first()
        if row is None or row.expires_at <= now or row.last_seen_at + SESSION_IDLE <= now:
            return None
        if now - row.last_seen_at >= TOUCH_EVERY:
            async with self._engine.begin() as connection:
                await connection.execute(
                    update(WEB_SESSIONS).where(WEB_SESSIONS.c.id == row.id).values(last_seen_at=now)
                )
        return Viewer(row.caregiver_id, row.name, row.role == "operator", row.id, row.csrf_token)

    async def end_session(self, session_id: int) -> None:
        """Sign this browser out."""
        async with self._engine.begin() as connection:
            await connection.execute(delete(WEB_SESSIONS).where(WEB_SESSIONS.c.id == session_id))

    async def end_all_sessions(self, caregiver_id: int) -> int:
        """Sign out everywhere (every browser of this caregiver); how many sessions ended."""
        async with self._engine.begin() as connection:
            result = await connection.execute(
                delete(WEB_SESSIONS).where(WEB_SESSIONS.c.caregiver_id == caregiver_id)
            )
        return int(result.rowcount or 0)


def _ended_sessions(now: datetime) -> Delete:
    """Sessions past their expiry or idle too long: gone (each sign-in tidies up)."""
    return delete(WEB_SESSIONS).where(
        (WEB_SESSIONS.c.expires_at <= now) | (WEB_SESSIONS.c.last_seen_at <= now - SESSION_IDLE)
    )
