"""Retention commands: the schedule, applying it, and disposition batches."""

from __future__ import annotations

from typing import Any

import click

from bulletin.app import retention
from bulletin.cli import ID, LIMIT, Context, emit, json_option, on_behalf_options, pass_context
from bulletin.models import DispositionBatch
from bulletin.timeparse import local_text


@click.group("retention")
def retention_group() -> None:
    """The retention schedule, and disposition: only by an approved batch, with a certificate."""


@retention_group.command("show")
@json_option
@pass_context
def retention_show(ctx: Context, as_json: bool) -> None:
    """Print the schedule and how many records each series holds, keeps and has disposed of."""
    shown = retention.show_schedule(ctx.app, ctx.reader())
    rows = shown.series
    lines = [
        f"retention schedule from {shown.source} (default {shown.default_period}, "
        f"{shown.default_anchor} date, {shown.default_disposition})",
        f"  {'series':<20} {'period':<10} {'anchor':<9} {'disposition':<23} "
        f"{'records':>8} {'held':>6} {'past':>6} {'disposed':>8}",
    ]
    lines += [
        f"  {r['series']:<20} {r['period']:<10} {r['anchor']:<9} {r['disposition']:<23} "
        f"{r['records']:>8} {r['held']:>6} {r['past_retention']:>6} {r['disposed']:>8}"
        + (f"  ({r['authority']})" if r["authority"] else "")
        for r in rows
    ]
    lines.append(
        "past = past retention, not held, not disposed of; only destroy-after-approval series "
        "are ever listed for destruction"
    )
    emit(as_json, {"source": shown.source, "series": rows}, lines)


@retention_group.command("example")
@click.argument("name", required=False)
@pass_context
def retention_example(ctx: Context, name: str | None) -> None:
    """Print a shipped example schedule (no NAME: list them). Confirm with your records officer."""
    if name is None:
        for key in retention.example_schedules():
            click.echo(key)
        return
    click.echo(retention.example_schedule(name), nl=False)


@retention_group.command("apply")
@on_behalf_options
@click.option("--dry-run", is_flag=True, help="Report what would change; change nothing.")
@click.option("--as", "actor", default=None, help="Who applies it (an administrator).")
@json_option
@pass_context
def retention_apply(ctx: Context, dry_run: bool, actor: str | None, as_json: bool) -> None:
    """Re-compute retain-until from the schedule and extend records and store objects; never
    shortens."""
    ctx.warn_open_mode()
    report = retention.apply_schedule(ctx.app, ctx.actor(actor), dry_run=dry_run)
    verb = "would extend" if dry_run else "extended"
    lines = []
    for name, change in sorted(report.series.items()):
        line = f"{name}: {verb} {change.extended}, unchanged {change.unchanged}"
        if change.held:
            line += f", {'would place' if dry_run else 'placed'} permanent hold on {change.held}"
        if not dry_run:
            line += f" ({change.objects} store objects extended)"
        lines.append(line)
        if change.kept_longer:
            lines.append(
                f"  note: the schedule gives {name} a shorter retention than {change.kept_longer} "
                "records already have; they keep the longer one (retention is never shortened)"
            )
    emit(
        as_json,
        {
            "dry_run": dry_run,
            "series": {k: v.__dict__ for k, v in sorted(report.series.items())},
        },
        lines or ["no records"],
    )


def _batch_json(b: DispositionBatch) -> dict[str, Any]:
    return b.model_dump()


@retention_group.command("list-batch")
@on_behalf_options
@click.option("--as", "actor", default=None, help="Who lists it (an administrator).")
@json_option
@pass_context
def retention_list_batch(ctx: Context, actor: str | None, as_json: bool) -> None:
    """List the records due for destruction into a new batch now (the daemon does it nightly)."""
    ctx.warn_open_mode()
    batch = retention.list_batch(ctx.app, ctx.actor(actor))
    if batch is None:
        emit(as_json, {"id": None}, "nothing is due for destruction")
        return
    emit(
        as_json,
        _batch_json(batch),
        f"batch {batch.id} listed: {batch.record_count} records; review with "
        f"`bulletin retention show-batch {batch.id}`, approve with "
        f"`bulletin retention approve-batch {batch.id}`",
    )


@retention_group.command("batches")
@json_option
@pass_context
def retention_batches(ctx: Context, as_json: bool) -> None:
    """Disposition batches, newest first: listed, approved (destroyed) or stale."""
    batches = retention.list_batches(ctx.app, ctx.reader())
    tz = ctx.settings.agency.time_zone
    emit(
        as_json,
        {"batches": [_batch_json(b) for b in batches]},
        [
            f"{b.id:>4}  {b.state:<9} {b.record_count:>6} records  listed "
            f"{local_text(b.listed_at, tz)}"
            + (f"  approved by {b.approved_by}" if b.approved_by else "")
            + (f"  ({b.stale_reason})" if b.stale_reason else "")
            for b in batches
        ]
        or ["no disposition batches"],
    )


@retention_group.command("show-batch")
@click.argument("batch_id", type=ID)
@click.option(
    "--limit", type=LIMIT, default=50, show_default=True, help="Records to list (text output)."
)
@json_option
@pass_context
def retention_show_batch(ctx: Context, batch_id: int, limit: int, as_json: bool) -> None:
    """One batch: its records, membership hash and, once approved, its verified certificate."""
    detail = retention.show_batch(ctx.app, ctx.reader(), batch_id)
    batch, items, problems = detail.batch, detail.items, detail.certificate_problems
    tz = ctx.settings.agency.time_zone
    lines = [
        f"batch {batch.id}  {batch.state}  {batch.record_count} records",
        f"  membership  sha256 {batch.membership_sha256}",
        f"  listed      {local_text(batch.listed_at, tz)} by {batch.listed_by}",
    ]
    if batch.approved_at:
        lines.append(f"  approved    {local_text(batch.approved_at, tz)} by {batch.approved_by}")
    if batch.certificate_sha256:
        status = "verified" if not problems else "FAILED: " + "; ".join(problems)
        lines.append(
            f"  certificate sha256/{batch.certificate_sha256}  ledger #{batch.certificate_seq}  "
            f"({status})"
        )
    if batch.stale_reason:
        lines.append(f"  stale       {batch.stale_reason}")
    lines += [
        f"    {i.record_id:>6}  {i.series:<18} retained until {local_text(i.retain_until, tz)}  "
        f"{i.object_sha256[:12]}"
        for i in items[:limit]
    ]
    if len(items) > limit:
        lines.append(f"    … and {len(items) - limit} more (--json lists all)")
    emit(
        as_json,
        {
            **_batch_json(batch),
            "items": [i.model_dump() for i in items],
            "certificate_problems": problems,
        },
        lines,
    )
    if problems:
        raise SystemExit(1)


@retention_group.command("approve-batch")
@on_behalf_options
@click.argument("batch_id", type=ID)
@click.option(
    "--as", "actor", default=None, help="Who approves the destruction (a records officer)."
)
@json_option
@pass_context
def retention_approve_batch(ctx: Context, batch_id: int, actor: str | None, as_json: bool) -> None:
    """Destroy a listed batch and write its certificate of destruction (refused if the batch
    changed since it was listed or was approved already)."""
    ctx.warn_open_mode()
    acting = ctx.actor(actor)
    who = acting.name
    result = retention.approve_batch(ctx.app, acting, batch_id)
    emit(
        as_json,
        {
            **_batch_json(result.batch),
            "certificate_key": result.certificate_key,
            "objects_destroyed": result.destroyed,
            "objects_kept_shared": result.kept_shared,
            "images": result.images,
        },
        [
            f"batch {batch_id} approved by {who}: {result.batch.record_count} records disposed "
            f"of, {len(result.destroyed)} objects destroyed"
            + _images_among(result.destroyed, result.images)
            + (
                f", {len(result.kept_shared)} kept"
                + _images_among(result.kept_shared, result.images)
                + " (other retained records or live notices share them)"
                if result.kept_shared
                else ""
            ),
            f"certificate of destruction {result.certificate_key} "
            f"(ledger #{result.batch.certificate_seq}, retained permanently)",
        ],
    )


def _images_among(keys: list[str], images: list[str]) -> str:
    """`` (N images)`` when some of ``keys`` are images of the records, else nothing."""
    count = len(set(keys) & set(images))
    return f" ({count} image{'' if count == 1 else 's'})" if count else ""
