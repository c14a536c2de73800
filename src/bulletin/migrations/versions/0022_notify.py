"""email notifications

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06

``notifications`` is the outbox of email (written with the change, sent by the daemon);
``approval_links`` the one-time links to the approval page; ``server_keys`` the key they are
signed with; ``user_accounts.email`` where a person's notifications go.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bulletin.models

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("notice_id", sa.Integer(), nullable=True),
        sa.Column("priority", sa.String(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.Column("to", sa.Text(), nullable=True),
        sa.Column("once_key", sa.String(), nullable=True),
        sa.Column("created_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.Column("next_attempt_at", bulletin.models.UTCDateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("finished_at", bulletin.models.UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "once_key", name="uq_notifications_once"),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_due", ["next_attempt_at"], unique=False)
        batch_op.create_index("ix_notifications_notice_id", ["notice_id"], unique=False)
    op.create_table(
        "approval_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("recipient", sa.String(), nullable=False),
        sa.Column("created_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.Column("used_at", bulletin.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("approval_links", schema=None) as batch_op:
        batch_op.create_index("ix_approval_links_notice_id", ["notice_id"], unique=False)
    op.create_table(
        "server_keys",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("user_accounts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("user_accounts", schema=None) as batch_op:
        batch_op.drop_column("email")
    op.drop_table("server_keys")
    with op.batch_alter_table("approval_links", schema=None) as batch_op:
        batch_op.drop_index("ix_approval_links_notice_id")
    op.drop_table("approval_links")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_notice_id")
        batch_op.drop_index("ix_notifications_due")
    op.drop_table("notifications")
