"""The approved images at /media/{sha256}.{ext}: public, immutable, and nothing else."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

from starlette.testclient import TestClient

from bulletin.archiver.archive import put_retained
from bulletin.archiver.store.base import NewObject
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.notices import NoticeDraft, cancel_notice, create_notice
from bulletin.web import create_app
from bulletin.web.security import CSP
from tests.plugins.bulletin_app import Instance
from tests.test_media import png

IMMUTABLE = "public, max-age=31536000, immutable"


def drafted(inst: Instance, tmp_path: Path, text: str) -> tuple[int, str]:
    """A draft notice with one PNG of its own; (notice id, image sha256)."""
    data = png(text)
    image = tmp_path / f"{hashlib.sha256(data).hexdigest()[:8]}.png"
    image.write_bytes(data)
    notice = create_notice(
        inst.app.engine,
        inst.settings,
        inst.clock,
        NoticeDraft(
            category="missing-person",
            text=f"Missing: {text}. Call 781-862-1212.",
            targets=("feed",),
            images=[(str(image), f"Photo of {text}")],
        ),
        "dispatcher",
        inst.app.store,
    )
    assert notice.id is not None
    return notice.id, hashlib.sha256(data).hexdigest()


def approved(inst: Instance, tmp_path: Path, text: str) -> tuple[int, str]:
    notice_id, digest = drafted(inst, tmp_path, text)
    approve_notice(inst.app.engine, inst.settings, inst.clock, notice_id, "chief")
    return notice_id, digest


def web(inst: Instance) -> TestClient:
    return TestClient(create_app(inst.app), follow_redirects=False)


def test_an_approved_image_is_served_by_its_hash(instance: Instance, tmp_path: Path) -> None:
    """The bytes pinned at drafting, typed, cacheable for a year, with the security
    headers of every answer; HEAD too; no cookie set."""
    _, digest = approved(instance, tmp_path, "Jane Doe")
    with web(instance) as client:
        answer = client.get(f"/media/{digest}.png")
        assert answer.status_code == 200
        assert hashlib.sha256(answer.content).hexdigest() == digest
        assert answer.headers["content-type"] == "image/png"
        assert answer.headers["cache-control"] == IMMUTABLE
        assert answer.headers["content-security-policy"] == CSP
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "set-cookie" not in answer.headers
        head = client.head(f"/media/{digest}.png")
        assert head.status_code == 200 and head.content == b""
        assert client.post(f"/media/{digest}.png").status_code == 405


def test_anything_else_is_not_found(instance: Instance, tmp_path: Path) -> None:
    """Unknown hash, a draft's image, a cancelled notice's, another archived object, the
    right hash under another extension or in capitals, a malformed name: 404, not cached."""
    _, served = approved(instance, tmp_path, "Jane Doe")
    _, draft = drafted(instance, tmp_path, "John Roe")
    gone_id, gone = approved(instance, tmp_path, "Ann Poe")
    cancel_notice(instance.app.engine, instance.clock, gone_id, "chief", "found safe")
    other = png("not a notice image")  # an image in the archive that no notice pins
    now = instance.clock.now()
    put_retained(instance.app.store, [NewObject(other, now + timedelta(days=365))])
    instance.app.store.flush()
    names = [
        f"{'0' * 64}.png",
        f"{draft}.png",
        f"{gone}.png",
        f"{hashlib.sha256(other).hexdigest()}.png",
        f"{served}.jpg",
        f"{served.upper()}.png",
        f"{served}.png.exe",
        f"{served}",
        "..%2Fbulletin.toml",
    ]
    with web(instance) as client:
        assert client.get(f"/media/{served}.png").status_code == 200
        for name in names:
            answer = client.get(f"/media/{name}")
            assert answer.status_code == 404, name
            assert answer.headers["cache-control"] == "no-store", name
            assert draft not in answer.text
