"""full text by batch: SQLite's FTS5 rows are added per batch by the code that inserts records

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25

The row trigger ``records_fts_ai`` made every inserted record flush the FTS5 table's pending
terms (SQLite opens a statement savepoint per row of an ``executemany`` that fires a trigger,
and FTS5 writes out at each savepoint), which cost several times the insert itself. The
archiver and ``archive rebuild-index`` now add each batch's rows to ``records_fts`` in the
same transaction with one ``INSERT ... SELECT``
(:func:`bulletin.archiver.search.index_new_records`). The delete and update triggers stay.
A later migration that recreates ``records`` on SQLite must call ``create_sqlite_fts`` of
0004 and then drop ``records_fts_ai`` again.
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

INSERT_TRIGGER = (
    "CREATE TRIGGER IF NOT EXISTS records_fts_ai AFTER INSERT ON records BEGIN "
    "INSERT INTO records_fts(rowid, text, author) VALUES (new.id, new.text, new.author); END"
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS records_fts_ai")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(INSERT_TRIGGER)
