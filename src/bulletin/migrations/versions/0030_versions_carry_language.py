"""versions carry their post's notice and language: later versions of an item take them

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07

A version archived by a capture sweep or a webhook (an edit, a hiding, a deletion of a post
the publisher archived first) names no notice nor language of its own; from now on it carries
those of the item's version before it, on its record and in its snapshot. This gives the
records archived before the same: each later version without a notice or a language takes
those of the nearest earlier version of the same item that names them, as ``archive
rebuild-index`` and ``archive verify`` derive them. No table is rebuilt.
"""

from __future__ import annotations

from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

_NEAREST = """(SELECT earlier.{column} FROM records AS earlier
    WHERE earlier.account = records.account AND earlier.kind = records.kind
    AND earlier.remote_id = records.remote_id AND earlier.version < records.version
    AND earlier.{column} IS NOT NULL
    ORDER BY earlier.version DESC LIMIT 1)"""


def upgrade() -> None:
    for column in ("notice_id", "lang"):
        op.execute(
            f"UPDATE records SET {column} = {_NEAREST.format(column=column)} "  # noqa: S608 - ours
            f"WHERE {column} IS NULL AND version > 1"
        )


def downgrade() -> None:
    """Nothing to undo: the values carried forward are what the versions belong to."""
