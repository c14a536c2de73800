"""An edit gives a draft's follow-up new text in its primary language, through every door
that edits follow-ups: the API's ``follow_up``, ``notice edit --follow-up`` and the
console's edit form make the same revision, audited; an empty follow-up, or one given to a
notice without an expiry, is refused naming the field and changes nothing. Against SQLite
and PostgreSQL, the console over a real uvicorn."""

from __future__ import annotations

import json

import sqlalchemy as sa

from bulletin.app import notices
from bulletin.publisher.notices import NoticeDraft
from tests.plugins.bulletin_app import Instance
from tests.plugins.cli import invoke
from tests.test_api import auth, client, problem_of, token
from tests.test_api_languages import bilingual_body, site
from tests.test_console import csrf_for, signed_in
from tests.test_console_compose_languages import CALLE, ROAD, notice_as_made
from tests.test_console_edit_languages import (
    ABIERTA,
    DANA,
    REOPENED,
    bilingual_draft,
    bilingual_site,
    field_of,
)
from tests.test_web import serving

__all__ = ["bilingual_site", "site"]  # fixtures used here

LATER = "Main St reopened at 5 pm."
SPANISH = {"text-in:es": CALLE, "follow-up-in:es": ABIERTA}


def test_the_api_and_the_command_line_change_the_primary_follow_up_alike(site: Instance) -> None:
    """Two like drafts, one edited through the API's follow_up, one with notice edit
    --follow-up: the same notice, its English follow-up new, the Spanish kept; the audit
    event names the new follow-up; notice show gives it."""
    dan = auth(token(site, "dan"))
    with client(site) as api:
        by_api, by_cli = (
            api.post("notices", json=bilingual_body(site), headers=dan).json()["id"] for _ in "ab"
        )
        edited = api.post(
            f"notices/{by_api}/edit", json={"text": ROAD, "follow_up": LATER}, headers=dan
        )
        assert edited.status_code == 200, edited.text
        shown = api.get(f"notices/{by_api}", headers=dan).json()
    assert shown["revision"] == 2
    assert [v["follow_up"] for v in shown["languages"]] == [LATER, ABIERTA]
    done = invoke(
        site,
        *("notice", "edit", str(by_cli), "--text", ROAD, "--follow-up", f"  {LATER} "),
        login="dan",
        clock=site.clock,
    )
    assert done.exit_code == 0, done.output
    assert notice_as_made(site, by_api) == notice_as_made(site, by_cli)
    with site.app.engine.connect() as conn:
        details = conn.execute(
            sa.text("SELECT detail FROM audit_events WHERE action = 'edited' ORDER BY id")
        ).scalars()
        assert [json.loads(d)["follow_up"] for d in details] == [LATER] * 2
    out = invoke(site, "notice", "show", str(by_cli), "--json", login="dan", clock=site.clock)
    assert out.exit_code == 0, out.output
    assert [f["text"] for f in json.loads(out.output)["follow_ups"]] == [LATER, ABIERTA]


def test_a_bad_follow_up_is_refused_naming_the_field(site: Instance) -> None:
    """An empty follow-up, and a follow-up given to a notice drafted without an expiry, are a
    422 problem pointing at follow_up (the command line refuses them in the same words);
    the drafts stay revision 1."""
    dan = auth(token(site, "dan"))
    with client(site) as api:
        bilingual = api.post("notices", json=bilingual_body(site), headers=dan).json()["id"]
        body = {"category": "road-closure", "text": ROAD, "targets": ["feed"]}
        without = api.post("notices", json=body, headers=dan).json()["id"]
        cases = [
            (bilingual, "  ", "the follow-up's text is empty"),
            (without, LATER, "a follow-up is posted at expiry: the notice needs an expiry"),
        ]
        for notice_id, follow_up, said in cases:
            refused = api.post(
                f"notices/{notice_id}/edit",
                json={"text": ROAD + " Detour on Elm.", "follow_up": follow_up},
                headers=dan,
            )
            detail = problem_of(refused, 422)
            assert said in detail, detail
            assert refused.json()["errors"][0]["pointer"] == "#/follow_up"
            cli = invoke(
                site,
                *("notice", "edit", str(notice_id), "--text", ROAD + " Elm."),
                *("--follow-up", follow_up),
                login="dan",
                clock=site.clock,
            )
            assert cli.exit_code == 2 and said in cli.output, cli.output
        for notice_id in (bilingual, without):
            shown = api.get(f"notices/{notice_id}", headers=dan).json()
            assert shown["revision"] == 1 and shown["text"] == ROAD


def test_the_console_edit_form_changes_the_primary_follow_up(bilingual_site: Instance) -> None:
    """The edit form shows the English follow-up beside the Spanish; saving a new one makes
    revision 2 with it; left empty it is refused (400) next to its field, tied to it, with
    what was typed kept. A notice without a follow-up has no such field."""
    inst = bilingual_site
    notice_id = bilingual_draft(inst.app)
    edit = f"/notices/{notice_id}/edit"
    plain = notices.draft(
        inst.app, DANA, NoticeDraft(category="road-closure", text=ROAD, targets=("feed",))
    ).notice.id
    with serving(inst.app) as url, signed_in(url, "dana") as dana:
        form = dana.get(edit).text
        assert 'name="follow-up" lang="en"' in field_of(form, "follow-up")
        assert f">{REOPENED}</textarea>" in form
        empty = dana.post(
            edit,
            data={
                "csrf": csrf_for(form, edit),
                "text": ROAD + " Elm.",
                "follow-up": " ",
                **SPANISH,
            },
        )
        assert empty.status_code == 400, empty.text
        tag = field_of(empty.text, "follow-up")
        assert 'aria-invalid="true"' in tag and "follow-up-error" in tag
        assert "The follow-up&#39;s text is empty" in empty.text
        saved = dana.post(
            edit, data={"csrf": csrf_for(form, edit), "text": ROAD, "follow-up": LATER, **SPANISH}
        )
        assert saved.status_code == 303, saved.text
        shown = dana.get(f"/notices/{notice_id}.json").json()
        other = dana.get(f"/notices/{plain}/edit").text
    assert 'id="text"' in other and 'id="follow-up"' not in other
    assert shown["revision"] == 2
    assert [v["follow_up"] for v in shown["languages"]] == [LATER, ABIERTA]
