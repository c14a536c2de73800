"""identities: notices' key tokens, notice ids never reused on SQLite

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06

``notices.uid`` is a random token each new notice carries in its delivery keys (feed entry
ids); notices made before keep their keys without one. On SQLite ``notices`` is rebuilt with
AUTOINCREMENT, so that an id is never handed out twice and a restore can raise the next one
(``sqlite_sequence``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

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


def downgrade() -> None:
    with op.batch_alter_table("notices", recreate="always" if _sqlite() else "auto") as batch_op:
        batch_op.drop_column("uid")
