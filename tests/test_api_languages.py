"""Notices in several languages through the HTTP API: a draft takes each other language as
an item of ``notice add --languages-file`` takes it (text, wording per account, alt text per
image, follow-up) and is the notice the command line makes; showing a notice gives its
languages; bad language input is a problem naming the field and makes nothing; a repeated
Idempotency-Key gives the first notice; scopes and roles still hold; the Spanish post reaches
the sandbox's X as a reply to the English. Against SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from bulletin.app import users
from bulletin.connectors.sandbox import SandboxServer
from bulletin.service.daemon import Daemon
from tests.plugins.bulletin_app import Instance
from tests.plugins.cli import invoke
from tests.plugins.sandbox import FAST_RETRY, FAST_TIMEOUT, Control, sandbox_accounts
from tests.test_api import PEOPLE, auth, client, count, problem_of, token
from tests.test_console_compose_languages import CALLE, CALLE_FEED, ROAD, notice_as_made
from tests.test_languages import LANGUAGES, bilingual_instance, run_all

REOPENED = "Main St has reopened."
ABIERTA = "La calle Main está abierta."
SPANISH = {"lang": "es", "text": CALLE, "text_for": {"feed-es": CALLE_FEED}, "follow_up": ABIERTA}


@pytest.fixture
def site(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """An agency writing English and Spanish (a feed posting both, a Spanish-only feed) with
    the people of the API's tests (dan a dispatcher, abe an approver)."""
    inst = bilingual_instance(tmp_path, db_url, LANGUAGES + PEOPLE)
    users.seed(inst.app)
    yield inst
    inst.app.close()


def bilingual_body(inst: Instance, **more: Any) -> dict[str, Any]:
    """A road closure in English and Spanish to both feeds, with a follow-up in each."""
    expires = inst.clock.now() + timedelta(hours=2)
    return {
        "category": "road-closure",
        "text": ROAD,
        "targets": ["feed", "feed-es"],
        "expires_at": expires.isoformat(),
        "follow_up": REOPENED,
        "languages": [SPANISH],
        **more,
    }


def test_a_bilingual_notice_from_the_api_is_the_one_the_command_line_makes(site: Instance) -> None:
    """POST /notices with languages makes the notice notice add --languages-file makes from
    the same JSON; the answer and GET /notices/{id} show its languages, the primary first."""
    body = bilingual_body(site)
    with client(site) as api:
        made = api.post("notices", json=body, headers=auth(token(site, "dan")))
        assert made.status_code == 201, made.text
        drafted = made.json()
        shown = api.get(f"notices/{drafted['id']}", headers=auth(token(site, "abe")))
        assert shown.status_code == 200, shown.text
    expected = [
        {"lang": "en", "text": ROAD, "text_for": {}, "alts": [], "follow_up": REOPENED},
        {"lang": "es", "text": CALLE, "text_for": {"feed-es": CALLE_FEED}, "alts": []}
        | {"follow_up": ABIERTA},
    ]
    assert drafted["lang"] == "en" and drafted["languages"] == expected
    assert shown.json()["lang"] == "en" and shown.json()["languages"] == expected
    assert sorted((d["account"], d["state"]) for d in shown.json()["deliveries"]) == [
        ("feed", "pending"),
        ("feed", "pending"),
        ("feed-es", "pending"),
    ]

    variants = site.data_dir.parent / "variants.json"
    variants.write_text(json.dumps([SPANISH]), encoding="utf-8")
    added = invoke(
        site,
        *("notice", "add", "--category", "road-closure", "--target", "feed"),
        *("--target", "feed-es", "--text", ROAD, "--languages-file", str(variants)),
        *("--expires", body["expires_at"], "--follow-up", REOPENED, "--json"),
        login="dan",
        clock=site.clock,
    )
    assert added.exit_code == 0, added.output
    from_cli = json.loads(added.stdout)["id"]
    assert notice_as_made(site, drafted["id"]) == notice_as_made(site, from_cli)


# (what is sent, the pointer to the field, what the detail says after the field's name)
BAD: list[tuple[dict[str, Any], str, str]] = [
    (
        {"languages": [{**SPANISH, "lang": "fr"}]},
        "#/languages/0/lang",
        "language fr is not one of the agency's languages (en, es; [agency] languages)",
    ),
    (
        {"languages": [{**SPANISH, "lang": "not a tag"}]},
        "#/languages/0/lang",
        "'not a tag' is not a BCP 47 language tag",
    ),
    ({"languages": [SPANISH, SPANISH]}, "#/languages/1/lang", "language es is given twice"),
    ({"languages": [{**SPANISH, "lang": "EN"}]}, "#/languages/0/lang", "language en is given"),
    ({"lang": "fr"}, "#/lang", "language fr is not one of the agency's languages"),
    (
        {"languages": [{**SPANISH, "alts": ["Mapa de la calle Main."]}]},
        "#/languages/0/alts",
        "the es alt texts: 1 given for 0 image(s)",
    ),
    ({"languages": [{**SPANISH, "text": "  "}]}, "#/languages/0/text", "the es text is empty"),
    (
        {"languages": [{**SPANISH, "text_for": {"feed-es": "Calle\u202e cerrada"}}]},
        "#/languages/0/text_for/feed-es",
        "the es text for feed-es",
    ),
    (
        {"languages": [{**SPANISH, "follow_up": None}]},
        "#/languages/0/follow_up",
        "the follow-up has no es text",
    ),
    (
        {"follow_up": None},
        "#/follow_up",
        "the es follow-up needs a follow-up in the primary language (en) too",
    ),
    (
        {"languages": [{**SPANISH, "wording": {"x": CALLE}}]},
        "#/languages/0/wording",
        "Extra inputs are not permitted",
    ),
]


@pytest.mark.parametrize(
    ("change", "where", "said"), BAD, ids=[b[1] + "-" + b[2][:12] for b in BAD]
)
def test_bad_language_input_is_a_problem_naming_the_field(
    site: Instance, change: dict[str, Any], where: str, said: str
) -> None:
    """Each mistake is a 422 problem whose detail opens with the field (as a request
    validation error's does) and whose ``errors`` point at it; no notice is made."""
    with client(site) as api:
        refused = api.post(
            "notices", json=bilingual_body(site, **change), headers=auth(token(site, "dan"))
        )
    detail = problem_of(refused, 422)
    name = where.removeprefix("#/").replace("/", ".")
    assert detail.startswith(f"{name}: ") and said in detail, detail
    assert refused.json()["errors"] == [{"detail": detail, "pointer": where}]
    assert count(site, "notices") == 0 and count(site, "notice_languages") == 0


def test_the_command_line_refuses_the_same_languages_in_the_same_words(site: Instance) -> None:
    """The API's detail after the field's name is the command line's message for the same
    languages file: the rule is the application layer's, once."""
    spanish_twice = [SPANISH, SPANISH]
    with client(site) as api:
        refused = api.post(
            "notices",
            json=bilingual_body(site, languages=spanish_twice),
            headers=auth(token(site, "dan")),
        )
    detail = problem_of(refused, 422)
    variants = site.data_dir.parent / "twice.json"
    variants.write_text(json.dumps(spanish_twice), encoding="utf-8")
    added = invoke(
        site,
        *("notice", "add", "--category", "road-closure", "--target", "feed", "--text", ROAD),
        *("--languages-file", str(variants)),
        login="dan",
        clock=site.clock,
    )
    assert added.exit_code == 2
    assert detail.removeprefix("languages.1.lang: ") in added.output


def test_a_repeated_idempotency_key_gives_the_first_bilingual_notice(site: Instance) -> None:
    """The same key and body: the first notice again, languages and all, and one notice made;
    the same key with other languages is refused."""
    dan = token(site, "dan")
    body = bilingual_body(site)
    with client(site) as api:
        key = {"Idempotency-Key": "cad-4711", **auth(dan)}
        first = api.post("notices", json=body, headers=key)
        again = api.post("notices", json=body, headers=key)
        other = {**body, "languages": [{**SPANISH, "text": CALLE + " Desvío por Elm."}]}
        reused = api.post("notices", json=other, headers=key)
    assert first.status_code == 201 and again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["languages"] == first.json()["languages"]
    assert [v["lang"] for v in again.json()["languages"]] == ["en", "es"]
    assert "idempotency key" in problem_of(reused, 422).lower()
    assert count(site, "notices") == 1 and count(site, "notice_languages") == 1


def test_scopes_and_roles_still_decide_who_drafts(site: Instance) -> None:
    """A token without notices:write, and an approver's token with it, are refused; a token
    with notices:read alone still shows the languages."""
    with client(site) as api:
        reader = auth(token(site, "dan", "notices:read"))
        no_scope = api.post("notices", json=bilingual_body(site), headers=reader)
        assert "notices:write" in problem_of(no_scope, 403)
        not_dispatcher = api.post(
            "notices", json=bilingual_body(site), headers=auth(token(site, "abe"))
        )
        assert "dispatcher" in problem_of(not_dispatcher, 403)
        assert count(site, "notices") == 0
        made = api.post("notices", json=bilingual_body(site), headers=auth(token(site, "dan")))
        shown = api.get(f"notices/{made.json()['id']}", headers=reader)
    assert [v["lang"] for v in shown.json()["languages"]] == ["en", "es"]


def test_the_schema_documents_the_languages(site: Instance) -> None:
    """openapi.json: a language item with a description and an example per field, taken by
    a new notice and given back by a shown one; problems may point at a field."""
    with client(site) as api:
        spec = api.get("openapi.json").json()
    schemas = spec["components"]["schemas"]
    item = schemas["LanguageIn"]
    assert item["additionalProperties"] is False and item["examples"]
    for name in ("lang", "text", "text_for", "alts", "follow_up"):
        assert item["properties"][name]["description"] and item["properties"][name]["examples"]
    new = schemas["NewNotice"]["properties"]
    assert new["languages"]["items"] == {"$ref": "#/components/schemas/LanguageIn"}
    assert new["lang"]["description"] and new["follow_up"]["description"]
    shown = schemas["NoticeDetail"]["properties"]["languages"]
    assert shown["items"] == {"$ref": "#/components/schemas/LanguageOut"}
    answers = spec["paths"]["/notices"]["post"]["responses"]["422"]["content"]
    errors = answers["application/problem+json"]["schema"]["properties"]["errors"]
    assert "$defs" not in json.dumps(answers)  # no reference into a missing #/$defs
    assert "pointer" in json.dumps(errors)


@pytest.fixture
def bilingual_x(tmp_path: Path, db_url: str, sandbox: SandboxServer) -> Iterator[Instance]:
    """The bilingual agency with the sandbox's X account (posting both languages, the Spanish
    as a reply) and the API's people."""
    inst = bilingual_instance(tmp_path, db_url, sandbox_accounts(sandbox.url) + PEOPLE)
    inst.clock.set(datetime.now(UTC))  # the sandbox stamps posts with the wall clock
    inst.app.connector_options = {"retry": FAST_RETRY, "timeout": FAST_TIMEOUT}
    users.seed(inst.app)
    Daemon(inst.app).prepare()
    yield inst
    inst.app.close()


def test_the_spanish_post_reaches_the_sandbox_as_a_reply(
    bilingual_x: Instance, control: Control
) -> None:
    """Drafted and approved through the API, the notice goes out to the sandbox's X as the
    English post and the Spanish text (its own X wording) in reply to it."""
    inst = bilingual_x
    spanish = {"lang": "es", "text": CALLE, "text_for": {"x": CALLE_FEED}}
    body = {"category": "road-closure", "text": ROAD, "targets": ["x"], "languages": [spanish]}
    abe = auth(token(inst, "abe"))
    with client(inst) as api:
        made = api.post("notices", json=body, headers=auth(token(inst, "dan")))
        assert made.status_code == 201, made.text
        notice_id = made.json()["id"]
        approved = api.post(f"notices/{notice_id}/approve", headers=abe)
        assert approved.status_code == 200, approved.text
        assert "published" in run_all(inst)
        shown = api.get(f"notices/{notice_id}", headers=abe).json()
    tweets = control.get("state")["x"]["tweets"]
    by_text = {t["text"]: t for t in tweets.values()}
    assert set(by_text) == {ROAD, CALLE_FEED}, by_text.keys()
    english, reply = by_text[ROAD], by_text[CALLE_FEED]
    assert reply["referenced_tweets"] == [{"type": "replied_to", "id": english["id"]}]
    posted = {
        d["lang"]: (d["state"], d["remote_url"].rsplit("/", 1)[1]) for d in shown["deliveries"]
    }
    assert posted == {"en": ("published", english["id"]), "es": ("published", reply["id"])}


CALLE_ELM = "Calle Main cerrada entre la 1 y la 2 hasta las 6 pm. Desvío por Elm."
ELM_FEED = "Calle Main cerrada hasta las 6 pm; desvío por Elm."


def test_an_edit_gives_the_other_languages_anew_as_the_command_line_does(
    site: Instance,
) -> None:
    """Two like drafts, one edited through the API with its Spanish anew, one with notice edit
    --languages-file: the same notice; the Spanish posts carry the new text, the revision is
    new, and the audit event names what changed. An edit without languages keeps them."""
    dan = auth(token(site, "dan"))
    body = bilingual_body(site)
    spanish = {**SPANISH, "text": CALLE_ELM, "text_for": {"feed-es": ELM_FEED}}
    with client(site) as api:
        by_api, by_cli = (api.post("notices", json=body, headers=dan).json()["id"] for _ in "ab")
        edited = api.post(
            f"notices/{by_api}/edit", json={"text": ROAD, "languages": [spanish]}, headers=dan
        )
        assert edited.status_code == 200, edited.text
        assert edited.json()["revision"] == 2
        shown = api.get(f"notices/{by_api}", headers=dan).json()
    assert shown["languages"][1] == {**spanish, "alts": []}
    assert sorted((d["account"], d["lang"], d["state"]) for d in shown["deliveries"]) == [
        ("feed", "en", "pending"),
        ("feed", "es", "pending"),
        ("feed-es", "es", "pending"),
    ]
    variants = site.data_dir.parent / "elm.json"
    variants.write_text(json.dumps([spanish]), encoding="utf-8")
    done = invoke(
        site,
        *("notice", "edit", str(by_cli), "--text", ROAD, "--languages-file", str(variants)),
        login="dan",
        clock=site.clock,
    )
    assert done.exit_code == 0, done.output
    made = notice_as_made(site, by_api)
    assert made == notice_as_made(site, by_cli)
    assert ("feed-es", "es", "post", "pending", ELM_FEED) in made["deliveries"]
    assert ("feed", "es", "post", "pending", CALLE_ELM) in made["deliveries"]
    with site.app.engine.connect() as conn:
        details = conn.execute(
            sa.text("SELECT detail FROM audit_events WHERE action = 'edited' ORDER BY id")
        ).scalars()
        assert [json.loads(d)["languages"] for d in details] == [{"es": CALLE_ELM}] * 2
    with client(site) as api:
        again = api.post(f"notices/{by_api}/edit", json={"text": ROAD + " Use Elm."}, headers=dan)
        assert again.status_code == 200, again.text
        kept = api.get(f"notices/{by_api}", headers=dan).json()["languages"]
    assert kept[1] == shown["languages"][1]


def test_an_edit_keeps_the_rules_of_the_notices_languages(site: Instance) -> None:
    """An edit dropping the language an account posts only, adding one without the
    follow-up the notice's other languages have, dropping the Spanish follow-up, giving an
    unknown tag or an empty text is a 422 problem naming the field; the drafts stay as they
    were."""
    dan = auth(token(site, "dan"))
    with client(site) as api:
        bilingual = api.post("notices", json=bilingual_body(site), headers=dan).json()["id"]
        english = api.post(
            "notices",
            json={**bilingual_body(site), "targets": ["feed"], "languages": []},
            headers=dan,
        ).json()["id"]
        cases = [
            (bilingual, [], "#/languages", "target account 'feed-es' posts only es"),
            (
                english,
                [{**SPANISH, "follow_up": None}],
                "#/languages/0/follow_up",
                "the follow-up has no es text",
            ),
            (
                bilingual,
                [{**SPANISH, "follow_up": None}],
                "#/languages/0/follow_up",
                "the follow-up has no es text",
            ),
            (bilingual, [{**SPANISH, "lang": "fr"}], "#/languages/0/lang", "language fr is not"),
            (bilingual, [{**SPANISH, "text": ""}], "#/languages/0/text", "the es text is empty"),
        ]
        for notice_id, languages, where, said in cases:
            refused = api.post(
                f"notices/{notice_id}/edit",
                json={"text": ROAD + " Detour on Elm.", "languages": languages},
                headers=dan,
            )
            detail = problem_of(refused, 422)
            assert said in detail and refused.json()["errors"][0]["pointer"] == where, detail
        shown = api.get(f"notices/{bilingual}", headers=dan).json()
        alone = api.get(f"notices/{english}", headers=dan).json()
    assert shown["revision"] == 1 and shown["text"] == ROAD
    assert shown["languages"][1]["text"] == CALLE
    assert alone["revision"] == 1 and [v["lang"] for v in alone["languages"]] == ["en"]


def test_an_edit_adds_and_drops_a_language_until_a_post_is_published(site: Instance) -> None:
    """An English draft to the feed posting every language (the others as replies) and to
    the one posting them apart: an edit through the API adds the Spanish, a post on each
    (the feed's a reply to its English post); notice edit --languages-file with none drops
    it again, its posts ending cancelled; the audit trail names both. Once a post of a notice is
    published, an edit adding or dropping a language is refused (403) and changes
    nothing."""
    dan = auth(token(site, "dan"))
    english = {"category": "road-closure", "text": ROAD, "targets": ["feed", "feed-apart"]}
    with client(site) as api:
        notice_id = api.post("notices", json=english, headers=dan).json()["id"]
        added = api.post(
            f"notices/{notice_id}/edit",
            json={"text": ROAD, "languages": [{"lang": "es", "text": CALLE}]},
            headers=dan,
        )
        assert added.status_code == 200, added.text
        shown = api.get(f"notices/{notice_id}", headers=dan).json()
    assert shown["revision"] == 2
    assert [(v["lang"], v["text"]) for v in shown["languages"]] == [("en", ROAD), ("es", CALLE)]
    assert sorted((d["account"], d["lang"], d["state"]) for d in shown["deliveries"]) == [
        ("feed", "en", "pending"),
        ("feed", "es", "pending"),
        ("feed-apart", "en", "pending"),
        ("feed-apart", "es", "pending"),
    ]
    with site.app.engine.connect() as conn:
        parents: dict[str, str | None] = dict(
            conn.execute(
                sa.text(
                    "SELECT d.account, p.lang FROM deliveries d LEFT JOIN deliveries p "
                    "ON p.id = d.parent_id WHERE d.notice_id = :n AND d.lang = 'es'"
                ),
                {"n": notice_id},
            ).all()
        )
    assert parents == {"feed": "en", "feed-apart": None}
    none = site.data_dir.parent / "none.json"
    none.write_text("[]", encoding="utf-8")
    done = invoke(
        site,
        *("notice", "edit", str(notice_id), "--text", ROAD, "--languages-file", str(none)),
        login="dan",
        clock=site.clock,
    )
    assert done.exit_code == 0, done.output
    made = notice_as_made(site, notice_id)
    assert [v["lang"] for v in made["languages"]] == ["en"] and made["notice"]["revision"] == 3
    assert [(d[0], d[1], d[3]) for d in made["deliveries"]] == [
        ("feed", "en", "pending"),
        ("feed-apart", "en", "pending"),
        ("feed", "es", "cancelled"),  # kept, never deleted: their ids are not handed out again
        ("feed-apart", "es", "cancelled"),
    ]
    with site.app.engine.connect() as conn:
        details = conn.execute(
            sa.text("SELECT detail FROM audit_events WHERE action = 'edited' ORDER BY id")
        ).scalars()
        assert [
            (json.loads(d).get("languages"), json.loads(d).get("dropped")) for d in details
        ] == [({"es": CALLE}, None), (None, ["es"])]
    with client(site) as api:
        bilingual = api.post("notices", json=bilingual_body(site), headers=dan).json()["id"]
        with site.app.engine.begin() as conn:  # as if its English post on the feed went out
            conn.execute(
                sa.text(
                    "UPDATE deliveries SET state = 'published' WHERE notice_id = :n "
                    "AND account = 'feed' AND lang = 'en'"
                ),
                {"n": bilingual},
            )
        refused = api.post(
            f"notices/{bilingual}/edit", json={"text": ROAD, "languages": []}, headers=dan
        )
        assert "has a published post (feed)" in problem_of(refused, 403)
        kept = api.get(f"notices/{bilingual}", headers=dan).json()
    assert kept["revision"] == 1 and [v["lang"] for v in kept["languages"]] == ["en", "es"]
