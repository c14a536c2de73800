"""Implausible values that pass a first look: an export whose Bates numbers would run past
the widest the layout supports is refused before anything is written; a thread number no
record can have is read as a platform id; the largest limit lists what there is."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result

from tests.plugins.bulletin_app import Instance
from tests.plugins.cli import invoke
from tests.test_export import post


def _run(inst: Instance, *args: str) -> Result:
    return invoke(inst, *args)


def test_bates_numbers_past_ten_digits_are_refused(sqlite_instance: Instance) -> None:
    """Two records from Bates number 9,999,999,999 would end at an eleven-digit number: one
    line says so and no bundle or partial export is left behind."""
    sqlite_instance.app.archiver.archive([post("p1"), post("p2", minutes=1)])
    out = sqlite_instance.data_dir / "bundle"
    result = _run(
        sqlite_instance,
        "export",
        "--query",
        "water",
        "--out",
        str(out),
        "--bates-start",
        "9999999999",
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1] == (
        "bulletin: error: 2 records from Bates number 9999999999 end at 10000000000, past the "
        "last of 10 digits (9999999999); give a lower --bates-start"
    )
    assert not [p for p in Path(sqlite_instance.data_dir).iterdir() if p.name.startswith("bundle")]


@pytest.mark.parametrize("query", ["water", "account:feed"])
def test_a_search_for_as_many_hits_as_int64_holds(sqlite_instance: Instance, query: str) -> None:
    """``--limit 9223372036854775807`` lists what there is instead of failing."""
    sqlite_instance.app.archiver.archive([post("p1")])
    result = _run(sqlite_instance, "archive", "search", query, "--limit", str(2**63 - 1))
    assert result.exit_code == 0, result.output
    assert "Water main break" in result.stdout


@pytest.mark.parametrize("thread", ["99999999999999999999", "1900000000000000001", "²"])
def test_a_thread_number_no_record_can_have_is_a_platform_id(
    instance: Instance, thread: str
) -> None:
    """``thread:`` past what a record id holds (an X post id), or of a digit that is no
    number, is a platform id: it finds nothing here instead of failing."""
    instance.app.archiver.archive([post("p1")])
    result = _run(instance, "archive", "search", f"thread:{thread}")
    assert result.exit_code == 0, result.output
    assert "no match" in result.stdout
