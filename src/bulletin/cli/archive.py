"""Records clerk commands: archive list, show, verify."""

from __future__ import annotations

import json
from typing import Any

import click
from sqlmodel import Session, col, select

from bulletin.archiver.store.base import object_key
from bulletin.archiver.verify import verify
from bulletin.cli import Context, emit, json_option, pass_context
from bulletin.errors import NotFound
from bulletin.models import LedgerEntry, Record
from bulletin.timeparse import local_text


def register(group: click.Group) -> None:
    group.add_command(archive)


@click.group()
def archive() -> None:
    """The public record: archived posts and comments in write-once storage."""


@archive.command("list")
@click.option("--account", default=None, help="Only this account.")
@click.option("--kind", type=click.Choice(["post", "comment"]), default=None)
@click.option("--limit", default=50, show_default=True)
@json_option
@pass_context
def archive_list(
    ctx: Context, account: str | None, kind: str | None, limit: int, as_json: bool
) -> None:
    """Archived records, newest first."""
    engine = ctx.app.checked_engine()
    query = select(Record).order_by(col(Record.id).desc()).limit(limit)
    if account:
        query = query.where(Record.account == account)
    if kind:
        query = query.where(Record.kind == kind)
    tz = ctx.settings.agency.time_zone
    with Session(engine) as session:
        records = session.exec(query).all()
    emit(
        as_json,
        {"records": [_record_json(r) for r in records]},
        [
            f"{r.id:>6}  {r.account:<10} {r.kind:<7} v{r.version} {r.state:<8} "
            f"{local_text(r.captured_at, tz)}  {r.object_sha256[:12]}  {_snippet(r.text)}"
            for r in records
        ]
        or ["the archive is empty"],
    )


@archive.command("show")
@click.argument("record_id", type=int)
@click.option("--raw", is_flag=True, help="Print the stored snapshot object itself.")
@json_option
@pass_context
def archive_show(ctx: Context, record_id: int, raw: bool, as_json: bool) -> None:
    """One record: its hash, retention, ledger position and content."""
    app = ctx.app
    engine = app.checked_engine()
    with Session(engine) as session:
        record = session.get(Record, record_id)
        if record is None:
            raise NotFound(f"no archived record {record_id}")
        entry = session.get(LedgerEntry, record.ledger_seq) if record.ledger_seq else None
    snapshot = app.store.get(object_key(record.object_sha256), verify=True)
    if raw:
        click.echo(snapshot.decode())
        return
    tz = ctx.settings.agency.time_zone
    training = ", training" if record.training else ""
    data = {
        **_record_json(record),
        "ledger_entry_hash": entry.entry_hash if entry else None,
        "snapshot": json.loads(snapshot),
    }
    emit(
        as_json,
        data,
        [
            f"record {record.id}  {record.kind} {record.remote_id} (version {record.version})",
            f"  account      {record.account} ({record.platform}{training})",
            f"  state        {record.state}",
            f"  posted       {local_text(record.posted_at, tz)}",
            f"  captured     {local_text(record.captured_at, tz)}",
            f"  sha256       {record.object_sha256}  (verified)",
            f"  raw sha256   {record.raw_sha256 or '-'}",
            f"  series       {record.series}, retain until {local_text(record.retain_until, tz)}"
            + ("  [legal hold]" if record.legal_hold else ""),
            f"  ledger       #{record.ledger_seq}  {entry.entry_hash if entry else '-'}",
            f"  text         {record.text}",
        ],
    )


@archive.command("verify")
@json_option
@pass_context
def archive_verify(ctx: Context, as_json: bool) -> None:
    """Check every stored object against its hash and the ledger chain; exit 1 on any problem."""
    app = ctx.app
    report = verify(app.checked_engine(), app.store)
    payload = {
        "ok": report.ok,
        "records": report.records,
        "ledger_entries": report.entries,
        "objects_checked": report.objects,
        "head_hash": report.head_hash,
        "problems": [p.__dict__ for p in report.problems],
        "notes": [p.__dict__ for p in report.notes],
    }
    lines = [f"problem: {p.line()}" for p in report.problems]
    lines += [f"note: {p.line()}" for p in report.notes]
    lines.append(
        f"{'OK' if report.ok else 'FAILED'}: {report.records} records, {report.entries} ledger "
        f"entries, {report.objects} objects checked, {len(report.problems)} problems; "
        f"head {report.head_hash[:16]}"
    )
    emit(as_json, payload, lines)
    if not report.ok:
        raise SystemExit(1)


@archive.command("rebuild-index")
@click.option("--replace", is_flag=True, help="Drop the current index rows and rebuild them.")
@json_option
@pass_context
def archive_rebuild_index(ctx: Context, replace: bool, as_json: bool) -> None:
    """Rebuild the database's archive index from the WORM store and its ledger alone."""
    from bulletin.archiver.rebuild import rebuild_index

    app = ctx.app
    report = rebuild_index(app.checked_engine(), app.store, app.clock.now(), replace=replace)
    emit(
        as_json,
        {"entries": report.entries, "records": report.records, "problems": report.problems},
        [f"problem: {p}" for p in report.problems]
        + [f"rebuilt {report.records} records and {report.entries} ledger entries from the store"],
    )
    if report.problems:
        raise SystemExit(1)


def _record_json(r: Record) -> dict[str, Any]:
    return r.model_dump()


def _snippet(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
