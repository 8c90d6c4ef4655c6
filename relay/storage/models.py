"""The relay's tables (SQLAlchemy 2 ORM). UTC everywhere; each home has an IANA timezone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from ..clock import utcnow


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: Any) -> Any:
        """On SQLite, ONE function doing what :meth:`process_bind_param` and SQLite's
        ``DATETIME`` do in turn (the same text, ``2026-07-27 18:55:00.000000``): three Python
        calls per value were the ingest writer's largest cost (a report binds ~20 times)."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is not UTC:
                if value.tzinfo is None:
                    raise ValueError("naive datetime given to a UTC column")
                value = value.astimezone(UTC)
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")

        return process


class Base(DeclarativeBase):
    """Declarative base of every relay table."""


class Home(Base):
    """One watched home (one Hue bridge)."""

    __tablename__ = "homes"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_report_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: sent_at of the newest report applied (an older report arriving late does not win).
    last_report_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    bridge_reachable: Mapped[bool | None] = mapped_column(Boolean)
    bridge_offline_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    counters: Mapped[dict[str, int] | None] = mapped_column(JSON)
    #: The newest activity any report told of (kept by ingest, so alerting scans no buckets).
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The inactivity verdict of the newest report (the home's detector; None from an
    #: integration that sends none), as sent: alerting follows it.
    verdict: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    #: Per-home overrides of the alerting defaults (see relay/notifications/alerting.py
    #: HomeRules). None is SQL NULL (not JSON null): alerting selects on it.
    settings: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    #: sent_at of the first report: summaries never speak of time before it.
    watching_since: Mapped[datetime | None] = mapped_column(UTCDateTime)


class HomeToken(Base):
    """A bearer token of a home; only its SHA-256 is stored."""

    __tablename__ = "home_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    home_id: Mapped[str] = mapped_column(ForeignKey("homes.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TokenGeneration(Base):
    """One row counting the changes to ``home_tokens``: triggers bump it in the changing
    transaction (so whoever writes the table, the CLI or an operator's SQL, cascades included),
    and the relay's token directory reloads when it moved (see ``http/directory.py``)."""

    __tablename__ = "token_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class Caregiver(Base):
    """Someone who receives summaries and alerts; the Apprise URL is stored encrypted."""

    __tablename__ = "caregivers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    apprise_url_encrypted: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    quiet_start: Mapped[str | None] = mapped_column(String(5))
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Summaries of several homes due together arrive as one message.
    digest: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: "caregiver" sees the homes they are subscribed to; "operator" sees every home.
    role: Mapped[str] = mapped_column(String(16), default="caregiver", server_default="caregiver")
    #: argon2id hash of an optional dashboard password (sign-in links work without one).
    password_hash: Mapped[str | None] = mapped_column(String(200))


class Subscription(Base):
    """A caregiver watches a home: summary time (home's local time), alert kinds, escalation."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("home_id", "caregiver_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    home_id: Mapped[str] = mapped_column(ForeignKey("homes.id", ondelete="CASCADE"), index=True)
    caregiver_id: Mapped[int] = mapped_column(
        ForeignKey("caregivers.id", ondelete="CASCADE"), index=True
    )
    summary_at: Mapped[str | None] = mapped_column(String(5))
    alert_kinds: Mapped[list[str]] = mapped_column(JSON, default=list)
    escalation_order: Mapped[int] = mapped_column(Integer, default=0)
    next_summary_due: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Report(Base):
    """A report as received; ``(home_id, report_id)`` makes resending idempotent."""

    __tablename__ = "reports"
    __table_args__ = (
        # report_id first: the ingest looks reports up by report_id (one indexed IN list).
        UniqueConstraint("report_id", "home_id", name="uq_reports_report_home"),
        Index("ix_reports_received_at", "received_at"),
        # One home's reports since a moment (the gaps of a blind spell): without it, a read
        # of the whole unique index or of every home's reports since then.
        Index("ix_reports_home_sent", "home_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    home_id: Mapped[str] = mapped_column(ForeignKey("homes.id", ondelete="CASCADE"))
    report_id: Mapped[str] = mapped_column(String(36))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The body exactly as received (JSON text): kept verbatim, never re-encoded.
    payload: Mapped[str] = mapped_column(Text)


class DeviceState(Base):
    """The latest known state of one device of a home."""

    __tablename__ = "device_states"

    home_id: Mapped[str] = mapped_column(
        ForeignKey("homes.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    room: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(200))
    battery: Mapped[int | None] = mapped_column(Integer)
    battery_state: Mapped[str | None] = mapped_column(String(16))
    connectivity: Mapped[str | None] = mapped_column(String(32))
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime)
    offline_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ActivityBucket(Base):
    """Activity of one room of a home in one 15-minute bucket (kept after reports are pruned)."""

    __tablename__ = "activity"
    __table_args__ = (Index("ix_activity_home_time", "home_id", "bucket_start"),)

    home_id: Mapped[str] = mapped_column(
        ForeignKey("homes.id", ondelete="CASCADE"), primary_key=True
    )
    room: Mapped[str] = mapped_column(String(200), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Alert(Base):
    """An alert about a home (opened, acknowledged, resolved); used by the alerting rules."""

    __tablename__ = "alerts"
    __table_args__ = (
        Index("ix_alerts_home_kind_state", "home_id", "kind", "state"),
        # Each planning pass reads the alerts going on, acknowledged, due or resolved lately.
        Index("ix_alerts_state_resolved", "state", "resolved_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    home_id: Mapped[str] = mapped_column(ForeignKey("homes.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Urgent alerts (inactivity) ignore quiet hours and go down the escalation chain.
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_escalation_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: Who acknowledged: the name as shown, and the caregiver (None: the CLI, or since removed).
    acked_by: Mapped[str | None] = mapped_column(String(200))
    acked_by_caregiver_id: Mapped[int | None] = mapped_column(
        ForeignKey("caregivers.id", ondelete="SET NULL", name="fk_alerts_acked_by_caregiver")
    )
    #: The condition has been false since then (resolved once that lasted long enough).
    clear_since: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Notification(Base):
    """Outbox: every message is recorded BEFORE it is sent and marked after."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("dedup_key", name="uq_notifications_dedup"),
        Index("ix_notifications_status_due", "status", "due_at"),
        # Who was told about an alert (read every tick for acknowledged alarms).
        Index("ix_notifications_alert", "alert_id"),
        # Old messages, for the retention (relay/storage/retention.py).
        Index("ix_notifications_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    caregiver_id: Mapped[int] = mapped_column(ForeignKey("caregivers.id", ondelete="CASCADE"))
    home_id: Mapped[str | None] = mapped_column(ForeignKey("homes.id", ondelete="CASCADE"))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(32))
    dedup_key: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    #: The plain-text rendering (what the CLI lists); ``content`` is the structured message,
    #: rendered in each caregiver's format when sent (relay/messages).
    body: Mapped[str] = mapped_column(Text)
    content: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))


class AckLink(Base):
    """One caregiver's acknowledgement link for one urgent alert (only the code's SHA-256)."""

    __tablename__ = "ack_links"
    __table_args__ = (
        UniqueConstraint("alert_id", "caregiver_id", name="uq_ack_links_alert_caregiver"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    caregiver_id: Mapped[int] = mapped_column(ForeignKey("caregivers.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BlindSpell(Base):
    """A time the relay could not see a home: its bridge unreachable, or no reports."""

    __tablename__ = "blind_spells"
    __table_args__ = (Index("ix_blind_spells_home_start", "home_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    home_id: Mapped[str] = mapped_column(ForeignKey("homes.id", ondelete="CASCADE"))
    #: "bridge" (the home reported its bridge unreachable) or "reports" (nothing arrived).
    cause: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: None while it lasts.
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DeliveryAttempt(Base):
    """One try at sending one notification, and how it went (never the URL)."""

    __tablename__ = "delivery_attempts"
    __table_args__ = (Index("ix_delivery_attempts_notification", "notification_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notifications.id", ondelete="CASCADE"))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ok: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str] = mapped_column(String(500))


class SignInLink(Base):
    """A one-time dashboard sign-in link sent to a caregiver; only its SHA-256 is stored."""

    __tablename__ = "sign_in_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    caregiver_id: Mapped[int] = mapped_column(
        ForeignKey("caregivers.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebSession(Base):
    """A signed-in browser: the cookie holds a random token, the database its SHA-256."""

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    caregiver_id: Mapped[int] = mapped_column(
        ForeignKey("caregivers.id", ondelete="CASCADE"), index=True
    )
    #: Forms of this session carry it; a POST without it is refused.
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Absolute expiry: signed out then however active the session is.
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


def table(model: type[Base]) -> Table:
    """The Core table of a model, typed as one (``__table__`` is typed as a FromClause)."""
    found: Table = model.__table__  # type: ignore[assignment]
    return found


#: Ids per ``IN (...)`` list: far below every database's parameter limit.
IN_LIST = 500

#: ``alerts.state``: open, acknowledged (still going on), resolved.
OPEN, ACKED, RESOLVED = "open", "acked", "resolved"
#: The alerts still going on.
GOING_ON = (OPEN, ACKED)
#: ``notifications.status``: waiting, claimed by a sender, sent, given up.
PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"

HOMES = table(Home)
HOME_TOKENS = table(HomeToken)
TOKEN_GENERATION = table(TokenGeneration)
CAREGIVERS = table(Caregiver)
SUBSCRIPTIONS = table(Subscription)
REPORTS = table(Report)
DEVICES = table(DeviceState)
ACTIVITY = table(ActivityBucket)
ALERTS = table(Alert)
NOTIFICATIONS = table(Notification)
ATTEMPTS = table(DeliveryAttempt)
ACK_LINKS = table(AckLink)
BLIND_SPELLS = table(BlindSpell)
SIGN_IN_LINKS = table(SignInLink)
WEB_SESSIONS = table(WebSession)


def insert_or_skip(dialect: str, target: Table) -> Any:
    """``INSERT … ON CONFLICT`` for the database in use (SQLite and PostgreSQL share it)."""
    if dialect == "postgresql":
        return postgresql.insert(target)
    if dialect == "sqlite":
        return sqlite.insert(target)
    raise ValueError(f"unsupported database {dialect}")  # pragma: no cover
