"""Productions, as a records clerk makes and checks them: every version of every record in a
request's or a query's scope as a BagIt bundle (see :mod:`bulletin.archiver.export`).

Producing needs the clerk role; checking a bundle needs none (it is done anywhere, with or
without the archive).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from cryptography import x509
from sqlmodel import Session, col, select

from bulletin.app.actor import Actor, acts
from bulletin.app.context import App
from bulletin.archiver.export import BundleReport, ExportResult, export_bundle, layout, resolve
from bulletin.archiver.export import verify_bundle as check_bundle
from bulletin.archiver.timestamp.client import all_roots
from bulletin.config.timestamp import load_pem_certificates
from bulletin.errors import UsageError
from bulletin.identity import require_role
from bulletin.models import BatesRange

Production = Literal["public", "counsel"]


@acts
def produce(
    app: App,
    actor: Actor,
    *,
    request_id: int | None = None,
    query: str | None = None,
    out: Path,
    production: Production = "public",
    as_zip: bool = False,
    resume: bool = False,
    bates_start: int | None = None,
    renderings: bool = True,
    wacz: bool = False,
    pdf: bool | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Write the production of records request ``request_id`` or of ``query`` (exactly one)
    to ``out``; ``progress(done, total)`` hears how far it has got. ``pdf`` None: PDF/A
    thread pages as ``[export] pdf`` says.

    :raises Refused: ``actor`` is not a clerk; ``out`` exists; a Bates range overlaps.
    :raises UsageError: neither or both scopes, a bad query, an unknown account.
    :raises NotFound: no such request.
    """
    require_role(app.settings, actor.name, "clerk", app.checked_engine())
    engine = app.checked_engine()
    scope = resolve(engine, app.settings, request_id, query)
    return export_bundle(
        engine,
        app.store,
        app.settings,
        scope,
        out=out,
        actor=actor.name,
        now=app.clock.now,
        as_zip=as_zip,
        resume=resume,
        bates_start=bates_start,
        progress=progress,
        production=production,
        renderings=renderings,
        wacz=wacz,
        pdf=app.settings.export.pdf if pdf is None else pdf,
    )


@acts
def verify_bundle(
    actor: Actor, bundle: Path, app: App | None = None, ca_bundles: Sequence[Path] = ()
) -> BundleReport:
    """Check the bundle at ``bundle``: bag validity, every file's and record's hash; with
    ``app``, against its archive and ledger too. Its time stamp is checked against the CA
    roots in ``ca_bundles`` and, with ``app``, those of its ``[timestamp]`` authorities.
    Never raises for what it finds.

    :raises UsageError: ``bundle`` does not exist or is no bag; a CA bundle holds no
        certificate.
    """
    roots: list[x509.Certificate] = []
    for path in ca_bundles:
        try:
            roots += load_pem_certificates(path)
        except ValueError as e:
            raise UsageError(str(e)) from None
    if app is None:
        return check_bundle(bundle, roots=roots)
    roots += all_roots(app.settings.timestamp.authorities)
    return check_bundle(bundle, app.checked_engine(), app.store, roots)


@acts
def bates_register(app: App, actor: Actor) -> list[tuple[BatesRange, str, str]]:
    """Every range of Bates numbers issued with its first and last number as stamped, by
    matter (the production's scope) and then in the order issued.

    :raises Refused: ``actor`` is not a clerk.
    """
    engine = app.checked_engine()
    require_role(app.settings, actor.name, "clerk", engine)
    with Session(engine) as session:
        rows = list(
            session.exec(
                select(BatesRange).order_by(col(BatesRange.identifier), col(BatesRange.id))
            )
        )
        session.expunge_all()
    return [(r, layout.bates(r.prefix, r.first), layout.bates(r.prefix, r.last)) for r in rows]
