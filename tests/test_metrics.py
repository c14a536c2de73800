"""The Prometheus endpoint (the figures of `bulletin status` at each scrape, over real HTTP),
and the records-request deadlines that status, the log and the metrics warn of."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import requests as http
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from bulletin.archiver import holds, requests
from bulletin.archiver.capture.sweep import sweep
from bulletin.connectors.sandbox import SANDBOX_ENV, SandboxServer
from bulletin.db import session_scope
from bulletin.models import DaemonInstance
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.notices import NoticeDraft, create_notice
from bulletin.service.daemon import Daemon
from bulletin.service.instances import HEARTBEAT_SECONDS
from bulletin.service.metrics import StatusCollector, VerifyResult, serve_metrics
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.capture import replies, x_post
from tests.plugins.capture import run as run_sweep
from tests.plugins.cli import invoke
from tests.plugins.daemon_process import DaemonProcess
from tests.plugins.environment import free_port
from tests.plugins.sandbox import FAST_RETRY, FAST_TIMEOUT, Control, sandbox_accounts

MakeDaemon = Callable[[dict[str, str], Path], DaemonProcess]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(collector: StatusCollector) -> Samples:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return samples(generate_latest(registry).decode())


def approve_one(inst: Instance) -> None:
    """A notice to the feed, drafted and approved at the instance's clock."""
    notice = create_notice(
        inst.app.engine,
        inst.settings,
        inst.clock,
        NoticeDraft("traffic", "Main St closed for a parade until 2 pm.", ("feed",)),
        "dispatcher",
    )
    approve_notice(inst.app.engine, inst.settings, inst.clock, notice.id or 0, "approver")


def publish_one(inst: Instance) -> None:
    approve_one(inst)
    Daemon(inst.app).run_once(max_wait=0)


def test_a_scrape_reads_what_status_shows(instance: Instance) -> None:
    """After one notice is published and archived and the feed swept: the deliveries by state,
    the archive, the sweep, the disk and the last verify, and no scrape error."""
    inst = instance
    publish_one(inst)
    sweep(inst.app.archiver, inst.app.connector("feed"), "feed", inst.clock)
    verified = VerifyResult(inst.clock.now(), 0)
    got = scrape(StatusCollector(inst.app, HEARTBEAT_SECONDS, lambda: verified))
    assert got[("bulletin_deliveries", (("state", "published"),))] == 1
    assert got[("bulletin_deliveries_due", ())] == 0
    assert got[("bulletin_archive_records", ())] >= 1
    assert got[("bulletin_ledger_head", ())] >= 1
    assert got[("bulletin_capture_last_sweep_ok", (("account", "feed"),))] == 1
    assert got[("bulletin_store_backlog_objects", ())] == 0
    assert got[("bulletin_verify_problems", ())] == 0
    assert got[("bulletin_scrape_error", ())] == 0
    [ratio] = [v for (name, _), v in got.items() if name == "bulletin_disk_free_ratio"]
    assert 0 < ratio <= 1


def test_a_scrape_that_cannot_read_says_so(sqlite_instance: Instance) -> None:
    """The database loses a table: the scrape answers bulletin_scrape_error 1, no exception."""
    inst = sqlite_instance
    with inst.app.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE deliveries RENAME TO deliveries_gone")
    got = scrape(StatusCollector(inst.app, HEARTBEAT_SECONDS))
    about_the_group = {
        key: v for key, v in got.items() if not key[0].startswith("bulletin_daemon_")
    }
    assert about_the_group == {("bulletin_scrape_error", ()): 1}
    assert got[("bulletin_daemon_resident_memory_bytes", ())] > 0  # this process's own


def test_a_scrape_tells_the_daemons_memory_and_sqlites_share(
    sqlite_instance: Instance, tmp_path: Path
) -> None:
    """The scrape gives this process's resident memory and what SQLite holds in it: reading
    a table through a new connection of Python's own sqlite3 raises the SQLite figure (the
    same copy of the library is asked), and the high-water mark is never below it."""
    import sqlite3

    collector = StatusCollector(sqlite_instance.app, HEARTBEAT_SECONDS)
    before = scrape(collector)
    path = tmp_path / "pages.db"
    connection = sqlite3.connect(path)
    try:
        connection.execute("CREATE TABLE t (x TEXT)")
        connection.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,) for _ in range(2000)])
        connection.commit()
        connection.execute("SELECT count(*), max(x) FROM t").fetchall()
        during = scrape(collector)
    finally:
        connection.close()
    sqlite = ("bulletin_daemon_sqlite_memory_bytes", ())
    highwater = ("bulletin_daemon_sqlite_memory_highwater_bytes", ())
    assert during[sqlite] >= before[sqlite] + 1_000_000  # its page cache, 2 MB of rows
    assert during[highwater] >= during[sqlite]
    assert during[("bulletin_daemon_resident_memory_bytes", ())] > during[sqlite]


def test_a_taken_address_leaves_the_daemon_without_metrics(sqlite_instance: Instance) -> None:
    """Another program holds the port: serve_metrics logs it and returns None."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        collector = StatusCollector(sqlite_instance.app, HEARTBEAT_SECONDS)
        assert serve_metrics(f"127.0.0.1:{port}", collector) is None


@pytest.mark.parametrize("address", ["9464", "localhost:", "localhost:http", ":9464", "h:70000"])
def test_a_bad_metrics_address_is_a_one_line_config_error(tmp_path: Path, address: str) -> None:
    config = tmp_path / "bulletin.toml"
    config.write_text(f'[daemon]\nmetrics_address = "{address}"\n')
    done = subprocess.run(
        [sys.executable, "-m", "bulletin", "--config", str(config), "config", "check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "daemon.metrics_address" in line and "host:port" in line


@pytest.mark.slow
def test_the_daemon_serves_metrics_over_http(tmp_path: Path, daemon_process: MakeDaemon) -> None:
    """A daemon process with [daemon] metrics_address answers GET /metrics, counts itself
    live, moves to a new address on SIGHUP, and stops serving when it stops."""
    port = free_port()
    inst = make_instance(
        tmp_path,
        f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}",
        f'\n[daemon]\nmetrics_address = "127.0.0.1:{port}"\n',
    )
    inst.app.close()
    daemon = daemon_process(inst.env(), inst.config.parent).start()
    daemon.wait_for_log("metrics endpoint started")
    answer = http.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert answer.status_code == 200
    got = samples(answer.text)
    assert got[("bulletin_daemons_live", ())] == 1
    assert got[("bulletin_scrape_error", ())] == 0
    moved = free_port()
    inst.config.write_text(inst.config.read_text().replace(str(port), str(moved)))
    daemon.signal(signal.SIGHUP)  # a new address takes effect on reload
    daemon.wait_for_log("metrics endpoint started", count=2)
    assert http.get(f"http://127.0.0.1:{moved}/metrics", timeout=10).status_code == 200
    with pytest.raises(http.ConnectionError):
        http.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    with pytest.raises(http.ConnectionError):
        http.get(f"http://127.0.0.1:{moved}/metrics", timeout=5)


@pytest.fixture
def calendar_day_site(tmp_path: Path, db_url: str) -> Iterator[Instance]:
    """Requests answered in 10 calendar days, warned of 3 days ahead."""
    inst = make_instance(tmp_path, db_url, "\n[requests]\nbusiness_days = false\n")
    yield inst
    inst.app.close()


def test_deadlines_near_show_in_status_the_log_and_metrics(calendar_day_site: Instance) -> None:
    """Three open requests, received 12, 8 and 0 days ago (due 10 days after): the first is
    overdue, the second due in 2 days, the third not near; status, the daemon's morning
    warning and the metrics all say so."""
    inst = calendar_day_site
    today = date(2026, 11, 25)  # the instance's clock, in New York
    for ago, who in ((12, "Boston Globe"), (8, "Lexington Minuteman"), (0, "A resident")):
        requests.open_request(
            inst.app.engine,
            inst.app.store,
            inst.settings,
            requester=who,
            received=today - timedelta(days=ago),
            description="the parade posts",
            query=holds.parse_query("account:feed"),
            litigation=False,
            actor="clerk1",
            now=inst.clock.now(),
            allow_empty=True,
        )
    result = invoke(inst, "status", clock=inst.clock)
    assert result.exit_code == 0, result.output
    assert "records requests: 3 open, 2 due within 3 days or overdue" in result.stdout
    assert "request 1 (Boston Globe) due 2026-11-23: OVERDUE by 2 days" in result.stdout
    assert "request 2 (Lexington Minuteman) due 2026-11-27: 2 days left" in result.stdout
    assert "A resident" not in result.stdout
    with capture_logs() as logged:
        lines = Daemon(inst.app).maintenance.warn_deadlines()
    assert [line.split(":")[0] for line in lines] == [
        "request 1 (Boston Globe) due 2026-11-23",
        "request 2 (Lexington Minuteman) due 2026-11-27",
    ]
    warnings = [e for e in logged if e["event"] == "records request deadline"]
    assert [(e["log_level"], e["request"]) for e in warnings] == [("warning", 1), ("warning", 2)]
    got = scrape(StatusCollector(inst.app, HEARTBEAT_SECONDS))
    assert got[("bulletin_requests_open", ())] == 3
    assert got[("bulletin_requests_due_soon", ())] == 1
    assert got[("bulletin_requests_overdue", ())] == 1


def heartbeat(inst: Instance) -> None:
    """A live daemon's heartbeat, beaten now by the wall clock the status command reads: a
    loaded machine may spend longer than a heartbeat's lifetime between two commands."""
    now = datetime.now(UTC)
    with session_scope(inst.app.engine) as session:
        row = session.get(DaemonInstance, "vm:1:a")
        if row is None:
            row = DaemonInstance(owner="vm:1:a", host="vm", pid=1, version="0", started_at=now)
        row.heartbeat_at = now
        session.add(row)


def test_status_check_says_what_needs_a_person(instance: Instance) -> None:
    """`status --check` exits 1 and names each problem (no daemon, a delivery due for over ten
    minutes), and exits 0 with "CHECK: ok" when nothing needs a person."""
    inst = instance

    def check(code: int) -> list[str]:
        result = invoke(inst, "status", "--check")
        assert result.exit_code == code, result.output
        return [line for line in result.stdout.splitlines() if line.startswith("CHECK:")]

    assert check(1) == ["CHECK: no daemon is running"]
    now = datetime.now(UTC)  # the command reads the wall clock
    heartbeat(inst)
    assert check(0) == ["CHECK: ok"]
    inst.clock.set(now - timedelta(minutes=20))
    approve_one(inst)  # due 20 minutes ago, and no daemon sent it
    heartbeat(inst)
    assert check(1) == ["CHECK: 1 deliveries due and not sent, the oldest for over 10 minutes"]


def test_no_secret_reaches_a_scrape_or_status(
    site: Instance, sandbox: SandboxServer, control: Control
) -> None:
    """With X and Facebook accounts swept (one failing on an expired token), neither the
    metrics nor `status --check --json` carry any credential."""
    replies(control, x_post(sandbox))
    run_sweep(site, "x")
    control.fault("expired_token", r"^/v[\d.]+/", count=100)
    run_sweep(site, "facebook")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(site.app, HEARTBEAT_SECONDS))
    scraped = generate_latest(registry).decode()
    result = invoke(site, "status", "--check", "--json")
    for secret in SANDBOX_ENV.values():
        assert secret not in scraped and secret not in result.output
    assert samples(scraped)[("bulletin_capture_last_sweep_ok", (("account", "facebook"),))] == 0


def test_a_failed_delivery_is_seen_until_acknowledged(
    tmp_path: Path, db_url: str, sandbox: SandboxServer, control: Control
) -> None:
    """X refuses the post while the feed takes it: `status --check` names the failure and
    exits 1, the metrics count it, `notice list --state failed` finds the partially published
    notice; once acknowledged, the check is ok again."""
    inst = make_instance(tmp_path, db_url, sandbox_accounts(sandbox.url))
    inst.app.connector_options = {"retry": FAST_RETRY, "timeout": FAST_TIMEOUT}
    now = datetime.now(UTC)  # the command reads the wall clock
    inst.clock.set(now)
    control.fault("duplicate", r"/2/tweets$", method="POST", count=1)
    notice = create_notice(
        inst.app.engine,
        inst.settings,
        inst.clock,
        NoticeDraft("traffic", "Route 2 closed at exit 53 until 4 pm.", ("feed", "x")),
        "dispatcher",
    )
    approve_notice(inst.app.engine, inst.settings, inst.clock, notice.id or 0, "approver")
    Daemon(inst.app).run_once(max_wait=0)

    def run(*args: str, code: int = 0) -> str:
        heartbeat(inst)
        result = invoke(inst, *args)
        assert result.exit_code == code, result.output
        return result.output

    checks = [line for line in run("status", "--check", code=1).splitlines() if "CHECK" in line]
    assert len(checks) == 1
    assert checks[0].startswith(f"CHECK: notice {notice.id} (partially-published): delivery")
    assert "x:" in checks[0] and "duplicate" in checks[0].lower()
    got = scrape(StatusCollector(inst.app, HEARTBEAT_SECONDS))
    assert got[("bulletin_deliveries_failed", ())] == 1
    assert got[("bulletin_notices", (("state", "partially-published"),))] == 1
    listed = json.loads(run("notice", "list", "--state", "failed", "--json"))
    assert [n["id"] for n in listed["notices"]] == [notice.id]
    assert "partially-published" in run("notice", "list", "--help")
    refused = run("notice", "list", "--state", "bogus", code=2).strip()
    assert refused.count("\n") == 0 and "partially-published" in refused
    run("notice", "ack", str(notice.id), "--reason", "posted by hand", "--as", "dispatcher")
    assert "CHECK: ok" in run("status", "--check")
    got = scrape(StatusCollector(inst.app, HEARTBEAT_SECONDS))
    assert got[("bulletin_deliveries_failed", ())] == 0
    inst.app.close()
