"""webhooks: endpoint and delivery ids never reused on SQLite

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-07

A webhook's id and a webhook delivery's id leave the database: the API and the CLI name a
webhook by its id (``DELETE /webhooks/{id}``, ``webhook remove``), the audit trail and the
``ping`` payload carry it, ``webhook test`` and the delivery log show a delivery's id. On
SQLite ``webhooks`` and ``webhook_deliveries`` are rebuilt with AUTOINCREMENT (as
``deliveries`` since 0034), so that an id freed by ``webhook remove`` or by pruning is never
handed out again. ``webhook_events`` stays as it is: its id stays inside the database (a
receiver sees the event's random ``uid`` as ``webhook-id``). PostgreSQL's sequences never go
back: nothing changes there.
"""

from __future__ import annotations

from alembic import op

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None

TABLES = ("webhooks", "webhook_deliveries")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
