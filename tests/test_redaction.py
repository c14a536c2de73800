"""Redaction: `bulletin redact`, public and counsel productions, the redaction log."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from pathlib import Path

import bagit
import pytest
from sqlmodel import Session, col, select

from bulletin.archiver import redaction
from bulletin.archiver.export import verify_bundle
from bulletin.archiver.store.base import object_key
from bulletin.archiver.verify import verify
from bulletin.cli import error_line
from bulletin.cli.redact import parse_span
from bulletin.config import load_settings
from bulletin.errors import ConfigError, NotFound, Refused, UsageError
from bulletin.models import AuditEvent, Record
from tests.plugins.bulletin_app import Instance
from tests.plugins.cli import run
from tests.test_export import comment, dat_rows, export, post, records_of

SECRET = "555-0142"
PHONE_TEXT = f"Call my cell {SECRET} if you see him"
LABEL = "G.L. c.4 §7(26)(c)"
LOG_HEADER = '"bates","record_id","version","redaction_id","characters","exemption"'


def record_of(inst: Instance, remote_id: str, version: int = 1) -> Record:
    with Session(inst.app.engine) as session:
        found = session.exec(
            select(Record).where(Record.remote_id == remote_id, Record.version == version)
        ).one()
        session.expunge(found)
    return found


def add(
    inst: Instance,
    record: Record,
    start: int,
    end: int,
    *,
    code: str = "26c",
    reason: str = "private phone number of a resident",
    all_versions: bool = False,
) -> redaction.Added:
    assert record.id is not None
    return redaction.add(
        inst.app.engine,
        inst.settings,
        record.id,
        spans=[(start, end)],
        code=code,
        reason=reason,
        actor="clerk1",
        now=inst.clock.now(),
        store=inst.app.store,
        all_versions=all_versions,
    )


def every_byte(bag: Path) -> bytes:
    """Every file of a bag, concatenated (zip members decompressed)."""
    blobs = []
    for path in sorted(bag.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            blobs.append(data)
            if path.suffix == ".zip":
                with zipfile.ZipFile(path) as archive:
                    blobs += [archive.read(name) for name in archive.namelist()]
    return b"\n".join(blobs)


def forms(text: str) -> list[bytes]:
    """The ways ``text`` could appear in a file: UTF-8, JSON-escaped, HTML-escaped."""
    escaped = json.dumps(text)[1:-1]
    return [text.encode(), escaped.encode(), text.replace("-", "&#45;").encode()]


@pytest.fixture
def thread(instance: Instance) -> Instance:
    """A post and three comments; c2 carries a phone number, edited once (both versions)."""
    archiver = instance.app.archiver
    archiver.archive([post("p1", "Missing: Tom, 82, last seen near the common")])
    archiver.archive(
        [
            comment("c1", "p1", 5, text="Praying he is found"),
            comment("c2", "p1", 6, text=PHONE_TEXT),
            comment("c3", "p1", 7, text="شوهد قرب المكتبة 🚓"),
        ]
    )
    archiver.archive([comment("c2", "p1", 6, text=PHONE_TEXT + " tonight")])
    return instance


# -- spans -------------------------------------------------------------------------------------


def test_span_outside_the_text_is_refused_with_one_line(thread: Instance) -> None:
    record = record_of(thread, "c1")
    with pytest.raises(UsageError) as caught:
        add(thread, record, 5, 500)
    assert "outside record" in str(caught.value) and "\n" not in str(caught.value)
    for bad in ("5", "a:b", "9:3", "-1:4", "4:4"):
        with pytest.raises(UsageError, match="--span"):
            parse_span(bad)
    assert redaction.listing(thread.app.engine) == []


def test_overlapping_spans_are_refused_adjacent_ones_allowed(thread: Instance) -> None:
    record = record_of(thread, "c2")
    start = PHONE_TEXT.index(SECRET)
    first = add(thread, record, start, start + 3).redactions[0]
    with pytest.raises(Refused, match=f"overlaps redaction {first.id}"):
        add(thread, record, start + 2, start + 6)
    with pytest.raises(Refused, match="overlaps"):
        add(thread, record, 0, len(PHONE_TEXT))
    add(thread, record, start + 3, start + len(SECRET))  # touching, not overlapping
    assert len(redaction.listing(thread.app.engine, record_id=record.id)) == 2


def test_unknown_code_empty_reason_and_missing_record_are_refused(thread: Instance) -> None:
    record = record_of(thread, "c1")
    with pytest.raises(UsageError, match=r"unknown exemption code 'zz'.*26c"):
        add(thread, record, 0, 4, code="zz")
    with pytest.raises(UsageError, match="needs a reason") as empty:
        add(thread, record, 0, 4, reason="  ")
    assert empty.value.remedy == "reason"
    with pytest.raises(NotFound):
        redaction.add(
            thread.app.engine,
            thread.settings,
            9999,
            spans=[(0, 1)],
            code="26c",
            reason="x",
            actor="clerk1",
            now=thread.clock.now(),
            store=thread.app.store,
        )
    assert add(thread, record, 0, 4, code="26C").redactions[0].exemption == "26c"


@pytest.mark.parametrize(
    ("text", "start", "end", "widened"),
    [
        # a police officer emoji with skin tone and gender (five code points, one character)
        ("see 👮🏽‍♀️ here", 5, 7, (4, 9)),
        # e + combining acute: the span may not cut the mark from its letter
        ("cafe\u0301 open", 0, 4, (0, 5)),
        # a flag is two regional indicators
        ("flag 🇺🇸 up", 6, 7, (5, 7)),
        # right-to-left text: logical order, whole letters kept
        ("اتصل بي 555", 0, 4, (0, 4)),
    ],
)
def test_spans_are_widened_to_whole_characters(
    text: str, start: int, end: int, widened: tuple[int, int]
) -> None:
    assert redaction.widen(text, start, end) == widened
    wide = redaction.widen(text, start, end)
    spans = [redaction.Span(*wide, LABEL)]
    public = redaction.redacted_text(text, spans)
    assert text[wide[0] : wide[1]] not in public
    assert f"[WITHHELD: {LABEL}]" in public
    # what is left on each side is whole characters of the original
    assert public == text[: wide[0]] + f"[WITHHELD: {LABEL}]" + text[wide[1] :]


def test_widened_span_is_stored_and_reported(instance: Instance) -> None:
    instance.app.archiver.archive([post("p9", "Suspect wore 👮🏽‍♀️ costume")])
    record = record_of(instance, "p9")
    done = add(instance, record, 14, 15)
    assert done.widened == [(14, 15, 13, 18)]
    stored = done.redactions[0]
    assert (stored.start, stored.end) == (13, 18)


# -- versions ----------------------------------------------------------------------------------


def test_redaction_names_one_version_and_warns_of_the_others(thread: Instance) -> None:
    """Redacting version 2 leaves version 1 alone, says so; --all-versions covers both."""
    v1, v2 = record_of(thread, "c2", 1), record_of(thread, "c2", 2)
    assert v1.id is not None and v2.id is not None
    start = PHONE_TEXT.index(SECRET)
    done = add(thread, v2, start, start + len(SECRET))
    assert [r.record_id for r in done.redactions] == [v2.id]
    assert [r.id for r in done.unredacted_elsewhere] == [v1.id]
    assert redaction.listing(thread.app.engine, record_id=v1.id) == []
    redaction.remove(
        thread.app.engine,
        done.redactions[0].id or 0,
        actor="clerk1",
        reason="redo",
        now=thread.clock.now(),
        store=thread.app.store,
    )
    both = add(thread, v2, start, start + len(SECRET), all_versions=True)
    assert sorted(r.record_id for r in both.redactions) == sorted([v1.id, v2.id])
    assert both.unredacted_elsewhere == []


# -- productions -------------------------------------------------------------------------------


def test_public_production_contains_no_redacted_text_anywhere(
    thread: Instance, tmp_path: Path
) -> None:
    """Natives, text, HTML, load files, manifests, zip: the withheld text is nowhere; the box
    and the exemption are where it was; the bag and `export verify` pass."""
    v2 = record_of(thread, "c2", 2)
    start = PHONE_TEXT.index(SECRET)
    add(thread, v2, start, start + len(SECRET), all_versions=True)
    out = tmp_path / "public"
    result = export(thread, "account:feed", out)
    assert result.production == "public" and result.redacted_records == 2
    bagit.Bag(str(out)).validate()
    blob = every_byte(out)
    for form in forms(SECRET):
        assert form not in blob
    redacted = [line for line in records_of(out) if line["redacted"]]
    assert {(line["remote_id"], line["version"]) for line in redacted} == {("c2", 1), ("c2", 2)}
    for line in redacted:
        assert line["native"] is None and line["raw"] is None and line["natives_withheld"]
        # no hash of a withheld native: it would confirm a guess at the withheld text
        assert line["object_sha256"] is None and line["ledger_entry_hash"] is None
        text = (out / "data" / str(line["text"])).read_text(encoding="utf-8")
        assert text.startswith(f"Call my cell [WITHHELD: {LABEL}] if you see him")
    rows = {(r["REMOTEID"], r["VERSION"]): r for r in dat_rows(out)}
    assert rows[("c2", "2")]["TEXT"] == f"Call my cell [WITHHELD: {LABEL}] if you see him tonight"
    assert rows[("c2", "2")]["NATIVEPATH"] == "" and rows[("c2", "2")]["SHA256"] == ""
    assert rows[("c2", "2")]["REDACTED"] == "Y" and rows[("c2", "2")]["EXEMPTIONS"] == LABEL
    assert rows[("c1", "1")]["REDACTED"] == "" and rows[("c1", "1")]["NATIVEPATH"]
    pages = [p for p in (out / "data/threads").glob("*.html") if p.name != "index.html"]
    html = pages[0].read_text(encoding="utf-8")
    assert f"WITHHELD: {LABEL}" in html
    log = list(
        csv.DictReader(
            io.StringIO((out / "data/redactions/redaction-log.csv").read_text("utf-8-sig"))
        )
    )
    assert [(r["version"], r["exemption_label"], r["redacted_by"]) for r in log] == [
        ("1", LABEL, "clerk1"),
        ("2", LABEL, "clerk1"),
    ]
    assert all(r["reason"] == "private phone number of a resident" for r in log)
    assert "Withheld text by record" in (out / "data/redactions/redaction-log.html").read_text()
    assert "Bulletin-Production: public" in (out / "bag-info.txt").read_text()
    assert "PUBLIC production" in (out / "data/README.txt").read_text()
    report = verify_bundle(out, thread.app.engine, thread.app.store)
    assert report.ok, report.problems
    assert verify_bundle(out, None, None).ok
    zipped = tmp_path / "public.zip"
    export(thread, "account:feed", zipped, as_zip=True)
    for form in forms(SECRET):
        assert form not in every_byte(tmp_path / "public.zip")


def test_counsel_production_contains_all_of_it(thread: Instance, tmp_path: Path) -> None:
    v2 = record_of(thread, "c2", 2)
    start = PHONE_TEXT.index(SECRET)
    add(thread, v2, start, start + len(SECRET))
    out = tmp_path / "counsel"
    export(thread, "account:feed", out, production="counsel")
    bagit.Bag(str(out)).validate()
    line = next(x for x in records_of(out) if x["remote_id"] == "c2" and x["version"] == 2)
    assert line["native"] and line["object_sha256"] == v2.object_sha256
    assert line["redactions"] == [
        {"characters": f"{start}:{start + len(SECRET)}", "exemption": "26c", "label": LABEL}
    ]
    native = (out / "data" / str(line["native"])).read_bytes()
    assert native == thread.app.store.get(object_key(v2.object_sha256))
    assert (out / "data" / str(line["text"])).read_text("utf-8") == v2.text
    pages = [p for p in (out / "data/threads").glob("*.html") if p.name != "index.html"]
    html = pages[0].read_text(encoding="utf-8")
    assert f'<mark class="redacted">{SECRET}</mark>' in html
    assert "Bulletin-Production: counsel" in (out / "bag-info.txt").read_text()
    assert "COUNSEL production" in (out / "data/README.txt").read_text()
    log = (out / "data/redactions/redaction-log.csv").read_text("utf-8-sig")
    assert log.startswith(LOG_HEADER) and SECRET not in log
    assert verify_bundle(out, thread.app.engine, thread.app.store).ok


def test_redaction_never_changes_the_archive(thread: Instance, tmp_path: Path) -> None:
    v2 = record_of(thread, "c2", 2)
    before = thread.app.store.get(object_key(v2.object_sha256))
    start = PHONE_TEXT.index(SECRET)
    added = add(thread, v2, start, start + len(SECRET))
    assert record_of(thread, "c2", 2).text == v2.text
    assert thread.app.store.get(object_key(v2.object_sha256)) == before
    assert verify(thread.app.engine, thread.app.store).ok
    removed = redaction.remove(
        thread.app.engine,
        added.redactions[0].id or 0,
        actor="clerk2",
        reason="requester is the resident",
        now=thread.clock.now(),
        store=thread.app.store,
    )
    assert removed.removed_by == "clerk2"
    with pytest.raises(Refused, match="removed already"):
        redaction.remove(
            thread.app.engine,
            removed.id or 0,
            actor="clerk2",
            reason="x",
            now=thread.clock.now(),
            store=thread.app.store,
        )
    with Session(thread.app.engine) as session:
        actions = session.exec(
            select(AuditEvent.action, AuditEvent.actor)
            .where(col(AuditEvent.action).like("redaction-%"))
            .order_by(col(AuditEvent.id))
        ).all()
    assert [tuple(a) for a in actions] == [
        ("redaction-added", "clerk1"),
        ("redaction-removed", "clerk2"),
    ]
    out = tmp_path / "after-removal"
    export(thread, "thread:p1", out)
    assert SECRET.encode() in every_byte(out)
    assert redaction.listing(thread.app.engine) == []
    assert len(redaction.listing(thread.app.engine, include_removed=True)) == 1


def test_resumed_export_withholds_what_the_first_run_did(thread: Instance, tmp_path: Path) -> None:
    """Redactions are frozen when an export starts: one removed mid-export still applies."""
    v1 = record_of(thread, "c2", 1)
    start = PHONE_TEXT.index(SECRET)
    added = add(thread, v1, start, start + len(SECRET), all_versions=True)

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    out = tmp_path / "prod"
    with pytest.raises(KeyboardInterrupt):
        export(thread, "account:feed", out, chunk=2, progress=stop)
    for item in added.redactions:
        redaction.remove(
            thread.app.engine,
            item.id or 0,
            actor="clerk1",
            reason="x",
            now=thread.clock.now(),
            store=thread.app.store,
        )
    export(thread, "account:feed", out, chunk=2, resume=True)
    assert SECRET.encode() not in every_byte(out)
    with pytest.raises(KeyboardInterrupt):
        export(thread, "account:feed", tmp_path / "p2", progress=stop, chunk=2)
    with pytest.raises(Refused, match="another scope"):
        export(thread, "account:feed", tmp_path / "p2", resume=True, production="counsel")


def test_production_without_redactions_says_so(thread: Instance, tmp_path: Path) -> None:
    out = tmp_path / "plain"
    export(thread, "account:feed", out)
    assert (out / "data/redactions/redaction-log.csv").read_text("utf-8-sig").startswith(LOG_HEADER)
    assert "No text is withheld" in (out / "data/redactions/redaction-log.html").read_text()
    assert "no text withheld" in (out / "data/custody/chain-of-custody.md").read_text()


# -- command line and configuration ------------------------------------------------------------


def test_cli_add_list_remove_and_one_line_errors(thread: Instance, tmp_path: Path) -> None:
    v2 = record_of(thread, "c2", 2)
    start = PHONE_TEXT.index(SECRET)
    span = f"{start}:{start + len(SECRET)}"
    output = run(
        thread,
        "redact", "add", str(v2.id), "--span", span, "--exemption", "26c",
        "--reason", "resident's phone", "--as", "clerk1",
    )  # fmt: skip
    assert f"characters {span} withheld under {LABEL}" in output
    assert "stays unredacted in record" in output and "--all-versions" in output
    shown = run(thread, "redact", "show", str(v2.id))
    assert re.search(rf"^\s+{span}\s+{SECRET}$", shown, re.M), shown
    assert f"Call my cell [WITHHELD: {LABEL}] if you see him tonight" in shown
    listed = run(thread, "redact", "list", "--json")
    (item,) = json.loads(listed)["redactions"]
    assert item["record_id"] == v2.id and item["exemption"] == "26c"
    assert SECRET not in listed
    bad = run(
        thread, "redact", "add", str(v2.id), "--span", "0:900", "--exemption", "26c",
        "--reason", "x", "--as", "clerk1", code=2,
    )  # fmt: skip
    assert "outside record" in bad and "Traceback" not in bad
    overlap = run(
        thread, "redact", "add", str(v2.id), "--span", span, "--exemption", "26c",
        "--reason", "x", "--as", "clerk1", code=1,
    )  # fmt: skip
    assert "overlaps redaction" in overlap
    matched = run(
        thread, "redact", "add", str(record_of(thread, "c2", 1).id), "--match", SECRET,
        "--exemption", "26o", "--reason", "x", "--as", "clerk1",
    )  # fmt: skip
    assert "G.L. c.4 §7(26)(o)" in matched
    removed = run(
        thread, "redact", "remove", str(item["id"]), "--reason", "released", "--as", "clerk1"
    )
    assert "no longer withheld" in removed
    assert "removed" in run(thread, "redact", "list", "--all")
    assert "26o" in run(thread, "redact", "codes")

    out = tmp_path / "cli-counsel"
    exported = run(thread, "export", "--query", "thread:p1", "--out", str(out), "--counsel",
                   "--quiet", "--as", "clerk1")  # fmt: skip
    assert "production   counsel (1 records with text withheld, marked)" in exported


def test_exemption_codes_are_configurable(tmp_path: Path) -> None:
    config = tmp_path / "bulletin.toml"
    config.write_text(
        '[redaction]\nexemption_set = "none"\n'
        '[redaction.exemptions.LE-1]\nlabel = "RCW 42.56.240(1)"\n'
        'description = "Specific intelligence information"\n'
    )
    settings = load_settings(config, environ={})
    assert list(settings.redaction.codes()) == ["le-1"]
    assert redaction.exemption(settings, "le-1")[1].label == "RCW 42.56.240(1)"
    with pytest.raises(UsageError, match="unknown exemption code '26c'"):
        redaction.exemption(settings, "26c")
    config.write_text('[redaction]\nexemption_set = "atlantis"\n')
    with pytest.raises(ConfigError, match="atlantis"):
        load_settings(config, environ={})


def test_a_version_captured_after_the_redaction_is_not_produced_unredacted(
    thread: Instance, tmp_path: Path
) -> None:
    """The comment is edited again after the clerk redacted it: the public export refuses,
    names the version, leaves nothing behind; `redact propagate` fixes it."""
    v2 = record_of(thread, "c2", 2)
    start = PHONE_TEXT.index(SECRET)
    done = add(thread, v2, start, start + len(SECRET), all_versions=True)
    thread.app.archiver.archive([comment("c2", "p1", 6, text=f"UPDATE: he is home. {SECRET}")])
    v3 = record_of(thread, "c2", 3)
    out = tmp_path / "public"
    with pytest.raises(Refused) as caught:
        export(thread, "account:feed", out)
    message = str(caught.value)
    assert f"record {v3.id} (version 3" in message
    assert "redact propagate" in error_line(caught.value)
    assert SECRET not in message and "\n" not in message
    assert not out.exists() and not (tmp_path / "public.partial").exists()
    export(thread, "account:feed", tmp_path / "counsel", production="counsel")
    first = next(r for r in done.redactions if r.record_id == v2.id)
    output = run(thread, "redact", "propagate", str(first.id), "--as", "clerk1")
    assert f"record {v3.id} characters 20:28 withheld" in output
    assert "every version already" in run(thread, "redact", "propagate", str(first.id))
    export(thread, "account:feed", out)
    assert SECRET.encode() not in every_byte(out)


def test_right_to_left_and_emoji_edges_in_a_public_production(
    thread: Instance, tmp_path: Path
) -> None:
    """An Arabic word and the emoji after it, and a span starting inside a five-code-point
    emoji: each withheld whole, no code point of them anywhere in the bag, the rest kept."""
    c3 = record_of(thread, "c3")
    text = c3.text  # "شوهد قرب المكتبة 🚓"
    word = "المكتبة"
    start = text.index(word)
    done = add(thread, c3, start, len(text))
    assert (done.redactions[0].start, done.redactions[0].end) == (start, len(text))
    thread.app.archiver.archive([post("p2", "Officer 👮🏽‍♀️ café\u0301 tips line")])
    p2 = record_of(thread, "p2")
    add(thread, p2, 9, 10)  # inside the officer emoji: widened to all five code points
    out = tmp_path / "public"
    export(thread, "account:feed", out)
    blob = every_byte(out)
    for secret in (word, "🚓", "👮🏽‍♀️", "\u200d", "🏽"):
        for form in forms(secret):
            assert form not in blob, secret
    lines = {line["remote_id"]: line for line in records_of(out)}
    c3_text = (out / "data" / str(lines["c3"]["text"])).read_text("utf-8")
    assert c3_text == f"شوهد قرب [WITHHELD: {LABEL}]"
    p2_text = (out / "data" / str(lines["p2"]["text"])).read_text("utf-8")
    assert p2_text == f"Officer [WITHHELD: {LABEL}] café\u0301 tips line"
