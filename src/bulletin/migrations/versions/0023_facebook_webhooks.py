"""Facebook Page webhooks: events as received, changes as applied

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06

``facebook_webhook_events`` holds each signed webhook delivery (raw body and signature
header) from the moment it is received until a capture job has archived it;
``facebook_webhook_changes`` the changes already applied, so that duplicate and repeated
deliveries change nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bulletin.models

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "facebook_webhook_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.String(), nullable=False),
        sa.Column("body_sha256", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("processed_at", bulletin.models.UTCDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("facebook_webhook_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_facebook_webhook_events_body_sha256", ["body_sha256"], unique=False
        )
        batch_op.create_index("ix_facebook_webhook_events_state", ["state"], unique=False)
    op.create_table(
        "facebook_webhook_changes",
        sa.Column("account", sa.String(), nullable=False),
        sa.Column("remote_id", sa.String(), nullable=False),
        sa.Column("verb", sa.String(), nullable=False),
        sa.Column("event_time", sa.String(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("applied_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("account", "remote_id", "verb", "event_time"),
    )
    with op.batch_alter_table("facebook_webhook_changes", schema=None) as batch_op:
        batch_op.create_index("ix_facebook_webhook_changes_record_id", ["record_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("facebook_webhook_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_facebook_webhook_changes_record_id")
    op.drop_table("facebook_webhook_changes")
    with op.batch_alter_table("facebook_webhook_events", schema=None) as batch_op:
        batch_op.drop_index("ix_facebook_webhook_events_state")
        batch_op.drop_index("ix_facebook_webhook_events_body_sha256")
    op.drop_table("facebook_webhook_events")
