"""PDF/A renderings of a production's thread pages: what is in them, what is not, and that
the production's manifests and `export verify` cover them.

veraPDF cannot be installed from the registries this project uses, so the PDF/A checks here
are pikepdf's: the XMP identification (PDF/A-2, conformance B), an output intent, every font
embedded, the structure tree with the images' alt text.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import socket
from pathlib import Path

import bagit
import pikepdf
import pytest
from pypdf import PdfReader
from sqlmodel import Session, col, select

from bulletin.archiver import redaction
from bulletin.archiver.export import export_bundle, resolve, verify_bundle
from bulletin.archiver.export.journal import Journal
from bulletin.models import Record
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import run
from tests.test_render import PHONE, PHONE_TEXT, seed_thread

ALT = "Map: Mass Ave closed between Waltham St and Woburn St; detour by Route 4/225"
LABEL = "26c"


def withhold_phone(inst: Instance) -> None:
    with Session(inst.app.engine) as session:
        phone = session.exec(select(Record).where(col(Record.remote_id) == "c6")).one()
    start = PHONE_TEXT.index(PHONE)
    assert phone.id is not None
    redaction.add(
        inst.app.engine,
        inst.settings,
        phone.id,
        spans=[(start, start + len(PHONE))],
        code=LABEL,
        reason="private phone number of a resident",
        actor="clerk1",
        now=inst.clock.now(),
        store=inst.app.store,
    )


def produce(inst: Instance, out: Path, production: str = "public", **options: object) -> Path:
    export_bundle(
        inst.app.engine,
        inst.app.store,
        inst.settings,
        resolve(inst.app.engine, inst.settings, None, "thread:p1"),
        out=out,
        actor="clerk1",
        now=inst.clock.now,
        production=production,  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )
    return out


def listing(bag: Path) -> list[dict[str, str]]:
    text = (bag / "data/manifest/pdfs.csv").read_text(encoding="utf-8-sig")
    return list(csv.DictReader(io.StringIO(text, newline="")))


def pages_text(pdf: Path) -> list[str]:
    """Each page's text, as a PDF reader extracts it."""
    return [page.extract_text() for page in PdfReader(pdf).pages]


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def seeded(instance: Instance) -> Instance:
    seed_thread(instance)
    withhold_phone(instance)
    return instance


def test_public_pdf_is_pdfa_with_the_withheld_text_absent(seeded: Instance, tmp_path: Path) -> None:
    """The thread's PDF sits beside its page, listed with its sha256 in the bag manifest and
    the records manifest, and verifies; the phone number is nowhere in it, the exemption
    is; every page is stamped with Bates numbers; alt text and PDF/A identification are in."""
    bag = produce(seeded, tmp_path / "public")
    pdf = bag / "data/threads/BUL0000001.pdf"
    assert sorted(p.name for p in (bag / "data/threads").iterdir()) == [
        "BUL0000001.html",
        "BUL0000001.pdf",
        "index.html",
    ]
    digest = hashlib.sha256(pdf.read_bytes()).hexdigest()
    manifest = (bag / "manifest-sha256.txt").read_text(encoding="utf-8")
    assert f"{digest}  data/threads/BUL0000001.pdf\n" in manifest
    bagit.Bag(str(bag)).validate()
    report = verify_bundle(bag)
    assert report.ok, report.problems
    lines = (bag / "data/manifest/records.jsonl").read_text(encoding="utf-8").splitlines()
    assert {json.loads(line)["pdf"] for line in lines} == {"threads/BUL0000001.pdf"}
    [row] = listing(bag)
    assert row["pdf"] == "threads/BUL0000001.pdf" and row["sha256"] == digest
    assert (row["first_bates"], row["last_bates"]) == ("BUL0000001", "BUL0000011")
    assert int(row["bytes"]) == pdf.stat().st_size
    summary = json.loads((bag / "data/manifest/production.json").read_text(encoding="utf-8"))
    assert summary["pdf"] == {"variant": "PDF/A-2b", "listing": "manifest/pdfs.csv"}
    assert "threads/*.pdf" in (bag / "data/README.txt").read_text(encoding="utf-8")

    texts = pages_text(pdf)
    assert len(texts) == int(row["pages"])
    whole = flat(" ".join(texts))
    assert PHONE not in whole and PHONE.replace("-", "") not in whole.replace("-", "")
    assert f"WITHHELD: {redaction.label_of(seeded.settings, LABEL)}" in whole
    assert "Call my cell" in whole  # the text around the box stays
    assert all(re.search(r"BUL\d{7} to BUL\d{7}", text) for text in texts)
    assert texts[0].count("Page 1 of") == 1
    raw = pdf.read_bytes()
    assert b"partial" not in raw and str(tmp_path).encode() not in raw  # no build path

    with pikepdf.open(pdf) as document:
        meta = document.open_metadata()
        assert meta["pdfaid:part"] == "2" and meta["pdfaid:conformance"] == "B"
        intents = document.Root.OutputIntents
        assert len(intents) == 1 and intents[0].S == "/GTS_PDFA1"
        assert "/DestOutputProfile" in intents[0]
        assert str(document.Root.Lang) == "en"
        fonts = embedded_fonts(document)
        assert fonts and all(fonts.values()), fonts
        # WeasyPrint maps a glyph no font has to .notdef through its own encoding, which
        # PDF/A forbids: every font has the plain Identity-H one (emoji come from Symbola)
        assert {str(f.get("/Encoding")) for f in page_fonts(document)} == {"/Identity-H"}
        alts = alt_texts(document)
    assert ALT in alts


def page_fonts(document: pikepdf.Pdf) -> list[pikepdf.Object]:
    """The fonts every page uses."""
    fonts = []
    for page in document.pages:
        resources = page.obj.Resources
        fonts += list(dict(resources.get("/Font", {})).values())
    return fonts


def embedded_fonts(document: pikepdf.Pdf) -> dict[str, bool]:
    """Every font of every page (Type 0 through its descendants): embedded or not."""
    found: dict[str, bool] = {}
    for font in page_fonts(document):
        for leaf in font.get("/DescendantFonts", [font]):
            descriptor = leaf.get("/FontDescriptor")
            name = str(leaf.get("/BaseFont", "?"))
            found[name] = descriptor is not None and any(
                key in descriptor for key in ("/FontFile", "/FontFile2", "/FontFile3")
            )
    return found


def alt_texts(document: pikepdf.Pdf) -> list[str]:
    """The /Alt of every element of the structure tree."""
    out: list[str] = []
    todo = [document.Root.StructTreeRoot]
    while todo:
        node = todo.pop()
        if isinstance(node, pikepdf.Array):
            todo.extend(node)
        elif isinstance(node, pikepdf.Dictionary):
            if "/Alt" in node:
                out.append(str(node.Alt))
            kids = node.get("/K")
            if kids is not None:
                todo.append(kids)
    return out


def test_counsel_pdf_shows_what_the_counsel_page_shows(seeded: Instance, tmp_path: Path) -> None:
    produce(seeded, tmp_path / "public")
    bag = produce(seeded, tmp_path / "counsel", "counsel")
    [pdf] = (bag / "data/threads").glob("*.pdf")
    texts = pages_text(pdf)
    whole = flat(" ".join(texts))
    assert PHONE in whole and "withheld from the public copy" in whole
    assert "Counsel-only copy: do not release" in texts[0]
    assert verify_bundle(bag).ok


def test_no_pdf_and_no_renderings_write_none(seeded: Instance, tmp_path: Path) -> None:
    options: dict[str, dict[str, bool]] = {"nopdf": {"pdf": False}, "bare": {"renderings": False}}
    for name, option in options.items():
        bag = produce(seeded, tmp_path / name, "public", **option)
        assert not list(bag.rglob("*.pdf"))
        assert "pdf" not in json.loads((bag / "data/manifest/production.json").read_text())
        assert verify_bundle(bag).ok


def test_interrupted_export_renders_each_pdf_once_and_verifies(
    seeded: Instance, tmp_path: Path
) -> None:
    """A second thread; the export stops after its first chunk and resumes: both PDFs, each
    listed once, the bag valid."""
    from tests.test_export import post

    seeded.app.archiver.archive([post("p9", "Second thread")])
    out = tmp_path / "resumed"

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    scope = resolve(seeded.app.engine, seeded.settings, None, "account:feed")
    with pytest.raises(KeyboardInterrupt):
        export_bundle(
            seeded.app.engine, seeded.app.store, seeded.settings, scope, out=out,
            actor="clerk1", now=seeded.clock.now, chunk=11, progress=stop,
        )  # fmt: skip
    journal = Journal.load(out.with_name(out.name + ".partial"))
    assert journal is not None and journal.done == 11
    export_bundle(
        seeded.app.engine, seeded.app.store, seeded.settings, scope, out=out,
        actor="clerk1", now=seeded.clock.now, chunk=11, resume=True,
    )  # fmt: skip
    pdfs = sorted(p.name for p in out.rglob("*.pdf"))
    assert len(pdfs) == 2
    manifest = (out / "manifest-sha256.txt").read_text(encoding="utf-8")
    assert sum(".pdf\n" in line for line in io.StringIO(manifest)) == 2
    assert verify_bundle(out).ok


def test_cli_no_pdf(seeded: Instance, tmp_path: Path) -> None:
    run(seeded, "export", "--query", "thread:p1", "--out", str(tmp_path / "b"), "--no-pdf")
    assert not list((tmp_path / "b").rglob("*.pdf"))
    run(seeded, "export", "--query", "thread:p1", "--out", str(tmp_path / "c"))
    assert len(list((tmp_path / "c").rglob("*.pdf"))) == 1
    run(seeded, "export", "verify", str(tmp_path / "c"))


def test_export_pdf_setting_and_its_flags(tmp_path: Path, db_url: str) -> None:
    """``[export] pdf = false`` leaves PDFs out of every production (the console's and the
    API's too); ``--pdf`` asks for them in one."""
    inst = make_instance(tmp_path, db_url, "[export]\npdf = false\n")
    try:
        assert inst.settings.export.pdf is False
        seed_thread(inst)
        run(inst, "export", "--query", "thread:p1", "--out", str(tmp_path / "a"))
        assert not list((tmp_path / "a").rglob("*.pdf"))
        run(inst, "export", "--query", "thread:p1", "--out", str(tmp_path / "b"), "--pdf")
        assert len(list((tmp_path / "b").rglob("*.pdf"))) == 1
    finally:
        inst.app.close()


def test_verify_names_an_altered_or_unlisted_pdf(seeded: Instance, tmp_path: Path) -> None:
    """The bag manifest and the listing of PDFs each catch a changed PDF."""
    bag = produce(seeded, tmp_path / "public")
    pdf = bag / "data/threads/BUL0000001.pdf"
    pdf.write_bytes(pdf.read_bytes() + b"%")
    problems = verify_bundle(bag).problems
    assert any("BUL0000001.pdf: altered" in p for p in problems)
    assert any("not the sha256 data/manifest/pdfs.csv gives" in p for p in problems)
    pdf.rename(bag / "data/threads/BUL0000099.pdf")
    problems = verify_bundle(bag).problems
    assert any("BUL0000099.pdf: not listed in data/manifest/pdfs.csv" in p for p in problems)


def test_rendering_reads_files_only_never_the_network(tmp_path: Path) -> None:
    """An image on the web named by a page is not fetched: a listening socket sees nobody."""
    from bulletin.archiver.export import pdf

    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(0.5)
        port = server.getsockname()[1]
        page = tmp_path / "page.html"
        page.write_text(
            f'<!DOCTYPE html><html lang="en"><title>t</title><img src="http://127.0.0.1:{port}/'
            'x.png" alt="a web image"><p>text</p>',
            encoding="utf-8",
        )
        data, pages = pdf.render(page)
        with pytest.raises(TimeoutError):
            server.accept()
    assert pages == 1 and data.startswith(b"%PDF-")
