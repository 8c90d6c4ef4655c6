"""A counter of changes to home_tokens, bumped by triggers in the changing transaction.

The relay keeps every valid token in memory and reloads them when this counter moved. A
trigger (not the CLI) bumps it, so every writer counts, deletes cascading from a removed home
included; on PostgreSQL the counter row's lock orders the bumps as the commits are ordered.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BUMP = "UPDATE token_generation SET value = value + 1 WHERE id = 1"
SQLITE_EVENTS = ("INSERT", "UPDATE", "DELETE")


def upgrade() -> None:
    """Create the counter and the triggers that bump it."""
    op.create_table(
        "token_generation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.execute("INSERT INTO token_generation (id, value) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION bump_token_generation() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN {BUMP}; RETURN NULL; END $$"
        )
        op.execute(
            "CREATE TRIGGER home_tokens_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            "ON home_tokens FOR EACH STATEMENT EXECUTE FUNCTION bump_token_generation()"
        )
    else:  # SQLite: row triggers (they also fire for ON DELETE CASCADE)
        for event in SQLITE_EVENTS:
            op.execute(
                f"CREATE TRIGGER home_tokens_{event.lower()} AFTER {event} ON home_tokens "
                f"BEGIN {BUMP}; END"
            )


def downgrade() -> None:
    """Drop the triggers and the counter."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER home_tokens_changed ON home_tokens")
        op.execute("DROP FUNCTION bump_token_generation()")
    else:
        for event in SQLITE_EVENTS:
            op.execute(f"DROP TRIGGER home_tokens_{event.lower()}")
    op.drop_table("token_generation")
