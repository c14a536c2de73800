"""The retention schedule and disposition, as the administrator and the records officer act
on them.

Applying the schedule and listing a disposition batch need the admin role; approving one (the
destruction) the records-officer role (:data:`APPROVER_OF_DESTRUCTION`; the approver role,
which approves notices, approved batches before that role existed and is now refused with a
message saying so), and never by the one who listed it (two people see every destruction);
anyone may read the schedule and the batches on the command line, and the console's retention
pages (:func:`retention_desk`) are for :data:`KEEPERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from bulletin.app.actor import Actor, acts
from bulletin.app.board import require_any_role
from bulletin.app.context import App
from bulletin.archiver import disposition, retention
from bulletin.archiver.disposition import ApproveResult
from bulletin.archiver.retention import ApplyReport
from bulletin.config.site import Role
from bulletin.errors import NotFound, Refused
from bulletin.identity import require_role
from bulletin.models import DispositionBatch, DispositionItem


@dataclass(frozen=True)
class Schedule:
    """The schedule in force (``source`` is where it was read), one row per series with its
    period, anchor, disposition, authority and its records, held, past retention and
    disposed counts (as text)."""

    source: str
    default_period: str
    default_anchor: str
    default_disposition: str
    series: list[dict[str, str]]


@dataclass(frozen=True)
class BatchDetail:
    """A disposition batch, its items and, once approved, what checking its certificate found
    (empty: verified)."""

    batch: DispositionBatch
    items: list[DispositionItem]
    certificate_problems: list[str]


@acts
def show_schedule(app: App, actor: Actor) -> Schedule:
    """The schedule and how many records each series holds, keeps and has disposed of."""
    settings = app.settings
    counts = {c.series: c for c in retention.series_counts(app.checked_engine(), app.clock.now())}
    rows = retention.schedule(settings, list(counts))
    for row in rows:
        count = counts.get(row["series"])
        row.update(
            records=str(count.records if count else 0),
            held=str(count.held if count else 0),
            past_retention=str(count.past_retention if count else 0),
            disposed=str(count.disposed if count else 0),
        )
    policy = settings.retention
    return Schedule(
        settings.source,
        str(policy.default_period),
        str(policy.default_anchor),
        str(policy.default_disposition),
        rows,
    )


def example_schedules() -> dict[str, str]:
    """The schedules shipped with Bulletin, by name (file name without ``.toml``)."""
    folder = resources.files("bulletin") / "config" / "retention"
    return {
        entry.name.removesuffix(".toml"): entry.read_text(encoding="utf-8")
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".toml")
    }


def example_schedule(name: str) -> str:
    """The text of shipped example schedule ``name``.

    :raises NotFound: no such example (the message lists the shipped ones).
    """
    shipped = example_schedules()
    if name not in shipped:
        raise NotFound(f"no example schedule {name!r} (shipped: {', '.join(shipped)})")
    return shipped[name]


@acts
def apply_schedule(app: App, actor: Actor, *, dry_run: bool = False) -> ApplyReport:
    """Re-compute retain-until from the schedule and extend records and store objects; never
    shortens. With ``dry_run`` nothing changes.

    :raises Refused: ``actor`` is not an administrator.
    """
    require_role(app.settings, actor.name, "admin", app.checked_engine())
    return retention.apply_schedule(
        app.checked_engine(),
        app.store,
        app.settings,
        app.clock.now(),
        actor.name,
        dry_run=dry_run,
    )


@acts
def list_batch(app: App, actor: Actor) -> DispositionBatch | None:
    """List the records due for destruction into a new batch; None when nothing is due.

    :raises Refused: ``actor`` is not an administrator; an open hold cannot be evaluated.
    """
    require_role(app.settings, actor.name, "admin", app.checked_engine())
    return disposition.build_disposition_batch(
        app.checked_engine(), app.store, app.settings, app.clock.now(), actor.name
    )


@acts
def list_batches(app: App, actor: Actor) -> list[DispositionBatch]:
    """Disposition batches, newest first."""
    return disposition.list_batches(app.checked_engine())


@acts
def show_batch(app: App, actor: Actor, batch_id: int) -> BatchDetail:
    """One batch, its items and, once approved, its certificate checked.

    :raises NotFound: no such batch.
    """
    engine = app.checked_engine()
    batch, items = disposition.get_batch(engine, batch_id)
    problems = (
        disposition.verify_certificate(engine, app.store, batch_id)
        if batch.certificate_sha256
        else []
    )
    return BatchDetail(batch, items, problems)


#: the role that approves a disposition batch (the destruction)
APPROVER_OF_DESTRUCTION: Role = "records-officer"


@acts
def approve_batch(app: App, actor: Actor, batch_id: int) -> ApproveResult:
    """Destroy a listed batch and write its certificate of destruction.

    :raises Refused: ``actor`` is not a records officer (the message says so, and that the
        approver role no longer approves destruction), or listed the batch (two-person
        rule); the batch changed since it was listed or was approved already.
    :raises NotFound: no such batch.
    """
    engine = app.checked_engine()
    require_role(app.settings, actor.name, None, engine)
    try:
        require_role(app.settings, actor.name, APPROVER_OF_DESTRUCTION, engine)
    except Refused as e:
        raise Refused(
            f"{e}: approving a disposition batch (the destruction) takes a records officer; "
            "the approver role approves notices and no longer approves destruction, so an "
            "admin gives the records-officer role to whoever does"
        ) from e
    batch, _ = disposition.get_batch(app.checked_engine(), batch_id)
    if batch.listed_by == actor.name:
        raise Refused(
            f"{actor.name} listed batch {batch_id}, so another person must approve its "
            "destruction (two-person rule)"
        )
    return disposition.approve_batch(
        app.checked_engine(),
        app.store,
        app.settings,
        batch_id,
        actor=actor.name,
        now=app.clock.now(),
    )


#: who reads the retention pages of the console
#: (an approver still reads them, and is told on approving that it takes a records officer)
KEEPERS: tuple[Role, ...] = ("clerk", "records-officer", "approver", "admin")


@dataclass(frozen=True)
class Desk:
    """The disposition batches awaiting approval (oldest first) and those done or stale
    (newest first); an approved batch carries its certificate."""

    awaiting: list[DispositionBatch]
    decided: list[DispositionBatch]


@acts
def retention_desk(app: App, actor: Actor) -> Desk:
    """The batches, as the console's retention page shows them.

    :raises Refused: ``actor`` holds none of :data:`KEEPERS`.
    """
    require_any_role(app, actor, KEEPERS)
    batches = disposition.list_batches(app.checked_engine())
    awaiting = sorted((b for b in batches if b.state == "listed"), key=lambda b: b.id or 0)
    return Desk(awaiting, [b for b in batches if b.state != "listed"])


@acts
def batch_page(app: App, actor: Actor, batch_id: int) -> BatchDetail:
    """One batch for the console: :func:`show_batch` for :data:`KEEPERS` only.

    :raises Refused: ``actor`` holds none of :data:`KEEPERS`.
    :raises NotFound: no such batch.
    """
    require_any_role(app, actor, KEEPERS)
    return show_batch(app, actor, batch_id)
