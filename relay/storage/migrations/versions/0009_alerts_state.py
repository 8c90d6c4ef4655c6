"""An index for the planning pass's reads of alerts by state (those going on, acknowledged,
due to escalate, resolved lately): alerts are kept, and every pass scanned all of them several
times (at 100,000 homes, millions of rows after a year).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ix_alerts_state_resolved."""
    op.create_index("ix_alerts_state_resolved", "alerts", ["state", "resolved_at"])


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_alerts_state_resolved", table_name="alerts")
