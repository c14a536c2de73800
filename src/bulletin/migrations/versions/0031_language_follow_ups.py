"""a follow-up per language: notice_languages.follow_up

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07

``notice_languages.follow_up`` is a language variant's own follow-up text, posted at expiry
as a reply to that language's posts (the primary's stays ``notices.follow_up``). Existing
notices keep their single follow-up for the primary language; their other variants have none
(NULL), so at expiry only the primary's posts are followed up, as before. A new nullable
column: nothing is rebuilt.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notice_languages") as batch_op:
        batch_op.add_column(sa.Column("follow_up", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notice_languages") as batch_op:
        batch_op.drop_column("follow_up")
