"""The ledger's hashes carry no index (migration 0035): the chain is checked by ``verify``,
an entry's place by its ``seq``."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from bulletin.archiver import ledger
from bulletin.archiver.verify import verify
from bulletin.models import LedgerEntry
from tests.plugins.bulletin_app import Instance
from tests.test_archive import archive_some

_ENTRY = (
    "INSERT INTO ledger (seq, prev_hash, entry_hash, kind, record_id, object_sha256, "
    "recorded_at) VALUES ({seq}, '{prev}', '{hash}', 'record', NULL, NULL, "
    "'2026-03-01 00:00:00')"
)


def _hash_columns_indexed(engine: sa.Engine) -> list[str]:
    """Names of the unique constraints and indexes on the ledger's hash columns."""
    found = sa.inspect(engine)
    names = [
        *(u["name"] or "" for u in found.get_unique_constraints("ledger")),
        *(
            i["name"] or ""
            for i in found.get_indexes("ledger")
            if {"prev_hash", "entry_hash"} & set(i["column_names"])
        ),
    ]
    return sorted({n or "(unnamed)" for n in names})


def test_upgrade_keeps_every_entry_and_drops_the_hash_indexes(db_url: str) -> None:
    """A ledger at 0034 keeps its entries, byte for byte; afterwards no index or constraint
    is left on its hashes, and a second entry at a taken ``seq`` is still refused."""
    from alembic import command

    from bulletin.db import SCHEMA_REVISION, _alembic_config, check_schema, make_engine, migrate

    engine = make_engine(db_url)
    try:
        command.upgrade(_alembic_config(engine), "0034")
        assert _hash_columns_indexed(engine) != []
        with engine.begin() as conn:
            for seq, prev, digest in [(1, "0" * 64, "a" * 64), (2, "a" * 64, "b" * 64)]:
                conn.exec_driver_sql(_ENTRY.format(seq=seq, prev=prev, hash=digest))
        assert migrate(engine) == SCHEMA_REVISION
        check_schema(engine)
        assert _hash_columns_indexed(engine) == []
        with engine.begin() as conn:
            rows = conn.exec_driver_sql(
                "SELECT seq, prev_hash, entry_hash, kind FROM ledger ORDER BY seq"
            ).all()
        assert [tuple(r) for r in rows] == [
            (1, "0" * 64, "a" * 64, "record"),
            (2, "a" * 64, "b" * 64, "record"),
        ]
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.exec_driver_sql(_ENTRY.format(seq=2, prev="b" * 64, hash="c" * 64))
    finally:
        engine.dispose()


def test_a_forked_chain_is_found_by_verify(instance: Instance) -> None:
    """Two entries naming the same entry before them (what the unique index on
    ``prev_hash`` refused): the second is reported, however well its own hash is made."""
    archive_some(instance)
    engine = instance.app.engine
    with Session(engine) as session:
        second = session.get(LedgerEntry, 2)
        third = session.get(LedgerEntry, 3)
        assert second is not None and third is not None
        third.prev_hash = second.prev_hash
        third.entry_hash = ledger.compute_hash(third)  # a well-made entry in the wrong place
        session.add(third)
        session.commit()
    kinds = {(p.kind, p.subject) for p in verify(engine, instance.app.store).problems}
    assert ("chain-broken", "ledger 3") in kinds


def test_a_repeated_entry_hash_is_found_by_verify(instance: Instance) -> None:
    """An entry that copies the hash of another (what the unique index on ``entry_hash``
    refused) no longer matches its own content."""
    archive_some(instance)
    engine = instance.app.engine
    with engine.begin() as conn:
        copied = conn.execute(sa.text("SELECT entry_hash FROM ledger WHERE seq = 2")).scalar_one()
        conn.execute(sa.text("UPDATE ledger SET entry_hash = :h WHERE seq = 4"), {"h": copied})
    kinds = {(p.kind, p.subject) for p in verify(engine, instance.app.store).problems}
    assert ("entry-altered", "ledger 4") in kinds
