"""Indexes for reads whose cost grew with the history kept: one home's reports by time, and
the messages sent about one alert.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ix_reports_home_sent and ix_notifications_alert."""
    op.create_index("ix_reports_home_sent", "reports", ["home_id", "sent_at"])
    op.create_index("ix_notifications_alert", "notifications", ["alert_id"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_notifications_alert", table_name="notifications")
    op.drop_index("ix_reports_home_sent", table_name="reports")
