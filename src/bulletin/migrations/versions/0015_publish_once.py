"""publish once: archiving retried by the due-scan; the local files of each daemon

Revision ID: 0015
Revises: 0012
Create Date: 2026-12-06

``deliveries.archive_due_at`` is set while a published delivery's snapshot is not archived
yet (the due-scan archives it then; an index keeps that look-up cheap), with the last reason
in ``archive_error``. Published deliveries left unarchived are queued at once.
``daemons.local_paths`` lists the local files a daemon writes (a local archive store, feed
files), so that a daemon on another host refuses to start beside it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bulletin.models

revision = "0015"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("archive_due_at", bulletin.models.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column("archive_error", sa.Text(), nullable=True))
        batch_op.create_index("ix_deliveries_archive_due_at", ["archive_due_at"], unique=False)
    with op.batch_alter_table("daemons", schema=None) as batch_op:
        batch_op.add_column(sa.Column("local_paths", sa.Text(), nullable=True))
    op.execute(
        "UPDATE deliveries SET archive_due_at = COALESCE(published_at, due_at, attempt_started_at)"
        " WHERE state = 'published' AND archived_record_id IS NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("daemons", schema=None) as batch_op:
        batch_op.drop_column("local_paths")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_archive_due_at")
        batch_op.drop_column("archive_error")
        batch_op.drop_column("archive_due_at")
