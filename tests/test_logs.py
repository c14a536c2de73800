"""Logs and how the command line ends: JSON means every line is JSON, a bug leaves its
traceback in the log and exits 70, a reader that goes away (``| head``) is not an error."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from bulletin import logs
from bulletin.cli import EXIT_BROKEN_PIPE, EXIT_INTERNAL
from tests.plugins.bulletin_app import Instance


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put the root logger and structlog back as they were after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def test_json_format_renders_library_loggers_as_json(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    """With json, stdlib loggers of APScheduler, Alembic, urllib3 and boto print JSON lines
    too, tracebacks included; ours as well."""
    logs.configure("info", "json")
    logging.getLogger("apscheduler.scheduler").warning("Run time of job %r was missed", "x")
    logging.getLogger("alembic.runtime.migration").warning("Running upgrade")
    logging.getLogger("urllib3.connectionpool").warning("Retrying %s", "GET")
    try:
        raise ConnectionError("endpoint down")
    except ConnectionError:
        logging.getLogger("botocore.endpoint").exception("request failed")
    structlog.get_logger("bulletin.daemon").info("started", owner="h:1")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 5, lines
    parsed = [json.loads(line) for line in lines]
    assert [(p["logger"], p["level"]) for p in parsed] == [
        ("apscheduler.scheduler", "warning"),
        ("alembic.runtime.migration", "warning"),
        ("urllib3.connectionpool", "warning"),
        ("botocore.endpoint", "error"),
        ("bulletin.daemon", "info"),
    ]
    assert parsed[0]["event"] == "Run time of job 'x' was missed"
    assert "ConnectionError: endpoint down" in parsed[3]["exception"]
    assert parsed[4]["owner"] == "h:1" and "timestamp" in parsed[4]


CRASHING = textwrap.dedent(
    """
    import click
    from bulletin.cli import BulletinGroup

    @click.group(cls=BulletinGroup)
    def group() -> None:
        "A group whose one command has a bug."

    @group.command()
    def broken() -> None:
        "Divides by zero."
        1 / 0

    group(["broken"])
    """
)


def test_a_bug_logs_its_traceback_and_exits_70(tmp_path: Path) -> None:
    """An unexpected exception: the traceback in the log (stderr) at error level, then one
    line for the person, exit 70 (EX_SOFTWARE), distinct from refusals and usage errors."""
    script = tmp_path / "crash.py"
    script.write_text(CRASHING)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == EXIT_INTERNAL == 70
    assert "Traceback (most recent call last)" in result.stderr
    assert "ZeroDivisionError: division by zero" in result.stderr
    assert "[error" in result.stderr and "unexpected error" in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("bulletin: error: unexpected ZeroDivisionError: division by zero")
    assert result.stdout == ""


def test_a_closed_pipe_ends_quietly(sqlite_instance: Instance) -> None:
    """``bulletin account list | head -0``: the reader is gone before anything is written;
    the command exits 141 as a SIGPIPE would, with nothing on stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "bulletin", "account", "list"],
            env=sqlite_instance.env(),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.returncode == EXIT_BROKEN_PIPE == 141
    assert result.stderr == ""
