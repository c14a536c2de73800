"""Composing in the console beyond the text: images uploaded into the archive store (shown
with their size and sha256, alt text required), wording per account, a follow-up, a
recurrence with its next occurrences in the agency's zone across a daylight-saving change,
each through the application layer. Over a real uvicorn on a free port, against SQLite and
PostgreSQL; the form checked with axe-core at 320 and 1280 pixels."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from bulletin.archiver.store.base import object_key, sha256_hex
from bulletin.web import console
from tests.plugins.browser import axe_violations, describe, screenshot
from tests.plugins.bulletin_app import Instance
from tests.test_console import (
    NO_SIDEWAYS,
    ROAD,
    WIDEST,
    browser_sign_in,
    browser_site,  # noqa: F401  (a fixture)
    csrf_for,
    signed_in,
    site,  # noqa: F401  (a fixture)
    web,  # noqa: F401  (a fixture)
)
from tests.test_web import error_of, serving

PNG = b"\x89PNG\r\n\x1a\n" + b"\x07" * 64
FORM = {"category": "road-closure", "target": "feed", "text": ROAD, "at": "now"}


def upload(client: Any, token: str, data: bytes, alt: str, **more: str) -> Any:
    return client.post(
        console.UPLOAD_PATH,
        data={**FORM, "csrf": token, "new_alt": alt, **more},
        files={"image": ("detour map.png", data, "image/png")},
    )


def hidden(page: str, name: str) -> list[str]:
    return re.findall(rf'name="{name}" value="([^"]*)"', page)


def test_an_image_is_uploaded_into_the_store_and_drafted_with_its_alt_text(
    site: Instance,  # noqa: F811
    web: str,  # noqa: F811
) -> None:
    """The upload stores the image (its size and sha256 shown, what was typed kept); a file
    that is not an image is refused; drafting without alt text is refused; with it, the
    notice pins the image (the same sha256) and the preview lists it for the target."""
    digest = sha256_hex(PNG)
    with signed_in(web, "dana") as dana:
        token = csrf_for(dana.get("/notices/new").text, "/notices/new")
        assert upload(dana, "", PNG, "Map").status_code == 403
        bad = upload(dana, token, b"GIF? no", "Map")
        assert bad.status_code == 400 and "not a JPEG, PNG, GIF or WebP" in error_of(bad.text)
        done = upload(dana, token, PNG, "")
        assert done.status_code == 200, done.text
        assert site.app.store.get(object_key(digest)) == PNG
        assert f'<code class="hash">{digest}</code>' in done.text
        assert f"detour-map.png, {len(PNG)} bytes" in done.text
        assert f">{ROAD}</textarea>" in done.text
        form = {
            **FORM,
            "csrf": token,
            "image_sha256": hidden(done.text, "image_sha256"),
            "image_name": hidden(done.text, "image_name"),
            "image_size": hidden(done.text, "image_size"),
        }
        no_alt = dana.post("/notices/new", data={**form, "alt-1": " "})
        assert no_alt.status_code == 400 and "alt text" in error_of(no_alt.text)
        alt = "Map of the detour by Worthen Rd"
        shown = dana.post("/notices/new", data={**form, "alt-1": alt, "action": "preview"})
        assert shown.status_code == 200, shown.text
        assert f"alt “{alt}”" in shown.text and "image/png" in shown.text
        removed = dana.post(
            "/notices/new", data={**form, "alt-1": alt, "remove-1": "1", "action": "preview"}
        )
        assert digest not in removed.text
        forged = dana.post("/notices/new", data={**form, "image_sha256": "0" * 64, "alt-1": alt})
        assert forged.status_code == 400 and "upload it again" in error_of(forged.text)
        saved = dana.post("/notices/new", data={**form, "alt-1": alt})
        assert saved.status_code == 303, saved.text
    notice_id = int(saved.headers["location"].rsplit("/", 1)[1])
    from sqlmodel import Session

    from bulletin.models import Notice

    with Session(site.app.engine) as session:
        notice = session.get(Notice, notice_id)
        assert notice is not None and notice.images is not None
        [pinned] = notice.images
    assert (pinned["sha256"], pinned["size"], pinned["alt"]) == (digest, len(PNG), alt)


def test_an_upload_needs_the_dispatcher_role_and_fits_the_limit(
    site: Instance,  # noqa: F811
    web: str,  # noqa: F811
) -> None:
    """An approver's upload is refused by the application layer; an image over the limit is
    refused with its size."""
    with signed_in(web, "abe") as abe:
        page = abe.get("/notices/new")
        assert page.status_code == 403
    with signed_in(web, "dana") as dana:
        token = csrf_for(dana.get("/notices/new").text, "/notices/new")
        big = upload(dana, token, PNG + b"\0" * console.MAX_UPLOAD, "Map")
        assert big.status_code == 400 and "at most" in error_of(big.text)
    from bulletin.app import Actor, compose
    from bulletin.errors import Refused

    with pytest.raises(Refused):
        compose.upload_image(site.app, Actor("abe", "session"), PNG, "x.png")


def test_wording_follow_up_and_a_recurrence_across_daylight_saving(
    site: Instance,  # noqa: F811
    web: str,  # noqa: F811
) -> None:
    """The feed gets its own wording; a weekly notice from 1 March 2027 lists its next
    occurrences at 09:00 in New York, EST then EDT after 14 March; a follow-up needs an
    expiry; saved, the notice keeps its rule, end, wording and follow-up."""
    own = "Mass Ave is closed; detour by Worthen Rd."
    with signed_in(web, "dana") as dana:
        token = csrf_for(dana.get("/notices/new").text, "/notices/new")
        form = {
            **FORM,
            "csrf": token,
            "text-for-feed": own,
            "at": "2027-03-01 09:00",
            "every": "week",
            "until": "2027-04-30",
            "action": "preview",
        }
        shown = dana.post("/notices/new", data=form)
        assert shown.status_code == 200, shown.text
        times = re.findall(r"<time datetime=\"[^\"]+\">([^<]+)</time>", shown.text)
        assert times[:4] == [
            "2027-03-01 09:00 EST",
            "2027-03-08 09:00 EST",
            "2027-03-15 09:00 EDT",
            "2027-03-22 09:00 EDT",
        ]
        assert "Next occurrences (weekly;at=09:00)" in shown.text
        assert f"{own}\n(Mon 01 Mar 2027)" in shown.text
        both = dana.post("/notices/new", data={**form, "repeat": "daily"})
        assert both.status_code == 400 and "not both" in error_of(both.text)
        lonely = dana.post("/notices/new", data={**form, "follow_up": "Reopened."})
        assert lonely.status_code == 400 and "expiry" in error_of(lonely.text)
        saved = dana.post(
            "/notices/new",
            data={
                **form,
                "follow_up": "Mass Ave has reopened.",
                "expires": "2027-05-01",
                "action": "draft",
            },
        )
        assert saved.status_code == 303, saved.text
        detail = dana.get(saved.headers["location"] + ".json").json()
    assert detail["publish_at"] == "2027-03-01T14:00:00+00:00"
    [posted] = detail["review"]["previews"]["feed"]
    assert posted.startswith(f"{own}\n(Mon 01 Mar 2027)")
    from sqlmodel import Session

    from bulletin.models import Notice

    with Session(site.app.engine) as session:
        notice = session.get(Notice, detail["id"])
        assert notice is not None
        assert (notice.recurrence, notice.follow_up) == (
            "weekly;at=09:00",
            "Mass Ave has reopened.",
        )
        assert notice.variants == {"feed": own}


@pytest.mark.slow
def test_the_compose_form_with_images_and_a_recurrence_passes_axe(
    browser_site: Instance,  # noqa: F811
    browser: Any,
    tmp_path: Path,
) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on the compose form with an uploaded
    image and on its preview with occurrences, at 320 and 1280 pixels, without sideways
    scrolling; the upload works with the browser's own file field."""
    picture = tmp_path / "detour.png"
    picture.write_bytes(PNG)
    with serving(browser_site.app) as url:
        for width in (320, 1280):
            context = browser.new_context(viewport={"width": width, "height": 800})
            page = context.new_page()
            try:
                browser_sign_in(page, url, "dana", "/notices/new")
                page.fill("#text", ROAD)
                page.set_input_files("#image", str(picture))
                page.fill("#new_alt", "Map of the detour")
                page.click("text=Upload image")
                page.wait_for_selector("code.hash")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                page.fill("#at", "2027-03-01 09:00")
                page.select_option("#every", "week")
                page.fill("#until", "2027-04-30")
                page.click("button[value=preview]")
                page.wait_for_selector("ul.occurrences")
                assert not (found := axe_violations(page)), describe(found)
                assert page.evaluate(NO_SIDEWAYS), page.evaluate(WIDEST)
                if width == 1280:
                    screenshot(page, "console-compose")
            finally:
                context.close()
