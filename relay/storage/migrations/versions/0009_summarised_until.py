"""Where a summary written ahead of its time ends, so that the next one begins there.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from alembic import op
import sqlalchemy as sa

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add subscriptions.summarised_until."""
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("summarised_until", TIMESTAMP, nullable=True))


def downgrade() -> None:
    """Drop it."""
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("summarised_until")
