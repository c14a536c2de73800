"""stream captures: the records the X filtered stream archived

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06

``stream_captures`` names each record the stream listener archived, so that the capture lag
of a first comment version is counted under the path ``stream`` (a webhook's is known from
``facebook_webhook_changes``; everything else came from a sweep). Records archived before
count as before: ``sweep``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_captures",
        sa.Column("record_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("record_id"),
    )


def downgrade() -> None:
    op.drop_table("stream_captures")
