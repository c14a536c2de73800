"""The clerk's hold and request commands and the administrator's retention commands."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bulletin.archiver.archive import Capture
from bulletin.connectors.base import RemoteItem
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import run as run_cli

SCHEDULE = """
[retention.series.visitor-comments]
period = "1y"
anchor = "posted"
disposition = "destroy-after-approval"

[users.clerk1]
os_user = "clerk1"
roles = ["clerk"]

[users.chief]
os_user = "chief"
roles = ["approver"]

[users.rita]
os_user = "rita"
roles = ["records-officer"]

[users.admin1]
os_user = "admin1"
roles = ["admin"]
"""


@pytest.fixture
def inst(tmp_path: Path) -> Iterator[Instance]:
    """SQLite, users with roles, comments destroyed a year after posting."""
    made = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", SCHEDULE)
    items = [
        RemoteItem(
            kind="comment",
            remote_id=f"c{n}",
            text=f"About the parade route {n}",
            author=f"visitor{n}",
            posted_at=datetime(2020, 5, n, 12, tzinfo=UTC),  # long past retention
            parent_id="p1",
            thread_id="p1",
            raw=f'{{"id":"c{n}"}}'.encode(),
        )
        for n in (1, 2, 3)
    ]
    made.app.archiver.archive([Capture("feed", "feed", i) for i in items])
    yield made
    made.app.close()


def run(inst: Instance, *args: str, code: int = 0, login: str | None = None) -> str:
    """The command line in-process, on the instance's clock, run by the OS user ``login``."""
    return run_cli(inst, *args, code=code, clock=inst.clock, login=login)


def last_json(output: str) -> dict[str, object]:
    value: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return value


def test_clerk_holds_and_requests(inst: Instance) -> None:
    """hold create/list/show/release and request open/list/extend/show/close, with roles."""
    placed = last_json(
        run(
            inst,
            "hold",
            "create",
            "--name",
            "Doe v. Town",
            "--query",
            "author:visitor1 from:2020-05-01 to:2020-05-31",
            "--reason",
            "notice of claim",
            "--json",
            login="clerk1",
        )
    )
    assert placed["records"] == 1
    run(inst, "hold", "create", "--name", "x", "--query", "author:x", "--reason", "r",
        code=1, login="chief")  # fmt: skip
    assert "Doe v. Town" in run(inst, "hold", "list")
    assert "visitor1" in run(inst, "hold", "show", str(placed["id"]))
    opened = run(
        inst,
        "request",
        "open",
        "--requester",
        "Lexington Minuteman",
        "--received",
        "2026-11-25",
        "--description",
        "comments on the parade post",
        "--query",
        "thread:p1 parade",
        login="clerk1",
    )
    assert "due 2026-12-10" in opened and "on 3 records" in opened
    listed = last_json(run(inst, "request", "list", "--json"))
    requests = listed["requests"]
    assert isinstance(requests, list)
    [row] = requests
    assert row["due_on"] == "2026-12-10"
    assert "days left" in run(inst, "request", "list")
    assert "2026-12-17" in run(
        inst, "request", "extend", str(row["id"]), "--days", "5", "--reason", "volume",
        login="clerk1")  # fmt: skip
    assert "extended    5 days" in run(inst, "request", "show", str(row["id"]))
    run(inst, "hold", "release", str(row["hold_id"]), "--reason", "x", code=1, login="clerk1")
    closed = run(inst, "request", "close", str(row["id"]), "--reason", "answered", login="clerk1")
    assert "2 records left legal hold" in closed  # visitor1 stays under Doe v. Town
    run(inst, "hold", "release", str(placed["id"]), code=2, login="clerk1")  # no --reason
    assert "1 records left" in run(
        inst, "hold", "release", str(placed["id"]), "--reason", "settled", login="clerk1"
    )
    audit = run(inst, "audit", "--limit", "500")
    for action in ("hold-created", "request-opened", "request-extended", "request-closed"):
        assert action in audit


def test_administrator_schedule_and_disposition(inst: Instance) -> None:
    """retention show/apply/list-batch/batches/show-batch/approve-batch, then archive verify."""
    shown = run(inst, "retention", "show")
    assert "visitor-comments" in shown and "1y" in shown
    assert "example-wa-core" in run(inst, "retention", "example")
    assert "GS50-01-12" in run(inst, "retention", "example", "example-wa-core")
    applied = run(inst, "retention", "apply", login="admin1")
    assert "visitor-comments: extended 0, unchanged 3" in applied
    listed = last_json(run(inst, "retention", "list-batch", "--json", login="admin1"))
    batch = str(listed["id"])
    assert listed["record_count"] == 3
    assert "listed" in run(inst, "retention", "batches")
    for login in ("clerk1", "chief", "admin1"):  # not a records officer
        refused = run(inst, "retention", "approve-batch", batch, code=1, login=login)
        assert "does not hold the records-officer role" in refused, refused
        assert "no longer approves destruction" in refused
    assert "listed" in run(inst, "retention", "batches")
    approved = run(inst, "retention", "approve-batch", batch, login="rita")
    assert "approved by rita: 3 records disposed of, 6 objects destroyed" in approved
    assert "already approved" in run(
        inst, "retention", "approve-batch", batch, code=1, login="rita"
    )
    assert "(verified)" in run(inst, "retention", "show-batch", batch)
    assert "OK: 3 records" in run(inst, "archive", "verify")
    assert "nothing is due" in run(inst, "retention", "list-batch", login="admin1")
