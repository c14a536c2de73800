"""Webhook and webhook delivery ids leave the database (the API, the CLI, the audit trail, the
ping payload, the delivery log) and are never handed out again: not after ``webhook
remove``, not after pruning, not on SQLite (AUTOINCREMENT since migration 0036) nor on
PostgreSQL (sequences). Each event a receiver gets has a ``webhook-id`` of its own."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bulletin.db import session_scope
from bulletin.events import record_events
from bulletin.webhooks.registry import prune
from tests.plugins.bulletin_app import Instance
from tests.plugins.cli import run
from tests.test_webhooks import Receiver, deliveries, receiver, sender

__all__ = ["receiver"]  # a fixture used here

_HOOK = (
    "INSERT INTO webhooks (url, events, secret, format, enabled, created_by, created_at) "
    "VALUES ('https://example.org/{n}', '[\"hold.placed\"]', 'whsec_x', 'standard', true, "
    "'root', '2026-03-01 00:00:00')"
)
_EVENT = (
    "INSERT INTO webhook_events (uid, type, payload, created_at) "
    "VALUES ('msg_{n}', 'hold.placed', '{{}}', '2026-03-01 00:00:00')"
)
_DELIVERY = (
    "INSERT INTO webhook_deliveries (event_id, webhook_id, attempts, next_attempt_at) "
    "VALUES ({event}, {hook}, 0, '2026-03-01 00:00:00')"
)


def _ids(engine: Engine, table: str) -> list[int]:
    with engine.connect() as conn:
        return list(conn.exec_driver_sql(f"SELECT id FROM {table} ORDER BY id").scalars())  # noqa: S608


def _indexes(engine: Engine) -> set[str]:
    return {i["name"] or "" for i in sa.inspect(engine).get_indexes("webhook_deliveries")}


def test_upgrade_keeps_webhooks_and_never_hands_an_id_out_again(db_url: str) -> None:
    """A database at 0035 with two webhooks and three deliveries upgrades keeping them, their
    links and indexes; the highest webhook removed and the highest delivery pruned, the next
    ones take new ids; a delivery naming no webhook is still refused."""
    from alembic import command

    from bulletin.db import SCHEMA_REVISION, _alembic_config, check_schema, make_engine, migrate

    engine = make_engine(db_url)
    try:
        command.upgrade(_alembic_config(engine), "0035")
        with engine.begin() as conn:
            for n in (1, 2):
                conn.exec_driver_sql(_HOOK.format(n=n))
                conn.exec_driver_sql(_EVENT.format(n=n))
            for event, hook in ((1, 1), (2, 1), (2, 2)):
                conn.exec_driver_sql(_DELIVERY.format(event=event, hook=hook))
        indexes = _indexes(engine)
        assert migrate(engine) == SCHEMA_REVISION
        check_schema(engine)
        assert _indexes(engine) == indexes
        with engine.begin() as conn:
            kept = conn.exec_driver_sql(
                "SELECT id, event_id, webhook_id FROM webhook_deliveries ORDER BY id"
            ).all()
            assert [tuple(r) for r in kept] == [(1, 1, 1), (2, 2, 1), (3, 2, 2)]
            assert conn.exec_driver_sql("SELECT url FROM webhooks ORDER BY id").scalars().all() == [
                "https://example.org/1",
                "https://example.org/2",
            ]
            conn.exec_driver_sql("DELETE FROM webhook_deliveries WHERE webhook_id = 2")
            conn.exec_driver_sql("DELETE FROM webhooks WHERE id = 2")
            conn.exec_driver_sql(_HOOK.format(n=3))
            conn.exec_driver_sql(_DELIVERY.format(event=2, hook=3))
        assert _ids(engine, "webhooks") == [1, 3]
        assert _ids(engine, "webhook_deliveries") == [1, 2, 4]
        with engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM webhook_deliveries WHERE id = 4")
            conn.exec_driver_sql(_DELIVERY.format(event=1, hook=3))
        assert _ids(engine, "webhook_deliveries") == [1, 2, 5]
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.exec_driver_sql(_DELIVERY.format(event=1, hook=99))
        command.downgrade(_alembic_config(engine), "0035")  # and back: the rows stay
        assert _ids(engine, "webhooks") == [1, 3]
        assert _ids(engine, "webhook_deliveries") == [1, 2, 5]
    finally:
        engine.dispose()


def test_a_new_event_after_pruning_and_removing_never_reuses_an_id(
    instance: Instance, receiver: Receiver
) -> None:
    """A webhook is added, tested and sent an event; its log pruned after 31 days, then the
    webhook removed and another added: each delivery, each webhook and each ``webhook-id``
    the receiver got is new, never one seen before."""
    clock = instance.clock

    def add() -> int:
        out = run(instance, "webhook", "add", receiver.url, "--event", "hold.placed",
                  "--json", stdout=True, clock=clock)  # fmt: skip
        return int(json.loads(out)["id"])

    def ping(hook: int) -> int:
        out = run(instance, "webhook", "test", str(hook), "--json", stdout=True, clock=clock)
        tested = json.loads(out)
        assert tested["state"] == "delivered"
        return int(tested["id"])

    def hold_placed(hold: int) -> int:
        with session_scope(instance.app.engine) as session:
            record_events(session, "hold.placed", [{"hold": hold}], at=clock.now())
        (sent,) = sender(instance).run()
        assert sent.result == "delivered"
        return sent.delivery_id

    first = add()
    seen = [ping(first), hold_placed(1)]
    clock.advance(timedelta(days=31))
    assert prune(instance.app.engine, clock.now()) == 2
    assert deliveries(instance) == []
    seen.append(hold_placed(2))
    run(instance, "webhook", "remove", str(first), clock=clock)
    second = add()
    seen += [ping(second), hold_placed(3)]
    assert second > first
    assert seen == sorted(set(seen))  # each delivery id above every one before it
    ids = [headers["webhook-id"] for headers, _ in receiver.received]
    assert len(ids) == 5 and len(set(ids)) == 5
    _, body = receiver.received[3]
    assert json.loads(body)["data"]["webhook"] == second
    log = json.loads(run(instance, "webhook", "log", "--json", stdout=True))
    assert [d["id"] for d in log["deliveries"]] == [seen[-1], seen[-2]]  # the first's went
