"""The ``bulletin`` entry point's first step: hand a few commands to the running daemon.

Starting the command line means importing the ORM, pydantic and our models (most of a second).
A running daemon has them loaded: for the commands in :data:`SERVED` this module sends the
command line to the daemon's socket (``command.sock`` in the data directory) and prints what
the daemon's run of the very same command printed, with its exit code. Anything else, a daemon
that is not running or says no, ``--local`` or ``BULLETIN_LOCAL=1``: the command runs here, as
before. This module imports the standard library only (a test checks it).

The protocol, over a Unix stream socket: one request and one reply, each a 4-byte big-endian
length and a JSON object (see :mod:`bulletin.service.commands` for the daemon's side).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import sys
import time
from collections.abc import Mapping

from bulletin import __version__

SOCKET_NAME = "command.sock"
# The commands a daemon answers: (group, command) or (command,). Read commands and approval.
SERVED = frozenset(
    {
        ("notice", "approve"),
        ("notice", "list"),
        ("notice", "show"),
        ("archive", "search"),
        ("archive", "list"),
        ("status",),
    }
)
# Arguments after which the command runs here: help and version are printed fast here anyway.
NOT_SERVED_ARGS = frozenset({"-h", "--help", "--version"})
MAX_REQUEST = 1024 * 1024  # bytes of one request; the daemon refuses larger ones
MAX_REPLY = 256 * 1024 * 1024
HEADER = struct.Struct(">I")
# The environment a command reads: its configuration, who ran sudo, the terminal.
ENV_PREFIXES = ("BULLETIN_", "SUDO_")
ENV_NAMES = frozenset({"COLUMNS", "LINES", "TERM", "NO_COLOR", "TZ"})
CONNECT_TIMEOUT = 2.0  # seconds; the daemon accepts at once or is not answering
REPLY_TIMEOUT = 600.0  # a command may take as long here as it would locally


class ProtocolError(Exception):
    """A message that is not one: too large, cut short, not a JSON object."""


def command_path(argv: list[str]) -> tuple[tuple[str, ...], str | None, list[str]] | None:
    """The served command ``argv`` runs, the ``--config`` it gives and the arguments without
    ``--config`` (the daemon is given its own resolution); None when it is not one to send."""
    config: str | None = None
    rest = list(argv)
    while rest and rest[0].startswith("--config"):
        if rest[0] == "--config" and len(rest) > 1:
            config, rest = rest[1], rest[2:]
        elif rest[0].startswith("--config="):
            config, rest = rest[0].partition("=")[2], rest[1:]
        else:
            return None
    if any(arg in NOT_SERVED_ARGS for arg in rest):
        return None
    for length in (1, 2):
        if tuple(rest[:length]) in SERVED:
            return tuple(rest[:length]), config, rest
    return None


def data_dir(config: str | None, environ: Mapping[str, str], cwd: str) -> str:
    """Where the data directory is, read as :func:`bulletin.config.load_settings` reads it,
    without validating anything (the daemon does that): ``BULLETIN_PATHS__DATA_DIR``, else
    ``[paths] data_dir`` of the file (``--config``, ``$BULLETIN_CONFIG``, ``./bulletin.toml``),
    else ``./bulletin-data``; relative to ``cwd``."""
    chosen = config or environ.get("BULLETIN_CONFIG") or None
    if chosen is None and os.path.isfile(os.path.join(cwd, "bulletin.toml")):
        chosen = "bulletin.toml"
    found = "./bulletin-data"
    if chosen is not None:
        import tomllib

        with open(os.path.join(cwd, chosen), "rb") as f:
            data = tomllib.loads(f.read(MAX_REQUEST).decode("utf-8"))
        paths = data.get("paths")
        value = paths.get("data_dir") if isinstance(paths, dict) else None
        found = value if isinstance(value, str) else found
    found = environ.get("BULLETIN_PATHS__DATA_DIR") or found
    return os.path.join(cwd, os.path.expanduser(found))


def trusted_socket(directory: str) -> str | None:
    """The daemon's socket in ``directory`` when it is a socket owned by root or by the
    directory's owner (anyone else could have put it there); else None."""
    import stat

    path = os.path.join(directory, SOCKET_NAME)
    try:
        info = os.lstat(path)
        owner = os.stat(directory).st_uid
    except OSError:
        return None
    if not stat.S_ISSOCK(info.st_mode) or info.st_uid not in (0, owner):
        return None
    return path


def connectable(path: str) -> tuple[str, int | None]:
    """An address ``connect``/``bind`` take for ``path``: itself, or when it is longer than
    a socket address holds, the same file through ``/proc/self/fd`` of its directory (the
    descriptor returned, to be closed by the caller)."""
    if len(os.fsencode(path)) < 108:
        return path, None
    fd = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY)
    return f"/proc/self/fd/{fd}/{os.path.basename(path)}", fd


def send(sock: socket.socket, message: Mapping[str, object]) -> None:
    """One message: its length, then its JSON."""
    body = json.dumps(message, ensure_ascii=False).encode("utf-8")
    sock.sendall(HEADER.pack(len(body)) + body)


def receive(sock: socket.socket, limit: int, deadline: float | None = None) -> dict[str, object]:
    """One message of at most ``limit`` bytes, whole by ``deadline`` (``time.monotonic()``)
    when given, else each read within the socket's timeout.

    :raises ProtocolError: too large, cut short or not a JSON object.
    :raises OSError: the connection failed or timed out.
    """
    (length,) = HEADER.unpack(_exactly(sock, HEADER.size, deadline))
    if length > limit:
        raise ProtocolError(f"a message of {length} bytes is larger than {limit}")
    try:
        message = json.loads(_exactly(sock, length, deadline).decode("utf-8"))
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError alike
        raise ProtocolError(f"not JSON: {e}") from None
    if not isinstance(message, dict):
        raise ProtocolError("not a JSON object")
    return message


def _exactly(sock: socket.socket, size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    while size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the message did not arrive in time")
            sock.settimeout(left)
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise ProtocolError("the message was cut short")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def request_for(argv: list[str], config: str | None) -> dict[str, object]:
    """What the daemon needs to run ``argv`` as it would run here."""
    environ = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES) or k in ENV_NAMES}
    if config is not None:
        environ["BULLETIN_CONFIG"] = config  # --config wins over the variable, as here
    return {
        "version": __version__,
        "argv": argv,
        "cwd": os.getcwd(),
        "env": environ,
        "stdout": _stream(sys.stdout),
        "stderr": _stream(sys.stderr),
        "stdin_tty": _isatty(sys.stdin),
    }


def _stream(stream: object) -> dict[str, object]:
    return {
        "tty": _isatty(stream),
        "encoding": getattr(stream, "encoding", None) or "utf-8",
        "errors": getattr(stream, "errors", None) or "strict",
    }


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        return False


def through_daemon(argv: list[str]) -> int | None:
    """Run ``argv`` through the daemon: its exit code after printing what it printed, or None
    to run it here (not served, no trusted socket, the daemon says no, or it did not answer
    a command that only reads)."""
    if os.environ.get("BULLETIN_LOCAL", "") not in ("", "0"):
        return None
    found = command_path(argv)
    if found is None:
        return None
    path, config, rest = found
    try:
        cwd = os.getcwd()
        directory = data_dir(config, os.environ, cwd)
    except (OSError, ValueError):  # an unreadable file: the command says so itself
        return None
    address = trusted_socket(directory)
    if address is None:
        return None
    request = request_for(rest, config if config is None else os.path.join(cwd, config))
    sent = False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(CONNECT_TIMEOUT)
            target, fd = connectable(address)
            try:
                sock.connect(target)
            finally:
                if fd is not None:
                    os.close(fd)
            send(sock, request)
            sent = True
            sock.settimeout(REPLY_TIMEOUT)
            reply = receive(sock, MAX_REPLY)
    except (OSError, ProtocolError, struct.error) as e:
        if not sent or path != ("notice", "approve"):
            return None
        # The daemon may have approved it: running it again here could approve twice.
        sys.stderr.write(
            f"bulletin: error: the daemon took the command but did not answer ({e}); "
            "see `bulletin notice show` before trying again\n"
        )
        return 1
    return _print(reply)


def _print(reply: Mapping[str, object]) -> int | None:
    code, out, err = reply.get("code"), reply.get("stdout"), reply.get("stderr")
    if not isinstance(code, int) or not isinstance(out, str) or not isinstance(err, str):
        return None  # "local": the daemon says this one runs here
    for stream, text in ((sys.stdout, out), (sys.stderr, err)):
        if text:
            data = text.encode("latin-1")  # the bytes, already in this stream's encoding
            binary = getattr(stream, "buffer", None)
            if binary is None:
                stream.write(data.decode(stream.encoding or "utf-8", "replace"))
                stream.flush()
            else:
                stream.flush()
                binary.write(data)
                binary.flush()
    return code


def without_local(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without the global ``--local`` flag (among the options before the command),
    and whether it was there."""
    at = 0
    while at < len(argv) and argv[at].startswith("--"):
        if argv[at] == "--local":
            return argv[:at] + argv[at + 1 :], True
        at += 2 if argv[at] == "--config" else 1
    return argv, False


def main() -> None:
    """Console entry point: through the daemon when it serves the command, else here."""
    argv, local = without_local(sys.argv[1:])
    if local:
        sys.argv[1:] = argv
    else:
        try:
            code = through_daemon(argv)
        except BrokenPipeError:  # the reader went away (`| head`), as the command line says
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            code = 141
        if code is not None:
            sys.exit(code)
    from bulletin.cli import main as run_here

    run_here()
