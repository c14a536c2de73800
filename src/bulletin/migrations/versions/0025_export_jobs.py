"""Export jobs in the database, shared by the console, the API and every process; notes and
fees on records requests

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06

``export_jobs`` holds each production started from the console or the HTTP API: its scope,
progress, outcome and the lease of the process working on it, so a restart loses none and an
interrupted one can be resumed from its journal. ``request_entries`` holds the
correspondence notes and fees recorded on a records request.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bulletin.models

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "export_jobs",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("production", sa.String(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=True),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("out", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("records", sa.Integer(), nullable=True),
        sa.Column("payload_sha256", sa.String(), nullable=True),
        sa.Column("first_bates", sa.String(), nullable=True),
        sa.Column("last_bates", sa.String(), nullable=True),
        sa.Column("verified", sa.Text(), nullable=True),
        sa.Column("resumes", sa.Integer(), nullable=False),
        sa.Column("started_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.Column("finished_at", bulletin.models.UTCDateTime(), nullable=True),
        sa.Column("claimed_by", sa.String(), nullable=True),
        sa.Column("lease_until", bulletin.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("export_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_export_jobs_owner", ["owner"], unique=False)
        batch_op.create_index("ix_export_jobs_state", ["state"], unique=False)
        batch_op.create_index("ix_export_jobs_started_at", ["started_at"], unique=False)

    op.create_table(
        "request_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["records_requests.id"]),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("request_entries", schema=None) as batch_op:
        batch_op.create_index("ix_request_entries_request_id", ["request_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("request_entries", schema=None) as batch_op:
        batch_op.drop_index("ix_request_entries_request_id")
    op.drop_table("request_entries")
    with op.batch_alter_table("export_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_export_jobs_started_at")
        batch_op.drop_index("ix_export_jobs_state")
        batch_op.drop_index("ix_export_jobs_owner")
    op.drop_table("export_jobs")
