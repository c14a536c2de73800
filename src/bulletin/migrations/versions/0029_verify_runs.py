"""verify runs: each archive verify, when it ran and what it found

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06

``verify_runs`` holds one row per run of the archive verify, the nightly job's or a person's
(``bulletin archive verify``): started and finished times, what it counted, how many problems
it found and the first lines of them, so ``bulletin status`` and the console's status page
show the last runs and a failed or overdue one. A new table: nothing is rebuilt.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bulletin.models

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "verify_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(), nullable=False),
        sa.Column("started_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.Column("finished_at", bulletin.models.UTCDateTime(), nullable=True),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("objects", sa.Integer(), nullable=False),
        sa.Column("problems", sa.Integer(), nullable=False),
        sa.Column("warnings", sa.Integer(), nullable=False),
        sa.Column("first_problems", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("verify_runs", schema=None) as batch_op:
        batch_op.create_index("ix_verify_runs_started_at", ["started_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("verify_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_verify_runs_started_at")
    op.drop_table("verify_runs")
