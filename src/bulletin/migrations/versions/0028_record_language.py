"""record language: the language a post of a notice in several languages was published in

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06

``records.lang`` is the BCP 47 tag the publisher archived such a post with (its snapshot's
``item.extra.lang``), for search (``lang:es``) and for pages that mark text in another
language; NULL for everything else. Records archived before keep NULL here (their snapshots
still say it). An added nullable column: no table is rebuilt.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("records", sa.Column("lang", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_column("lang")
