"""scheduling: recurrence, follow-ups, corrections and retractions, late deliveries, attempts

Revision ID: 0007
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

import bulletin.models

revision = "0007"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("recurrence", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch_op.add_column(sa.Column("repeat_until", bulletin.models.UTCDateTime(), nullable=True))
        batch_op.add_column(
            sa.Column("date_line", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(
            sa.Column("occurrences", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.add_column(
            sa.Column("next_occurrence_at", bulletin.models.UTCDateTime(), nullable=True)
        )
        batch_op.add_column(sa.Column("follow_up", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("followed_up_at", bulletin.models.UTCDateTime(), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_notices_next_occurrence_at"), ["next_occurrence_at"], unique=False
        )

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("occurrence", sa.Integer(), nullable=False, server_default="1")
        )
        batch_op.add_column(
            sa.Column(
                "kind", sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default="post"
            )
        )
        batch_op.add_column(sa.Column("revision", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.drop_constraint("uq_delivery_notice_account", type_="unique")
        batch_op.create_unique_constraint(
            "uq_delivery_occurrence", ["notice_id", "account", "occurrence", "kind", "revision"]
        )
        batch_op.create_foreign_key("fk_deliveries_parent_id", "deliveries", ["parent_id"], ["id"])

    op.create_table(
        "delivery_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("owner", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("started_at", bulletin.models.UTCDateTime(), nullable=False),
        sa.Column("finished_at", bulletin.models.UTCDateTime(), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["delivery_id"], ["deliveries.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_delivery_attempts_delivery_id"), ["delivery_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_attempts_delivery_id"))
    op.drop_table("delivery_attempts")

    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint("fk_deliveries_parent_id", type_="foreignkey")
        batch_op.drop_constraint("uq_delivery_occurrence", type_="unique")
        batch_op.create_unique_constraint("uq_delivery_notice_account", ["notice_id", "account"])
        batch_op.drop_column("parent_id")
        batch_op.drop_column("revision")
        batch_op.drop_column("kind")
        batch_op.drop_column("occurrence")

    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notices_next_occurrence_at"))
        batch_op.drop_column("followed_up_at")
        batch_op.drop_column("follow_up")
        batch_op.drop_column("next_occurrence_at")
        batch_op.drop_column("occurrences")
        batch_op.drop_column("date_line")
        batch_op.drop_column("repeat_until")
        batch_op.drop_column("recurrence")
