"""accounts of people: user_accounts, their one-time links, and how each audit event's actor
was authenticated and from which host

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06

``user_accounts`` holds the people who use Bulletin (roles as a JSON list, an argon2id
password hash, a TOTP secret), ``user_tokens`` the sha256 of each one-time set-password link.
``audit_events.via`` and ``host`` stay NULL for the events written before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bulletin.columns
import bulletin.models

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("roles", bulletin.columns.JSONText(), nullable=False),
        sa.Column("os_user", sa.String(), nullable=True),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("totp_secret", sa.String(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.Column("updated_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "user_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(), nullable=False),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("created_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.Column("used_at", bulletin.models.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", bulletin.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["user_accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    with op.batch_alter_table("user_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_user_tokens_account_id", ["account_id"], unique=False)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("via", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("host", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("host")
        batch_op.drop_column("via")
    with op.batch_alter_table("user_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_user_tokens_account_id")
    op.drop_table("user_tokens")
    op.drop_table("user_accounts")
