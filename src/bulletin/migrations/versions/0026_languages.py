"""languages: a notice's language variants, a delivery per (variant, account), and the
languages an approval covered

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06

``notices.lang`` is the tag of a notice's primary variant (its text and wording stay where
they were); every notice made before gets the agency's first language, handed to the
migration as ``config.attributes["language"]`` (``en`` when none is given). The other
variants are ``notice_languages`` rows. ``deliveries.lang`` is the variant a delivery carries,
filled from its notice, and ``uq_delivery_occurrence`` now includes it: exactly once per
(variant, account). ``approvals.languages`` names the variants an approval covered;
``notices.publish_partial`` is the approver's choice that one variant may go without another.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def _language() -> str:
    language = context.config.attributes.get("language") or "en"
    if not isinstance(language, str) or not language.replace("-", "").isalnum():
        raise ValueError(f"not a language tag: {language!r}")
    return language


def upgrade() -> None:
    language = _language()
    op.create_table(
        "notice_languages",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("notice_id", sa.Integer(), sa.ForeignKey("notices.id"), nullable=False),
        sa.Column("lang", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("wording", sa.Text(), nullable=True),
        sa.Column("alts", sa.Text(), nullable=True),
        sa.UniqueConstraint("notice_id", "lang", name="uq_notice_language"),
    )
    op.create_index("ix_notice_languages_notice_id", "notice_languages", ["notice_id"])
    # a rebuilt table keeps AUTOINCREMENT: notice ids are never handed out twice (0012)
    with op.batch_alter_table(
        "notices", schema=None, table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.add_column(sa.Column("lang", sa.String(), nullable=False, server_default=language))
        batch_op.add_column(
            sa.Column("publish_partial", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("languages", sa.Text(), nullable=True))
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lang", sa.String(), nullable=False, server_default=""))
    op.execute(
        "UPDATE deliveries SET lang = "
        "(SELECT notices.lang FROM notices WHERE notices.id = deliveries.notice_id)"
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_delivery_occurrence", type_="unique")
        batch_op.create_unique_constraint(
            "uq_delivery_occurrence",
            ["notice_id", "account", "occurrence", "kind", "revision", "lang"],
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_delivery_occurrence", type_="unique")
        batch_op.create_unique_constraint(
            "uq_delivery_occurrence", ["notice_id", "account", "occurrence", "kind", "revision"]
        )
        batch_op.drop_column("lang")
    with op.batch_alter_table("approvals", schema=None) as batch_op:
        batch_op.drop_column("languages")
    with op.batch_alter_table(
        "notices", schema=None, table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.drop_column("publish_partial")
        batch_op.drop_column("lang")
    op.drop_index("ix_notice_languages_notice_id", table_name="notice_languages")
    op.drop_table("notice_languages")
