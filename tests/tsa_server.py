"""A real RFC 3161 time-stamp authority for tests: OpenSSL's ``openssl ts -reply`` behind a
small HTTP server (RFC 3161 section 3.4, "Time-Stamp Protocol via HTTP").

Run as its own process: ``python tests/tsa_server.py --port P --dir D``, where ``D`` holds
``tsa.key`` and ``tsa.pem`` (the TSA's certificate, critical EKU timeStamping) and optionally
``chain.pem`` (intermediates). Each POST of a DER ``application/timestamp-query`` is written to
a temporary file, answered by ``openssl ts -reply`` and sent back as
``application/timestamp-reply``.

Misbehaviour, to show that the client refuses it: ``--mode replay`` answers every request
after the first with the first reply (its nonce is an older request's); ``--mode
wrong-imprint`` stamps another digest than the one asked for (the request's nonce kept).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

CONFIG = """\
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""
SHA256_IMPRINT = bytes.fromhex("300d06096086480165030402010500" + "0420")


def reply(folder: Path, query: bytes) -> bytes:
    """``openssl ts -reply`` for DER ``query``, signed with the key and certificate in
    ``folder``.

    :raises RuntimeError: OpenSSL refused (its message, shortened).
    """
    # OpenSSL writes the token's certificate SET in the order given, not DER order, which a
    # strict DER reader (rfc3161-client) refuses: pass a chain only when there is one.
    chain_file = folder / "chain.pem"
    chain = ["-chain", str(chain_file)] if chain_file.exists() else []
    with tempfile.TemporaryDirectory() as temp:
        query_file = Path(temp) / "query.tsq"
        reply_file = Path(temp) / "reply.tsr"
        query_file.write_bytes(query)
        command = ["openssl", "ts", "-reply", "-config", str(folder / "tsa.cnf")]
        command += ["-queryfile", str(query_file), "-inkey", str(folder / "tsa.key")]
        command += ["-signer", str(folder / "tsa.pem"), *chain, "-out", str(reply_file)]
        done = subprocess.run(command, capture_output=True, check=False)
        if done.returncode != 0 or not reply_file.exists():
            raise RuntimeError(done.stderr.decode(errors="replace")[:200])
        return reply_file.read_bytes()


def other_imprint(query: bytes) -> bytes:
    """``query`` asking for another sha256 digest (its last byte flipped)."""
    at = query.index(SHA256_IMPRINT) + len(SHA256_IMPRINT) + 31
    return query[:at] + bytes([query[at] ^ 0xFF]) + query[at + 1 :]


def serve(port: int, folder: Path, mode: str) -> None:
    (folder / "tsa.cnf").write_text(CONFIG.format(dir=folder))
    if not (folder / "serial").exists():
        (folder / "serial").write_text("01\n")
    first: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Type") != "application/timestamp-query":
                self.send_error(415, "expected application/timestamp-query")
                return
            if mode == "replay" and first:
                self._answer(first[0])
                return
            if mode == "wrong-imprint":
                query = other_imprint(query)
            try:
                answer = reply(folder, query)
            except RuntimeError as e:
                self.send_error(500, str(e).splitlines()[0] if str(e) else "openssl failed")
                return
            first.append(answer)
            self._answer(answer)

        def _answer(self, answer: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: object) -> None:
            pass

    ThreadingHTTPServer.allow_reuse_address = True
    with ThreadingHTTPServer(("127.0.0.1", port), Handler) as server:
        server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description="A test RFC 3161 TSA (openssl ts -reply).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--mode", choices=["normal", "replay", "wrong-imprint"], default="normal")
    options = parser.parse_args()
    serve(options.port, options.dir.resolve(), options.mode)


if __name__ == "__main__":
    main()
