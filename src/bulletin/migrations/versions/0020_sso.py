"""single sign-on identities and attempts

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06

``user_identities`` links an account to a person at an OpenID Connect provider (issuer and
subject); ``sso_attempts`` holds each sign-on under way (its state's sha256, the pre-session
cookie's sha256, nonce and PKCE verifier) until the provider sends the browser back.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bulletin.models

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("created_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.Column("last_sign_in_at", bulletin.models.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["user_accounts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("issuer", "subject"),
    )
    with op.batch_alter_table("user_identities", schema=None) as batch_op:
        batch_op.create_index("ix_user_identities_account_id", ["account_id"], unique=False)
    op.create_table(
        "sso_attempts",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("pre_sha256", sa.String(), nullable=False),
        sa.Column("nonce", sa.String(), nullable=False),
        sa.Column("code_verifier", sa.String(), nullable=False),
        sa.Column("next_path", sa.String(), nullable=False),
        sa.Column("created_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.Column("used_at", bulletin.models.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("sso_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_sso_attempts_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("sso_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_sso_attempts_created_at")
    op.drop_table("sso_attempts")
    with op.batch_alter_table("user_identities", schema=None) as batch_op:
        batch_op.drop_index("ix_user_identities_account_id")
    op.drop_table("user_identities")
