"""The daemon's command socket: a few commands run here for a client, as it would run them.

``command.sock`` in the data directory (a Unix stream socket; the client's side is
:mod:`bulletin.command_client`). A client sends its command line, working directory, the
environment a command reads and what its streams are; the daemon runs the very same click
command in a thread of its own, as the client's OS user (the uid the kernel gives through
``SO_PEERCRED``, mapped by :func:`bulletin.identity.invoking_os_user` as the command line maps
its own), and returns what it printed and its exit code. It says "run it yourself" (the client
then does, silently) when the client's configuration resolves to another data directory or
database, the daemon runs another version, the command is not served, would prompt, or changes
something and the peer could not (only root and the data directory's owner, who could write the
database themselves, approve through the socket; anyone else runs it locally, as before).

Output: a command's ``click.echo`` goes to ``sys.stdout``/``sys.stderr``, process globals.
These are replaced once, at start, by proxies that write to the current thread's capture when
it has one, else to the real stream: a command's output never reaches the daemon's log and the
daemon's log (its handler holds the real stderr, taken before the proxies) never reaches a
command's output, and commands run side by side. A bad request gets one line back and is
logged; it never stops the daemon. Reads and writes time out, so a client that stalls holds
one of a few connection threads for seconds, never the publishing threads.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import socket
import stat
import struct
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from bulletin import __version__
from bulletin.app import App, outbox
from bulletin.command_client import (
    MAX_REQUEST,
    SERVED,
    SOCKET_NAME,
    ProtocolError,
    connectable,
    receive,
    send,
)
from bulletin.config import load_settings
from bulletin.db import make_engine
from bulletin.errors import ConfigError
from bulletin.identity import PeerKernel, speaks_for_sudo
from bulletin.logs import get_logger

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = get_logger("bulletin.daemon.commands")

#: served commands that change something (the rest only read)
WRITES = frozenset({("notice", "approve")})
MAX_CONNECTIONS = 8  # at once; more are told to run the command themselves
READ_TIMEOUT = 5.0  # seconds for a client to send its whole request
STOP_WAIT = 20.0  # seconds stop() waits for the commands running to finish
WRITE_TIMEOUT = 10.0  # seconds for a client to take the reply


class RunItYourself(Exception):
    """The client runs this command itself; the message says why (for the log)."""


class WouldPrompt(BaseException):
    """The command asked for input: it needs the client's terminal. A BaseException, so that
    no ``except Exception`` of the command line turns it into an error message."""


def peer_uid(conn: socket.socket) -> int:
    """The uid of the process at the other end of ``conn``, as the kernel says."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


class _PerThread(io.TextIOBase):
    """Stands in for ``sys.stdout``/``sys.stderr``/``sys.stdin``: the current thread's
    stream when it has one (a command running for a client), else the real one. Its encoding
    and errors never change and it has no ``buffer``, so click writes to it as it is (click
    caches what it makes of a stream; it must never cache a wrapper of one command's buffer)."""

    def __init__(self, real: TextIO) -> None:
        self.real = real
        self.local = threading.local()

    def _target(self) -> Any:
        stream = getattr(self.local, "stream", None)
        return self.real if stream is None else stream

    encoding = "utf-8"
    errors = "strict"

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        return int(self._target().write(text))

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return bool(self._target().isatty())

    def fileno(self) -> int:
        return int(self._target().fileno())

    def read(self, size: int | None = -1) -> str:
        return str(self._target().read(size))

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        return str(self._target().readline(size))


class _Captured(io.TextIOWrapper):
    """A command's stdout or stderr: its bytes in the client's encoding, and whether the
    client's stream is a terminal."""

    def __init__(self, encoding: str, errors: str, tty: bool) -> None:
        super().__init__(io.BytesIO(), encoding=encoding, errors=errors, write_through=True)
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty

    def fileno(self) -> int:
        raise io.UnsupportedOperation("a captured stream has no file descriptor")

    def value(self) -> bytes:
        self.flush()
        raw = self.buffer
        assert isinstance(raw, io.BytesIO)
        return raw.getvalue()


class _NoInput(io.TextIOBase):
    """A command's stdin: reading it means the command would prompt."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str:
        raise WouldPrompt

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        raise WouldPrompt


_install_lock = threading.Lock()
_proxies: tuple[_PerThread, _PerThread, _PerThread] | None = None


def _install() -> tuple[_PerThread, _PerThread, _PerThread]:
    """The proxies, put in place of ``sys.stdout``, ``sys.stderr`` and ``sys.stdin`` once."""
    global _proxies
    with _install_lock:
        if _proxies is None or sys.stdout is not _proxies[0] or sys.stderr is not _proxies[1]:
            _proxies = (_PerThread(sys.stdout), _PerThread(sys.stderr), _PerThread(sys.stdin))
            sys.stdout, sys.stderr, sys.stdin = _proxies
        return _proxies


@contextlib.contextmanager
def captured(streams: Mapping[str, Any], stdin_tty: bool) -> Iterator[tuple[_Captured, _Captured]]:
    """This thread's stdout and stderr captured, stdin refused, for one command."""
    out_proxy, err_proxy, in_proxy = _install()
    out = _Captured(*_stream_spec(streams.get("stdout")))
    err = _Captured(*_stream_spec(streams.get("stderr")))
    out_proxy.local.stream, err_proxy.local.stream = out, err
    in_proxy.local.stream = _NoInput(stdin_tty)
    try:
        yield out, err
    finally:
        out_proxy.local.stream = err_proxy.local.stream = in_proxy.local.stream = None


def _stream_spec(spec: Any) -> tuple[str, str, bool]:
    if not isinstance(spec, dict):
        raise ProtocolError("each stream is an object: tty, encoding, errors")
    encoding, errors, tty = spec.get("encoding"), spec.get("errors"), spec.get("tty")
    if not isinstance(encoding, str) or not isinstance(errors, str) or not isinstance(tty, bool):
        raise ProtocolError("each stream is an object: tty, encoding, errors")
    try:
        codecs.lookup(encoding)
        codecs.lookup_error(errors)
    except LookupError as e:
        raise ProtocolError(str(e)) from None
    return encoding, errors, tty


def _strings(value: Any, what: str) -> Any:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    if isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return value
    raise ProtocolError(f"{what} must be strings")


class CommandServer:
    """Accepts on ``command.sock`` and answers each connection in a thread of its own (at
    most :data:`MAX_CONNECTIONS`). :meth:`start` replaces a socket a stopped daemon left;
    :meth:`stop` removes it."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.data_dir = app.settings.data_dir
        self.path = self.data_dir / SOCKET_NAME
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._engines: dict[bool, Engine] = {}
        self._engines_lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self) -> None:
        _install()
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(self.path.lstat().st_mode):
                self.path.unlink()  # a stopped daemon's (SQLite takes one daemon at a time)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address, fd = connectable(str(self.path))
        try:
            sock.bind(address)
        finally:
            if fd is not None:
                os.close(fd)
        os.chmod(self.path, self._mode())
        sock.listen(16)
        sock.settimeout(0.5)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept, name="commands", daemon=True)
        self._thread.start()

    def _mode(self) -> int:
        """The data directory's permissions, as a socket: whoever may enter and read it may
        connect (reading commands; approval is checked per peer)."""
        mode = stat.S_IMODE(os.stat(self.data_dir).st_mode)
        granted = 0o600
        for read, rw in ((0o050, 0o060), (0o005, 0o006)):
            if mode & read == read:
                granted |= rw
        return granted

    def stop(self) -> None:
        """Take no more connections, remove the socket, and let the commands running finish
        (at most :data:`STOP_WAIT` seconds): an approval is answered, not cut short."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        deadline = time.monotonic() + STOP_WAIT
        for _ in range(MAX_CONNECTIONS):
            if not self._slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
                log.warning("command socket: stopped with commands still running")
                break
        for engine in self._engines.values():
            engine.dispose()

    def engine(self, read_only: bool) -> Engine:
        """The engine the commands share (one read-only, one read-write, made on first use
        as a command would make it): statements compiled once serve every later command."""
        with self._engines_lock:
            if read_only not in self._engines:
                settings = self.app.settings
                engine = make_engine(
                    settings.database_url, settings.database.busy_timeout, read_only=read_only
                )
                outbox.register(engine, settings.data_dir)
                self._engines[read_only] = engine
            return self._engines[read_only]

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._slots.acquire(blocking=False):
                threading.Thread(target=self._busy, args=(conn,), daemon=True).start()
                continue
            threading.Thread(target=self._serve, args=(conn,), name="command", daemon=True).start()

    def _busy(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(WRITE_TIMEOUT)
            with contextlib.suppress(OSError):
                send(conn, {"local": "the daemon is busy"})

    def _serve(self, conn: socket.socket) -> None:
        try:
            with conn:
                try:
                    uid = peer_uid(conn)
                    deadline = time.monotonic() + READ_TIMEOUT
                    reply = self.answer(receive(conn, MAX_REQUEST, deadline), uid)
                except (ProtocolError, OSError, struct.error) as e:
                    problem = f"bad request: {e}".splitlines()[0]
                    log.warning("command socket", error=problem)
                    reply = {"error": problem}
                conn.settimeout(WRITE_TIMEOUT)
                send(conn, reply)
        except OSError as e:
            log.warning("command socket: the client went away", error=str(e))
        except Exception:  # a bug: logged with its traceback, the daemon goes on
            log.exception("command socket: unexpected error")
        finally:
            self._slots.release()

    def answer(self, request: Mapping[str, Any], uid: int) -> dict[str, Any]:
        """The reply to ``request`` from the process of ``uid``: what the command printed
        and its exit code, or ``{"local": why}``.

        :raises ProtocolError: the request is not one.
        """
        argv = _strings(request.get("argv"), "argv")
        env = _strings(request.get("env"), "env")
        cwd = request.get("cwd")
        if not isinstance(cwd, str) or not os.path.isabs(cwd):
            raise ProtocolError("cwd must be an absolute path")
        stdin_tty = request.get("stdin_tty")
        if not isinstance(stdin_tty, bool):
            raise ProtocolError("stdin_tty must be true or false")
        try:
            return self._run(request, argv, env, Path(cwd), uid, stdin_tty)
        except RunItYourself as e:
            log.debug("command socket: run by the client", reason=str(e))
            return {"local": str(e)}

    def _run(
        self,
        request: Mapping[str, Any],
        argv: list[str],
        env: dict[str, str],
        cwd: Path,
        uid: int,
        stdin_tty: bool,
    ) -> dict[str, Any]:
        if request.get("version") != __version__:
            raise RunItYourself(f"the client runs version {request.get('version')!r}")
        command = next((p for n in (1, 2) if (p := tuple(argv[:n])) in SERVED), None)
        if command is None or any(a in ("-h", "--help", "--version") for a in argv):
            raise RunItYourself("not a command the daemon runs")
        if command in WRITES and not speaks_for_sudo(uid, self.data_dir):
            raise RunItYourself("changes are run here only for root and the service's user")
        self._same_configuration(env, cwd)
        from bulletin.cli import InProcess, cli

        given = InProcess(kernel=PeerKernel(uid), environ=env, cwd=cwd, engines=self.engine)
        code = 0  # click's main always exits; this is for a command that returns
        with captured(request, stdin_tty) as (out, err):
            try:
                cli.main(args=argv, prog_name="bulletin", obj=given)
            except SystemExit as e:
                code = _exit_code(e)
            except WouldPrompt:
                raise RunItYourself("the command asks for input") from None
            except BaseException:  # KeyboardInterrupt too: this command's, not the daemon's
                log.exception("command socket: the command failed", argv=" ".join(argv))
                code = 70
        return {
            "code": code,
            "stdout": out.value().decode("latin-1"),
            "stderr": err.value().decode("latin-1"),
        }

    def _same_configuration(self, env: Mapping[str, str], cwd: Path) -> None:
        """Refuse unless the client's configuration, with its environment, is this daemon's
        (another data directory or database is another Bulletin; any other difference, a
        file changed since the daemon read it or a variable set, would make the command
        print what it would not print in its own process)."""
        try:
            theirs = load_settings(env.get("BULLETIN_CONFIG") or None, env, cwd=cwd)
        except ConfigError as e:
            raise RunItYourself(f"the client's configuration: {e}") from None
        if theirs != self.app.settings:
            raise RunItYourself("the client's configuration is not the daemon's")


def _exit_code(e: SystemExit) -> int:
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code
    print(e.code, file=sys.stderr)  # what the interpreter does with sys.exit("text")
    return 1
