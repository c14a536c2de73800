"""A real SeaweedFS (``weed mini``) for the S3 store tests and the store benchmark.

Started once per session on free ports at or below 55535 (its gRPC ports are set explicitly as
well), ready when S3 answers ``ListBuckets``, stopped with SIGTERM (then SIGKILL after a
timeout). Without a ``weed`` binary the tests skip, and fail under CI=true.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from bulletin.archiver.store.s3 import S3Store
from tests.plugins.environment import free_port, require

ACCESS_KEY = "bulletin-test"
SECRET_KEY = "bulletin-test-secret"
REGION = "us-east-1"


def find_weed() -> str | None:
    """The ``weed`` binary: on PATH, else beside the running Python (a virtualenv's bin)."""
    found = shutil.which("weed")
    if found:
        return found
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.is_file() else None


def s3_client(endpoint: str, *, timeout: float = 10.0, retries: int = 2) -> Any:
    """A boto3 S3 client for ``endpoint`` with explicit test credentials."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": retries, "mode": "standard"},
            s3={"addressing_style": "path"},
        ),
    )


@contextlib.contextmanager
def run_seaweedfs(data_dir: Path, weed: str, *, deadline: float = 30.0) -> Iterator[str]:
    """Run ``weed mini`` on ``data_dir`` and yield its S3 endpoint URL until the block ends."""
    data_dir.mkdir(parents=True, exist_ok=True)
    ports = {name: free_port() for name in ("master", "volume", "filer", "s3", "admin")}
    grpc = {name: free_port() for name in ports}
    args = [
        weed,
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-admin.ui=false",
        "-master.telemetry=false",
        *(f"-{name}.port={port}" for name, port in ports.items()),
        *(f"-{name}.port.grpc={port}" for name, port in grpc.items()),
        f"-webdav.port={free_port()}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    log = (data_dir / "weed.log").open("wb")
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=data_dir)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    try:
        _wait_ready(process, endpoint, data_dir, deadline)
        yield endpoint
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _wait_ready(process: subprocess.Popen[bytes], endpoint: str, logs: Path, limit: float) -> None:
    client = s3_client(endpoint, timeout=1.0, retries=1)
    until = time.monotonic() + limit
    while True:
        if process.poll() is not None:
            tail = (logs / "weed.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"weed mini exited with {process.returncode}:\n{tail}")
        try:
            client.list_buckets()
            return
        except (BotoCoreError, ClientError):
            if time.monotonic() > until:
                raise RuntimeError(f"SeaweedFS S3 did not answer within {limit}s") from None
            time.sleep(0.2)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The S3 endpoint URL of a SeaweedFS started for this session."""
    weed = find_weed()
    require(weed is not None, "SeaweedFS (weed)")
    assert weed is not None
    with run_seaweedfs(tmp_path_factory.mktemp("seaweedfs"), weed) as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(seaweedfs: str) -> str:
    """A fresh, empty bucket name (not yet created) for one test."""
    return f"bulletin-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def s3_store(seaweedfs: str, s3_bucket: str) -> S3Store:
    """An S3Store on a fresh bucket with Object Lock (COMPLIANCE)."""
    return S3Store(s3_client(seaweedfs), s3_bucket, create_bucket=True)
