"""Waking the daemon: a committed approval pokes its socket (and NOTIFYs on PostgreSQL); a
draft, a refused approval or a rolled-back transaction wakes nobody."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from bulletin.app import outbox
from bulletin.db import wake_after_commit
from bulletin.errors import Refused
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.notices import NoticeDraft, create_notice
from tests.plugins.bulletin_app import Instance, make_instance

DRAFT = NoticeDraft("road-closure", "Mass Ave closed until 6 pm.", ("feed",))


@contextmanager
def daemon_socket(inst: Instance) -> Iterator[socket.socket]:
    """The daemon's wake-up socket, bound as the daemon binds it."""
    address = outbox.socket_address(inst.data_dir)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(0.2)
        try:
            yield sock
        finally:
            if not address.startswith("\0"):
                (inst.data_dir / "bulletin.sock").unlink(missing_ok=True)


def pokes(sock: socket.socket) -> list[bytes]:
    """Every datagram waiting on ``sock``."""
    found = []
    while True:
        try:
            found.append(sock.recv(64))
        except TimeoutError:
            return found


def draft(inst: Instance) -> int:
    return create_notice(inst.app.engine, inst.settings, inst.clock, DRAFT, "dispatcher").id or 0


def test_an_approval_wakes_the_daemon_once_it_commits(instance: Instance) -> None:
    """Given a listening daemon, when a draft is made nothing is sent; when it is approved,
    one poke, and the caller learns that a daemon heard."""
    with daemon_socket(instance) as sock:
        notice_id = draft(instance)
        assert pokes(sock) == []
        with outbox.collect() as wakes:
            approve_notice(instance.app.engine, instance.settings, instance.clock, notice_id, "a")
        assert wakes.sent is True
        assert pokes(sock) == [b"wake"]
        with outbox.collect() as wakes, pytest.raises(Refused):
            approve_notice(instance.app.engine, instance.settings, instance.clock, notice_id, "b")
        assert wakes.sent is None
        assert pokes(sock) == []


def test_no_daemon_listening_is_reported(instance: Instance) -> None:
    """Without a daemon the approval still commits; the caller learns that nobody heard."""
    notice_id = draft(instance)
    with outbox.collect() as wakes:
        approved = approve_notice(
            instance.app.engine, instance.settings, instance.clock, notice_id, "a"
        )
    assert approved.state == "approved" and wakes.sent is False


def test_a_rolled_back_wake_is_forgotten(instance: Instance) -> None:
    """A transaction that asked for a wake-up and rolled back sends none, not even at the
    session's next commit."""
    with daemon_socket(instance) as sock, Session(instance.app.engine) as session:
        session.execute(sa.text("SELECT 1"))
        wake_after_commit(session)
        session.rollback()
        session.commit()
        assert pokes(sock) == []


@pytest.mark.postgres
def test_postgresql_listeners_are_notified(tmp_path: Path, pg_schema_url: str) -> None:
    """On PostgreSQL an approval also NOTIFYs every daemon's listener, on any host."""
    import psycopg

    inst = make_instance(tmp_path, pg_schema_url)
    raw = inst.app.engine.raw_connection()
    try:
        conn = raw.driver_connection
        assert isinstance(conn, psycopg.Connection)
        conn.autocommit = True
        row = conn.execute("SELECT current_schema()").fetchone()
        assert row is not None
        schema = row[0]
        conn.execute(f"LISTEN {outbox.NOTIFY_CHANNEL}")
        approve_notice(inst.app.engine, inst.settings, inst.clock, draft(inst), "a")
        # other tests may run beside this one on the same database: hear only this schema's
        heard = [
            n.channel
            for n in conn.notifies(timeout=5)
            if n.payload == schema and n.channel == outbox.NOTIFY_CHANNEL
        ][:1]
    finally:
        raw.invalidate()
        inst.app.close()
    assert heard == [outbox.NOTIFY_CHANNEL]
