"""ledger: no unique index on the entries' hashes

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-07

``prev_hash`` and ``entry_hash`` were each UNIQUE. Neither is looked up, and neither adds a
check the chain lacks: an entry's place is its ``seq`` (the primary key, taken under the
ledger's lock), its ``prev_hash`` must be the hash of the entry before it, and ``verify``
recomputes every link. Each index cost a random B-tree page per entry (hashes do not
arrive in order): at a million records, two of the few pages an archived record writes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None


def _ledger(unique: bool) -> sa.Table:
    return sa.Table(
        "ledger",
        sa.MetaData(),
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("prev_hash", sa.String(), nullable=False, unique=unique),
        sa.Column("entry_hash", sa.String(), nullable=False, unique=unique),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.Column("object_sha256", sa.String(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":  # its constraints have no names: the table is copied
        with op.batch_alter_table("ledger", copy_from=_ledger(False), recreate="always"):
            pass
        return
    for found in sa.inspect(bind).get_unique_constraints("ledger"):
        if found["name"] and set(found["column_names"]) <= {"prev_hash", "entry_hash"}:
            op.drop_constraint(found["name"], "ledger", type_="unique")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("ledger", copy_from=_ledger(True), recreate="always"):
            pass
        return
    op.create_unique_constraint("ledger_prev_hash_key", "ledger", ["prev_hash"])
    op.create_unique_constraint("ledger_entry_hash_key", "ledger", ["entry_hash"])
