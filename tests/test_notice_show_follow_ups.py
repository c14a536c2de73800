"""``bulletin notice show`` lists a notice's follow-ups per language: whether each language
has one and how each account's follow-up stands (pending until expiry, then as queued:
published with its post, or skipped), for people and in ``--json``. Against SQLite and
PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from bulletin.app import Actor, notices
from bulletin.models import Delivery
from bulletin.publisher.delivery.states import move
from bulletin.publisher.notices import NoticeDraft
from bulletin.publisher.schedule import make_follow_ups
from bulletin.states import DeliveryState
from bulletin.timeparse import local_text
from tests.plugins.bulletin_app import Instance
from tests.plugins.cli import run
from tests.test_languages import LANGUAGES, PEOPLE, SPANISH, bilingual_instance

DAN, ABE = Actor("dan", "os-user"), Actor("abe", "os-user")
REOPENED = "Main St has reopened."
ABIERTA = "La calle Main está abierta."


@pytest.fixture
def bilingual(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """An agency writing English and Spanish; dan a dispatcher, abe an approver."""
    inst = bilingual_instance(tmp_path, db_url, LANGUAGES + PEOPLE)
    yield inst
    inst.app.close()


def followed(inst: Instance, es_follow_up: str | None) -> int:
    """dan's bilingual road closure to the feed (both languages) and the Spanish feed,
    expiring in six hours with a follow-up in English and ``es_follow_up`` in Spanish."""
    made = notices.draft(
        inst.app,
        DAN,
        NoticeDraft(
            category="road-closure",
            text="Road closed: Main St between 1st and 2nd until 6 pm.",
            targets=("feed", "feed-es"),
            expires_at=inst.clock.now() + timedelta(hours=6),
            follow_up=REOPENED,
            follow_up_partial=es_follow_up is None,
            languages=[replace(SPANISH, follow_up=es_follow_up)],
        ),
    )
    assert made.notice.id is not None
    return made.notice.id


def shown(inst: Instance, notice_id: int) -> tuple[str, dict[str, Any]]:
    """``notice show`` for people, and its ``--json``."""
    lines = run(inst, "notice", "show", str(notice_id), clock=inst.clock, stdout=True)
    data = run(inst, "notice", "show", str(notice_id), "--json", clock=inst.clock, stdout=True)
    return lines, json.loads(data)


def states(data: dict[str, Any]) -> list[tuple[str, bool, list[tuple[str, str]]]]:
    return [
        (f["lang"], f["set"], [(p["account"], p["state"]) for p in f["posts"]])
        for f in data["follow_ups"]
    ]


def test_notice_show_lists_each_language_s_follow_up_and_how_it_stands(
    bilingual: Instance,
) -> None:
    """Before expiry each language's follow-up is set and pending per account, due at
    expiry; once the notice expired and they were queued and sent, the English one is
    published with its post, the Spanish one published on the feed and skipped on the
    Spanish feed (its post was cancelled), with the reason."""
    inst = bilingual
    zone = inst.settings.agency.time_zone
    notice_id = followed(inst, ABIERTA)
    expires = local_text(inst.clock.now() + timedelta(hours=6), zone)
    lines, data = shown(inst, notice_id)
    assert states(data) == [
        ("en", True, [("feed", "pending")]),
        ("es", True, [("feed", "pending"), ("feed-es", "pending")]),
    ]
    assert [(f["text"], f["queued_at"]) for f in data["follow_ups"]] == [
        (REOPENED, None),
        (ABIERTA, None),
    ]
    assert f"  follow-ups (at expiry {expires})" in lines
    assert "    [es] set\n" in lines
    assert f"      -> feed-es          pending    due {expires}" in lines
    notices.approve(inst.app, ABE, notice_id)
    with Session(inst.app.engine) as session:
        [spanish_only] = session.exec(
            select(Delivery)
            .where(Delivery.notice_id == notice_id)
            .where(Delivery.account == "feed-es")
        ).all()
        move(spanish_only, DeliveryState.CANCELLED)
        session.add(spanish_only)
        session.commit()
    for _ in range(2):
        run(inst, "daemon", "--once", "--max-wait", "0", clock=inst.clock)
    inst.clock.advance(timedelta(hours=6, minutes=1))
    assert make_follow_ups(inst.app.engine, inst.clock.now()) == [notice_id]
    for _ in range(2):
        run(inst, "daemon", "--once", "--max-wait", "0", clock=inst.clock)
    lines, data = shown(inst, notice_id)
    assert states(data) == [
        ("en", True, [("feed", "published")]),
        ("es", True, [("feed", "published"), ("feed-es", "skipped")]),
    ]
    [english, spanish] = data["follow_ups"]
    url = english["posts"][0]["url"]
    assert url and english["posts"][0]["published_at"]
    assert spanish["posts"][1]["error"] == "no published post to reply to"
    queued = local_text(inst.clock.now(), zone)
    assert f"  follow-ups (queued {queued})" in lines
    assert f"      -> feed             published  {queued}  {url}" in lines
    assert "      -> feed-es          skipped     (no published post to reply to)" in lines


def test_notice_show_says_a_language_has_no_follow_up(bilingual: Instance) -> None:
    """A notice drafted leaving the Spanish without a follow-up: notice show says the
    English one is set and the Spanish posts get none; a notice without a follow-up lists
    none."""
    inst = bilingual
    notice_id = followed(inst, None)
    lines, data = shown(inst, notice_id)
    assert states(data) == [("en", True, [("feed", "pending")]), ("es", False, [])]
    assert "    [es] none: the es posts get no follow-up" in lines
    plain = notices.draft(
        inst.app,
        DAN,
        NoticeDraft(category="road-closure", text="Road closed on Elm St.", targets=("feed",)),
    ).notice.id
    assert plain is not None
    lines, data = shown(inst, plain)
    assert data["follow_ups"] == [] and "follow-ups" not in lines
