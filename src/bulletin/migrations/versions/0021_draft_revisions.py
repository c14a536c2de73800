"""draft revisions: a notice's revision, the revision each approval approved, and the
comment of a draft sent back to its author

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06

Every edit of a draft makes a new revision (``notices.revision``, 1 for the notices made
before); an approval counts for the revision it names (``approvals.revision``), so the same
approver may approve a later revision: ``uq_approval_person`` now includes the revision.
``notices.sent_back`` holds the comment of the last send-back until the author's next edit.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("sent_back", sa.Text(), nullable=True))
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="1"))
        batch_op.drop_constraint("uq_approval_person", type_="unique")
        batch_op.create_unique_constraint(
            "uq_approval_person", ["notice_id", "approver", "revision"]
        )


def downgrade() -> None:
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.drop_constraint("uq_approval_person", type_="unique")
        batch_op.create_unique_constraint("uq_approval_person", ["notice_id", "approver"])
        batch_op.drop_column("revision")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_column("sent_back")
        batch_op.drop_column("revision")
