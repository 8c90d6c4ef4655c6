"""Initial schema: homes, tokens, caregivers, subscriptions, reports, device states, activity,
alerts and the notification outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

#: Aware timestamps; the relay stores UTC only.
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Create every table."""
    op.create_table(
        "caregivers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("apprise_url_encrypted", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("quiet_start", sa.String(length=5), nullable=True),
        sa.Column("quiet_end", sa.String(length=5), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("failing_since", TIMESTAMP, nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "homes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("last_report_at", TIMESTAMP, nullable=True),
        sa.Column("last_report_sent_at", TIMESTAMP, nullable=True),
        sa.Column("bridge_reachable", sa.Boolean(), nullable=True),
        sa.Column("bridge_offline_since", TIMESTAMP, nullable=True),
        sa.Column("counters", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "activity",
        sa.Column("home_id", sa.String(length=64), nullable=False),
        sa.Column("room", sa.String(length=200), nullable=False),
        sa.Column("bucket_start", TIMESTAMP, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", TIMESTAMP, nullable=False),
        sa.Column("last_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["home_id"], ["homes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("home_id", "room", "bucket_start"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("home_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("opened_at", TIMESTAMP, nullable=False),
        sa.Column("acked_at", TIMESTAMP, nullable=True),
        sa.Column("resolved_at", TIMESTAMP, nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["home_id"], ["homes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_alerts_home_kind_state", "alerts", ["home_id", "kind", "state"], unique=False
    )
    op.create_table(
        "device_states",
        sa.Column("home_id", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("room", sa.String(length=200), nullable=True),
        sa.Column("kind", sa.String(length=200), nullable=False),
        sa.Column("battery", sa.Integer(), nullable=True),
        sa.Column("battery_state", sa.String(length=16), nullable=True),
        sa.Column("connectivity", sa.String(length=32), nullable=True),
        sa.Column("last_seen", TIMESTAMP, nullable=True),
        sa.Column("offline_since", TIMESTAMP, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["home_id"], ["homes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("home_id", "device_id"),
    )
    op.create_table(
        "home_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("home_id", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("revoked_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["home_id"], ["homes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index(op.f("ix_home_tokens_home_id"), "home_tokens", ["home_id"], unique=False)
    op.create_table(
        "reports",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("home_id", sa.String(length=64), nullable=False),
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("sent_at", TIMESTAMP, nullable=False),
        sa.Column("received_at", TIMESTAMP, nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["home_id"], ["homes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("report_id", "home_id", name="uq_reports_report_home"),
    )
    op.create_index("ix_reports_received_at", "reports", ["received_at"], unique=False)
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("home_id", sa.String(length=64), nullable=False),
        sa.Column("caregiver_id", sa.Integer(), nullable=False),
        sa.Column("summary_at", sa.String(length=5), nullable=True),
        sa.Column("alert_kinds", sa.JSON(), nullable=False),
        sa.Column("escalation_order", sa.Integer(), nullable=False),
        sa.Column("next_summary_due", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["caregiver_id"], ["caregivers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["home_id"], ["homes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("home_id", "caregiver_id"),
    )
    op.create_index(
        op.f("ix_subscriptions_caregiver_id"), "subscriptions", ["caregiver_id"], unique=False
    )
    op.create_index(op.f("ix_subscriptions_home_id"), "subscriptions", ["home_id"], unique=False)
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("caregiver_id", sa.Integer(), nullable=False),
        sa.Column("home_id", sa.String(length=64), nullable=True),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("dedup_key", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("due_at", TIMESTAMP, nullable=False),
        sa.Column("claimed_until", TIMESTAMP, nullable=True),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["caregiver_id"], ["caregivers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["home_id"], ["homes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedup_key", name="uq_notifications_dedup"),
    )
    op.create_index(
        "ix_notifications_status_due", "notifications", ["status", "due_at"], unique=False
    )


def downgrade() -> None:
    """Drop every table."""
    op.drop_index("ix_notifications_status_due", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index(op.f("ix_subscriptions_home_id"), table_name="subscriptions")
    op.drop_index(op.f("ix_subscriptions_caregiver_id"), table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_index("ix_reports_received_at", table_name="reports")
    op.drop_table("reports")
    op.drop_index(op.f("ix_home_tokens_home_id"), table_name="home_tokens")
    op.drop_table("home_tokens")
    op.drop_table("device_states")
    op.drop_index("ix_alerts_home_kind_state", table_name="alerts")
    op.drop_table("alerts")
    op.drop_table("activity")
    op.drop_table("homes")
    op.drop_table("caregivers")
