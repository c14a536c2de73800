"""A language an edit drops from a draft: its posts end cancelled, never deleted, so that no
delivery id the API showed is handed out again (SQLite's ``deliveries`` ids included), to a
new notice or to the language added back; the daemon never claims them, the notice is
published once its other posts are, and every door (the API, ``notice show``, the console)
leaves them out. Against SQLite and PostgreSQL; the posts go to the sandbox's X."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from bulletin.app import notices
from tests.plugins.bulletin_app import Instance
from tests.plugins.cli import invoke
from tests.plugins.sandbox import Control
from tests.test_api import auth, client, token
from tests.test_api_languages import bilingual_x, site
from tests.test_console import signed_in
from tests.test_console_compose_languages import CALLE, ROAD
from tests.test_console_edit_languages import DANA, bilingual_draft, bilingual_site
from tests.test_languages import run_all
from tests.test_web import serving

__all__ = ["bilingual_site", "bilingual_x", "site"]  # fixtures used here

DROPPED = "language es dropped by edit"


def rows(inst: Instance, notice_id: int) -> list[tuple[int, str, str, str, str | None, int]]:
    """(id, account, lang, state, last_error, dropped_in) of each delivery of the notice."""
    with inst.app.engine.connect() as conn:
        return [
            (r[0], r[1], r[2], r[3], r[4], r[5])
            for r in conn.execute(
                sa.text(
                    "SELECT id, account, lang, state, last_error, dropped_in FROM deliveries "
                    "WHERE notice_id = :n ORDER BY id"
                ),
                {"n": notice_id},
            )
        ]


def all_ids(inst: Instance) -> set[int]:
    with inst.app.engine.connect() as conn:
        return set(conn.execute(sa.text("SELECT id FROM deliveries")).scalars())


def edit_languages(api: Any, who: dict[str, str], notice_id: int, languages: list[Any]) -> None:
    done = api.post(
        f"notices/{notice_id}/edit", json={"text": ROAD, "languages": languages}, headers=who
    )
    assert done.status_code == 200, done.text


def test_a_dropped_languages_delivery_ids_are_never_handed_out_again(site: Instance) -> None:
    """The Spanish posts hold the highest delivery ids; dropped, they stay as cancelled
    (why in last_error, the edit's audit event naming them) and the API shows the English
    only. A new notice, then the Spanish added back (twice, dropped between) get ids above
    every id seen before."""
    dan = auth(token(site, "dan"))
    body = {
        "category": "road-closure",
        "text": ROAD,
        "targets": ["feed", "feed-apart"],
        "languages": [{"lang": "es", "text": CALLE}],
    }
    with client(site) as api:
        made = api.post("notices", json=body, headers=dan)
        assert made.status_code == 201, made.text
        notice_id = made.json()["id"]
        seen = {d["id"] for d in api.get(f"notices/{notice_id}", headers=dan).json()["deliveries"]}
        assert seen == all_ids(site)
        spanish = {i for i, _, lang, *_ in rows(site, notice_id) if lang == "es"}
        assert max(seen) in spanish and len(spanish) == 2
        edit_languages(api, dan, notice_id, [])
        shown = api.get(f"notices/{notice_id}", headers=dan).json()
        assert [(d["account"], d["lang"]) for d in shown["deliveries"]] == [
            ("feed", "en"),
            ("feed-apart", "en"),
        ]
        kept = [r for r in rows(site, notice_id) if r[0] in spanish]
        assert [r[3:] for r in kept] == [("cancelled", DROPPED, 2)] * 2
        with site.app.engine.connect() as conn:
            detail = conn.execute(
                sa.text("SELECT detail FROM audit_events WHERE action = 'edited'")
            ).scalar_one()
        assert json.loads(detail)["dropped"] == ["es"]
        assert json.loads(detail)["cancelled"] == sorted(spanish)
        other = api.post("notices", json={**body, "languages": []}, headers=dan)
        assert other.status_code == 201, other.text
        shown = api.get(f"notices/{other.json()['id']}", headers=dan).json()
        new = {d["id"] for d in shown["deliveries"]}
        assert len(new) == 2 and min(new) > max(seen), (new, seen)
        seen |= new
        for revision in (3, 5):
            edit_languages(api, dan, notice_id, [{"lang": "es", "text": CALLE}])
            back = api.get(f"notices/{notice_id}", headers=dan).json()["deliveries"]
            added = {d["id"] for d in back if d["lang"] == "es"}
            assert len(added) == 2 and min(added) > max(seen), (added, seen)
            assert all(d["state"] == "pending" for d in back)
            seen |= added
            edit_languages(api, dan, notice_id, [])
            ended = {r[0]: r[3:] for r in rows(site, notice_id)}
            assert {ended[i] for i in added} == {("cancelled", DROPPED, revision + 1)}
    assert all_ids(site) == seen


def test_the_daemon_never_claims_a_dropped_languages_posts(
    bilingual_x: Instance, control: Control
) -> None:
    """On the sandbox's X (the Spanish a reply to the English): a notice whose Spanish was
    dropped goes out in English alone and is published; one whose Spanish was dropped and
    added back goes out in both. The cancelled posts are never claimed (no attempt) nor
    posted, and stay cancelled; notice show leaves them out."""
    inst = bilingual_x
    dan, abe = auth(token(inst, "dan")), auth(token(inst, "abe"))
    later = " Second notice."
    spanish = {"lang": "es", "text": CALLE}
    with client(inst) as api:
        ids = []
        for extra in ("", later):
            body = {
                "category": "road-closure",
                "text": ROAD + extra,
                "targets": ["x"],
                "languages": [{**spanish, "text": CALLE + extra}],
            }
            made = api.post("notices", json=body, headers=dan)
            assert made.status_code == 201, made.text
            ids.append(made.json()["id"])
        alone, both = ids
        edit_languages(api, dan, alone, [])
        done = api.post(
            f"notices/{both}/edit", json={"text": ROAD + later, "languages": []}, headers=dan
        )
        assert done.status_code == 200, done.text
        done = api.post(
            f"notices/{both}/edit",
            json={"text": ROAD + later, "languages": [{**spanish, "text": CALLE + later}]},
            headers=dan,
        )
        assert done.status_code == 200, done.text
        dropped = [r[0] for n in ids for r in rows(inst, n) if r[3] == "cancelled"]
        assert len(dropped) == 2
        for notice_id in ids:
            approved = api.post(f"notices/{notice_id}/approve", headers=abe)
            assert approved.status_code == 200, approved.text
        assert run_all(inst).count("published") == 3
        shown = {n: api.get(f"notices/{n}", headers=abe).json() for n in ids}
    assert {n: s["state"] for n, s in shown.items()} == {alone: "published", both: "published"}
    assert [(d["lang"], d["state"]) for d in shown[alone]["deliveries"]] == [("en", "published")]
    assert sorted((d["lang"], d["state"]) for d in shown[both]["deliveries"]) == [
        ("en", "published"),
        ("es", "published"),
    ]
    tweets = control.get("state")["x"]["tweets"].values()
    assert sorted(t["text"] for t in tweets) == sorted([ROAD, ROAD + later, CALLE + later])
    with inst.app.engine.connect() as conn:
        ended = conn.execute(
            sa.text("SELECT state, attempts, remote_id FROM deliveries WHERE id IN (:a, :b)"),
            {"a": dropped[0], "b": dropped[1]},
        ).all()
        tried = conn.execute(
            sa.text("SELECT count(*) FROM delivery_attempts WHERE delivery_id IN (:a, :b)"),
            {"a": dropped[0], "b": dropped[1]},
        ).scalar_one()
    assert [tuple(r) for r in ended] == [("cancelled", 0, None)] * 2 and tried == 0
    out = invoke(inst, "notice", "show", str(alone), "--json", login="abe", clock=inst.clock)
    assert out.exit_code == 0, out.output
    view = json.loads(out.output)
    assert [(d["lang"], d["state"]) for d in view["deliveries"]] == [("en", "published")]
    text = invoke(inst, "notice", "show", str(alone), login="abe", clock=inst.clock)
    assert text.exit_code == 0 and "cancelled" not in text.output, text.output


def test_the_console_leaves_a_dropped_language_out(bilingual_site: Instance) -> None:
    """After an edit drops the Spanish of a draft with a follow-up in each language, the
    console's notice page lists the English posts and follow-up only: no Spanish delivery,
    nothing cancelled."""
    inst = bilingual_site
    notice_id = bilingual_draft(inst.app, ("feed", "feed-apart"))
    notices.edit(inst.app, DANA, notice_id, ROAD, [])
    assert sorted(r[3] for r in rows(inst, notice_id)) == ["cancelled"] * 2 + ["pending"] * 2
    with serving(inst.app) as url, signed_in(url, "dana") as dana:
        page = dana.get(f"/notices/{notice_id}")
        assert page.status_code == 200, page.text
    table = page.text.split('id="deliveries-heading"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r'<th scope="row">([^<]*)</th>', table) == ["feed", "feed-apart"]
    assert "cancelled" not in table and "[es]" not in table


def test_upgrade_keeps_deliveries_and_never_hands_an_id_out_again(db_url: str) -> None:
    """A database at 0033 with a notice's posts (one tried) upgrades keeping them, none
    dropped; a delivery id once taken is not taken again even after its row is gone (on
    SQLite the table is AUTOINCREMENT now); the key holds for posts not dropped and lets a
    dropped one stand beside the language added back."""
    from alembic import command

    from bulletin.db import SCHEMA_REVISION, _alembic_config, check_schema, make_engine, migrate

    engine = make_engine(db_url)
    insert = (
        "INSERT INTO deliveries (notice_id, account, occurrence, kind, revision, state, "
        "attempts, lang) VALUES (7, 'feed', 1, 'post', 0, 'pending', 0, '{lang}')"
    )
    try:
        command.upgrade(_alembic_config(engine), "0033")
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO accounts (name, platform, base_url, training, enabled) "
                "VALUES ('feed', 'feed', '', false, true)"
            )
            conn.exec_driver_sql(
                "INSERT INTO notices (id, category, priority, title, text, state, author, "
                "created_at, approvals_needed, allow_thread, date_line, occurrences, revision, "
                "lang, publish_partial) VALUES (7, 'road-closure', 'advisory', '', 'Road closed', "
                "'draft', 'dan', '2026-03-01 00:00:00', 1, false, true, 1, 1, 'en', false)"
            )
            for lang in ("en", "es", "fr"):
                conn.exec_driver_sql(insert.format(lang=lang))
            conn.exec_driver_sql(
                "INSERT INTO delivery_attempts (delivery_id, owner, started_at) "
                "VALUES (1, 'w', '2026-03-01 00:00:00')"
            )
        assert migrate(engine) == SCHEMA_REVISION
        check_schema(engine)
        with engine.begin() as conn:
            kept = conn.exec_driver_sql(
                "SELECT id, lang, dropped_in FROM deliveries ORDER BY id"
            ).all()
            assert [tuple(r) for r in kept] == [(1, "en", 0), (2, "es", 0), (3, "fr", 0)]
            assert conn.exec_driver_sql("SELECT delivery_id FROM delivery_attempts").all() == [(1,)]
            conn.exec_driver_sql("DELETE FROM deliveries WHERE id = 3")
            conn.exec_driver_sql("UPDATE deliveries SET dropped_in = 2 WHERE id = 2")
            conn.exec_driver_sql(insert.format(lang="es"))
            ids = conn.exec_driver_sql("SELECT id FROM deliveries ORDER BY id").scalars().all()
            assert ids == [1, 2, 4]
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.exec_driver_sql(insert.format(lang="es"))
    finally:
        engine.dispose()


def test_a_recurring_notice_goes_on_without_the_dropped_language(site: Instance) -> None:
    """A daily tip in English and Spanish on the feed posting both: the Spanish dropped
    before approval, each occurrence is posted in English alone, the dropped post stays
    cancelled and unclaimed."""
    from bulletin.publisher import revisions
    from bulletin.publisher.approval import approve_notice
    from bulletin.publisher.languages import LanguageVariant
    from bulletin.publisher.notices import NoticeDraft, create_notice
    from bulletin.service.daemon import Daemon
    from tests.test_scheduling import TIP, local

    site.clock.set(local("2026-12-01T08:00"))
    draft = NoticeDraft(
        category="crime-prevention",
        text=TIP,
        targets=("feed",),
        recurrence="daily;at=09:00",
        until_cancelled=True,
        languages=[LanguageVariant("es", "Cierre su auto con llave.")],
    )
    notice = create_notice(site.app.engine, site.settings, site.clock, draft, "dan")
    assert notice.id is not None
    revisions.edit(site.app.engine, site.settings, site.clock.now(), notice.id, "dan", TIP, [])
    approve_notice(site.app.engine, site.settings, site.clock, notice.id, "abe")
    daemon = Daemon(site.app)
    daemon.prepare()
    for day in (1, 2):
        site.clock.set(local(f"2026-12-0{day}T09:00:05"))
        daemon.dispatch_due()
    with site.app.engine.connect() as conn:
        made = conn.execute(
            sa.text(
                "SELECT occurrence, lang, state, attempts FROM deliveries "
                "WHERE notice_id = :n ORDER BY id"
            ),
            {"n": notice.id},
        ).all()
    assert [tuple(r) for r in made] == [
        (1, "en", "published", 1),
        (1, "es", "cancelled", 0),
        (2, "en", "published", 1),
    ]
