"""The agency's own images: pinned into the WORM store when a notice is drafted, and read back
from there, by hash, by everything that shows or sends them.

What was approved is what is published: a file is read once, at drafting, checked to be a
JPEG, PNG, GIF or WebP image by its first bytes, stored content-addressed with the retention of
the post it belongs to, and the notice records its sha256, size, type and alt text. Removing or
changing the file afterwards changes nothing.

A notice's ``images`` column holds ``[{"sha256", "size", "mime_type", "alt", "name"}]``;
``name`` is the file's name when drafted, for people to recognise it, never read again.
Notices drafted before images were pinned hold ``[{"path", "alt"}]``: they are refused at
delivery rather than read from a file nobody approved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulletin.archiver.store.base import NewObject, WormStore, object_key, sha256_hex
from bulletin.config.settings import Settings
from bulletin.connectors.base import Media
from bulletin.errors import NotFound, Rejected, UsageError
from bulletin.models import Notice

if TYPE_CHECKING:  # the archive is imported where images are pinned or published
    from bulletin.archiver.archive import MediaBlob

# Signatures at the start of the file (WebP: "RIFF", a size, then "WEBP").
_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_image(data: bytes) -> str | None:
    """The image type ``data`` starts like (JPEG, PNG, GIF or WebP), or None."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


@dataclass(frozen=True)
class PinnedImage:
    """One image of a notice as stored; ``sha256`` is empty for an unpinned (old) entry."""

    sha256: str
    size: int
    mime_type: str
    alt: str
    name: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def pin_images(
    store: WormStore,
    settings: Settings,
    images: Sequence[tuple[str, str]],
    priority: str,
    now: datetime,
) -> list[PinnedImage]:
    """Read each ``(path, alt text)`` once, check it is an image and store its bytes,
    retained like the post (series ``agency-posts`` or ``emergency-notices``, from now);
    durable when this returns.

    :raises UsageError: a file that cannot be read or is not a JPEG, PNG, GIF or WebP image.
    """
    if not images:
        return []
    from bulletin.archiver.archive import put_retained
    from bulletin.archiver.retention import retain_until, series_for

    series = series_for("post", priority)
    until, permanent = retain_until(settings, series, posted_at=None, captured_at=now)
    pinned: list[PinnedImage] = []
    objects: list[NewObject] = []
    for path, alt in images:
        try:
            data = Path(path).read_bytes()
        except OSError as e:
            raise UsageError(f"image {path} cannot be read: {e.strerror}") from e
        mime = sniff_image(data)
        if mime is None:
            raise UsageError(f"image {path} is not a JPEG, PNG, GIF or WebP image")
        objects.append(new := NewObject(data, until, permanent))
        pinned.append(PinnedImage(new.sha256, len(data), mime, alt.strip(), Path(path).name))
    put_retained(store, objects)
    store.flush()
    return pinned


def notice_images(notice: Notice) -> list[PinnedImage]:
    """The images a notice records, in order."""
    out = []
    for entry in notice.images or []:
        out.append(
            PinnedImage(
                sha256=str(entry.get("sha256") or ""),
                size=int(entry.get("size") or 0),
                mime_type=str(entry.get("mime_type") or ""),
                alt=str(entry.get("alt") or ""),
                name=str(entry.get("name") or entry.get("path") or ""),
            )
        )
    return out


def load_media(store: WormStore, notice: Notice) -> tuple[Media, ...]:
    """The notice's images as pinned: read from the store by sha256 and hashed again.

    :raises Rejected: an image that was never pinned, or is not in the store.
    :raises IntegrityError: stored bytes that do not match their hash.
    :raises StoreUnavailable: the store cannot be read now.
    """
    media = []
    for image in notice_images(notice):
        if not image.sha256:
            raise Rejected(
                f"image {image.name} was not archived when the notice was drafted; "
                "draft the notice again"
            )
        try:
            data = store.get(object_key(image.sha256), verify=True)
        except NotFound as e:
            raise Rejected(
                f"image {image.name} (sha256 {image.sha256}) is not in the archive"
            ) from e
        if sha256_hex(data) != image.sha256:  # whatever the backend checked
            raise Rejected(f"image {image.name}: the archived bytes do not match sha256")
        media.append(Media(data, image.mime_type, image.alt))
    return tuple(media)


def media_blobs(media: Sequence[Media], notice: Notice) -> tuple[MediaBlob, ...]:
    """``media`` as published, for the record of the post (each names its notice image)."""
    from bulletin.archiver.archive import MediaBlob

    names = [i.name for i in notice_images(notice)]
    return tuple(
        MediaBlob(
            url=f"notice-{notice.id}/{names[n] if n < len(names) else f'image-{n + 1}'}",
            data=m.data,
            mime_type=m.mime_type,
            alt_text=m.alt_text,
        )
        for n, m in enumerate(media)
    )
