"""Messages: who acknowledged (one acknowledgement link per caregiver), when the relay began
watching each home, the spells it could not see, and each message's structured content.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Add the acknowledgement links, blind spells, and the new columns."""
    with op.batch_alter_table("homes") as batch:
        batch.add_column(sa.Column("watching_since", TIMESTAMP, nullable=True))
    # A home that already reported was watched from its oldest report still kept at the latest.
    op.execute(
        "UPDATE homes SET watching_since = (SELECT min(reports.sent_at) FROM reports "
        "WHERE reports.home_id = homes.id) WHERE last_report_at IS NOT NULL"
    )
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("acked_by_caregiver_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_alerts_acked_by_caregiver",
            "caregivers",
            ["acked_by_caregiver_id"],
            ["id"],
            ondelete="SET NULL",
        )
        # One code per alert is replaced by one link per caregiver (ack_links).
        batch.drop_column("ack_code")
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("content", sa.JSON(), nullable=True))
    op.create_table(
        "ack_links",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("caregiver_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["caregiver_id"], ["caregivers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alert_id", "caregiver_id", name="uq_ack_links_alert_caregiver"),
    )
    op.create_table(
        "blind_spells",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("home_id", sa.String(length=64), nullable=False),
        sa.Column("cause", sa.String(length=16), nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("ended_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(["home_id"], ["homes.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_blind_spells_home_start", "blind_spells", ["home_id", "started_at"])


def downgrade() -> None:
    """Remove them again (acknowledgement links become one code per alert, unset)."""
    op.drop_index("ix_blind_spells_home_start", table_name="blind_spells")
    op.drop_table("blind_spells")
    op.drop_table("ack_links")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("content")
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("ack_code", sa.String(length=64), nullable=True))
        batch.drop_constraint("fk_alerts_acked_by_caregiver", type_="foreignkey")
        batch.drop_column("acked_by_caregiver_id")
    with op.batch_alter_table("homes") as batch:
        batch.drop_column("watching_since")
