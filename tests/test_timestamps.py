"""RFC 3161 time stamps on ledger checkpoints and productions, against a real TSA
(``openssl ts -reply`` behind HTTP, started by a fixture with a CA made now)."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import bagit
import pytest
from sqlmodel import Session

from bulletin.archiver import ledger
from bulletin.archiver.export.stamp import STAMP_FILE
from bulletin.archiver.timestamp.checkpoints import token_key, unstamped
from bulletin.archiver.timestamp.client import TimestampUnavailable, all_roots, stamp_digest
from bulletin.archiver.timestamp.token import check
from bulletin.archiver.verify import verify
from bulletin.config import load_settings
from bulletin.config.timestamp import AuthoritySettings, TimestampSettings
from bulletin.errors import ConfigError
from bulletin.service.daemon import Daemon
from bulletin.service.instances import HEARTBEAT_SECONDS
from bulletin.service.jobs import table
from bulletin.service.maintenance import Maintenance
from bulletin.service.metrics import StatusCollector
from tests.plugins.bulletin_app import Instance, make_instance
from tests.plugins.cli import invoke, run
from tests.plugins.tsa import Authority, TsaProcess, start_tsa
from tests.test_archive import archive_some
from tests.test_export import export, seed
from tests.test_metrics import scrape

FAST = TimestampSettings(timeout=5)


def authorities(*servers: TsaProcess) -> TimestampSettings:
    return TimestampSettings(
        authorities=[AuthoritySettings(url=s.url, ca_bundle=s.ca_bundle) for s in servers],
        timeout=5,
    )


def config(*servers: TsaProcess) -> str:
    lines = "\n".join(
        f'[[timestamp.authorities]]\nurl = "{s.url}"\nca_bundle = "{s.ca_bundle}"\n'
        for s in servers
    )
    return "\n" + lines


def anywhere(*args: str, code: int = 0) -> str:
    """``bulletin *args`` with no configuration (a copy of a bag checked elsewhere)."""
    result = invoke(None, *args)
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def stamped(tmp_path: Path, tsa: TsaProcess) -> Iterator[Instance]:
    """A Bulletin on SQLite whose [timestamp] names the test TSA."""
    inst = make_instance(tmp_path / "b", f"sqlite:///{tmp_path / 'b' / 'bulletin.db'}", config(tsa))
    yield inst
    inst.app.close()


def checkpoint(inst: Instance, work: Maintenance) -> str:
    archive_some(inst, 2 + len(list(ledger.checkpoint_keys(inst.app.store))))
    key = work.checkpoint()
    assert key is not None
    return key


def test_a_checkpoint_is_stamped_at_once_and_verify_reports_the_time(stamped: Instance) -> None:
    """Given a configured TSA, when the daemon writes a checkpoint, then a checked token lies
    beside it in the store, on hold, and verify notes its time."""
    work = Maintenance(stamped.app)
    key = checkpoint(stamped, work)
    store = stamped.app.store
    token = store.get(token_key(key), verify=False)
    info = store.head(token_key(key))
    assert info is not None and info.legal_hold
    digest = hashlib.sha256(store.get(key, verify=False)).digest()
    roots = all_roots(stamped.settings.timestamp.authorities)
    assert "Bulletin Test Root CA TSA" in check(token, digest, roots).tsa
    report = verify(stamped.app.engine, store, settings=stamped.settings)
    assert report.ok, report.problems
    notes = [n for n in report.notes if n.kind == "timestamp"]
    assert [n.subject for n in notes] == [key]
    assert "time-stamped 20" in notes[0].detail and "Bulletin Test Root CA TSA" in notes[0].detail
    assert not unstamped(store)
    seen = work.last_stamping
    assert seen is not None and seen.waiting == 0 and seen.last_ok_at == stamped.clock.now()
    output = run(stamped, "archive", "verify", clock=stamped.clock)
    assert f"note: {key}: timestamp: time-stamped 20" in output


def test_a_token_moved_to_another_checkpoint_is_refused_by_verify(stamped: Instance) -> None:
    """A token that stamps another checkpoint's bytes is named: wrong message imprint."""
    work = Maintenance(stamped.app)
    first = checkpoint(stamped, work)
    store = stamped.app.store
    # another checkpoint of the same head, a second later: other bytes, hence another sha256
    second_key = first.replace("150000Z", "150001Z")
    body = store.get(first, verify=False).replace(b":00:00+00:00", b":00:01+00:00")
    assert body != store.get(first, verify=False)
    store.put(second_key, body, retain_until=stamped.clock.now(), legal_hold=True)
    store.put(token_key(second_key), store.get(token_key(first), verify=False),
              retain_until=stamped.clock.now(), legal_hold=True)  # fmt: skip
    report = verify(stamped.app.engine, store, settings=stamped.settings)
    refused = [p for p in report.problems if p.kind == "timestamp-refused"]
    assert [p.subject for p in refused] == [token_key(second_key)]
    assert "message imprint" in refused[0].detail and "\n" not in refused[0].detail


def test_offline_then_back_online_stamps_the_backlog(stamped: Instance, tsa: TsaProcess) -> None:
    """Given the only TSA down, checkpoints are still written (nothing waits), verify warns of
    each unstamped one and the metric counts them; when the TSA is back the backlog job
    stamps them all and verify is clean again."""
    work = Maintenance(stamped.app)
    tsa.stop()
    first = checkpoint(stamped, work)
    stamped.clock.advance(timedelta(hours=1))
    second = checkpoint(stamped, work)
    store = stamped.app.store
    assert unstamped(store) == [first, second]
    assert work.last_stamping is not None and work.last_stamping.waiting == 2
    assert work.last_stamping.last_ok_at is None
    report = verify(stamped.app.engine, store, settings=stamped.settings)
    assert report.ok
    assert {w.subject for w in report.warnings if w.kind == "checkpoint-unstamped"} == {
        first,
        second,
    }
    assert work.stamp_backlog().stamped == []
    collector = StatusCollector(
        stamped.app, HEARTBEAT_SECONDS, last_stamping=lambda: work.last_stamping
    )
    assert scrape(collector)[("bulletin_checkpoints_unstamped", ())] == 2
    stamped.clock.advance(timedelta(minutes=45))
    check = invoke(stamped, "status", "--check", clock=stamped.clock).output
    assert "CHECK: 2 ledger checkpoints wait for a time stamp, the oldest taken " in check
    assert "time stamps: 2 checkpoints waiting" in check
    tsa.start()
    stamped.clock.advance(timedelta(minutes=5))
    done = work.stamp_backlog()
    assert done.stamped == [first, second] and done.waiting == [] and done.error is None
    after = work.last_stamping
    assert after.waiting == 0 and after.last_ok_at is not None
    assert scrape(collector)[("bulletin_checkpoints_unstamped", ())] == 0
    check = invoke(stamped, "status", "--check", clock=stamped.clock).output
    assert "time stamps: 0 checkpoints waiting" in check and "wait for a time stamp" not in check
    report = verify(stamped.app.engine, store, settings=stamped.settings)
    assert not [w for w in report.warnings if w.kind == "checkpoint-unstamped"]
    assert len([n for n in report.notes if n.kind == "timestamp"]) == 2


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("other-ca", "does not verify against the configured roots"),
        ("expired", "certificate has expired"),
        ("replay", "nonce is not the request's"),
        ("wrong-imprint", "message imprint"),
    ],
)
def test_a_bad_token_is_refused_with_one_line(
    tmp_path: Path, test_ca: Authority, tsa: TsaProcess, case: str, reason: str
) -> None:
    """Each bad answer is refused at once, one line naming why; nothing is kept."""
    if case == "other-ca":
        bad = start_tsa(tmp_path / "other", Authority.make("Someone Else CA"))
    else:
        bad = start_tsa(
            tmp_path / case,
            test_ca,
            expired=case == "expired",
            mode=case if case in ("replay", "wrong-imprint") else "normal",
        )
    try:
        # the roots configured are the test CA's, whichever CA signed the bad TSA's cert
        settings = TimestampSettings(
            authorities=[AuthoritySettings(url=bad.url, ca_bundle=tsa.ca_bundle)], timeout=5
        )
        digest = hashlib.sha256(b"checkpoint").digest()
        if case == "replay":
            stamp_digest(settings, digest)  # the first answer is fine; the next replays it
        with pytest.raises(TimestampUnavailable) as caught:
            stamp_digest(settings, digest)
    finally:
        bad.stop()
    message = str(caught.value)
    assert reason in message, message
    assert "\n" not in message and bad.url in message


def test_any_one_authority_suffices(tmp_path: Path, tsa: TsaProcess) -> None:
    """The first authority is down; the second answers: the stamp is the second's."""
    down = start_tsa(tmp_path / "down", Authority.make("Down CA"))
    down.stop()
    stamp = stamp_digest(authorities(down, tsa), hashlib.sha256(b"x").digest())
    assert stamp.url == tsa.url


def test_no_authority_configured_stamps_nothing(tmp_path: Path) -> None:
    """Without [timestamp] (secrets none), checkpoints are written and never stamped."""
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}")
    try:
        key = checkpoint(inst, Maintenance(inst.app))
        assert not inst.app.store.exists(token_key(key))
        report = verify(inst.app.engine, inst.app.store, settings=inst.settings)
        assert report.ok and not [w for w in report.warnings if "stamp" in w.kind]
    finally:
        inst.app.close()
    assert shutil.which("openssl")


# -- productions ------------------------------------------------------------------------------


def test_a_production_is_stamped_and_a_copied_bag_verifies_with_only_the_roots(
    stamped: Instance, tsa: TsaProcess, tmp_path: Path
) -> None:
    """Given a configured TSA, an export carries the token of its payload manifest; a copy of
    the bag checked with nothing but the bag and the CA roots reports the stamp's time, and
    OpenSSL agrees without Bulletin."""
    seed(stamped)
    result = export(stamped, "account:feed", tmp_path / "out")
    assert result.timestamped and result.timestamp.startswith("time-stamped 20")
    copy = tmp_path / "elsewhere" / "bag"
    shutil.copytree(result.out, copy)
    roots = shutil.copy(tsa.ca_bundle, tmp_path / "elsewhere" / "roots.pem")
    output = anywhere("export", "verify", str(copy), "--no-archive", "--ca-bundle", str(roots))
    stamp_line = next(line for line in output.splitlines() if line.startswith("timestamp:"))
    assert stamp_line.startswith("timestamp: manifest-sha256.txt: time-stamped 20")
    assert "Bulletin Test Root CA TSA" in stamp_line and output.strip().endswith("0 problems")
    checked = subprocess.run(
        ["openssl", "ts", "-verify", "-data", str(copy / "manifest-sha256.txt"),
         "-in", str(copy / STAMP_FILE), "-CAfile", str(roots)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "Verification: OK" in checked.stdout, checked.stderr
    assert bagit.Bag(str(copy)).is_valid()
    # with the archive at hand, the configured authorities' roots serve
    at_home = run(stamped, "export", "verify", str(result.out))
    assert "timestamp: manifest-sha256.txt: time-stamped 20" in at_home
    assert "against the archive" in at_home


def test_a_bag_whose_stamp_is_checked_with_other_roots_fails(
    stamped: Instance, tmp_path: Path
) -> None:
    """The same bag, checked against another CA's roots: one problem line, exit 1."""
    seed(stamped)
    result = export(stamped, "account:feed", tmp_path / "out")
    other = Authority.make("Someone Else CA").write_root(tmp_path / "other.pem")
    output = anywhere(
        "export", "verify", str(result.out), "--no-archive", "--ca-bundle", str(other), code=1
    )
    problems = [line for line in output.splitlines() if line.startswith("problem:")]
    assert problems == [
        f"problem: {STAMP_FILE}: refused: the TSA's certificate does not verify against the "
        "configured roots: unable to get local issuer certificate"
    ]


def test_an_export_while_no_tsa_answers_is_finished_unstamped(
    stamped: Instance, tsa: TsaProcess, tmp_path: Path
) -> None:
    """Nothing waits for a TSA: the export completes, says it is not time-stamped, and
    verify notes the bag has no token."""
    seed(stamped)
    tsa.stop()
    out = tmp_path / "out"
    said = run(stamped, "export", "--query", "account:feed", "--out", str(out), "--as", "clerk1")
    assert "  time stamp   not time-stamped: no time-stamp authority gave a valid token: " in said
    assert not (out / STAMP_FILE).exists()
    output = run(stamped, "export", "verify", str(out))
    assert f"note: manifest-sha256.txt: not time-stamped (no {STAMP_FILE} in the bag)" in output


def test_credentials_in_an_authority_url_are_never_shown(
    tsa: TsaProcess, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A TSA URL carrying credentials works, and neither an error, a stamp, a log line nor the
    settings' repr shows them."""
    secret = "s3cret-key-4711"
    url = tsa.url.replace("http://", f"http://clerk:{secret}@") + f"?key={secret}"
    settings = TimestampSettings(
        authorities=[AuthoritySettings(url=url, ca_bundle=tsa.ca_bundle)], timeout=5
    )
    stamp = stamp_digest(settings, hashlib.sha256(b"x").digest())
    assert stamp.url == tsa.url
    tsa.stop()
    with pytest.raises(TimestampUnavailable) as caught:
        stamp_digest(settings, hashlib.sha256(b"y").digest())
    assert tsa.url in str(caught.value)
    shown = [str(caught.value), repr(settings), caplog.text]
    assert caplog.text and not [text for text in shown if secret in text]


def test_a_ca_bundle_that_is_not_there_fails_at_start(tmp_path: Path) -> None:
    """Bad configuration fails at load with the file, the key and the reason."""
    config = tmp_path / "bulletin.toml"
    config.write_text(
        '[[timestamp.authorities]]\nurl = "https://tsa.example/"\nca_bundle = "missing.pem"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={}, cwd=tmp_path)
    assert str(caught.value).startswith(
        f"{config}: timestamp.authorities.0.ca_bundle: ca_bundle {tmp_path / 'missing.pem'} "
        "cannot be read"
    )
    config.write_text('[[timestamp.authorities]]\nurl = "ftp://tsa.example/"\nca_bundle = "x"\n')
    with pytest.raises(ConfigError, match="is not an http"):
        load_settings(config, environ={}, cwd=tmp_path)


def test_the_daemon_job_stamps_checkpoints_written_without_one(stamped: Instance) -> None:
    """The job table holds the backlog job while [timestamp] names authorities; its body
    stamps a checkpoint written without a time stamp."""
    archive_some(stamped, 2)
    with Session(stamped.app.engine) as session:
        key = ledger.write_checkpoint(session, stamped.app.store, stamped.clock.now())
    assert key is not None and unstamped(stamped.app.store) == [key]
    [job] = [job for job in table(Daemon(stamped.app)) if job.id == "timestamps"]
    job.run()
    assert unstamped(stamped.app.store) == [] and stamped.app.store.exists(token_key(key))


def test_no_backlog_job_without_authorities(sqlite_instance: Instance) -> None:
    """Without [timestamp] authorities the daemon schedules no time-stamp job."""
    assert "timestamps" not in {job.id for job in table(Daemon(sqlite_instance.app))}
