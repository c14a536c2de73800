"""PostgreSQL search: a stored tsvector column with its GIN index, an index on the author

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06

PostgreSQL only (SQLite keeps its FTS5 table). ``records.search_vector`` is
``GENERATED ALWAYS AS (to_tsvector('simple', text || ' ' || author)) STORED``, the vector the
expression index of 0004 was built on; ``ix_records_search`` is its GIN index and replaces
``ix_records_fts``. A walk that checks the words row by row reads the stored vector instead of
parsing the text again for every row, and ``ANALYZE`` keeps statistics of the words the
planner can use. ``ix_records_author`` on ``(lower(author), id)`` serves ``author:``
(compared ignoring case) newest first, which the words of a name narrow badly (one of them
may be in every record). PostgreSQL fills the column: it is not in the ``Record`` model,
so nothing ever writes it (``migrations/env.py`` keeps it and the indexes out of
autogenerate). Adding it rewrites the table once.
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

VECTOR = "to_tsvector('simple'::regconfig, coalesce(text, '') || ' ' || coalesce(author, ''))"
UPGRADE = [
    f"ALTER TABLE records ADD COLUMN IF NOT EXISTS search_vector tsvector "
    f"GENERATED ALWAYS AS ({VECTOR}) STORED",
    "CREATE INDEX IF NOT EXISTS ix_records_search ON records USING GIN (search_vector)",
    "DROP INDEX IF EXISTS ix_records_fts",
    "CREATE INDEX IF NOT EXISTS ix_records_author ON records (lower(author), id)",
    "ANALYZE records",
]
DOWNGRADE = [
    f"CREATE INDEX IF NOT EXISTS ix_records_fts ON records USING GIN ({VECTOR})",
    "DROP INDEX IF EXISTS ix_records_author",
    "DROP INDEX IF EXISTS ix_records_search",
    "ALTER TABLE records DROP COLUMN IF EXISTS search_vector",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in UPGRADE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in DOWNGRADE:
            op.execute(statement)
