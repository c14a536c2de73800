"""identities: notices' key tokens, notice ids never reused on SQLite, the Bates register

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

``notices.uid`` is a random token each new notice carries in its delivery keys (feed entry
ids); notices made before keep their keys without one. On SQLite ``notices`` is rebuilt with
AUTOINCREMENT, so that an id is never handed out twice and a restore can raise the next one
(``sqlite_sequence``). ``bates_ranges`` registers the Bates numbers each production took.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bulletin.models

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    with op.batch_alter_table(
        "notices",
        recreate="always" if _sqlite() else "auto",
        table_kwargs={"sqlite_autoincrement": True},
    ) as batch_op:
        batch_op.add_column(sa.Column("uid", sa.String(), nullable=True))
    op.create_table(
        "bates_ranges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(), nullable=False),
        sa.Column("first", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.Column("run", sa.String(), nullable=False),
        sa.Column("identifier", sa.String(), nullable=False),
        sa.Column("production", sa.String(), nullable=False),
        sa.Column("issued_by", sa.String(), nullable=False),
        sa.Column("issued_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_bates_ranges_prefix", "bates_ranges", ["prefix"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_bates_ranges_prefix", table_name="bates_ranges")
    op.drop_table("bates_ranges")
    with op.batch_alter_table("notices", recreate="always" if _sqlite() else "auto") as batch_op:
        batch_op.drop_column("uid")
