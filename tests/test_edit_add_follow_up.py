"""An edit adds a follow-up to a draft drafted without one, or removes one, through the
command line (``notice edit --follow-up`` / ``--no-follow-up``) and the API (``follow_up``
/ ``remove_follow_up``): an added one is posted once per account and language at expiry,
a removed one never; ``notice show``, the approval review and the audit trail follow; the
drafting rules hold (each language needs one unless partial, an expiry, a fitting text),
and each refusal is one line naming the field and changes nothing. Against SQLite and
PostgreSQL, with the injected clock and the daemon's rounds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, col, select

from bulletin.app import Actor, board, notices, users
from bulletin.models import Delivery
from bulletin.publisher.languages import LanguageVariant
from bulletin.publisher.notices import NoticeDraft
from bulletin.states import DeliveryKind
from tests.plugins.bulletin_app import Instance
from tests.plugins.cli import invoke, run
from tests.test_api import PEOPLE, auth, client, problem_of, token
from tests.test_console_compose_languages import CALLE, ROAD
from tests.test_console_edit_languages import X_SPANISH
from tests.test_languages import LANGUAGES, bilingual_instance

DAN, ABE = Actor("dan", "os-user"), Actor("abe", "os-user")
REOPENED = "Main St has reopened."
ABIERTA = "La calle Main está abierta."


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """An agency writing English and Spanish: a feed posting both (the Spanish as a reply),
    a Spanish-only feed and a Spanish-only X account; dan a dispatcher, abe an approver."""
    inst = bilingual_instance(tmp_path, db_url, LANGUAGES + X_SPANISH + PEOPLE)
    users.seed(inst.app)
    yield inst
    inst.app.close()


def drafted(
    inst: Instance,
    follow_up: str | None = None,
    es_follow_up: str | None = None,
    targets: tuple[str, ...] = ("feed", "feed-es"),
    expires: bool = True,
) -> int:
    """dan's road closure in English and Spanish to ``targets``, expiring in six hours
    (unless not ``expires``), with the follow-ups given (None: none)."""
    made = notices.draft(
        inst.app,
        DAN,
        NoticeDraft(
            category="road-closure",
            text=ROAD,
            targets=targets,
            expires_at=inst.clock.now() + timedelta(hours=6) if expires else None,
            follow_up=follow_up,
            languages=[LanguageVariant("es", CALLE, follow_up=es_follow_up)],
        ),
    )
    assert made.notice.id is not None
    return made.notice.id


def languages_file(tmp_path: Path, es_follow_up: str | None) -> Path:
    """A --languages-file keeping the Spanish text, with ``es_follow_up`` (None: none)."""
    path = tmp_path / "languages.json"
    item: dict[str, Any] = {"lang": "es", "text": CALLE}
    if es_follow_up is not None:
        item["follow_up"] = es_follow_up
    path.write_text(json.dumps([item]), encoding="utf-8")
    return path


def shown(inst: Instance, notice_id: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        run(inst, "notice", "show", str(notice_id), "--json", clock=inst.clock, stdout=True)
    )
    return data


def follow_ups(inst: Instance, notice_id: int) -> list[tuple[str, str, str, str]]:
    """The notice's follow-up deliveries: (account, language, text, state)."""
    with Session(inst.app.engine) as session:
        rows = session.exec(
            select(Delivery)
            .where(Delivery.notice_id == notice_id)
            .where(Delivery.kind == DeliveryKind.FOLLOW_UP)
            .order_by(col(Delivery.id))
        ).all()
        return sorted((d.account, d.lang, d.text or "", d.state) for d in rows)


def edits(inst: Instance, notice_id: int) -> list[dict[str, Any]]:
    """The detail of each ``edited`` audit event of the notice, in order."""
    with inst.app.engine.connect() as conn:
        details = conn.execute(
            sa.text(
                "SELECT detail FROM audit_events WHERE action = 'edited' AND object_id = :id "
                "ORDER BY id"
            ),
            {"id": str(notice_id)},
        ).scalars()
        return [json.loads(d) for d in details]


def post_states(inst: Instance, notice_id: int) -> list[str]:
    with Session(inst.app.engine) as session:
        return list(
            session.exec(
                select(Delivery.state)
                .where(Delivery.notice_id == notice_id)
                .where(Delivery.kind == DeliveryKind.POST)
            ).all()
        )


def publish_and_expire(inst: Instance, notice_id: int) -> None:
    """abe approves; the daemon publishes; the clock passes the expiry; the daemon runs a
    few more rounds (queueing the follow-ups, sending them, and once more)."""
    notices.approve(inst.app, ABE, notice_id)
    for _ in range(6):
        run(inst, "daemon", "--once", "--max-wait", "0", clock=inst.clock)
        inst.clock.advance(timedelta(seconds=5))
        if all(state == "published" for state in post_states(inst, notice_id)):
            break
    assert set(post_states(inst, notice_id)) == {"published"}
    inst.clock.advance(timedelta(hours=6, minutes=1))
    for _ in range(3):
        run(inst, "daemon", "--once", "--max-wait", "0", clock=inst.clock)
        inst.clock.advance(timedelta(seconds=5))


def edit_cli(inst: Instance, notice_id: int, *args: str, login: str = "dan") -> Any:
    return invoke(
        inst, "notice", "edit", str(notice_id), "--text", ROAD, *args, login=login, clock=inst.clock
    )


def test_a_follow_up_added_by_edit_is_posted_once_in_each_language_at_expiry(
    site: Instance, tmp_path: Path
) -> None:
    """A draft without a follow-up gets one in English (--follow-up) and Spanish (its
    languages file): revision 2, audited as added; notice show and the approval review list
    both, pending on each account; approved, published and past its expiry, each account's
    post in each language gets its follow-up once, and no more on later rounds."""
    inst = site
    notice_id = drafted(inst)
    assert shown(inst, notice_id)["follow_ups"] == []
    done = edit_cli(
        inst,
        notice_id,
        *("--follow-up", f" {REOPENED} "),
        *("--languages-file", str(languages_file(tmp_path, ABIERTA))),
    )
    assert done.exit_code == 0, done.output
    data = shown(inst, notice_id)
    assert data["revision"] == 2
    assert [
        (f["lang"], f["text"], [p["account"] for p in f["posts"]]) for f in data["follow_ups"]
    ] == [
        ("en", REOPENED, ["feed"]),
        ("es", ABIERTA, ["feed", "feed-es"]),
    ]
    [detail] = edits(inst, notice_id)
    assert detail["follow_up"] == REOPENED and detail["follow_up_added"] is True
    assert detail["languages"] == {"es": CALLE}
    [queued] = [v for v in board.approval_queue(inst.app, ABE) if v.notice.id == notice_id]
    assert [(f.lang, f.text) for f in queued.follow_ups] == [("en", REOPENED), ("es", ABIERTA)]
    assert queued.review.approvals == []
    publish_and_expire(inst, notice_id)
    assert follow_ups(inst, notice_id) == [
        ("feed", "en", REOPENED, "published"),
        ("feed", "es", ABIERTA, "published"),
        ("feed-es", "es", ABIERTA, "published"),
    ]
    feed = inst.settings.feed_path("feed").read_text(encoding="utf-8")
    assert feed.count(f'<content type="text">{REOPENED}<') == 1
    assert feed.count(f'<content type="text">{ABIERTA}<') == 1
    spanish = inst.settings.feed_path("feed-es").read_text(encoding="utf-8")
    assert spanish.count(f'<content type="text">{ABIERTA}<') == 1


def test_a_follow_up_added_through_the_api_may_leave_a_language_without_one(
    site: Instance,
) -> None:
    """Added through the API without the Spanish it is refused (422 at the Spanish
    follow-up, saying how to give it); with follow_up_partial: true only the English posts
    get one at expiry."""
    inst = site
    notice_id = drafted(inst)
    dan = auth(token(inst, "dan"))
    with client(inst) as api:
        refused = api.post(
            f"notices/{notice_id}/edit", json={"text": ROAD, "follow_up": REOPENED}, headers=dan
        )
        detail = problem_of(refused, 422)
        assert "the follow-up has no es text" in detail
        assert "follow_up_partial: true" in detail
        assert refused.json()["errors"][0]["pointer"] == "#/languages/0/follow_up"
        assert api.get(f"notices/{notice_id}", headers=dan).json()["revision"] == 1
        saved = api.post(
            f"notices/{notice_id}/edit",
            json={"text": ROAD, "follow_up": REOPENED, "follow_up_partial": True},
            headers=dan,
        )
        assert saved.status_code == 200, saved.text
        got = api.get(f"notices/{notice_id}", headers=dan).json()
        assert [v["follow_up"] for v in got["languages"]] == [REOPENED, None]
    data = shown(inst, notice_id)
    assert [(f["lang"], f["set"]) for f in data["follow_ups"]] == [("en", True), ("es", False)]
    publish_and_expire(inst, notice_id)
    assert follow_ups(inst, notice_id) == [("feed", "en", REOPENED, "published")]


def test_a_removed_follow_up_is_not_posted_at_expiry(site: Instance) -> None:
    """A draft with a follow-up in both languages: the API's remove_follow_up removes it in
    each (audited), notice show lists none, and at expiry nothing is posted or queued; the
    command line's --no-follow-up removes one alike."""
    inst = site
    by_api, by_cli = (drafted(inst, REOPENED, ABIERTA) for _ in "ab")
    dan = auth(token(inst, "dan"))
    with client(inst) as api:
        removed = api.post(
            f"notices/{by_api}/edit", json={"text": ROAD, "remove_follow_up": True}, headers=dan
        )
        assert removed.status_code == 200, removed.text
        got = api.get(f"notices/{by_api}", headers=dan).json()
        assert [v["follow_up"] for v in got["languages"]] == [None, None]
    done = edit_cli(inst, by_cli, "--no-follow-up")
    assert done.exit_code == 0, done.output
    for notice_id in (by_api, by_cli):
        assert shown(inst, notice_id)["follow_ups"] == []
        [detail] = edits(inst, notice_id)
        assert detail["follow_up_removed"] == ["en", "es"] and "follow_up" not in detail
    publish_and_expire(inst, by_api)
    assert follow_ups(inst, by_api) == []
    feed = inst.settings.feed_path("feed").read_text(encoding="utf-8")
    assert ROAD in feed and REOPENED not in feed and ABIERTA not in feed
    with inst.app.engine.connect() as conn:
        queued = conn.execute(
            sa.text("SELECT count(*) FROM audit_events WHERE action = 'follow-up-queued'")
        ).scalar()
    assert queued == 0


def test_bad_follow_up_edits_are_refused_naming_the_field(site: Instance, tmp_path: Path) -> None:
    """Each bad edit is one line naming the field, through the API (a problem pointing at
    it) and the command line alike, and the draft stays revision 1: an empty follow-up, one
    too long for the X account, one without an expiry to post it at, the Spanish missing,
    a removal of a follow-up the notice does not have, a removal with a Spanish follow-up,
    and a follow-up with its removal."""
    inst = site
    dan = auth(token(inst, "dan"))
    plain = drafted(inst, targets=("feed", "x-es"))
    followed = drafted(inst, REOPENED, ABIERTA)
    timeless = drafted(inst, expires=False)
    long = "Main St has reopened. " * 14
    es = {"follow_up": ABIERTA}
    spanish = languages_file(tmp_path, ABIERTA)
    cases: list[tuple[int, dict[str, Any], list[str], str, str]] = [
        (plain, {"follow_up": "  "}, ["--follow-up", " "], "#/follow_up", "text is empty"),
        (plain, {"follow_up": long}, ["--follow-up", long], "#/follow_up", "x allows 280"),
        (
            timeless,
            {"follow_up": REOPENED, "follow_up_partial": True},
            ["--follow-up", REOPENED, "--follow-up-partial"],
            "#/follow_up",
            "a follow-up is posted at expiry: the notice needs an expiry",
        ),
        (
            plain,
            {"follow_up": REOPENED},
            ["--follow-up", REOPENED],
            "#/languages/0/follow_up",
            "the follow-up has no es text",
        ),
        (
            plain,
            {"remove_follow_up": True},
            ["--no-follow-up"],
            "#/remove_follow_up",
            f"notice {plain} has no follow-up to remove",
        ),
        (
            followed,
            {"remove_follow_up": True, "languages": [{"lang": "es", "text": CALLE, **es}]},
            ["--no-follow-up", "--languages-file", str(spanish)],
            "#/languages/0/follow_up",
            "the follow-up is removed in every language; the languages give one in es",
        ),
        (
            followed,
            {"follow_up": REOPENED, "remove_follow_up": True},
            ["--follow-up", REOPENED, "--no-follow-up"],
            "#/remove_follow_up",
            "--follow-up and --no-follow-up",
        ),
    ]
    with client(inst) as api:
        for notice_id, body, args, pointer, said in cases:
            refused = api.post(
                f"notices/{notice_id}/edit", json={"text": ROAD, **body}, headers=dan
            )
            detail = problem_of(refused, 422)
            if not said.startswith("--"):
                assert said in detail, detail
            else:
                assert "remove it, not both" in detail, detail
            assert refused.json()["errors"][0]["pointer"] == pointer, refused.text
            cli = edit_cli(inst, notice_id, *args)
            assert cli.exit_code == 2, cli.output
            assert said in cli.output and len(cli.output.strip().splitlines()) == 1, cli.output
            if "has no es text" in said:  # how this door gives the Spanish one
                assert "--languages-file, or --follow-up-partial" in cli.output, cli.output
        for notice_id in (plain, followed, timeless):
            assert api.get(f"notices/{notice_id}", headers=dan).json()["revision"] == 1


def test_only_the_author_dispatcher_edits_a_draft_s_follow_up(site: Instance) -> None:
    """An approver adding a follow-up is refused (403, the command line exit 1), and so is
    an edit of an approved notice; neither changes the notice."""
    inst = site
    notice_id = drafted(inst)
    abe = auth(token(inst, "abe"))
    dan = auth(token(inst, "dan"))
    add = {"text": ROAD, "follow_up": REOPENED, "follow_up_partial": True}
    with client(inst) as api:
        refused = api.post(f"notices/{notice_id}/edit", json=add, headers=abe)
        assert "dispatcher" in problem_of(refused, 403)
        cli = edit_cli(inst, notice_id, "--follow-up", REOPENED, login="abe")
        assert cli.exit_code == 1 and "dispatcher" in cli.output, cli.output
        notices.approve(inst.app, ABE, notice_id)
        late = api.post(f"notices/{notice_id}/edit", json=add, headers=dan)
        assert "only a draft can be edited" in problem_of(late, late.status_code)
        assert late.status_code in (403, 409)
        cli = edit_cli(inst, notice_id, "--no-follow-up")
        assert cli.exit_code == 1 and "only a draft can be edited" in cli.output, cli.output
        shown_ = api.get(f"notices/{notice_id}", headers=dan).json()
    assert shown_["revision"] == 1 and shown_["state"] == "approved"
    assert shown_["languages"][0]["follow_up"] is None
