"""Records clerk commands: archive list, show, search, thread, status, sweep, verify."""

from __future__ import annotations

import shlex
import sys
import time
from typing import Any

import click

from bulletin.app import records
from bulletin.cli import ID, LIMIT, Context, emit, json_option, pass_context, read_only
from bulletin.models import Record
from bulletin.names import printable_text
from bulletin.timeparse import local_text


@click.group()
def archive() -> None:
    """The public record: archived posts and comments in write-once storage."""


@archive.command("list")
@click.option("--account", default=None, help="Only this account.")
@click.option("--kind", type=click.Choice(["post", "comment", "moderation"]), default=None)
@click.option("--limit", type=LIMIT, default=50, show_default=True)
@json_option
@pass_context
@read_only
def archive_list(
    ctx: Context, account: str | None, kind: records.Kind | None, limit: int, as_json: bool
) -> None:
    """Archived records, newest first."""
    found = records.list_records(
        ctx.app,
        ctx.reader(),
        account=account,
        kind=kind,
        limit=limit,
    )
    tz = ctx.settings.agency.time_zone
    width = max([10, *(len(r.account) for r in found)])
    emit(
        as_json,
        {"records": [_record_json(r) for r in found]},
        [
            f"{r.id:>6}  {r.account:<{width}} {r.kind:<7} v{r.version} {r.state:<8} "
            f"{local_text(r.captured_at, tz)}  {r.object_sha256[:12]}  {_snippet(r.text)}"
            for r in found
        ]
        or ["the archive is empty"],
    )


@archive.command("show")
@click.argument("record_id", type=ID)
@click.option("--raw", is_flag=True, help="Print the stored snapshot object itself.")
@json_option
@pass_context
def archive_show(ctx: Context, record_id: int, raw: bool, as_json: bool) -> None:
    """One record: its hash, retention, ledger position and content."""
    shown = records.show_record(ctx.app, ctx.reader(), record_id)
    record, differs = shown.record, shown.contradictions
    if raw:
        click.echo(shown.snapshot.decode())
        return
    tz = ctx.settings.agency.time_zone
    training = ", training" if record.training else ""
    data = {
        **_record_json(record),
        "ledger_entry_hash": shown.entry_hash,
        "snapshot": shown.data,
        "agrees_with_snapshot": not differs,
        "contradictions": differs,
    }
    checked = "(verified)" if not differs else "(the index row DISAGREES with this snapshot)"
    emit(
        as_json,
        data,
        [
            f"record {record.id}  {record.kind} {record.remote_id} (version {record.version})",
            f"  account      {record.account} ({record.platform}{training})",
            f"  state        {record.state}",
            f"  posted       {local_text(record.posted_at, tz)}",
            f"  captured     {local_text(record.captured_at, tz)}",
            f"  sha256       {record.object_sha256}  {checked}",
            *(f"  ! {line}" for line in differs),
            f"  raw sha256   {record.raw_sha256 or '-'}",
            f"  series       {record.series}, retain until {local_text(record.retain_until, tz)}"
            + ("  [legal hold]" if record.legal_hold else ""),
            f"  ledger       #{record.ledger_seq}  {shown.entry_hash or '-'}",
            f"  text         {_multiline(record.text)}",
        ],
    )


@archive.command("verify")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Say how far it has got, on stderr (default: when stderr is a terminal).",
)
@json_option
@pass_context
def archive_verify(ctx: Context, progress: bool | None, as_json: bool) -> None:
    """Check every stored object against its hash and the ledger chain; exit 1 on any problem."""
    shown = _verify_progress() if _wants_progress(progress) else None
    report = records.verify_archive(ctx.app, ctx.reader(), shown)
    payload = {
        "ok": report.ok,
        "records": report.records,
        "ledger_entries": report.entries,
        "objects_checked": report.objects,
        "head_hash": report.head_hash,
        "problems": [p.__dict__ for p in report.problems],
        "notes": [p.__dict__ for p in report.notes],
        "warnings": [p.__dict__ for p in report.warnings],
    }
    lines = [f"problem: {p.line()}" for p in report.problems]
    lines += [f"warning: {p.line()}" for p in report.warnings]
    lines += [f"note: {p.line()}" for p in report.notes]
    if any(p.kind == "mirror-without-row" for p in report.problems):
        lines.append(
            "hint: the store holds ledger entries the database lacks (a database restored "
            "from a backup?); `bulletin archive rebuild-index --replace` rebuilds the index "
            "from the store"
        )
    lines.append(
        f"{'OK' if report.ok else 'FAILED'}: {report.records} records, {report.entries} ledger "
        f"entries, {report.objects} objects checked, {len(report.problems)} problems; "
        f"head {report.head_hash[:16]}"
    )
    emit(as_json, payload, lines)
    if not report.ok:
        raise SystemExit(1)


def _wants_progress(asked: bool | None) -> bool:
    return sys.stderr.isatty() if asked is None else asked


def _verify_progress() -> records.Progress:
    """A line on stderr at most every few seconds, and at the end of each phase."""
    names = {"ledger": "ledger entries walked", "records": "records' objects re-hashed"}
    last = [-1e9]

    def show(phase: str, done: int, total: int, finished: bool) -> None:
        now = time.monotonic()
        if finished or now - last[0] >= 5:
            last[0] = now
            click.echo(f"verify: {done:,} of {total:,} {names[phase]}", err=True)

    return show


@archive.command("rebuild-index")
@click.option("--replace", is_flag=True, help="Drop the current index rows and rebuild them.")
@json_option
@pass_context
def archive_rebuild_index(ctx: Context, replace: bool, as_json: bool) -> None:
    """Rebuild the database's archive index from the WORM store and its ledger alone."""
    report = records.rebuild(ctx.app, ctx.reader(), replace=replace)
    lines = [f"problem: {p}" for p in report.problems]
    lines.append(
        f"rebuilt {report.records} records and {report.entries} ledger entries from the store"
    )
    if report.holds or report.redactions or report.requests:
        lines.append(
            f"restored {report.holds} legal hold{'s' * (report.holds != 1)}, "
            f"{report.redactions} redaction{'s' * (report.redactions != 1)} and "
            f"{report.requests} records request{'s' * (report.requests != 1)} from the store"
        )
    if report.warcs:
        lines.append(f"linked {report.warcs} WARC file{'s' * (report.warcs != 1)} to their records")
    emit(
        as_json,
        {
            "entries": report.entries,
            "records": report.records,
            "holds": report.holds,
            "redactions": report.redactions,
            "requests": report.requests,
            "warcs": report.warcs,
            "problems": report.problems,
        },
        lines,
    )
    if report.problems:
        raise SystemExit(1)


@archive.command("search")
@click.argument("query_text", metavar="QUERY", required=False)
@click.option("--author", default=None, help="Same as author:NAME (exact, any case).")
@click.option("--account", default=None, help="Same as account:NAME.")
@click.option("--platform", default=None, help="Same as platform:NAME (x, facebook, feed).")
@click.option("--kind", type=click.Choice(["post", "comment", "moderation"]), default=None)
@click.option("--since", default=None, help="Same as from:DATE (or a local time).")
@click.option("--until", default=None, help="Same as to:DATE (inclusive; or a local time).")
@click.option(
    "--state",
    type=click.Choice(["visible", "hidden", "deleted", "edited"]),
    default=None,
    help="Same as state:STATE: items with a version in this state (edited: text changed).",
)
@click.option("--limit", type=LIMIT, default=20, show_default=True)
@json_option
@pass_context
@read_only
def archive_search(
    ctx: Context,
    query_text: str | None,
    author: str | None,
    account: str | None,
    platform: str | None,
    kind: str | None,
    since: str | None,
    until: str | None,
    state: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Search posts and comments (every version) in the query language holds, requests and
    exports use: words, account: author: thread: kind: state: from: to: (see `hold create
    --help`); each hit names its thread (see `archive thread`)."""
    tz = ctx.settings.agency.time_zone
    options = {"author": author, "account": account, "platform": platform, "kind": kind}
    options |= {"from": since, "to": until, "state": state}
    found = records.search_records(
        ctx.app, ctx.reader(), query_text or "", terms=options, limit=limit
    )
    query, hits = found.query, found.hits
    payload = {
        "query": query.describe(),
        "hits": [
            {
                **_record_json(h.record),
                "current_state": h.current_state,
                "versions": h.versions,
            }
            for h in hits
        ],
    }
    width = max([10, *(len(h.record.account) for h in hits)])
    lines = [
        f"{h.record.id:>6}  {h.record.account:<{width}} {h.record.kind:<7} "
        f"v{h.record.version}/{h.versions} {h.current_state:<8} "
        f"{local_text(h.record.posted_at, tz)}  {_author(h.record.author)}: "
        f"{_snippet(h.record.text)}  [thread: bulletin archive thread {h.record.id}]"
        for h in hits
    ]
    if hits and not query.empty():
        held = shlex.quote(query.describe())
        lines.append(f"hold these records: bulletin hold create --query {held} ...")
    emit(as_json, payload, lines or ["no match"])


@archive.command("thread")
@click.argument("record_id", type=ID)
@json_option
@pass_context
def archive_thread(ctx: Context, record_id: int, as_json: bool) -> None:
    """A post and its comments and replies in order, each with its versions and states."""
    tz = ctx.settings.agency.time_zone
    thread = records.show_thread(ctx.app, ctx.reader(), record_id)
    record, items = thread.record, thread.items
    payload = {
        "record": record.id,
        "thread_id": record.thread_id or record.remote_id,
        "account": record.account,
        "items": [
            {
                "kind": item.latest.kind,
                "remote_id": item.latest.remote_id,
                "depth": item.depth,
                "current_state": item.latest.state,
                "versions": [_record_json(v) for v in item.versions],
            }
            for item in items
        ],
    }
    lines = [f"thread {payload['thread_id']} on {record.account}"]
    for item in items:
        pad = "  " * item.depth
        first = item.versions[0]
        mark = " <" if any(v.id == record_id for v in item.versions) else ""
        lines.append(
            f"{pad}{first.kind} {printable_text(first.remote_id)} by {_author(first.author)}, "
            f"posted {local_text(first.posted_at, tz)}{mark}"
        )
        for v in item.versions:
            lines.append(
                f"{pad}  v{v.version} [{v.state}, {v.change}] captured "
                f"{local_text(v.captured_at, tz)} (record {v.id}): {_snippet(v.text, 70)}"
            )
    emit(as_json, payload, lines)


@archive.command("status")
@json_option
@pass_context
def archive_status(ctx: Context, as_json: bool) -> None:
    """Records by account, kind and state; last sweep per account; quarantine; spend;
    capture lag by path."""
    status = records.status(ctx.app, ctx.reader())
    tz = ctx.settings.agency.time_zone
    names = [r["account"] for r in status["records"]] + list(status["sweeps"])
    width = max([12, *map(len, names), *map(len, status["spend"])])  # the account column
    lines = ["records (account, kind, state: count)"]
    lines += [
        f"  {r['account']:<{width}} {r['kind']:<10} {r['state']:<8} {r['count']}"
        for r in status["records"]
    ]
    lines.append("last sweep per account")
    for name, sweep in status["sweeps"].items():
        if sweep is None:
            lines.append(f"  {name:<{width}} never swept")
            continue
        alert = "  ALERT" if sweep["result"] in ("auth-error", "failed") else ""
        lines.append(
            f"  {name:<{width}} {sweep['result']:<11} {local_text(sweep['started_at'], tz)}  "
            f"{sweep['archived']} archived, {sweep['seen']} seen, "
            f"{sweep['quarantined']} quarantined{alert}"
            + (f"\n    {sweep['error'].splitlines()[0]}" if sweep["error"] else "")
        )
    lines.append(f"quarantined answers: {status['quarantine']['total']}")
    lines += [
        f"  #{q['id']} {q['account']} {q['operation']}: {_snippet(q['error'], 70)}"
        for q in status["quarantine"]["recent"]
    ]
    lines.append(f"spend estimate for {status['month']} (USD)")
    for name, spend in status["spend"].items():
        budget = f" of {spend['budget']:.2f}" if spend["budget"] else " (no budget)"
        lines.append(f"  {name:<{width}} {spend['usd']:.2f}{budget}, {spend['reads']} reads")
    backlog = status["store_backlog"]
    lines.append(f"store backlog: {backlog} objects waiting for the archive store")
    lines.append("capture lag of the newest comments (account, path: comments, median, slowest)")
    lines += [
        f"  {c['account']:<{width}} {c['path']:<8} {c['comments']}, "
        f"{c['median_seconds']:.1f} s, {c['max_seconds']:.1f} s"
        for c in status["capture_lag"]
    ]
    emit(as_json, status, lines)


@archive.command("sweep")
@click.argument("account")
@click.option("--full", is_flag=True, help="List every thread completely (edits, deletions).")
@json_option
@pass_context
def archive_sweep(ctx: Context, account: str, full: bool, as_json: bool) -> None:
    """Capture an account's posts and comments now, as the daemon's sweep does."""
    result = records.sweep_now(ctx.app, ctx.reader(), account, full=full)
    emit(
        as_json,
        {k: v for k, v in result.__dict__.items()},
        [
            f"{account}: {result.result}, {result.threads} threads, {result.pages} pages, "
            f"{result.seen} seen, {result.archived} archived, {result.quarantined} quarantined"
        ]
        + [f"  {e}" for e in result.errors]
        + (
            [
                f"  {result.not_due} thread(s) not due yet by the capture schedule; "
                "--full lists every thread now"
            ]
            if result.not_due
            else []
        ),
    )
    if result.result in ("auth-error", "failed"):
        raise SystemExit(1)


def _record_json(r: Record) -> dict[str, Any]:
    return r.model_dump()


def _snippet(text: str, limit: int = 60) -> str:
    """One line of archived (visitor-written) text, terminal escapes and bidi controls made
    visible."""
    flat = " ".join(text.split())
    return printable_text(flat if len(flat) <= limit else flat[: limit - 1] + "…")


def _multiline(text: str) -> str:
    """Archived text over several lines, controls made visible."""
    return printable_text(text, multiline=True)


def _author(author: str | None) -> str:
    return printable_text(author) if author else "-"
