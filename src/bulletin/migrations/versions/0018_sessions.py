"""web sessions and sign-in failures

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06

``web_sessions`` holds each signed-in web session by the sha256 of its cookie's value (the
value itself is kept nowhere); ``sign_in_failures`` the refused sign-ins that throttling
counts, per account name and per address.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bulletin.models

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("account_name", sa.String(), nullable=False),
        sa.Column("created_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.Column("csrf_secret", sa.String(), nullable=False),
        sa.Column("revoked_at", bulletin.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_web_sessions_account_name", ["account_name"], unique=False)
    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_name", sa.String(), nullable=False),
        sa.Column("address", sa.String(), nullable=False),
        sa.Column("at", bulletin.models.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.create_index("ix_sign_in_failures_account_name", ["account_name"], unique=False)
        batch_op.create_index("ix_sign_in_failures_address", ["address"], unique=False)
        batch_op.create_index("ix_sign_in_failures_at", ["at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_sign_in_failures_at")
        batch_op.drop_index("ix_sign_in_failures_address")
        batch_op.drop_index("ix_sign_in_failures_account_name")
    op.drop_table("sign_in_failures")
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_web_sessions_account_name")
    op.drop_table("web_sessions")
