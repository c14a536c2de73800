"""Composing a notice with images uploaded beforehand: the console's compose form uploads each
image into the archive store first (shown back with its size and sha256), carries it by hash,
and previews or drafts the notice with those images; or with images given with the draft
itself, as the HTTP API gives them (checked as an upload is); plus the next occurrences of a
recurring draft, in the agency's zone.

Each function checks the dispatcher role. Drafting reads the uploaded images back from the
store and pins them as :func:`bulletin.app.notices.draft` pins a file (the same checks, the
post's retention); the rules of a draft are the publisher's, unchanged.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from bulletin.app import idempotency, notices
from bulletin.app.actor import Actor, acts
from bulletin.app.context import App
from bulletin.archiver.store.base import NewObject, object_key, sha256_hex
from bulletin.errors import NotFound, UsageError, about
from bulletin.identity import require_role
from bulletin.publisher import approval, recurrence
from bulletin.publisher.media import PinnedImage, sniff_image
from bulletin.publisher.notices import NoticeDraft, resolve_schedule, validate_draft

#: the largest image the console takes (X's limit for a still image; others take less or as much)
MAX_IMAGE_BYTES = 5 * 1024 * 1024
#: how many images one notice may carry (the most any platform takes in one post)
MAX_IMAGES = 4
#: how many occurrences of a recurring draft its preview lists
OCCURRENCES = 6
_HEX = re.compile(r"[0-9a-f]{64}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ComposePreview:
    """What a draft would be: the approver's review (each target's text as cut, thread parts,
    count, cost, policy findings), its images, and its first occurrences (UTC; one for a
    notice that does not repeat, none when it publishes as soon as approved)."""

    review: approval.Review
    images: list[PinnedImage]
    occurrences: list[datetime]
    recurrence: str | None


def safe_name(name: str) -> str:
    """A file name people recognise, reduced to letters, digits, dots, dashes, underscores."""
    base = _UNSAFE.sub("-", Path(name or "image").name).strip(".-") or "image"
    return base[:80]


def check_image(data: bytes, name: str) -> str:
    """The type of an image a dispatcher gives (called ``name`` in messages).

    :raises UsageError: empty, larger than :data:`MAX_IMAGE_BYTES`, or not a JPEG, PNG, GIF
        or WebP image.
    """
    if not data:
        raise UsageError("choose an image file to upload")
    if len(data) > MAX_IMAGE_BYTES:
        raise UsageError(
            f"image {name} is {len(data):,} bytes; at most {MAX_IMAGE_BYTES:,} are taken"
        )
    mime = sniff_image(data)
    if mime is None:
        raise UsageError(f"image {name} is not a JPEG, PNG, GIF or WebP image")
    return mime


def require_drafter(app: App, actor: Actor) -> None:
    """Refuse anyone but a dispatcher, before a door decodes what they sent to draft with.

    :raises Refused: not a dispatcher.
    """
    require_role(app.settings, actor.name, "dispatcher", app.checked_engine())


def require_alt(name: str, alt: str, n: int) -> None:
    """The ``n``th image (0-based, called ``name``) has alt text.

    :raises UsageError: it has none (its field: ``("images", n, "alt")``).
    """
    if not alt.strip():
        raise UsageError(
            f"image {name} needs its alt text (what it shows, for people who cannot see it)",
            remedy="alt",
            field=("images", n, "alt"),
        )


@acts
def upload_image(app: App, actor: Actor, data: bytes, name: str, priority: str = "") -> PinnedImage:
    """Store an image's bytes in the archive, retained like a post of ``priority`` (the
    drafted notice's own pinning extends it as needed); its size, type and sha256.

    :raises Refused: not a dispatcher.
    :raises UsageError: empty, larger than :data:`MAX_IMAGE_BYTES`, or not a JPEG, PNG, GIF
        or WebP image.
    """
    require_role(app.settings, actor.name, "dispatcher", app.checked_engine())
    shown = safe_name(name)
    mime = check_image(data, shown)
    from bulletin.archiver.archive import put_retained
    from bulletin.archiver.retention import retain_until, series_for

    until, permanent = retain_until(
        app.settings,
        series_for("post", priority or None),
        posted_at=None,
        captured_at=app.clock.now(),
    )
    new = NewObject(data, until, permanent)
    put_retained(app.store, [new])
    app.store.flush()
    return PinnedImage(new.sha256, len(data), mime, "", shown)


@acts
def uploaded(app: App, actor: Actor, images: Sequence[tuple[str, str, str]]) -> list[PinnedImage]:
    """The uploaded images ``(sha256, name, alt text)``, read back from the store (size and
    type from the bytes, never from what the form says).

    :raises Refused: not a dispatcher. :raises UsageError: too many, or one not in the store.
    """
    require_role(app.settings, actor.name, "dispatcher", app.checked_engine())
    if len(images) > MAX_IMAGES:
        raise UsageError(f"a notice carries at most {MAX_IMAGES} images")
    found = []
    for digest, name, alt in images:
        data = _read(app, digest, name)
        mime = sniff_image(data) or ""
        found.append(PinnedImage(digest, len(data), mime, alt.strip(), safe_name(name)))
    return found


def _read(app: App, digest: str, name: str) -> bytes:
    if not _HEX.fullmatch(digest):
        raise UsageError(f"image {safe_name(name)}: upload it again")
    try:
        data = app.store.get(object_key(digest), verify=True)
    except NotFound:
        raise UsageError(
            f"image {safe_name(name)} is not in the archive: upload it again"
        ) from None
    if sha256_hex(data) != digest:
        raise UsageError(f"image {safe_name(name)}: the archived bytes do not match; upload again")
    return data


@contextmanager
def _on_disk(app: App, images: Sequence[PinnedImage]) -> Iterator[list[tuple[str, str]]]:
    """The images as files (``(path, alt)``, named as uploaded) for as long as the block runs:
    what the publisher pins from."""
    for n, image in enumerate(images):
        require_alt(image.name, image.alt, n)
    given = [(image.name, image.alt, _read(app, image.sha256, image.name)) for image in images]
    with _files(given) as pairs:
        yield pairs


@contextmanager
def _files(images: Sequence[tuple[str, str, bytes]]) -> Iterator[list[tuple[str, str]]]:
    """Images ``(name, alt, bytes)`` as files named ``name`` (``(path, alt)``, in order) for
    as long as the block runs."""
    with tempfile.TemporaryDirectory(prefix="bulletin-compose-") as folder:
        pairs = []
        for n, (name, alt, data) in enumerate(images, 1):
            path = Path(folder) / str(n) / name
            path.parent.mkdir()
            path.write_bytes(data)
            pairs.append((str(path), alt))
        yield pairs


def next_occurrences(app: App, draft: NoticeDraft, count: int = OCCURRENCES) -> list[datetime]:
    """The draft's first ``count`` publish times (UTC): its recurrence's occurrences up to its
    end or expiry, computed as the publisher computes them (local wall-clock time, across
    daylight-saving changes); a single one for a notice at a set time; none for "as soon as
    approved".

    :raises UsageError: a bad rule, or no occurrence before its end.
    """
    now = app.clock.now()
    resolved = resolve_schedule(draft, app.settings, now)
    if resolved.recurrence is None or resolved.publish_at is None:
        return [resolved.publish_at] if resolved.publish_at else []
    rule = recurrence.parse_rule(resolved.recurrence)
    zone = ZoneInfo(app.settings.agency.time_zone)
    first = resolved.publish_at
    found = [first]
    ends = [t for t in (resolved.repeat_until, resolved.expires_at) if t is not None]
    while len(found) < count:
        nxt = recurrence.occurrence_after(rule, first, zone, found[-1])
        if nxt is None or any(nxt > end for end in ends):
            break
        found.append(nxt)
    return found


def _dated(app: App, draft: NoticeDraft) -> NoticeDraft:
    """A recurring draft's texts with the first occurrence's date line, as they will be
    posted (see :func:`bulletin.publisher.notices.plan_targets`)."""
    if not (draft.recurrence and draft.date_line and draft.publish_at is not None):
        return draft
    zone, at = ZoneInfo(app.settings.agency.time_zone), draft.publish_at
    return replace(
        draft,
        text=recurrence.with_date_line(draft.text.strip(), at, zone),
        variants={
            k: recurrence.with_date_line(v.strip(), at, zone) for k, v in draft.variants.items()
        },
    )


@acts
def preview(
    app: App, actor: Actor, draft: NoticeDraft, images: Sequence[PinnedImage] = ()
) -> ComposePreview:
    """What ``draft`` with the uploaded ``images`` would look like to its approver, and when
    it would go out; stores nothing.

    :raises Refused: not a dispatcher. :raises UsageError: a bad draft, schedule or image.
    """
    require_role(app.settings, actor.name, "dispatcher", app.checked_engine())
    now = app.clock.now()
    with _on_disk(app, images) as pairs:
        resolved = resolve_schedule(replace(draft, images=pairs), app.settings, now)
        validate_draft(resolved, app.settings, now)
        review = approval.review_draft(app.settings, _dated(app, resolved))
    occurrences = next_occurrences(app, draft)
    return ComposePreview(review, list(images), occurrences, resolved.recurrence)


@acts
def draft(
    app: App,
    actor: Actor,
    draft: NoticeDraft,
    images: Sequence[PinnedImage] = (),
    *,
    template: str | None = None,
    values: Mapping[str, str] | None = None,
) -> notices.Drafted:
    """Draft ``draft`` with the uploaded ``images`` (see :func:`bulletin.app.notices.draft`).

    :raises Refused: not a dispatcher. :raises UsageError: a bad draft or image.
    """
    require_role(app.settings, actor.name, "dispatcher", app.checked_engine())
    with _on_disk(app, images) as pairs:
        return notices.draft(
            app, actor, replace(draft, images=pairs), template=template, values=values
        )


@dataclass(frozen=True)
class GivenImage:
    """An image given with the draft itself (the HTTP API's): its bytes, its alt text, the
    name people will recognise it by, and the type its sender says it is (None: not said)."""

    data: bytes
    alt: str
    name: str = "image"
    mime_type: str | None = None


@acts
def draft_given(
    app: App,
    actor: Actor,
    draft: NoticeDraft,
    images: Sequence[GivenImage],
    *,
    template: str | None = None,
    values: Mapping[str, str] | None = None,
    once: idempotency.Claim | None = None,
) -> notices.Drafted:
    """Draft ``draft`` (with ``template``, from that template) with ``images`` given with
    it: each checked as an upload is (type, size, alt text; a ``mime_type`` said must be the
    bytes'), then drafted as :func:`bulletin.app.notices.draft` drafts files (pinned in the
    store only once the draft is valid; with ``once``, once per idempotency key). Each
    refusal names its image's field (``("images", N, "data" | "alt" | "mime_type")``).

    :raises Refused: not a dispatcher. :raises UsageError: a bad draft or image.
    """
    require_drafter(app, actor)
    if len(images) > MAX_IMAGES:
        raise UsageError(f"a notice carries at most {MAX_IMAGES} images", field=("images",))
    given = []
    for n, image in enumerate(images):
        name = safe_name(image.name)
        with about("images", n, "data"):
            mime = check_image(image.data, name)
        if image.mime_type is not None and image.mime_type != mime:
            raise UsageError(
                f"image {name} is {mime}, not {image.mime_type}", field=("images", n, "mime_type")
            )
        require_alt(name, image.alt, n)
        given.append((name, image.alt.strip(), image.data))
    with _files(given) as pairs:
        return notices.draft(
            app, actor, replace(draft, images=pairs), template=template, values=values, once=once
        )
