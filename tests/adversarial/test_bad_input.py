"""Hostile input through Bulletin's own doors: each case is refused with one line on stderr and
the right exit code, never a traceback, a hang or damaged state. The cases are data: add one
line to :data:`CASES` for each new attack."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
import requests

from bulletin.connectors.sandbox import SandboxServer
from tests.plugins.bulletin_app import Instance, write_config
from tests.plugins.cli import invoke

TOKEN = "EAABwzLixnjYBAOZBZCk9sT0kEnZZ4xQ"
ROAD = (
    "notice",
    "add",
    "--category",
    "road-closure",
    "--target",
    "feed",
    "--text",
    "Elm St closed until 6 pm.",
)

NEXT_YEAR = (date.today() + timedelta(days=400)).isoformat()


def request_open(received: str, query: str = "water") -> tuple[str, ...]:
    """``request open`` received on ``received``, scoped by ``query``."""
    return ("request", "open", "--requester", "Bo", "--received", received,
            "--description", "all posts", "--query", query, "--allow-empty")  # fmt: skip


def hold_create(query: str) -> tuple[str, ...]:
    """``hold create`` on ``query``."""
    return ("hold", "create", "--name", "n", "--reason", "r", "--query", query, "--allow-empty")


@dataclass(frozen=True)
class Case:
    """One attack: extra configuration, the command line, the exit code and what the one-line
    error must say."""

    name: str
    argv: tuple[str, ...]
    code: int
    says: str
    config: str = ""
    hidden: str = ""  # must appear nowhere in the output
    env: tuple[tuple[str, str], ...] = ()  # environment of the attacking command


CASES = [
    Case(
        "acting name forging an audit line",
        (*ROAD, "--as", "dana\n2026-11-25 10:17 EST  chief  approved notice 3"),
        2,
        "has a control character (U+000A) at position 5",
    ),
    Case(
        "acting name with a bidi override",
        (*ROAD, "--as", "dana\u202e"),
        2,
        "right-to-left override (U+202E)",
    ),
    Case("acting name of spaces", (*ROAD, "--as", "   "), 2, "is empty"),
    Case(
        "configured user name with a control character",
        ("config", "check"),
        2,
        "users: user name 'dana\\x1b[2J' has a control character (U+001B) at position 5",
        config='[users."dana\\u001b[2J"]\nroles = ["dispatcher"]\n',
    ),
    Case(
        "account name that climbs out of the data directory",
        ("config", "check"),
        2,
        "accounts: account name '../../x' must be letters, digits",
        config='[accounts."../../x"]\nplatform = "feed"\n',
    ),
    Case(
        "a Page token pasted where its variable's name belongs",
        ("config", "check"),
        2,
        "accounts.fb: token_env must name an environment variable or systemd credential",
        config=f'[accounts.fb]\nplatform = "facebook"\npage_id = "1"\ntoken_env = "{TOKEN}"\n',
        hidden=TOKEN,
    ),
    # characters no platform displays, which also make the feed invalid XML
    Case(
        "form feed in the notice text",
        (*ROAD[:-1], "Elm St\x0cclosed until 6 pm."),
        2,
        "notice text has a control character (U+000C) at position 7",
    ),
    Case(
        "terminal escape in the title",
        (*ROAD, "--title", "Elm\x1b[2J closed"),
        2,
        "the title has a control character (U+001B) at position 4",
    ),
    Case(
        "noncharacter in a per-platform text",
        (*ROAD, "--text-for", "feed=Elm St closed.\ufffe"),
        2,
        "the text for feed has a noncharacter (U+FFFE) at position 15",
    ),
    Case(
        "bidi override in the link",
        (*ROAD, "--link", "https://lexingtonma.gov/\u202egpj.exe"),
        2,
        "the link has a right-to-left override (U+202E) at position 25",
    ),
    Case(
        "start-of-heading control in the follow-up",
        (*ROAD, "--expires", "+2h", "--follow-up", "\x01Reopened."),
        2,
        "the follow-up has a control character (U+0001) at position 1",
    ),
    Case(
        "noncharacter in a template's text",
        ("template", "add", "closure", "--category", "road-closure", "--text", "Closed\uffff"),
        2,
        "template text has a noncharacter (U+FFFF) at position 7",
    ),
    # links and images that are not what they claim
    Case(
        "script posing as the notice's link",
        (*ROAD, "--link", "javascript:alert(document.cookie)"),
        2,
        "the link 'javascript:alert(document.cookie)' is not a web address",
    ),
    Case(
        "local file posing as the notice's link",
        (*ROAD, "--link", "file:///etc/passwd"),
        2,
        "the link 'file:///etc/passwd' is not a web address",
    ),
    Case(
        "web link without a host",
        (*ROAD, "--link", "https:///notice"),
        2,
        "the link 'https:///notice' is not a web address: give http:// or https:// and a host",
    ),
    Case(
        "system file posing as an image",
        (*ROAD, "--image", "/etc/passwd"),
        2,
        "image /etc/passwd is not a JPEG, PNG, GIF or WebP image",
    ),
    Case(
        "publish time a hundred billion days away",
        (*ROAD, "--at", "+99999999999d"),
        2,
        "time '+99999999999d' is more than 100 years from now",
    ),
    Case(
        "publish time in the year 9999",
        (*ROAD, "--at", "9999-12-31T23:59"),
        2,
        "time '9999-12-31T23:59' is more than 100 years from now",
    ),
    Case(
        "notice text holding a byte that is not UTF-8 (as argv carries it)",
        (*ROAD[:-1], "Elm \udcff St closed."),
        2,
        "argument 10 is not valid UTF-8 (byte 0xff at character 5)",
    ),
    Case(
        "database URL of an unknown scheme",
        ("notice", "list"),
        2,
        "database.url: unsupported database URL scheme 'foo'; use sqlite:///",
        env=(("BULLETIN_DATABASE__URL", "foo://x"),),
    ),
    Case(
        "database URL of an unsupported database, with a password",
        ("notice", "list"),
        2,
        "unsupported database URL scheme 'mysql'; use sqlite:///path/to/bulletin.db or "
        "postgresql+psycopg://",
        env=(("BULLETIN_DATABASE__URL", "mysql://app:hunter2secret@db/bulletin"),),
        hidden="hunter2secret",
    ),
    Case(
        "database URL that is a bare password",
        ("notice", "list"),
        2,
        "database.url: unsupported database URL (no scheme); use sqlite:///",
        env=(("BULLETIN_DATABASE__URL", "hunter2secret"),),
        hidden="hunter2secret",
    ),
    Case(
        "notice id beyond 64 bits",
        ("notice", "show", "99999999999999999999"),
        2,
        "Invalid value for 'NOTICE_ID': 99999999999999999999 is not in the range",
    ),
    Case(
        "archive list limit in scientific notation",
        ("archive", "list", "--limit", "1e30"),
        2,
        "Invalid value for '--limit': '1e30' is not a valid integer",
    ),
    Case(
        "search limit beyond 64 bits",
        ("archive", "search", "--limit", "99999999999999999999", "water"),
        2,
        "Invalid value for '--limit': 99999999999999999999 is not in the range",
    ),
    Case(
        "record id beyond what a database id holds",
        ("archive", "show", "2147483648"),
        2,
        "Invalid value for 'RECORD_ID': 2147483648 is not in the range 1<=x<=2147483647",
    ),
    Case(
        "notice list of a state that does not exist",
        ("notice", "list", "--state", "bogus"),
        2,
        "unknown notice state 'bogus'; one of: draft, approved, published",
    ),
    Case(
        "records request received in year 1",
        request_open("0001-01-01"),
        2,
        "received date 0001-01-01 is before 1990",
    ),
    Case(
        "records request received before 1990",
        request_open("1989-12-31"),
        2,
        "received date 1989-12-31 is before 1990",
    ),
    Case(
        "records request received next year",
        request_open(NEXT_YEAR),
        2,
        f"received date {NEXT_YEAR} is in the future",
    ),
    Case(
        "retention period of no time",
        ("config", "check"),
        2,
        "retention.series.visitor-comments.period: '0d' is no time at all",
        config='[retention.series.visitor-comments]\nperiod = "0d"\n',
    ),
    Case(
        "records request extended by 10^20 days",
        ("request", "extend", "1", "--days", "99999999999999999999", "--reason", "r"),
        2,
        "an extension is at most 260 business days",
    ),
    Case(
        "hold on a kind that does not exist",
        hold_create("kind:bogus"),
        2,
        "query kind:bogus: use one of post, comment, moderation",
    ),
    Case(
        "hold on a state that does not exist",
        hold_create("state:bogus"),
        2,
        "query state:bogus: use one of visible, hidden, deleted, edited",
    ),
    Case(
        "hold on a 100 kB word",
        hold_create("a" * 100_000),
        2,
        "the query has 100000 characters; at most 2000",
    ),
    Case(
        "search for 40 words",
        ("archive", "search", " ".join(f"w{i}" for i in range(40))),
        2,
        "the query has 40 words; at most 32",
    ),
    Case(
        "request on 20 prefixes",
        request_open("2026-11-20", " ".join(f"w{i}*" for i in range(20))),
        2,
        "the query has 20 words* (prefixes); at most 8",
    ),
    Case(
        "export starting past ten-digit Bates numbers",
        ("export", "--query", "water", "--out", "/nonexistent/b", "--bates-start", "10000000000"),
        2,
        "Bates number 10000000000 is past the last of 10 digits (9999999999); give a lower "
        "--bates-start",
    ),
]


def _invoke(
    config: Path, argv: tuple[str, ...], env: tuple[tuple[str, str], ...] = ()
) -> tuple[int, str, str]:
    result = invoke(config, *argv, env=dict(env))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_in_one_line(case: Case, tmp_path: Path) -> None:
    """The command exits with the case's code and one stderr line naming the problem."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    config = write_config(
        tmp_path / "bulletin.toml",
        data_dir,
        f"sqlite:///{data_dir / 'bulletin.db'}",
        case.config,
    )
    code, _, stderr = _invoke(config, ("init",))
    assert code == (2 if case.config and case.code == 2 else 0), stderr
    code, stdout, stderr = _invoke(config, case.argv, case.env)
    if case.hidden:
        assert case.hidden not in stdout + stderr
    lines = [line for line in stderr.splitlines() if not line.startswith("bulletin: warning:")]
    assert code == case.code, stderr
    assert len(lines) == 1, stderr
    assert case.says in lines[0]
    assert "Traceback" not in stderr


def test_audit_lines_cannot_be_forged_by_an_old_event(sqlite_instance: Instance) -> None:
    """An event recorded before names were checked prints escaped, on its own line."""
    from bulletin.audit import record_event
    from bulletin.db import session_scope

    with session_scope(sqlite_instance.app.engine) as session:
        record_event(
            session,
            at=sqlite_instance.clock.now(),
            actor="dana\nchief",
            action="drafted",
            object_type="notice",
            object_id=1,
            reason="ok\n2026-11-25 10:17 EST  chief  approved  notice 1",
        )
    code, stdout, stderr = _invoke(sqlite_instance.config, ("audit",))
    assert code == 0, stderr
    assert len(stdout.strip().splitlines()) == 1
    assert "dana\\nchief" in stdout


def test_endless_configuration_file_is_refused(tmp_path: Path) -> None:
    """``--config /dev/zero`` stops at the size limit instead of reading forever."""
    code, _, stderr = _invoke(Path("/dev/zero"), ("config", "check"))
    assert code == 2
    assert stderr.strip() == (
        "bulletin: error: /dev/zero: larger than 1024 KiB; not a configuration file"
    )


def test_configuration_nested_too_deeply_is_refused(tmp_path: Path) -> None:
    """A table nested 100,000 deep is a one-line TOML error, not a RecursionError."""
    config = tmp_path / "deep.toml"
    config.write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    code, _, stderr = _invoke(config, ("config", "check"))
    assert code == 2
    assert stderr.strip() == f"bulletin: error: {config}: invalid TOML: nested too deeply"


def test_catastrophic_policy_pattern_is_stopped(tmp_path: Path) -> None:
    """A configured pattern that backtracks without end is stopped and reported as a blocking
    finding naming the rule; the notice is kept as a draft."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    rule = '[[policy.rules]]\nid = "runaway"\nmessage = "runaway rule"\npatterns = ["(a|aa)+$"]\n'
    config = write_config(
        tmp_path / "bulletin.toml", data_dir, f"sqlite:///{data_dir / 'bulletin.db'}", rule
    )
    assert _invoke(config, ("init",))[0] == 0
    text = "Road closed " + "a" * 40 + "!"
    code, stdout, stderr = _invoke(config, (*ROAD[:-1], text, "--as", "dana"))
    assert code == 0, stderr
    assert "runaway (block): runaway rule: the rule's pattern took over 1 s" in stdout


def test_lone_surrogate_comment_does_not_break_the_sandbox(sandbox: SandboxServer) -> None:
    """A visitor comment holding a lone surrogate is refused with 400; the sandbox keeps
    answering everything else."""
    body = b'{"post_id": "1", "message": "bad \\ud800 text", "author": "Bo"}'
    answer = requests.post(
        f"{sandbox.url}/_sandbox/fb/comments",
        data=body,
        headers={"content-type": "application/json"},
        timeout=5,
    )
    assert answer.status_code == 400
    assert requests.get(f"{sandbox.url}/_sandbox/state", timeout=5).status_code == 200


def test_sandbox_state_never_hands_out_credentials(sandbox: SandboxServer) -> None:
    """The control API shows posts and accounts, never a token or secret."""
    from bulletin.connectors.sandbox import SANDBOX_ENV

    state = requests.get(f"{sandbox.url}/_sandbox/state", timeout=5).text
    assert "fb" in state and "x" in state
    for value in SANDBOX_ENV.values():
        if value.startswith("sandbox-") and "key" not in value:
            assert value not in state


def test_sandbox_on_every_address_warns(tmp_path: Path) -> None:
    """``bulletin sandbox --host 0.0.0.0`` says that other machines can reach it."""
    import signal
    import subprocess
    import sys

    from tests.plugins.environment import free_port

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bulletin",
            "sandbox",
            "--host",
            "0.0.0.0",  # noqa: S104 (the setting under test)
            "--port",
            str(free_port()),
            "--state-file",
            str(tmp_path / "s.json"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        line = process.stdout.readline() if process.stdout else ""
        assert "sandbox listening" in line
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    assert "reachable from other machines" in err
