"""Implausible values that pass a first look: an export whose Bates numbers would run past
the widest the layout supports is refused before anything is written; a thread number no
record can have is read as a platform id."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bulletin.cli import cli
from tests.plugins.bulletin_app import Instance
from tests.test_export import post


def test_bates_numbers_past_ten_digits_are_refused(sqlite_instance: Instance) -> None:
    """Two records from Bates number 9,999,999,999 would end at an eleven-digit number: one
    line says so and no bundle or partial export is left behind."""
    sqlite_instance.app.archiver.archive([post("p1"), post("p2", minutes=1)])
    out = sqlite_instance.data_dir / "bundle"
    result = CliRunner().invoke(
        cli,
        [
            "--config",
            str(sqlite_instance.config),
            "export",
            "--query",
            "water",
            "--out",
            str(out),
            "--bates-start",
            "9999999999",
        ],
        env={"BULLETIN_USER": ""},
    )
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1] == (
        "bulletin: error: 2 records from Bates number 9999999999 end at 10000000000, past the "
        "last of 10 digits (9999999999); give a lower --bates-start"
    )
    assert not [p for p in Path(sqlite_instance.data_dir).iterdir() if p.name.startswith("bundle")]


@pytest.mark.parametrize("thread", ["99999999999999999999", "²"])
def test_a_thread_number_no_record_can_have_is_a_platform_id(
    sqlite_instance: Instance, thread: str
) -> None:
    """``thread:`` past 64 bits, or of a digit that is no number, finds nothing instead of
    failing."""
    sqlite_instance.app.archiver.archive([post("p1")])
    result = CliRunner().invoke(
        cli,
        ["--config", str(sqlite_instance.config), "archive", "search", f"thread:{thread}"],
        env={"BULLETIN_USER": ""},
    )
    assert result.exit_code == 0, result.output
    assert "no match" in result.stdout
