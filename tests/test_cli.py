"""The command line as people use it: help everywhere, one-line errors, exit codes, --json."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import click
import pytest

from bulletin.cli import cli
from bulletin.config import load_settings
from tests.plugins.bulletin_app import Instance, write_config
from tests.plugins.cli import invoke, run

TEXT = "Mass Ave closed between Waltham St and Muzzey St until 6 pm for a water main repair."


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under ``group``, loading lazily registered commands as a person's
    ``bulletin COMMAND --help`` would."""
    found = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"{' '.join((*prefix, name))} is listed but does not load"
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found.extend(all_commands(command, (*prefix, name)))
    return found


@pytest.mark.parametrize("path", all_commands(cli), ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    """Every command and group explains itself in --help."""
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(command), name)
        assert found is not None
        command = found
    assert command.help and len(command.help.strip()) > 10, f"{' '.join(path)} has no help"
    result = invoke(None, *path, "--help")
    assert result.exit_code == 0


def test_dispatcher_flow_with_json(sqlite_instance: Instance) -> None:
    """add → approve → daemon --once → archive list/show/verify, reading --json output."""
    inst = sqlite_instance
    added = json.loads(
        run(
            inst,
            "notice",
            "add",
            "--category",
            "road-closure",
            "--text",
            TEXT,
            "--target",
            "feed",
            "--as",
            "dispatcher1",
            "--json",
        ).splitlines()[-1]
    )
    assert added["state"] == "draft"
    run(inst, "notice", "approve", str(added["id"]), "--by", "approver1")
    once = json.loads(run(inst, "daemon", "--once", "--json").splitlines()[-1])
    assert [o["state"] for o in once["outcomes"]] == ["published"]
    records = json.loads(run(inst, "archive", "list", "--json").splitlines()[-1])["records"]
    assert [r["notice_id"] for r in records] == [added["id"]]
    shown = json.loads(
        run(inst, "archive", "show", str(records[0]["id"]), "--json").splitlines()[-1]
    )
    assert shown["snapshot"]["item"]["text"] == TEXT
    assert "OK: 1 records" in run(inst, "archive", "verify")
    verified = invoke(inst, "archive", "verify", "--progress")
    assert verified.exit_code == 0
    assert verified.stderr.splitlines() == [
        "verify: 1 of 1 ledger entries walked",
        "verify: 1 of 1 records' objects re-hashed",
    ]
    quiet = invoke(inst, "archive", "verify")  # stderr is no terminal: no progress unless asked
    assert "verify:" not in quiet.stderr
    audit = run(inst, "audit")
    for action in ("drafted", "approved", "published", "captured"):
        assert action in audit


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            (
                "notice",
                "add",
                "--category",
                "parade",
                "--text",
                "x",
                "--target",
                "feed",
                "--as",
                "d",
            ),
            2,
            "unknown category 'parade'",
        ),
        (
            (
                "notice",
                "add",
                "--category",
                "general",
                "--text",
                " ",
                "--target",
                "feed",
                "--as",
                "d",
            ),
            2,
            "notice text is empty",
        ),
        (
            (
                "notice",
                "add",
                "--category",
                "general",
                "--text",
                "x",
                "--target",
                "feed",
                "--at",
                "yesterday-ish",
                "--as",
                "d",
            ),
            2,
            "cannot read time",
        ),
        (("notice", "approve", "41", "--by", "chief"), 1, "no notice 41"),
        (("archive", "show", "7"), 1, "no archived record 7"),
    ],
)
def test_errors_are_one_line_with_exit_codes(
    sqlite_instance: Instance, args: tuple[str, ...], code: int, message: str
) -> None:
    """Bad input: exit 2 for usage, 1 for refusals, one line on stderr, no traceback."""
    result = invoke(sqlite_instance, *args)
    assert result.exit_code == code
    errors = [line for line in result.output.splitlines() if line.startswith("bulletin: error")]
    assert len(errors) == 1 and message in errors[0], result.output
    assert "Traceback" not in result.output


def bulletin(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bulletin", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_corrupt_config_exits_2_naming_file(tmp_path: Path) -> None:
    """A corrupt configuration file: exit 2, one line with the file, no traceback."""
    bad = tmp_path / "bulletin.toml"
    bad.write_text("[database\nurl = ")
    result = bulletin("config", "check", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert str(bad) in result.stderr and "invalid TOML" in result.stderr


def test_config_check_masks_secrets(tmp_path: Path) -> None:
    """config check names credential variables but never prints their values."""
    write_config(
        tmp_path / "bulletin.toml",
        tmp_path / "data",
        "postgresql+psycopg://u:hunter2@db/b",
        '\n[accounts.fb]\nplatform = "facebook"\npage_id = "1"\ntoken_env = "PD_FB_TOKEN"\n',
    )
    import os

    env = {**os.environ, "PD_FB_TOKEN": "EAAGsecretvalue"}
    result = bulletin("config", "check", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "hunter2" not in result.stdout and "EAAGsecretvalue" not in result.stdout
    assert 'token_env = "PD_FB_TOKEN"  # set' in result.stdout
    parsed = tomllib.loads(result.stdout)
    assert parsed["database"]["url"] == "postgresql+psycopg://u:***@db/b"


def test_config_example_is_the_embedded_defaults(tmp_path: Path) -> None:
    """config example prints a commented file that parses, and loading it gives exactly the
    settings of the embedded defaults; every section a newcomer sets is in it."""
    result = bulletin("config", "example", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n# ") > 20  # commented, not a bare dump
    parsed = tomllib.loads(result.stdout)
    for section in ("agency", "paths", "database", "archive", "retention", "requests"):
        assert section in parsed, section
    for section in ("daemon", "publisher", "accounts", "sandbox"):
        assert section in parsed, section
    assert "# [users." in result.stdout and "# [archive.s3]" in result.stdout
    (tmp_path / "start.toml").write_text(result.stdout)
    from_file = load_settings(tmp_path / "start.toml", environ={}, cwd=tmp_path)
    embedded = load_settings(environ={}, cwd=tmp_path)
    assert embedded.source == "built-in defaults"
    assert from_file.model_copy(update={"source": ""}) == embedded.model_copy(update={"source": ""})


def test_config_check_toml_round_trips(tmp_path: Path) -> None:
    """config check --toml prints the effective configuration as TOML; as a file it loads to
    the same settings (environment overrides included)."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("BULLETIN_")}
    env |= {"BULLETIN_DAEMON__VERIFY_AT": "02:15", "BULLETIN_AGENCY__NAME": 'Say "hi"\tnow'}
    result = bulletin("config", "check", "--toml", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    (tmp_path / "effective.toml").write_text(result.stdout)
    effective = load_settings(tmp_path / "effective.toml", environ={}, cwd=tmp_path)
    assert effective.daemon.verify_at == "02:15"
    assert effective.agency.name == 'Say "hi"\tnow'
    expected = load_settings(environ=env, cwd=tmp_path)
    assert effective.model_copy(update={"source": ""}) == expected.model_copy(update={"source": ""})
    plain = bulletin("config", "check", cwd=tmp_path, env=env)
    assert tomllib.loads(plain.stdout) == tomllib.loads(result.stdout)


def test_unwritable_data_directory(tmp_path: Path) -> None:
    """init with a data directory under a regular file fails in one line, exit 1."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    write_config(tmp_path / "bulletin.toml", blocker / "data", f"sqlite:///{blocker}/data/b.db")
    result = bulletin("init", cwd=tmp_path)
    assert result.returncode == 1
    assert "not writable" in result.stderr and "Traceback" not in result.stderr


def test_commands_before_init_say_so(tmp_path: Path) -> None:
    """Using Bulletin before init: a clear message, not a stack trace."""
    (tmp_path / "data").mkdir()
    write_config(tmp_path / "bulletin.toml", tmp_path / "data", f"sqlite:///{tmp_path}/data/b.db")
    result = bulletin("notice", "list", cwd=tmp_path)
    assert result.returncode == 1
    assert "not initialised (run bulletin init)" in result.stderr


def test_unreachable_database(tmp_path: Path) -> None:
    """A PostgreSQL URL nobody answers: one line saying so."""
    write_config(
        tmp_path / "bulletin.toml",
        tmp_path / "data",
        "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2",
    )
    result = bulletin("notice", "list", cwd=tmp_path)
    assert result.returncode == 1
    assert "database unreachable" in result.stderr and "Traceback" not in result.stderr


def test_init_is_idempotent(tmp_path: Path) -> None:
    """Running init twice changes nothing the second time and succeeds."""
    for _ in range(2):
        result = bulletin("init", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert (tmp_path / "bulletin-data" / "bulletin.db").exists()


def test_locked_database_at_start(tmp_path: Path) -> None:
    """Another process holds the SQLite write lock: init waits its busy timeout, then says so."""
    import os
    import sqlite3

    assert bulletin("init", cwd=tmp_path).returncode == 0
    holder = sqlite3.connect(tmp_path / "bulletin-data" / "bulletin.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        env = {**os.environ, "BULLETIN_DATABASE__BUSY_TIMEOUT": "0.5"}
        result = bulletin("init", cwd=tmp_path, env=env)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 1
    assert "database is locked" in result.stderr and "Traceback" not in result.stderr


def test_template_flow_with_json(sqlite_instance: Instance) -> None:
    """template add → approve → notice add --template: approved at once, with its cost;
    unknown variables exit 2 with one line; notice show names the template."""
    inst = sqlite_instance
    run(
        inst,
        "template",
        "add",
        "road",
        "--category",
        "road-closure",
        "--text",
        "Road closed: {road} between {from} and {to} until {until}.",
        "--var",
        "road",
        "--var",
        "from",
        "--var",
        "to",
        "--var",
        "until:time",
        "--as",
        "lt",
    )
    run(inst, "template", "approve", "road", "--by", "chief")
    listed = json.loads(run(inst, "template", "list", "--json").splitlines()[-1])
    assert [(t["name"], t["approved_by"]) for t in listed["templates"]] == [("road", "chief")]
    args = ["notice", "add", "--template", "road", "--target", "feed", "--as", "dana"]
    values = ["--var", "road=Mass Ave", "--var", "from=Waltham St", "--var", "to=Muzzey St"]
    added = json.loads(run(inst, *args, *values, "--var", "until=6 pm", "--json").splitlines()[-1])
    assert (added["state"], added["covered_by"]) == ("approved", "chief")
    assert added["cost_usd"] == {"feed": 0.0, "total": 0.0}
    shown = run(inst, "notice", "show", str(added["id"]))
    assert "chief through template road v1" in shown
    assert "Road closed: Mass Ave between Waltham St and Muzzey St until 6 PM." in shown
    result = invoke(inst, *args, *values, "--var", "untill=6 pm")
    assert result.exit_code == 2
    assert "unknown variable 'untill' for template road" in result.output


def test_once_reports_what_it_deferred(sqlite_instance: Instance) -> None:
    """daemon --once publishes what is due, reports a notice scheduled later as deferred with
    its time in the agency's zone, and exits 0 without waiting for it."""
    inst = sqlite_instance
    later = json.loads(
        run(
            inst,
            "notice",
            "add",
            "--category",
            "special-event",
            "--text",
            "Parade Sunday.",
            "--target",
            "feed",
            "--at",
            "+2h",
            "--as",
            "d",
            "--json",
        ).splitlines()[-1]
    )
    run(inst, "notice", "approve", str(later["id"]), "--by", "chief")
    import time

    began = time.monotonic()
    out = json.loads(run(inst, "daemon", "--once", "--max-wait", "1", "--json").splitlines()[-1])
    assert time.monotonic() - began < 30
    assert out["outcomes"] == []
    assert [(d["notice"], d["account"]) for d in out["deferred"]] == [(later["id"], "feed")]
    text = run(inst, "daemon", "--once", "--max-wait", "0")
    assert f"deferred: notice {later['id']} to feed at" in text
