"""Notices with images through the HTTP API: ``images`` of POST /notices carry each image's
bytes in base64 with its alt text; they are checked as the console checks an upload, pinned in
the archive with the notice, shown (not their bytes) by GET, served publicly once approved,
and exactly those bytes reach the platforms. Each refusal is a problem pointing at the image's
field, and nothing is drafted; a retried request drafts once. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from sqlmodel import Session, select

from bulletin.app import compose, users
from bulletin.archiver.store.base import object_key
from bulletin.connectors.sandbox import SandboxServer
from bulletin.models import Delivery
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.sandbox import FAST_RETRY, FAST_TIMEOUT, Control, sandbox_accounts
from tests.test_api import PEOPLE, auth, client, count, problem_of, serving, token
from tests.test_api_languages import bilingual_body
from tests.test_api_languages import site as bilingual  # noqa: F401  (a fixture)
from tests.test_delivery_platforms import drain, worker
from tests.test_media import ALT, png

TEXT = "Missing: Jane Doe, 34, last seen on Mass Ave in a red coat. Call 781-862-1212."
PHOTO = png("jane doe")
DIGEST = hashlib.sha256(PHOTO).hexdigest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def body(*images: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "category": "missing-person",
        "text": TEXT,
        "targets": ["feed", "x", "facebook"],
        "images": list(images),
        **more,
    }


def image(data: bytes = PHOTO, alt: str = ALT, **more: Any) -> dict[str, Any]:
    return {"data": b64(data), "alt": alt, **more}


@pytest.fixture
def site(tmp_path: Path, db_url: str, sandbox: SandboxServer) -> Iterator[Instance]:
    """A Bulletin with the feed and sandbox X and Facebook accounts, and the API's people."""
    inst = make_instance(tmp_path, db_url, sandbox_accounts(sandbox.url) + PEOPLE)
    inst.app.connector_options = {"retry": FAST_RETRY, "timeout": FAST_TIMEOUT}
    users.seed(inst.app)
    yield inst
    inst.app.close()


def test_a_photo_drafted_through_the_api_is_the_one_published(
    site: Instance, control: Control
) -> None:
    """The photo is pinned in the archive at drafting and listed by its hash, size, type and
    alt text (no URL while a draft, the media route refusing it); approved, its URL serves
    exactly those bytes, and X, Facebook and the feed receive exactly those bytes."""
    dan, abe = token(site, "dan"), token(site, "abe")
    with client(site) as api:
        made = api.post(
            "notices",
            json=body(image(name="jane doe.png", mime_type="image/png")),
            headers=auth(dan),
        )
        assert made.status_code == 201, made.text
        notice_id = made.json()["id"]
        expected = {
            "sha256": DIGEST,
            "size": len(PHOTO),
            "mime_type": "image/png",
            "name": "jane-doe.png",
            "alt": ALT,
            "alts": {"en": ALT},
            "url": None,
        }
        assert made.json()["images"] == [expected]
        assert site.app.store.get(object_key(DIGEST)) == PHOTO
        shown = api.get(f"notices/{notice_id}", headers=auth(abe))
        assert shown.json()["images"] == [expected]
        assert "data" not in shown.text
        public = f"http://testserver/media/{DIGEST}.png"
        assert api.get(public).status_code == 404  # a draft's image is not public

        assert api.post(f"notices/{notice_id}/approve", headers=auth(abe)).status_code == 200
        [approved] = api.get(f"notices/{notice_id}", headers=auth(dan)).json()["images"]
        assert approved == {**expected, "url": f"/media/{DIGEST}.png"}
        served = api.get(f"http://testserver{approved['url']}")
        assert served.status_code == 200 and served.content == PHOTO

    drain(site, worker(site))
    with Session(site.app.engine) as session:
        states = {d.account: d.state for d in session.exec(select(Delivery))}
    assert states == {"feed": "published", "x": "published", "facebook": "published"}
    state = control.get("state")
    assert [m["sha256"] for m in state["x"]["media"].values()] == [DIGEST]
    assert [m.get("alt_text") for m in state["x"]["media"].values()] == [ALT]
    assert [p["photo"]["sha256"] for p in state["fb"]["posts"].values()] == [DIGEST]
    feed = site.settings.feed_path("feed")
    assert (feed.parent / "media" / f"{DIGEST}.png").read_bytes() == PHOTO


BIG = PHOTO + b"\0" * compose.MAX_IMAGE_BYTES


@pytest.mark.parametrize(
    ("images", "pointer", "detail"),
    [
        ([{"data": "not base64!", "alt": ALT}], "#/images/0/data", "data is not base64"),
        ([image(), {"data": b64(PHOTO)[:-1], "alt": ALT}], "#/images/1/data", "not base64"),
        (
            [image(b"%PDF-1.7 a leaflet", name="leaflet.pdf")],
            "#/images/0/data",
            "image leaflet.pdf is not a JPEG, PNG, GIF or WebP image",
        ),
        ([image(BIG)], "#/images/0/data", f"at most {compose.MAX_IMAGE_BYTES:,} are taken"),
        ([image(alt="  ")], "#/images/0/alt", "image image-1 needs its alt text"),
        ([image(alt="Photo\u0007")], "#/images/0/alt", "the alt text of image-1 "),
        ([{"data": b64(PHOTO)}], "#/images/0/alt", "Field required"),
        ([image(mime_type="image/jpeg")], "#/images/0/mime_type", "is image/png, not image/jpeg"),
        ([image(mime_type="application/pdf")], "#/images/0/mime_type", "Input should be"),
        ([image()] * (compose.MAX_IMAGES + 1), "#/images", "at most 4 items"),
    ],
)
def test_a_bad_image_is_a_problem_at_its_field(
    site: Instance, images: list[dict[str, Any]], pointer: str, detail: str
) -> None:
    """Bad base64, a file that is not an image, one too big, blank or missing alt text, a
    type that is not the bytes', too many images, more than a target takes: each a 422
    naming the image's field, and nothing drafted or stored."""
    dan = token(site, "dan")
    with client(site) as api:
        answer = api.post("notices", json=body(*images, targets=["feed"]), headers=auth(dan))
    found = problem_of(answer, 422)
    assert detail in found
    assert [e["pointer"] for e in answer.json()["errors"]] == [pointer], answer.text
    assert count(site, "notices") == 0
    assert site.app.store.head(object_key(DIGEST)) is None


def test_a_body_larger_than_four_images_is_refused_unread(site: Instance) -> None:
    """The web door takes a notice with four images of the largest size (far more than a
    form's 64 KiB) but no more; any other operation still takes a form's worth."""
    from bulletin.web import api as web_api

    dan = token(site, "dan")
    largest = [
        image(png(str(n)) + b"\0" * (compose.MAX_IMAGE_BYTES - len(png(str(n)))))
        for n in range(compose.MAX_IMAGES)
    ]
    with client(site) as api:
        ok = api.post("notices", json=body(*largest, targets=["feed", "x"]), headers=auth(dan))
        assert ok.status_code == 201, ok.text
        assert [i["size"] for i in ok.json()["images"]] == [compose.MAX_IMAGE_BYTES] * 4
        huge = b"x" * (web_api.MAX_NOTICE_BODY + 1)
        headers = {**auth(dan), "content-type": "application/json"}
        assert api.post("notices", content=huge, headers=headers).status_code == 413
        small = b"x" * (64 * 1024 + 1)
        assert api.post("notices/1/approve", content=small, headers=headers).status_code == 413


def test_only_a_dispatcher_drafts_with_images(site: Instance) -> None:
    """An approver's token, or one without notices:write, is refused, before the images are
    decoded; nothing is stored."""
    abe, reader = token(site, "abe"), token(site, "dan", "notices:read")
    with client(site) as api:
        refused = api.post("notices", json=body(image()), headers=auth(abe))
        assert "dispatcher" in problem_of(refused, 403)
        assert problem_of(api.post("notices", json=body(image()), headers=auth(reader)), 403)
        # the role is checked before the images are decoded: not base64 is still a refusal
        garbled = api.post(
            "notices", json=body({"data": "not base64!", "alt": ALT}), headers=auth(abe)
        )
        assert "dispatcher" in problem_of(garbled, 403)
    assert count(site, "notices") == 0
    assert site.app.store.head(object_key(DIGEST)) is None


def test_a_retried_request_with_images_drafts_once(site: Instance) -> None:
    """The same Idempotency-Key and body: one notice, the second answer replayed with the
    same images; the key with other images is refused."""
    dan = token(site, "dan")
    headers = {**auth(dan), "Idempotency-Key": "cad-26-4411"}
    with client(site) as api:
        first = api.post("notices", json=body(image()), headers=headers)
        again = api.post("notices", json=body(image()), headers=headers)
        other = api.post("notices", json=body(image(png("other"))), headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["images"] == first.json()["images"]
    assert "another request" in problem_of(other, 422)
    assert count(site, "notices") == 1


def test_concurrent_retries_with_images_over_http_make_one_notice(site: Instance) -> None:
    """Four clients send one request with a photo of 1 MiB and one key at once, over a real
    server: one notice, every answer its own."""
    dan = token(site, "dan")
    photo = PHOTO + b"\0" * 2**20
    request = body(image(photo), targets=["feed", "x"])
    answers: list[httpx.Response] = []
    with serving(site.app) as (url, _):
        start = threading.Barrier(4)

        def post() -> None:
            with httpx.Client(base_url=url, timeout=60) as web:
                start.wait()
                headers = {**auth(dan), "Idempotency-Key": "cad-26-4412"}
                answers.append(web.post("/notices", json=request, headers=headers))

        threads = [threading.Thread(target=post) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert [a.status_code for a in answers] == [201] * 4, [a.text[:300] for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert {a.json()["images"][0]["sha256"] for a in answers} == {hashlib.sha256(photo).hexdigest()}
    assert count(site, "notices") == 1


def test_each_language_describes_the_image_in_its_alts(
    bilingual: Instance,  # noqa: F811
) -> None:
    """``languages[].alts`` line up with ``images``: GET gives each image's alt text per
    language; a language with more alt texts than images is a problem at its ``alts``."""
    dan = token(bilingual, "dan")
    spanish = {**bilingual_body(bilingual)["languages"][0], "alts": ["Mapa del desvío."]}
    made_body = bilingual_body(bilingual, images=[image(alt="Map of the detour.")])
    made_body["languages"] = [spanish]
    with client(bilingual) as api:
        made = api.post("notices", json=made_body, headers=auth(dan))
        assert made.status_code == 201, made.text
        shown = api.get(f"notices/{made.json()['id']}", headers=auth(dan)).json()
        [pinned] = shown["images"]
        assert pinned["alts"] == {"en": "Map of the detour.", "es": "Mapa del desvío."}
        assert [v["alts"] for v in shown["languages"]] == [
            ["Map of the detour."],
            ["Mapa del desvío."],
        ]
        spanish["alts"] = ["Mapa.", "Otro."]
        wrong = api.post("notices", json=made_body, headers=auth(dan))
    assert "2 given for 1 image(s)" in problem_of(wrong, 422)
    assert [e["pointer"] for e in wrong.json()["errors"]] == ["#/languages/0/alts"]


def test_a_notice_from_a_template_takes_images_too(site: Instance) -> None:
    """``images`` of POST /notices/from-template: pinned with the template's notice."""
    from bulletin.app import Actor, templates

    templates.add(
        site.app, Actor("lt"), "missing", "missing-person", "Missing: {name}.", {"name": "str"}
    )
    templates.approve(site.app, Actor("abe"), "missing")
    dan = token(site, "dan")
    request = {"template": "missing", "values": {"name": "Jane Doe, 34"}, "targets": ["x"]}
    with client(site) as api:
        made = api.post(
            "notices/from-template", json={**request, "images": [image()]}, headers=auth(dan)
        )
        assert made.status_code == 201, made.text
        bad = api.post(
            "notices/from-template", json={**request, "images": [image(alt="")]}, headers=auth(dan)
        )
    assert made.json()["text"] == "Missing: Jane Doe, 34."
    assert [(i["sha256"], i["alt"]) for i in made.json()["images"]] == [(DIGEST, ALT)]
    assert site.app.store.get(object_key(DIGEST)) == PHOTO
    problem_of(bad, 422)
    assert [e["pointer"] for e in bad.json()["errors"]] == ["#/images/0/alt"]
