"""An index for the retention's read of old messages (the outbox is pruned since this
revision; without it every prune scanned the whole outbox).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add ix_notifications_created."""
    op.create_index("ix_notifications_created", "notifications", ["created_at"])


def downgrade() -> None:
    """Drop it."""
    op.drop_index("ix_notifications_created", table_name="notifications")
