"""Connector overhead against the sandbox on loopback.

Publish: per-post latency through each connector (median, p99) against a bare ``requests``
call to the same endpoint in the same run. Capture: one post with many comments read
through ``iter_comments`` (100 per page), in records per second.

    PYTHONPATH=src:. python bench/bench_connectors.py --posts 300 --comments 10000
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import requests
from requests_oauthlib import OAuth1
from tests.plugins.environment import free_port
from tests.plugins.sandbox import Control, fb_connector, x_connector

from bulletin.connectors.base import Connector, OutgoingPost
from bulletin.connectors.sandbox import DEFAULT_FB_PAGE, DEFAULT_X_ACCOUNT


@contextlib.contextmanager
def sandbox_process(tmp: Path) -> Iterator[str]:
    """A sandbox in its own process (so it does not share our GIL); yields its URL."""
    port = free_port()
    code = (
        "import sys; from bulletin.connectors.sandbox import serve; "
        f"serve('127.0.0.1', {port}, {str(tmp / 'sandbox.json')!r})"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(f"{url}/_sandbox/received", timeout=1).raise_for_status()
                break
            except requests.RequestException:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def timed(n: int, action: Callable[[int], object]) -> list[float]:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        action(i)
        samples.append(time.perf_counter() - started)
    return samples


def _publish(connector: Connector, name: str, i: int, _: int) -> object:
    return connector.publish(OutgoingPost(key=str(i), text=f"{name} notice {i}"))


def _bare(call: Callable[[int], object], i: int, _: int) -> object:
    return call(i)


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.99) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--comments", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, sandbox_process(Path(tmp)) as url:
        control = Control(url)
        control.settings(enforce_rate_limits=False)
        x_auth = OAuth1(
            DEFAULT_X_ACCOUNT["consumer_key"],
            DEFAULT_X_ACCOUNT["consumer_secret"],
            DEFAULT_X_ACCOUNT["access_token"],
            DEFAULT_X_ACCOUNT["access_token_secret"],
        )
        bare = requests.Session()
        connectors: dict[str, Connector] = {
            "x": x_connector(url),
            "facebook": fb_connector(url),
        }
        bare_calls: dict[str, Callable[[int], object]] = {
            "x": lambda i: bare.post(
                f"{url}/2/tweets", json={"text": f"bare x {i}"}, auth=x_auth, timeout=5
            ).raise_for_status(),
            "facebook": lambda i: bare.post(
                f"{url}/v26.0/{DEFAULT_FB_PAGE['id']}/feed",
                data={"message": f"bare fb {i}", "access_token": DEFAULT_FB_PAGE["page_token"]},
                timeout=5,
            ).raise_for_status(),
        }
        print(
            f"publish, {args.posts} posts each, sandbox process on loopback "
            "(state fsync'd per post, same run):"
        )
        print(
            f"{'connector':<10} {'median ms':>10} {'p99 ms':>8} {'bare median':>12} "
            f"{'bare p99':>9} {'ratio':>6}"
        )
        for name, connector in connectors.items():
            connector.list_posts()  # warm the connection and the cached identity
            # Interleaved, so both see the same sandbox state size.
            through: list[float] = []
            direct: list[float] = []
            for i in range(args.posts):
                through += timed(1, partial(_publish, connector, name, i))
                direct += timed(1, partial(_bare, bare_calls[name], i))
            (m, p), (bm, bp) = summary(through), summary(direct)
            print(f"{name:<10} {m:>10.2f} {p:>8.2f} {bm:>12.2f} {bp:>9.2f} {m / bm:>6.2f}")

        print(f"\ncapture: one post with {args.comments} comments, 100 per page:")
        for name, connector in connectors.items():
            root = connector.publish(OutgoingPost(key="root", text=f"{name} thread")).remote_id
            if name == "x":
                control.post("x/replies", {"tweet_id": root, "count": args.comments})
            else:
                control.post("fb/comments", {"post_id": root, "count": args.comments})
            started, cpu = time.perf_counter(), time.process_time()
            count = sum(1 for _ in connector.iter_comments(root))
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            assert count == args.comments, count
            print(
                f"{name:<10} {count} records in {elapsed:.2f} s = "
                f"{count / elapsed:,.0f} records/s (client CPU {cpu:.2f} s = "
                f"{count / cpu:,.0f} records per CPU second)"
            )


if __name__ == "__main__":
    main()
