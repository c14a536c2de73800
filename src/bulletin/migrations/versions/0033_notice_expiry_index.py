"""notices: an index on expires_at for the due-scan

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07

Every round of the due-scan looks for notices whose time ran out: pending posts of an
expired notice fail without being claimed, and an expired notice with a follow-up gets it.
Without an index each look read every notice (and every pending post) in the database: 5 to
15 ms per round with 10,000 notices scheduled, on the path from an approval to its post.
An index only: nothing is rebuilt.
"""

from __future__ import annotations

from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notices_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notices_expires_at"))
