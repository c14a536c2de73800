"""The agency's approved images, served to the platforms that fetch them by URL (Threads,
Instagram: ``{media_base_url}/{sha256}.{ext}``).

Public, with no actor, as the platforms fetch without signing in: so the rule of what may
be served lives here. Only an image pinned by a notice that was approved (approved,
published, partially published, or failed after approval) is served, and only under its
own extension; a draft's, a cancelled or retracted notice's image, or any other object of
the archive (a snapshot, a raw response, a visitor's attachment) is "not found", whatever
the reason. The name is the image's SHA-256, which also makes the answer immutable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col, select

from bulletin.app.context import App
from bulletin.archiver.store.base import object_key, sha256_hex
from bulletin.connectors.base import IMAGE_EXTENSIONS
from bulletin.errors import NotFound
from bulletin.models import Notice
from bulletin.publisher.media import notice_images
from bulletin.states import NoticeState

#: notices whose images are public: approved, whatever became of the delivery since
SERVED_STATES = (
    NoticeState.APPROVED,
    NoticeState.PUBLISHED,
    NoticeState.PARTIALLY_PUBLISHED,
    NoticeState.FAILED,
)
_NAME = re.compile(r"([0-9a-f]{64})\.([a-z]{3,4})")
_GONE = "no such image"


@dataclass(frozen=True)
class ServedImage:
    """An approved image: its bytes (checked against the name) and type."""

    data: bytes
    mime_type: str


def approved_image(app: App, name: str) -> ServedImage:
    """The image called ``name`` (``<sha256>.<ext>``, lowercase) if an approved notice
    pins it under that type, read from the store and hashed again.

    :raises NotFound: a malformed name, an unknown hash, an image of no approved notice, a
        wrong extension, or bytes missing from the store.
    :raises IntegrityError: stored bytes that do not match their hash.
    :raises StoreUnavailable: the store cannot be read now.
    """
    match = _NAME.fullmatch(name)
    if match is None:
        raise NotFound(_GONE)
    digest, ext = match.groups()
    mime = _pinned_type(app, digest)
    if mime is None or IMAGE_EXTENSIONS.get(mime) != ext:
        raise NotFound(_GONE)
    try:
        data = app.store.get(object_key(digest), verify=True)
    except NotFound as e:
        raise NotFound(_GONE) from e
    if sha256_hex(data) != digest:  # whatever the backend checked
        raise NotFound(_GONE)
    return ServedImage(data, mime)


def _pinned_type(app: App, digest: str) -> str | None:
    """The type an approved notice pins ``digest`` as, or None."""
    with Session(app.engine) as session:
        # the JSON text holds the hex digest; each candidate is then read properly
        notices = session.exec(
            select(Notice)
            .where(col(Notice.state).in_([s.value for s in SERVED_STATES]))
            .where(sa.cast(col(Notice.images), sa.Text).like(f"%{digest}%"))
            .limit(20)
        ).all()
    for notice in notices:
        for image in notice_images(notice):
            if image.sha256 == digest and image.mime_type in IMAGE_EXTENSIONS:
                return image.mime_type
    return None
