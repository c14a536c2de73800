"""The HTTP API under schemathesis: every operation of /api/v1/openapi.json, with data that
fits the schema and data that does not, against a live server and a token holding every
scope of an account holding every role. No answer may be a 500, nor disagree with the schema
(status code, content type, body)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bulletin.app import Actor, notice_queries, templates, tokens, users
from tests.plugins.bulletin_app import Instance, make_instance
from tests.test_api import serving

PEOPLE = """
[users.ops]
roles = ["admin", "dispatcher", "approver", "clerk"]

[users.abe]
roles = ["approver"]
"""
CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    )
)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Instance]:
    """A SQLite Bulletin with an approved template (so positive examples find one)."""
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'db' / 'bulletin.db'}", PEOPLE)
    users.seed(inst.app)
    templates.add(
        inst.app, Actor("ops"), "closure", "road-closure", "{road} is closed.", {"road": "str"}
    )
    templates.approve(inst.app, Actor("abe"), "closure")
    yield inst
    inst.app.close()


@pytest.mark.slow
@pytest.mark.timeout(300)  # about 30 s alone; more on a loaded CI machine
def test_every_operation_keeps_to_its_schema(site: Instance, tmp_path: Path) -> None:
    st = shutil.which("st", path=str(Path(sys.executable).parent))
    assert st is not None, "schemathesis is not installed (the test extra)"
    secret = tokens.create(site.app, Actor("ops"), "fuzz", list(tokens.SCOPES)).token
    with serving(site.app) as (url, _):
        done = subprocess.run(
            [
                st,
                "run",
                f"{url}/openapi.json",
                "--url",
                url,
                "--header",
                f"Authorization: Bearer {secret}",
                "--checks",
                CHECKS,
                "--mode",
                "all",
                "--max-examples",
                "10",
                "--phases",
                "examples,coverage,fuzzing",
                "--workers",
                "1",
                "--seed",
                "1",
                "--request-timeout",
                "20",
                "--no-color",
                "--report-dir",
                str(tmp_path / "reports"),
            ],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=tmp_path,
        )
    assert done.returncode == 0, _failures(done.stdout) + done.stderr[-2000:]
    assert notice_queries.list_notices(site.app), "no generated draft was accepted"


def _failures(output: str) -> str:
    """The failures of schemathesis's output, each line cut short (bodies can be huge)."""
    start = output.find("FAILURES")
    lines = output[start if start >= 0 else 0 :].splitlines()
    return "\n".join(line[:300] for line in lines[:200])
