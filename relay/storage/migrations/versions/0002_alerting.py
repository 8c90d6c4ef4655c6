"""Alerting: per-home settings, caregivers' digests, alert escalation and
acknowledgement, and a record of every delivery attempt.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add the columns and the delivery log."""
    with op.batch_alter_table("homes") as batch:
        batch.add_column(sa.Column("settings", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("last_activity_at", TIMESTAMP, nullable=True))
    with op.batch_alter_table("caregivers") as batch:
        batch.add_column(
            sa.Column("digest", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(
            sa.Column("urgent", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(
            sa.Column("escalation_level", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("next_escalation_at", TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("ack_code", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("acked_by", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("clear_since", TIMESTAMP, nullable=True))
    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("notification_id", sa.Integer(), nullable=False),
        sa.Column("attempted_at", TIMESTAMP, nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_delivery_attempts_notification", "delivery_attempts", ["notification_id"])
    # Summaries read every room of a home for one period: without it, all its rooms' history.
    op.create_index("ix_activity_home_time", "activity", ["home_id", "bucket_start"])


def downgrade() -> None:
    """Remove them again."""
    op.drop_index("ix_activity_home_time", table_name="activity")
    op.drop_index("ix_delivery_attempts_notification", table_name="delivery_attempts")
    op.drop_table("delivery_attempts")
    with op.batch_alter_table("alerts") as batch:
        for column in (
            "clear_since",
            "acked_by",
            "ack_code",
            "next_escalation_at",
            "escalation_level",
            "urgent",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("caregivers") as batch:
        batch.drop_column("digest")
    with op.batch_alter_table("homes") as batch:
        batch.drop_column("last_activity_at")
        batch.drop_column("settings")
