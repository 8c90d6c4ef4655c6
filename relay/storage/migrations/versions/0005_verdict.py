"""The inactivity verdict of each home's newest report.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add homes.verdict."""
    with op.batch_alter_table("homes") as batch:
        batch.add_column(sa.Column("verdict", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop homes.verdict."""
    with op.batch_alter_table("homes") as batch:
        batch.drop_column("verdict")
