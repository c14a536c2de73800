"""Records clerk commands: export a production as a BagIt bundle, and verify one."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from bulletin.app import Actor, exports
from bulletin.cli import ID, Context, emit, json_option, on_behalf_options, pass_context
from bulletin.cli.records import QUERY_HELP


@click.group(invoke_without_command=True)
@on_behalf_options
@click.option("--request", "request_id", type=ID, default=None, help="A records request's id.")
@click.option("--query", "query_text", default=None, help=QUERY_HELP)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write the bundle (must not exist); built in OUT.partial until complete.",
)
@click.option("--zip", "as_zip", is_flag=True, help="Write one zip file instead of a directory.")
@click.option("--resume", is_flag=True, help="Continue an interrupted export into the same OUT.")
@click.option(
    "--bates-start",
    type=int,
    default=None,
    help="The first Bates number (default: the one after every number issued under the "
    "prefix; a range that overlaps an issued one is refused).",
)
@click.option(
    "--counsel",
    is_flag=True,
    help="The counsel production: every record in full, natives included, the text withheld "
    "from the public copy marked (default: the public production, redactions applied).",
)
@click.option(
    "--no-renderings",
    "no_renderings",
    is_flag=True,
    help="Leave out the thread pages (for a review platform, which reads the load file).",
)
@click.option(
    "--pdf/--no-pdf",
    "pdf",
    default=None,
    help="With or without the PDF/A copy of each thread page (default: [export] pdf, on; "
    "rendering PDFs is the slow part).",
)
@click.option(
    "--wacz",
    is_flag=True,
    help="Also package the WARC files as data/warc/production.wacz (opens in ReplayWeb.page).",
)
@click.option("--as", "actor", default=None, help="Who produces it (a clerk).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@json_option
@click.pass_context
def export(
    click_ctx: click.Context,
    request_id: int | None,
    query_text: str | None,
    out: Path | None,
    as_zip: bool,
    resume: bool,
    bates_start: int | None,
    counsel: bool,
    no_renderings: bool,
    pdf: bool | None,
    wacz: bool,
    actor: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Produce every version of every matching post and comment (hidden, edited and deleted
    ones too) as a BagIt bundle: natives, text, Concordance DAT and CSV load files, Bates
    numbers, a manifest with ledger positions and a chain-of-custody report.

    `bulletin export verify BUNDLE` checks a bundle."""
    if click_ctx.invoked_subcommand is not None:
        return
    if out is None:
        raise click.UsageError("--out PATH is required (or use: export verify BUNDLE)")
    ctx = click_ctx.find_object(Context)
    assert ctx is not None
    ctx.warn_open_mode()
    acting = ctx.actor(actor)
    bar: Any = None
    shown = 0

    def progress(done: int, total: int) -> None:
        nonlocal bar, shown
        if quiet:
            return
        if bar is None:
            bar = click.progressbar(
                length=total,
                label="exporting",
                show_eta=True,
                show_pos=True,
                file=sys.stderr,
            )
            bar.__enter__()
        bar.update(done - shown)
        shown = done

    try:
        result = exports.produce(
            ctx.app,
            acting,
            out=out,
            request_id=request_id,
            query=query_text,
            as_zip=as_zip,
            resume=resume,
            bates_start=bates_start,
            progress=progress,
            production="counsel" if counsel else "public",
            renderings=not no_renderings,
            pdf=pdf,
            wacz=wacz,
        )
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    bates = f"{result.first_bates} to {result.last_bates}" if result.records else "none"
    emit(
        as_json,
        {
            "id": result.identifier,
            "out": str(result.out),
            "records": result.records,
            "first_bates": result.first_bates,
            "last_bates": result.last_bates,
            "payload_manifest_sha256": result.payload_sha256,
            "ledger_head_seq": result.head_seq,
            "ledger_head_hash": result.head_hash,
            "disposed_not_produced": result.disposed,
            "counts": result.counts,
            "resumed": result.resumed,
            "production": result.production,
            "redacted_records": result.redacted_records,
            "timestamp": result.timestamp,
            "timestamped": result.timestamped,
        },
        [
            f"exported {result.records} records ({result.identifier}) to {result.out}"
            + (" (EMPTY: nothing matched)" if not result.records else ""),
            f"  production   {result.production}"
            + (
                f" ({result.redacted_records} records with text withheld"
                + (", their natives left out)" if result.production == "public" else ", marked)")
                if result.redacted_records
                else ""
            ),
            f"  Bates        {bates}",
            f"  ledger head  #{result.head_seq} {result.head_hash[:16]}",
            f"  payload      manifest sha256 {result.payload_sha256}",
            f"  time stamp   {result.timestamp}",
        ]
        + (
            [f"  not produced {result.disposed} records destroyed under the retention schedule"]
            if result.disposed
            else []
        ),
    )


@export.command("verify")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option(
    "--archive/--no-archive",
    "against_archive",
    default=None,
    help="Also compare every record with the archive and its ledger (default: when a "
    "configuration file is given or found).",
)
@click.option(
    "--ca-bundle",
    "ca_bundles",
    multiple=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="A PEM file of CA roots to check the bundle's RFC 3161 time stamp against "
    "(repeatable; with the archive, the [timestamp] authorities' roots are added).",
)
@json_option
@pass_context
def export_verify(
    ctx: Context,
    bundle: Path,
    against_archive: bool | None,
    ca_bundles: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Check a bundle: bag validity, every file's hash, every record's hash, its time stamp
    (and when it was made); with the archive, that each record and its ledger entry match.
    Exit 1 with one line per problem."""
    if against_archive is None:
        against_archive = bool(ctx.config_path) or Path("bulletin.toml").exists()
    if against_archive:
        report = exports.verify_bundle(ctx.reader(), bundle, ctx.app, ca_bundles)
    else:
        report = exports.verify_bundle(Actor(""), bundle, ca_bundles=ca_bundles)
    checked = "bag, files and records" + (", against the archive" if report.archive_checked else "")
    emit(
        as_json,
        {
            "ok": report.ok,
            "bundle": report.path,
            "id": report.identifier,
            "files": report.files,
            "records": report.records,
            "archive_checked": report.archive_checked,
            "problems": report.problems,
            "timestamps": report.timestamps,
            "notes": report.notes,
        },
        [f"problem: {p}" for p in report.problems]
        + [f"timestamp: {t}" for t in report.timestamps]
        + [f"note: {n}" for n in report.notes]
        + [
            f"{'OK' if report.ok else 'FAILED'}: {report.path}: {report.files} files and "
            f"{report.records} records checked ({checked}); {len(report.problems)} problems"
        ],
    )
    if not report.ok:
        raise SystemExit(1)
