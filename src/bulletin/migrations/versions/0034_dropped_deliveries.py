"""deliveries: a language dropped by an edit ends its posts as cancelled; ids never reused

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-07

An edit that drops a language of a draft no longer deletes that language's posts: they end
``cancelled``, and ``deliveries.dropped_in`` names the notice revision that dropped them (0:
not dropped). ``uq_delivery_occurrence`` includes it, so that the language added again gets
posts of its own. On SQLite ``deliveries`` is rebuilt with AUTOINCREMENT, so that a delivery
id the API showed is never handed out again (as ``notices`` since 0012).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None

_KEY = ["notice_id", "account", "occurrence", "kind", "revision", "lang"]


def upgrade() -> None:
    with op.batch_alter_table(
        "deliveries", schema=None, table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.add_column(
            sa.Column("dropped_in", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.drop_constraint("uq_delivery_occurrence", type_="unique")
        batch_op.create_unique_constraint("uq_delivery_occurrence", [*_KEY, "dropped_in"])


def downgrade() -> None:
    op.execute("DELETE FROM deliveries WHERE dropped_in <> 0")
    with op.batch_alter_table(
        "deliveries", schema=None, table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.drop_constraint("uq_delivery_occurrence", type_="unique")
        batch_op.create_unique_constraint("uq_delivery_occurrence", _KEY)
        batch_op.drop_column("dropped_in")
