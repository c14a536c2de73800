"""state indexes: the versions in a notable state (hidden, deleted, edited), for search

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_records_hidden", "state = 'hidden'"),
    ("ix_records_deleted", "state = 'deleted'"),
    ("ix_records_edited", "change = 'edited'"),
)


def upgrade() -> None:
    for name, where in INDEXES:
        op.create_index(
            name,
            "records",
            ["account", "kind", "remote_id"],
            sqlite_where=sa.text(where),
            postgresql_where=sa.text(where),
        )


def downgrade() -> None:
    for name, _ in INDEXES:
        op.drop_index(name, table_name="records")
