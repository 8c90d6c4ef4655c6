"""Dashboard sign-in: caregivers' role and optional password, one-time sign-in links, sessions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add the role and password columns and the two tables."""
    with op.batch_alter_table("caregivers") as batch:
        batch.add_column(
            sa.Column("role", sa.String(length=16), nullable=False, server_default="caregiver")
        )
        batch.add_column(sa.Column("password_hash", sa.String(length=200), nullable=True))
    op.create_table(
        "sign_in_links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("caregiver_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.Column("used_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["caregiver_id"], ["caregivers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_sign_in_links_caregiver_id", "sign_in_links", ["caregiver_id"])
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("caregiver_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["caregiver_id"], ["caregivers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_web_sessions_caregiver_id", "web_sessions", ["caregiver_id"])


def downgrade() -> None:
    """Remove them again."""
    op.drop_index("ix_web_sessions_caregiver_id", table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_index("ix_sign_in_links_caregiver_id", table_name="sign_in_links")
    op.drop_table("sign_in_links")
    with op.batch_alter_table("caregivers") as batch:
        batch.drop_column("password_hash")
        batch.drop_column("role")
