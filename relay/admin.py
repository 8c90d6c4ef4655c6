"""Administrative operations behind the CLI: homes, tokens, caregivers, subscriptions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
import re
import secrets
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from .clock import utcnow
from .notifications.send import validate_apprise_url
from .secretbox import SecretBox
from .storage.db import session_factory
from .storage.models import (
    ACKED,
    CAREGIVERS,
    OPEN,
    AckLink,
    Alert,
    Caregiver,
    Home,
    HomeToken,
    Notification,
    Subscription,
)
from .tokens import new_token, token_hash

_TIME = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
ALERT_KINDS = ("inactivity", "quiet", "battery", "offline", "stale", "bridge")


class AdminError(ValueError):
    """A request the relay refuses, with a message for the operator."""


def check_timezone(name: str) -> str:
    """An IANA timezone name, or AdminError."""
    if name not in available_timezones():
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise AdminError(
                f"unknown timezone '{name}' (use an IANA name like Europe/Berlin)"
            ) from err
    return name


def check_time(value: str) -> str:
    """HH:MM, 24-hour."""
    if not _TIME.fullmatch(value):
        raise AdminError(f"'{value}' is not a time of day (HH:MM, 24-hour)")
    return value


@dataclass(frozen=True)
class NewHome:
    """A home just added: its id, and its token (shown once, never stored in clear)."""

    id: str
    token: str


class Admin:
    """Operations on one database."""

    def __init__(self, engine: AsyncEngine, box: SecretBox | None = None) -> None:
        self.engine = engine
        self._sessions = session_factory(engine)
        self._box = box

    async def _home(self, session: AsyncSession, ref: str) -> Home:
        home = (
            await session.scalars(select(Home).where(or_(Home.id == ref, Home.name == ref)))
        ).all()
        if not home:
            raise AdminError(f"no home with id or name '{ref}'")
        if len(home) > 1:
            raise AdminError(f"several homes are named '{ref}'; use the id")
        return home[0]

    async def _caregiver(self, session: AsyncSession, ref: str) -> Caregiver:
        found = await session.scalar(
            select(Caregiver).where(
                or_(Caregiver.name == ref, Caregiver.id == (int(ref) if ref.isdigit() else -1))
            )
        )
        if found is None:
            raise AdminError(f"no caregiver '{ref}'")
        return found

    async def add_home(self, name: str, timezone: str) -> NewHome:
        """Create a home and its first token."""
        if not name.strip():
            raise AdminError("a home needs a name")
        check_timezone(timezone)
        home_id = "h_" + secrets.token_hex(6)
        token = new_token()
        async with self._sessions.begin() as session:
            session.add(Home(id=home_id, name=name.strip(), timezone=timezone))
            await session.flush()
            session.add(HomeToken(home_id=home_id, token_hash=token_hash(token)))
        return NewHome(home_id, token)

    async def list_homes(self) -> list[Home]:
        """Every home, by name."""
        async with self._sessions() as session:
            return list((await session.scalars(select(Home).order_by(Home.name))).all())

    @staticmethod
    async def _revoke(session: AsyncSession, home_id: str) -> None:
        await session.execute(
            update(HomeToken)
            .where(HomeToken.home_id == home_id, HomeToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )

    async def rotate_token(self, ref: str) -> NewHome:
        """Revoke the home's tokens and issue a new one."""
        token = new_token()
        async with self._sessions.begin() as session:
            home = await self._home(session, ref)
            await self._revoke(session, home.id)
            session.add(HomeToken(home_id=home.id, token_hash=token_hash(token)))
        return NewHome(home.id, token)

    async def revoke_tokens(self, ref: str) -> str:
        """Revoke every token of a home (it can no longer report)."""
        async with self._sessions.begin() as session:
            home = await self._home(session, ref)
            await self._revoke(session, home.id)
        return home.id

    async def remove_home(self, ref: str) -> str:
        """Delete a home and everything about it."""
        async with self._sessions.begin() as session:
            home = await self._home(session, ref)
            await session.delete(home)
        return home.id

    async def add_caregiver(self, name: str, apprise_url: str) -> int:
        """A caregiver with an encrypted Apprise URL."""
        if self._box is None:
            raise AdminError("no secret key available to store the URL")
        if not name.strip():
            raise AdminError("a caregiver needs a name")
        try:
            url = validate_apprise_url(apprise_url)
        except ValueError as err:
            raise AdminError(str(err)) from err
        try:
            async with self._sessions.begin() as session:
                caregiver = Caregiver(
                    name=name.strip(),
                    apprise_url_encrypted=self._box.encrypt(url),
                    consecutive_failures=0,
                )
                session.add(caregiver)
        except IntegrityError as err:
            raise AdminError(f"a caregiver named '{name.strip()}' exists already") from err
        return caregiver.id

    async def reencrypt(self, box: SecretBox) -> int:
        """Every stored URL encrypted again with ``box``'s first key, in ONE transaction
        (all or none: a failure leaves every URL as it was); returns how many."""
        table = CAREGIVERS
        async with self.engine.begin() as connection:
            rows = (
                await connection.execute(select(table.c.id, table.c.apprise_url_encrypted))
            ).all()
            for row in rows:
                await connection.execute(
                    update(table)
                    .where(table.c.id == row.id)
                    .values(apprise_url_encrypted=box.rotate(row.apprise_url_encrypted))
                )
        return len(rows)

    async def list_caregivers(self) -> list[Caregiver]:
        """Every caregiver, by name."""
        async with self._sessions() as session:
            return list((await session.scalars(select(Caregiver).order_by(Caregiver.name))).all())

    async def caregiver_url(self, ref: str) -> tuple[Caregiver, str]:
        """A caregiver and the decrypted URL (for sending only)."""
        if self._box is None:
            raise AdminError("no secret key available to read the URL")
        async with self._sessions() as session:
            caregiver = await self._caregiver(session, ref)
        return caregiver, self._box.decrypt(caregiver.apprise_url_encrypted)

    async def subscribe(
        self,
        home_ref: str,
        caregiver_ref: str,
        summary_at: str | None,
        alert_kinds: list[str],
        escalation_order: int = 0,
    ) -> Subscription:
        """A caregiver watches a home (or the subscription is updated)."""
        if summary_at is not None:
            check_time(summary_at)
        unknown = set(alert_kinds) - set(ALERT_KINDS)
        if unknown:
            raise AdminError(
                f"unknown alert kinds {sorted(unknown)}; known: {', '.join(ALERT_KINDS)}"
            )
        async with self._sessions.begin() as session:
            home = await self._home(session, home_ref)
            caregiver = await self._caregiver(session, caregiver_ref)
            existing = await session.scalar(
                select(Subscription).where(
                    Subscription.home_id == home.id, Subscription.caregiver_id == caregiver.id
                )
            )
            subscription = existing or Subscription(home_id=home.id, caregiver_id=caregiver.id)
            if subscription.summary_at != summary_at:  # the next summary is at the new time
                subscription.next_summary_due = None
            subscription.summary_at = summary_at
            subscription.alert_kinds = list(alert_kinds)
            subscription.escalation_order = escalation_order
            session.add(subscription)
        return subscription

    async def acknowledge(
        self,
        alert_id: int,
        by: str | None = None,
        code: str | None = None,
        now: datetime | None = None,
    ) -> Alert:
        """Someone is looking into an urgent alert: the escalation stops there.

        With ``code`` (from a caregiver's own link) the link must belong to this alert, and the
        caregiver it was sent to is recorded as the one who acknowledged; the CLI passes a name
        instead (whoever runs it has the database anyway), a caregiver's or anyone's.
        """
        async with self._sessions.begin() as session:
            alert = await session.get(Alert, alert_id)
            caregiver = None
            if alert is not None and code is not None:
                caregiver = await session.scalar(
                    select(Caregiver)
                    .join(AckLink, AckLink.caregiver_id == Caregiver.id)
                    .where(AckLink.alert_id == alert_id, AckLink.code_hash == token_hash(code))
                )
            if alert is None or (code is not None and caregiver is None):
                raise AdminError(f"no alert {alert_id} with that code")
            if caregiver is None and by is not None:  # the CLI names a caregiver, or anyone
                caregiver = await session.scalar(select(Caregiver).where(Caregiver.name == by))
            if alert.state == OPEN:
                alert.state = ACKED
                alert.acked_at = now or utcnow()
                alert.acked_by = (caregiver.name if caregiver else by or "someone")[:200]
                alert.acked_by_caregiver_id = caregiver.id if caregiver else None
                alert.next_escalation_at = None
            return alert

    async def ack_view(self, alert_id: int, code: str) -> tuple[Alert, Home, Caregiver]:
        """What a caregiver's acknowledgement link shows: the alert, its home, and whose link it
        is; AdminError unless the code is that caregiver's link for this alert."""
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(Alert, Home, Caregiver)
                    .join(Home, Home.id == Alert.home_id)
                    .join(AckLink, AckLink.alert_id == Alert.id)
                    .join(Caregiver, Caregiver.id == AckLink.caregiver_id)
                    .where(Alert.id == alert_id, AckLink.code_hash == token_hash(code))
                )
            ).first()
        if found is None:
            raise AdminError(f"no alert {alert_id} with that code")
        return found[0], found[1], found[2]

    async def list_alerts(self, home_ref: str | None = None, limit: int = 50) -> list[Alert]:
        """The newest alerts (of one home), with their state."""
        async with self._sessions() as session:
            query = select(Alert).order_by(Alert.opened_at.desc(), Alert.id.desc()).limit(limit)
            if home_ref is not None:
                home = await self._home(session, home_ref)
                query = query.where(Alert.home_id == home.id)
            return list((await session.scalars(query)).all())

    async def set_home_rules(self, ref: str, changes: dict[str, object]) -> dict[str, object]:
        """Per-home alerting overrides (minutes, HH:MM); returns the home's settings."""
        for key in ("active_start", "active_end"):
            if key in changes:
                check_time(str(changes[key]))
        for key, value in changes.items():
            if key.endswith("_minutes") and (not isinstance(value, int) or value < 1):
                raise AdminError(f"{key.replace('_', ' ')} must be a whole number above 0")
        async with self._sessions.begin() as session:
            home = await self._home(session, ref)
            home.settings = {**(home.settings or {}), **changes}
            return dict(home.settings)

    async def set_digest(self, ref: str, digest: bool) -> None:
        """Several homes' summaries in one message (or one message per home)."""
        async with self._sessions.begin() as session:
            (await self._caregiver(session, ref)).digest = digest

    async def list_notifications(self, limit: int = 50) -> list[tuple[Notification, str]]:
        """The newest messages in the outbox with their caregiver's name (never the URL)."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Notification, Caregiver.name)
                .join(Caregiver, Caregiver.id == Notification.caregiver_id)
                .order_by(Notification.created_at.desc(), Notification.id.desc())
                .limit(limit)
            )
            return [(row[0], row[1]) for row in rows]

    async def set_quiet_hours(self, ref: str, start: str | None, end: str | None) -> None:
        """A caregiver's quiet hours (non-urgent alerts wait until they end)."""
        if (start is None) != (end is None):
            raise AdminError("quiet hours need a start and an end")
        for value in (start, end):
            if value is not None:
                check_time(value)
        async with self._sessions.begin() as session:
            caregiver = await self._caregiver(session, ref)
            caregiver.quiet_start, caregiver.quiet_end = start, end


def format_time(value: datetime | None) -> str:
    """A UTC time for tables, or a dash."""
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"
