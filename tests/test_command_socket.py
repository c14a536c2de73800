"""A running daemon answers the read commands and approval on its command socket: the same
output, exit code and audit as the command run in its own process, as the same OS user; it
says "run it yourself" when it should, and a bad request never stops it."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bulletin.audit import events
from bulletin.command_client import SOCKET_NAME, receive, send
from bulletin.identity import PeerKernel, invoking_os_user
from bulletin.service.commands import CommandServer, peer_uid
from tests.plugins.bulletin_app import Instance, make_instance, write_config
from tests.plugins.cli import invoke
from tests.plugins.daemon_process import DaemonProcess
from tests.plugins.database import put_migrated_sqlite

pytestmark = pytest.mark.slow
MakeDaemon = Callable[[dict[str, str], Path], DaemonProcess]
ROOT = Path(__file__).resolve().parent.parent

PEOPLE = """
[users.dana]
roles = ["dispatcher", "approver"]
os_user = "dana"

[users.chief]
roles = ["approver"]
os_user = "chief"
"""
TEXT = "Mass Ave closed between Waltham St and Muzzey St until 6 pm for a water main repair."
ADD = ("notice", "add", "--category", "road-closure", "--text", TEXT, "--target", "feed")

# ``python -m bulletin ARGS``, writing whether the ORM was imported to a file when it exits:
# it was not when the daemon answered.
RUN = textwrap.dedent(
    """
    import atexit, runpy, sys
    out, sys.argv = sys.argv[1], ["bulletin", *sys.argv[2:]]
    atexit.register(lambda: open(out, "w").write(str("sqlalchemy" in sys.modules)))
    runpy.run_module("bulletin", run_name="__main__", alter_sys=True)
    """
)


class Ran:
    """One ``bulletin`` process: what it printed, its exit code, and whether it ran the
    command itself (imported the ORM) or the daemon did."""

    def __init__(self, result: subprocess.CompletedProcess[str], here: bool) -> None:
        self.code = result.returncode
        self.stdout = result.stdout
        self.stderr = result.stderr
        self.here = here

    def same(self) -> tuple[int, str, str]:
        return self.code, self.stdout, self.stderr


def bulletin(inst: Instance, *args: str, local: bool = False, **env: str) -> Ran:
    """``bulletin ARGS`` as a process of its own, as root (as this test runs), with ``env``."""
    flag = Path(tempfile.mkstemp(dir=inst.config.parent)[1])
    extra = {"BULLETIN_LOCAL": "1"} if local else {}
    result = subprocess.run(
        [sys.executable, "-c", RUN, str(flag), *args],
        env=inst.env(PYTHONPATH=str(ROOT / "src"), **extra, **env),
        cwd=inst.config.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    here = flag.read_text() == "True"
    flag.unlink()
    return Ran(result, here)


@pytest.fixture
def staffed(tmp_path: Path) -> Iterator[Instance]:
    """SQLite with two people: dana (dispatcher and approver) and chief (approver)."""
    inst = make_instance(tmp_path, f"sqlite:///{tmp_path / 'data' / 'bulletin.db'}", PEOPLE)
    yield inst
    inst.app.close()


@pytest.fixture
def served(staffed: Instance, daemon_process: MakeDaemon) -> Iterator[DaemonProcess]:
    """The daemon running on ``staffed``, its command socket in place."""
    daemon = daemon_process(staffed.env(), staffed.config.parent).start()
    assert (staffed.data_dir / SOCKET_NAME).exists()
    yield daemon
    daemon.kill()


def drafted(inst: Instance, login: str = "dana") -> int:
    result = invoke(inst, *ADD, "--json", login=login)
    assert result.exit_code == 0, result.output
    return int(json.loads(result.stdout)["id"])


READS = [
    ("notice", "list"),
    ("notice", "list", "--json"),
    ("notice", "list", "--state", "bogus"),
    ("notice", "show", "1"),
    ("notice", "show", "--json", "1"),
    ("notice", "show", "99"),
    ("archive", "search", "water"),
    ("archive", "search", "--json", "water"),
    ("archive", "list"),
]


@pytest.mark.timeout(600)  # a dozen processes: minutes on a loaded machine
def test_read_commands_print_the_same_through_the_daemon(
    staffed: Instance, served: DaemonProcess
) -> None:
    """Each read command prints the same and exits the same through the daemon as run here
    (refusals too), and the daemon answered it (no ORM imported); `--local` and
    BULLETIN_LOCAL=1 run it in its own process, with the same output."""
    drafted(staffed)
    for args in READS:
        answered, in_process = bulletin(staffed, *args), invoke(staffed, *args)
        assert not answered.here, args
        assert answered.same() == (
            in_process.exit_code,
            in_process.stdout,
            in_process.stderr,
        ), args
    flagged = bulletin(staffed, "--local", "notice", "list")
    local = bulletin(staffed, "notice", "list", local=True)
    assert flagged.here and local.here and flagged.same() == local.same() == through_list(staffed)
    through, here = bulletin(staffed, "status"), bulletin(staffed, "status", local=True)
    assert not through.here and through.code == here.code == 0
    differs = [  # free disk space and the heartbeat's minute move between two runs
        (a, b)
        for a, b in zip(through.stdout.splitlines(), here.stdout.splitlines(), strict=True)
        if a != b
    ]
    assert all(a.startswith("disk:") or " heartbeat " in a for a, _ in differs), differs


def through_list(inst: Instance) -> tuple[int, str, str]:
    ran = bulletin(inst, "notice", "list")
    assert not ran.here
    return ran.same()


@pytest.mark.timeout(600)
def test_approval_through_the_daemon_acts_and_is_audited_as_locally(
    staffed: Instance, served: DaemonProcess
) -> None:
    """dana approving her own notice is refused with the same words; chief (by sudo, from
    root) approves it; the audit says chief, authenticated by the OS, from this host, as it
    does for an approval run in its own process."""
    first, second = drafted(staffed), drafted(staffed)
    own = bulletin(staffed, "notice", "approve", str(first), SUDO_USER="dana")
    own_here = bulletin(staffed, "notice", "approve", str(first), local=True, SUDO_USER="dana")
    assert not own.here and own.same() == own_here.same()
    assert own.code == 1 and "dana wrote notice" in own.stderr
    ok = bulletin(staffed, "notice", "approve", str(first), SUDO_USER="chief")
    assert not ok.here and ok.code == 0, ok.stderr
    assert ok.stdout.startswith(f"notice {first} approved by chief")
    ok_here = bulletin(staffed, "notice", "approve", str(second), local=True, SUDO_USER="chief")
    assert ok_here.code == 0 and ok_here.stdout.startswith(f"notice {second} approved by chief")
    approvals = events(staffed.app.engine, action="approved")
    said = {e.object_id: (e.actor, e.via, e.host) for e in approvals}
    assert said[str(first)] == said[str(second)] == ("chief", "os-user", socket.gethostname())


def test_a_peer_other_than_root_or_the_owner_is_not_believed(staffed: Instance) -> None:
    """The uid the kernel gives for a peer that is nobody: its SUDO_USER is not believed (the
    same function decides as for the command line), and approval is left to its own process;
    root's SUDO_USER is believed."""
    public = Path(tempfile.mkdtemp())
    public.chmod(0o755)
    address = str(public / "peer.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(address)
        os.chmod(address, 0o777)  # noqa: S103 (the other uid must connect)
        listener.listen(1)
        child = os.fork()
        if child == 0:  # pragma: no cover (the child)
            try:
                os.setgid(65534)
                os.setuid(65534)
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.connect(address)
                    sock.recv(1)
            finally:
                os._exit(0)
        conn, _ = listener.accept()
        with conn:
            uid = peer_uid(conn)
            conn.sendall(b".")
        os.waitpid(child, 0)
    assert uid == 65534
    sudo = {"SUDO_USER": "chief"}
    assert invoking_os_user(PeerKernel(uid), sudo, staffed.data_dir) == "nobody"
    left, right = socket.socketpair()
    with left, right:
        assert invoking_os_user(PeerKernel(peer_uid(left)), sudo, staffed.data_dir) == "chief"
    notice_id = drafted(staffed)
    server = CommandServer(staffed.app)
    reply = server.answer(request(staffed, "notice", "approve", str(notice_id), **sudo), uid)
    assert "local" in reply
    assert events(staffed.app.engine, action="approved") == []


def request(inst: Instance, *argv: str, **env: str) -> dict[str, object]:
    stream = {"tty": False, "encoding": "utf-8", "errors": "strict"}
    return {
        "version": __import__("bulletin").__version__,
        "argv": list(argv),
        "cwd": str(inst.config.parent),
        "env": {"BULLETIN_CONFIG": str(inst.config), **env},
        "stdout": stream,
        "stderr": {**stream, "errors": "backslashreplace"},
        "stdin_tty": False,
    }


@pytest.mark.timeout(300)
def test_another_configuration_runs_locally(staffed: Instance, served: DaemonProcess) -> None:
    """A configuration naming the same data directory but another database is another
    Bulletin's: the daemon says no and the command runs in its own process, silently."""
    other_db = staffed.config.parent / "other.db"
    put_migrated_sqlite(other_db)
    other = write_config(
        staffed.config.parent / "other.toml", staffed.data_dir, f"sqlite:///{other_db}", PEOPLE
    )
    drafted(staffed)  # in the daemon's database, not in the other one
    ran = bulletin(staffed, "--config", str(other), "notice", "list")
    assert ran.here and ran.same() == (0, "no notices\n", "")
    assert not bulletin(staffed, "notice", "list").here


def test_a_bad_request_gets_one_line_and_the_daemon_goes_on(
    staffed: Instance, served: DaemonProcess
) -> None:
    """Too large, not JSON, not an object, wrong fields: one line back each; then a good
    command is answered."""
    path = str(staffed.data_dir / SOCKET_NAME)

    def raw(data: bytes) -> dict[str, object]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(path)
            sock.sendall(data)
            return receive(sock, 1 << 20)

    for data in (
        struct.pack(">I", 64 * 1024 * 1024) + b"{",
        struct.pack(">I", 5) + b"nope!",
        struct.pack(">I", 2) + b"[]",
        struct.pack(">I", 13) + b'{"argv": [1]}',
    ):
        reply = raw(data)
        assert set(reply) == {"error"}, reply
        assert "\n" not in str(reply["error"]), reply
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        send(sock, request(staffed, "notice", "list"))
        reply = receive(sock, 1 << 20)
    assert reply["code"] == 0 and reply["stdout"] == "no notices\n", reply
    assert served.proc is not None and served.proc.poll() is None
    assert "bad request" in served.log.read_text()


@pytest.mark.timeout(600)
def test_no_daemon_runs_it_locally_and_a_stale_socket_is_replaced(
    staffed: Instance, daemon_process: MakeDaemon
) -> None:
    """With the daemon stopped, the socket is gone and commands run in their own process with
    the same output; a socket a killed daemon left is ignored by commands and replaced by the
    next daemon."""
    daemon = daemon_process(staffed.env(), staffed.config.parent).start()
    drafted(staffed)
    through = bulletin(staffed, "notice", "list")
    daemon.signal(15)
    assert daemon.wait() == 0
    assert not (staffed.data_dir / SOCKET_NAME).exists()
    here = bulletin(staffed, "notice", "list")
    assert here.here and not through.here and here.same() == through.same()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(str(staffed.data_dir / SOCKET_NAME))  # left behind, nobody listening
    assert bulletin(staffed, "notice", "list").same() == through.same()
    daemon = daemon_process(staffed.env(), staffed.config.parent).start()
    again = bulletin(staffed, "notice", "list")
    assert not again.here and again.same() == through.same()
