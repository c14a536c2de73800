"""API tokens and idempotency keys

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06

``api_tokens`` holds the HTTP API's bearer tokens by their sha256 (the token itself is shown
once and kept nowhere), each acting for one account with its scopes; ``api_idempotency_keys``
the ``Idempotency-Key`` of each creating request, unique per acting account, written in the
same transaction as what the request created.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bulletin.columns
import bulletin.models

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(), nullable=False),
        sa.Column("scopes", bulletin.columns.JSONText(), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.Column("created_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.Column("expires_at", bulletin.models.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", bulletin.models.UTCDateTime(), nullable=True),
        sa.Column("last_used_at", bulletin.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["user_accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_sha256"),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_api_tokens_name", ["name"], unique=False)
        batch_op.create_index("ix_api_tokens_account_id", ["account_id"], unique=False)
    op.create_table(
        "api_idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("request_sha256", sa.String(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("notice_id", sa.Integer(), nullable=True),
        sa.Column("created_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner", "key", name="uq_idempotency_owner_key"),
    )
    with op.batch_alter_table("api_idempotency_keys", schema=None) as batch_op:
        batch_op.create_index("ix_api_idempotency_keys_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("api_idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_api_idempotency_keys_created_at")
    op.drop_table("api_idempotency_keys")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_api_tokens_account_id")
        batch_op.drop_index("ix_api_tokens_name")
    op.drop_table("api_tokens")
