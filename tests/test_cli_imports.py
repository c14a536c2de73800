"""The command line starts fast because it imports only what the command run needs: `bulletin
--help` and `--version` load no database, platform, CAP or web library and no subcommand, and a
command loads its own module alone. Checked through ``sys.modules`` when the real entry point
(``python -m bulletin``) exits, never through timings."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bulletin.cli import COMMANDS, LazyGroup, cli
from tests.plugins.bulletin_app import Instance
from tests.plugins.daemon_process import DaemonProcess

ROOT = Path(__file__).resolve().parent.parent

# What no command's start-up needs before it runs: the ORM, the platform and storage libraries,
# the web stack, and every part of Bulletin below the doors.
HEAVY = (
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "pydantic",
    "tweepy",
    "facebook",
    "requests",
    "boto3",
    "botocore",
    "jinja2",
    "structlog",
    "starlette",
    "uvicorn",
    "apscheduler",
    "holidays",
    "regex",
    "bulletin.app",
    "bulletin.models",
    "bulletin.db",
    "bulletin.config",
    "bulletin.cap",
    "bulletin.connectors",
    "bulletin.publisher",
    "bulletin.archiver",
    "bulletin.web",
)


# ``python -m bulletin ARGS``, writing the names in sys.modules to a file when it exits.
RUN = textwrap.dedent(
    """
    import atexit, json, runpy, sys
    out, sys.argv = sys.argv[1], ["bulletin", *sys.argv[2:]]
    atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
    runpy.run_module("bulletin", run_name="__main__", alter_sys=True)
    """
)


def imported(*args: str, tmp: Path) -> set[str]:
    """The modules ``python -m bulletin *args`` has imported when it exits."""
    out = tmp / "modules.json"
    result = subprocess.run(
        [sys.executable, "-c", RUN, str(out), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout  # the command ran and answered
    return set(json.loads(out.read_text()))


def loaded(modules: set[str], package: str) -> list[str]:
    return sorted(m for m in modules if m == package or m.startswith(f"{package}."))


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_import_nothing_heavy(flag: str, tmp_path: Path) -> None:
    """`bulletin --help` and `--version` import no library of the database, platforms, web or
    logging, nothing below the command line, and no subcommand's module."""
    modules = imported(flag, tmp=tmp_path)
    assert "bulletin.cli" in modules  # the check reads the real import list
    heavy = {package: loaded(modules, package) for package in HEAVY}
    assert {p: found for p, found in heavy.items() if found} == {}
    assert loaded(modules, "bulletin.cli") == ["bulletin.cli"]


def test_a_command_help_loads_its_own_module_only(tmp_path: Path) -> None:
    """`bulletin notice --help` imports the notice commands, no other command's module and no
    CAP module; `bulletin cap --help` imports the CAP commands."""
    modules = imported("notice", "--help", tmp=tmp_path)
    assert loaded(modules, "bulletin.cli") == [
        "bulletin.cli",
        "bulletin.cli.notice",
        "bulletin.cli.notice_views",
    ]
    assert loaded(modules, "bulletin.cap") == []
    assert "bulletin.cli.cap" in imported("cap", "--help", tmp=tmp_path)


# What a command that reads the notices or the archive never needs: the platforms' and the
# archive store's libraries, CAP, the web stack, password hashing, retries, structlog (nothing
# is logged), the witness's HTTP client.
NOT_FOR_READING = (
    "tweepy",
    "facebook",
    "boto3",
    "requests",
    "jinja2",
    "starlette",
    "uvicorn",
    "apscheduler",
    "structlog",
    "argon2",
    "pyotp",
    "tenacity",
    "bulletin.cap",
    "bulletin.web",
)


@pytest.mark.parametrize(
    "command",
    [("notice", "list"), ("archive", "search", "water"), ("archive", "list"), ("status",)],
    ids=" ".join,
)
def test_read_commands_import_only_what_they_use(
    command: tuple[str, ...], sqlite_instance: Instance, tmp_path: Path
) -> None:
    """A read command on SQLite imports no platform, CAP, web or logging library."""
    modules = imported("--config", str(sqlite_instance.config), *command, tmp=tmp_path)
    assert "bulletin.models" in modules  # it did read the database
    heavy = {package: loaded(modules, package) for package in NOT_FOR_READING}
    assert {p: found for p, found in heavy.items() if found} == {}


def test_the_table_short_help_is_each_command_s_own() -> None:
    """The short help `bulletin --help` shows from the table is what the command's docstring
    says, so the listing is the same whether a command is loaded or not."""
    for path, (target, short) in COMMANDS.items():
        command: click.Command | None = cli
        for name in path.split():  # "GROUP NAME" is a subcommand of GROUP
            assert isinstance(command, click.Group), path
            command = command.get_command(click.Context(command), name)
        assert command is not None, target
        assert command.get_short_help_str(10_000) == short, path


def test_help_lists_every_command_loaded_or_not() -> None:
    """The listing is the same before and after every command is loaded."""
    before = CliRunner().invoke(cli, ["--help"]).output
    for name in cli.list_commands(click.Context(cli)):
        cli.get_command(click.Context(cli), name)
    after = CliRunner().invoke(cli, ["--help"]).output
    assert before == after
    assert all(f"\n  {name} " in after for name in COMMANDS if " " not in name)


DEMO = textwrap.dedent(
    """
    import click

    @click.group()
    def demo() -> None:
        "A group registered in the table."

    @click.command()
    def hello() -> None:
        "Say hello, added to demo by a table line."
        click.echo("hello")

    not_a_command = 1
    """
)


def test_a_table_line_adds_a_command_or_a_subcommand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One line registers a command ("demo") or a subcommand of a group ("demo hello"); the
    module is imported only when the command runs; a line naming no command is refused."""
    (tmp_path / "lazy_demo.py").write_text(DEMO)
    monkeypatch.syspath_prepend(str(tmp_path))
    group = LazyGroup(
        "top",
        lazy={
            "demo": ("lazy_demo:demo", "A group registered in the table."),
            "demo hello": ("lazy_demo:hello", "Say hello, added to demo by a table line."),
            "broken": ("lazy_demo:not_a_command", "Names no command."),
        },
    )
    listing = CliRunner().invoke(group, ["--help"])
    assert "demo    A group registered in the table." in listing.output
    assert "lazy_demo" not in sys.modules
    result = CliRunner().invoke(group, ["demo", "hello"])
    assert result.exit_code == 0 and result.output == "hello\n"
    with pytest.raises(LookupError, match="not_a_command"):
        group.get_command(click.Context(group), "broken")


def test_the_entry_point_s_first_step_imports_the_standard_library_only() -> None:
    """`bulletin.command_client`, which every `bulletin` runs first, imports nothing but the
    standard library (and `bulletin` itself, a version string)."""
    probe = (
        "import json, sys; before = set(sys.modules); import bulletin.command_client; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    new = set(json.loads(result.stdout))
    ours = {"bulletin", "bulletin.command_client"}
    assert {m for m in new - ours if m.split(".")[0] not in sys.stdlib_module_names} == set()


def test_a_command_the_daemon_answers_imports_no_orm(
    sqlite_instance: Instance, tmp_path: Path, daemon_process: Callable[..., DaemonProcess]
) -> None:
    """With the daemon running, `bulletin notice list` (and `status`) hand the command to it:
    the process imports neither the ORM, click nor the command line."""
    inst = sqlite_instance
    daemon_process(inst.env(), inst.config.parent).start()
    for command in (("notice", "list"), ("status",)):
        modules = imported("--config", str(inst.config), *command, tmp=tmp_path)
        heavy = {package: loaded(modules, package) for package in (*HEAVY, "click")}
        assert {p: found for p, found in heavy.items() if found} == {}, command
        assert loaded(modules, "bulletin.cli") == []
