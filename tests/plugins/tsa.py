"""Time-stamp authorities as fixtures: a test CA made now (cryptography), a TSA certificate it
signs (critical EKU timeStamping), and ``tests/tsa_server.py`` (``openssl ts -reply`` behind
HTTP) started as a real process on a free port. Certificates are valid relative to now,
never on fixed dates."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.plugins.environment import free_port, require

SERVER = Path(__file__).resolve().parent.parent / "tsa_server.py"


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@dataclass
class Authority:
    """A test CA: its key and self-signed root."""

    name: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def make(cls, name: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(_name(name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=30))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(name, key, cert)

    def issue_tsa(
        self, name: str, *, not_before: datetime, not_after: datetime
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """A TSA certificate (critical EKU timeStamping) valid from ``not_before`` to
        ``not_after``."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(name))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, True, False, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True
            )
            .sign(self.key, hashes.SHA256())
        )
        return key, cert

    def write_root(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path


@dataclass
class TsaProcess:
    """One running ``tests/tsa_server.py``: its URL and the CA bundle that verifies it."""

    folder: Path
    port: int
    ca_bundle: Path
    mode: str = "normal"
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/tsr"

    def start(self) -> None:
        command = [sys.executable, str(SERVER), "--port", str(self.port), "--dir", str(self.folder)]
        command += ["--mode", self.mode]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the test TSA did not start: {self.process.stderr!r}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the test TSA did not listen within 10 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


def start_tsa(
    folder: Path,
    authority: Authority,
    *,
    expired: bool = False,
    mode: str = "normal",
) -> TsaProcess:
    """A TSA signing with a certificate from ``authority`` (one that expired yesterday when
    ``expired``) and misbehaving as ``mode`` says (see ``tests/tsa_server.py``), started on a
    free port; the caller stops it."""
    require(shutil.which("openssl") is not None, "openssl")
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    if expired:
        since, until = now - timedelta(days=10), now - timedelta(days=1)
    else:
        since, until = now - timedelta(days=1), now + timedelta(days=3650)
    key, cert = authority.issue_tsa(f"{authority.name} TSA", not_before=since, not_after=until)
    (folder / "tsa.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (folder / "tsa.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tsa = TsaProcess(folder, free_port(), authority.write_root(folder / "roots.pem"), mode)
    tsa.start()
    return tsa


@pytest.fixture(scope="session")
def test_ca() -> Authority:
    """The CA whose roots the tests configure."""
    return Authority.make("Bulletin Test Root CA")


@pytest.fixture
def tsa(tmp_path: Path, test_ca: Authority) -> Iterator[TsaProcess]:
    """A running TSA whose certificate ``test_ca`` issued."""
    server = start_tsa(tmp_path / "tsa", test_ca)
    yield server
    server.stop()
