"""Soak: a daemon under steady work for ``--minutes`` (default 60), its memory sampled.

A daemon subprocess (SQLite, the local WORM store) publishes to every sandbox account: every
``--interval`` seconds (default 2) one notice to X, Facebook, Mastodon, Bluesky, Threads and
the feed, and every fifth tick one notice with an image to Instagram. Meanwhile visitors
comment on the published posts (Facebook comments, X replies, Mastodon replies) and edit,
hide and delete their comments, one act per ``--act-interval`` seconds; every account is
swept every ``--capture`` seconds (default 120); every ``--export-every`` minutes (default 10)
a child process exports everything archived today and verifies the bundle against the
archive. The sandbox runs in this process: its memory is not the daemon's.

Every minute the daemon's RSS (VmRSS) is sampled, and what SQLite holds of it (from the
daemon's metrics endpoint); the daemon runs with
``BULLETIN_TRACEMALLOC`` (see :mod:`bulletin.service.memtrace`; ``--frames``, default 6) and
is asked for a snapshot (SIGUSR2) at minutes 1 and 10 and every ten minutes, and at the
end. Printed: RSS per minute, the growth after minute 10 against minute 10 (after the first
third for runs shorter than 20 minutes), tracemalloc's traced memory beside RSS, the largest
tracemalloc differences between those two snapshots, and at the end (after every delivery is
final) the duplicates (posts the sandbox created beyond one per published delivery, feed
entries repeated) and the losses (deliveries not published, published ones the sandbox does
not hold), exports made and verified.

    python bench/soak.py [--minutes 60] [--interval 2] [--out /tmp/soak]
    python bench/soak.py --minutes 3 --export-every 2      # a quick try
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import _support
import requests
from _support import CONFIG, Daemon, configure, start_sandbox
from sqlmodel import Session, col, select

from bulletin.app import App
from bulletin.config import load_settings
from bulletin.connectors.sandbox import SandboxServer
from bulletin.connectors.sandbox.state import (
    DEFAULT_BLUESKY_ACCOUNT,
    DEFAULT_FB_PAGE,
    DEFAULT_IG_ACCOUNT,
    DEFAULT_MASTODON_ACCOUNT,
    DEFAULT_THREADS_PROFILE,
    DEFAULT_X_ACCOUNT,
)
from bulletin.models import Delivery
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.notices import NoticeDraft, create_notice

_ = _support
TEXT_ACCOUNTS = ("x", "facebook", "mastodon", "bluesky", "threads", "feed")
INSTAGRAM = """
[accounts.instagram]
platform = "instagram"
base_url = "{url}"
ig_user_id = "{ig}"
capture_interval = {capture}
token_env = "SANDBOX_INSTAGRAM_TOKEN"
media_base_url = "https://media.example.org/bulletin"
"""
# the sandbox's counter of created posts for each of our accounts
SANDBOX_KEYS = {
    "x": f"x:{DEFAULT_X_ACCOUNT['id']}",
    "facebook": f"facebook:{DEFAULT_FB_PAGE['id']}",
    "mastodon": f"mastodon:{DEFAULT_MASTODON_ACCOUNT['id']}",
    "bluesky": f"bluesky:{DEFAULT_BLUESKY_ACCOUNT['did']}",
    "threads": f"threads:{DEFAULT_THREADS_PROFILE['id']}",
    "instagram": f"instagram:{DEFAULT_IG_ACCOUNT['id']}",
}


@dataclass
class Tally:
    notices: list[int] = field(default_factory=list)
    acts: dict[str, int] = field(default_factory=dict)
    act_errors: int = 0
    exports: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def act(self, what: str) -> None:
        with self.lock:
            self.acts[what] = self.acts.get(what, 0) + 1


def write_config(tmp: Path, sandbox: SandboxServer, capture: int, metrics: str) -> tuple[Path, App]:
    config, app = configure(tmp, f"sqlite:///{tmp / 'data' / 'bulletin.db'}", sandbox.url)
    app.close()
    text = (
        CONFIG.format(
            data_dir=tmp / "data",
            db_url=f"sqlite:///{tmp / 'data' / 'bulletin.db'}",
            url=sandbox.url,
            page=DEFAULT_FB_PAGE["id"],
            lease=30,
        )
        .replace("capture_interval = 3600", f"capture_interval = {capture}")
        .replace("[daemon]\n", f'[daemon]\nmetrics_address = "{metrics}"\n', 1)
    )
    text += INSTAGRAM.format(url=sandbox.url, ig=DEFAULT_IG_ACCOUNT["id"], capture=capture)
    config.write_text(text)
    return config, App(load_settings(config, environ={}), environ={})


def png(path: Path) -> Path:
    from bulletin.connectors.sandbox.control import _image

    path.write_bytes(_image("soak"))
    return path


def publish(app: App, tally: Tally, i: int, image: Path) -> None:
    drafts = [
        NoticeDraft(
            "traffic",
            f"Soak notice {i}: lane closed on Route {i % 9} until 18:00, use the detour.",
            TEXT_ACCOUNTS,
        )
    ]
    if i % 5 == 0:
        drafts.append(
            NoticeDraft(
                "traffic",
                f"Soak picture {i}: the detour on Route {i % 9}.",
                ("instagram",),
                images=((str(image), "A detour sign on a closed road."),),
            )
        )
    for draft in drafts:
        notice = create_notice(app.engine, app.settings, app.clock, draft, "dispatcher", app.store)
        approve_notice(app.engine, app.settings, app.clock, notice.id or 0, "chief")
        tally.notices.append(notice.id or 0)


def recent_posts(app: App, account: str, limit: int = 50) -> list[str]:
    with Session(app.engine) as session:
        rows = session.exec(
            select(Delivery.remote_id)
            .where(Delivery.account == account, Delivery.state == "published")
            .order_by(col(Delivery.id).desc())
            .limit(limit)
        ).all()
    return [r for r in rows if r]


def visitors(app: App, url: str, tally: Tally, stop: threading.Event, every: float) -> None:
    """Comments arrive on recent posts, and are edited, hidden and deleted."""
    rng = random.Random(7)
    http = requests.Session()
    mastodon = requests.Session()
    mastodon.headers["authorization"] = "Bearer sandbox-visitor-soak"
    fb: list[str] = []
    x: list[str] = []
    toots: list[str] = []
    n = 0
    while not stop.wait(every):
        n += 1
        try:
            roll = rng.random()
            platform = rng.choice(["facebook", "x", "mastodon"])
            mine = {"facebook": fb, "x": x, "mastodon": toots}[platform]
            if roll < 0.55 or not mine:
                posts = recent_posts(app, platform)
                if not posts:
                    continue
                post = rng.choice(posts)
                if platform == "facebook":
                    r = http.post(
                        f"{url}/_sandbox/fb/comments",
                        json={"post_id": post, "message": f"comment {n}", "author": f"V{n % 40}"},
                        timeout=30,
                    )
                    r.raise_for_status()
                    fb.extend(r.json()["ids"])
                elif platform == "x":
                    r = http.post(
                        f"{url}/_sandbox/x/replies",
                        json={"tweet_id": post, "text": f"reply {n}", "author": f"v{n % 40}"},
                        timeout=30,
                    )
                    r.raise_for_status()
                    x.extend(r.json()["ids"])
                else:
                    r = mastodon.post(
                        f"{url}/api/v1/statuses",
                        json={"status": f"toot {n}", "in_reply_to_id": post},
                        timeout=30,
                    )
                    r.raise_for_status()
                    toots.append(str(r.json()["id"]))
                tally.act(f"{platform} comment")
                continue
            target = rng.choice(mine)
            verb = rng.choice(
                ["edit", "delete", "hide"] if platform == "facebook" else ["edit", "delete"]
            )
            if platform == "facebook":
                if verb == "delete":
                    r = http.delete(f"{url}/_sandbox/fb/comments/{target}", timeout=30)
                else:
                    body = {"message": f"edited {n}"} if verb == "edit" else {"is_hidden": True}
                    r = http.patch(f"{url}/_sandbox/fb/comments/{target}", json=body, timeout=30)
            elif platform == "x":
                if verb == "delete":
                    r = http.delete(f"{url}/_sandbox/x/tweets/{target}", timeout=30)
                else:
                    r = http.patch(
                        f"{url}/_sandbox/x/tweets/{target}",
                        json={"text": f"edited {n}"},
                        timeout=30,
                    )
                    if r.ok:  # an edit on X is a new id
                        mine.append(str(r.json()["id"]))
            elif verb == "delete":
                r = mastodon.delete(f"{url}/api/v1/statuses/{target}", timeout=30)
            else:
                r = mastodon.put(
                    f"{url}/api/v1/statuses/{target}", json={"status": f"edited {n}"}, timeout=30
                )
            if verb == "delete" or platform == "x":
                mine.remove(target)
            r.raise_for_status()
            tally.act(f"{platform} {verb}")
        except (requests.RequestException, KeyError, ValueError):
            tally.act_errors += 1


def export_round(config: Path, out: Path, tally: Tally) -> None:
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--child-export", str(config), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    figures: dict[str, Any] = {"seconds": round(time.perf_counter() - began, 1)}
    if done.returncode == 0 and done.stdout.strip():
        figures |= json.loads(done.stdout.strip().splitlines()[-1])
    else:
        figures |= {"ok": False, "error": (done.stderr or done.stdout)[-500:]}
    with tally.lock:
        tally.exports.append(figures)
    print(f"  export {len(tally.exports)}: {figures}", flush=True)


def child_export(config: str, out: str) -> None:
    from bulletin.archiver.export import export_bundle, resolve
    from bulletin.archiver.export.verify import verify_bundle

    app = App(load_settings(config, environ={}), environ={})
    engine = app.checked_engine()
    # "today" as the agency says it: the query's dates are in its time zone
    today = datetime.now(ZoneInfo(app.settings.agency.time_zone)).date()
    query = f"from:{today.isoformat()}"
    scope = resolve(engine, app.settings, None, query)
    result = export_bundle(
        engine, app.store, app.settings, scope, out=Path(out), actor="soak", now=app.clock.now
    )
    report = verify_bundle(Path(out), engine, app.store)
    print(json.dumps({"records": result.records, "ok": report.ok, "problems": report.problems[:5]}))


def final_counts(app: App, sandbox: SandboxServer, tally: Tally) -> dict[str, int]:
    with Session(app.engine) as session:
        deliveries = session.exec(
            select(Delivery).where(col(Delivery.notice_id).in_(tally.notices))
        ).all()
    published: dict[str, int] = {}
    for d in deliveries:
        if d.state == "published":
            published[d.account] = published.get(d.account, 0) + 1
    received = sandbox.app.state.snapshot()["received"]
    duplicates = losses = 0
    for account, key in SANDBOX_KEYS.items():
        created = int(received.get(key, {}).get("created", 0))
        duplicates += max(0, created - published.get(account, 0))
        losses += max(0, published.get(account, 0) - created)
    feed = app.settings.feed_path("feed")
    text = feed.read_text() if feed.exists() else ""
    for nid in tally.notices:
        entry = f"urn:bulletin:feed:notice-{nid}<"
        duplicates += max(0, text.count(entry) - 1)
    not_published = [d for d in deliveries if d.state != "published"]
    for d in not_published[:5]:
        print(f"  not published: notice {d.notice_id} {d.account} {d.state} {d.last_error}")
    return {
        "notices": len(tally.notices),
        "deliveries": len(deliveries),
        "published": sum(published.values()),
        "duplicates": duplicates,
        "losses": losses + len(not_published),
        "not archived": sum(
            d.state == "published" and not d.archived_record_id for d in deliveries
        ),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def daemon_memory(metrics: str) -> dict[str, int]:
    """What SQLite holds in the daemon now and at most, in kB, from its metrics endpoint
    (empty when it does not answer)."""
    names = {
        "bulletin_daemon_sqlite_memory_bytes": "SQLite",
        "bulletin_daemon_sqlite_memory_highwater_bytes": "SQLiteHigh",
    }
    try:
        text = requests.get(f"http://{metrics}/metrics", timeout=30).text
    except requests.RequestException:
        return {}
    out: dict[str, int] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in names:
            out[names[name]] = int(float(value)) // 1024
    return out


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and its parts (anonymous, file-backed, shared memory) in kB, and the threads."""
    keys = ("VmRSS", "RssAnon", "RssFile", "RssShmem", "Threads")
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in keys:
            out[name] = int(value.split()[0])
    return out


def backlog(app: App) -> int:
    """Deliveries not final yet."""
    with Session(app.engine) as session:
        return len(
            session.exec(
                select(Delivery.id).where(
                    col(Delivery.state).not_in(["published", "failed", "cancelled"])
                )
            ).all()
        )


def wait_final(app: App, tally: Tally, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Session(app.engine) as session:
            open_ = session.exec(
                select(Delivery.id).where(
                    col(Delivery.notice_id).in_(tally.notices),
                    col(Delivery.state).not_in(["published", "failed", "cancelled"]),
                )
            ).all()
            unarchived = session.exec(
                select(Delivery.id).where(
                    Delivery.state == "published",
                    col(Delivery.archived_record_id).is_(None),
                )
            ).all()
        if not open_ and not unarchived:
            return
        time.sleep(1)


def tracemalloc_report(directory: Path, first: int, last: int, frames: int) -> None:
    lines = [json.loads(x) for x in (directory / "snapshots.jsonl").read_text().splitlines()]
    for line in lines:
        print(
            f"  {line['file']}: traced {line['traced'] / 2**20:6.1f} MB, "
            f"tracemalloc's own {line['tracemalloc_overhead'] / 2**20:6.1f} MB"
        )
    names = sorted(directory.glob("snapshot-*.trace"))
    if len(names) < 2:
        return
    noise = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap_external>"),
        tracemalloc.Filter(False, "<unknown>"),
    ]
    old = tracemalloc.Snapshot.load(str(names[first])).filter_traces(noise)
    new = tracemalloc.Snapshot.load(str(names[last])).filter_traces(noise)
    print(f"top tracemalloc growth, {names[first].name} -> {names[last].name}, by line:")
    for stat in new.compare_to(old, "lineno")[:15]:
        print(f"  {stat}")
    print("by file:")
    for stat in new.compare_to(old, "filename")[:12]:
        print(f"  {stat}")
    if frames > 1:
        print("largest three by traceback:")
        for stat in new.compare_to(old, "traceback")[:3]:
            print(f"  {stat.size_diff / 1024:+.1f} KiB, {stat.count_diff:+d} blocks")
            for frame in stat.traceback.format()[-2 * frames :]:
                print(f"    {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description="Soak a daemon and watch its memory")
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--act-interval", type=float, default=0.5)
    parser.add_argument("--capture", type=int, default=120)
    parser.add_argument("--export-every", type=int, default=10)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("/tmp/soak"))
    parser.add_argument(
        "--daemon-env", action="append", default=[], metavar="NAME=VALUE", help="for the daemon"
    )
    parser.add_argument(
        "--memray",
        action="store_true",
        help="run the daemon under memray (native stacks, aggregated) into RUN/daemon.memray",
    )
    parser.add_argument("--child-export", nargs=2, metavar=("CONFIG", "OUT"))
    args = parser.parse_args()
    if args.child_export:
        child_export(*args.child_export)
        return
    run = args.out / datetime.now(UTC).strftime("run-%Y%m%dT%H%M%S")
    run.mkdir(parents=True)
    traces = run / "traces"
    sandbox = start_sandbox()
    sandbox.app.state.data["settings"]["enforce_rate_limits"] = False
    metrics = f"127.0.0.1:{free_port()}"
    config, app = write_config(run, sandbox, args.capture, metrics)
    image = png(run / "detour.png")
    env = {"BULLETIN_TRACEMALLOC": str(traces), "BULLETIN_TRACEMALLOC_FRAMES": str(args.frames)}
    if not args.frames:  # no tracing: RSS without tracemalloc's own memory
        env = {}
    env |= dict(item.split("=", 1) for item in args.daemon_env)
    signal.signal(signal.SIGTERM, lambda _s, _f: sys.exit(1))  # the finally below runs
    runner = None
    if args.memray:  # what is live at the daemon's peak and at its end, by stack
        if importlib.util.find_spec("memray") is None:
            sys.exit("--memray needs memray: pip install -e '.[profile]'")
        memray = ["-m", "memray", "run", "--native", "--aggregate", "-q", "-f"]
        runner = [sys.executable, *memray, "-o", str(run / "daemon.memray")]
    daemon = Daemon(config, run / "daemon.log", env, runner).start(timeout=300)
    assert daemon.proc is not None
    pid = daemon.proc.pid
    print(f"soak: {args.minutes} min, daemon pid {pid}, output in {run}", flush=True)
    try:
        tally = Tally()
        stop = threading.Event()
        acting = threading.Thread(
            target=visitors, args=(app, sandbox.url, tally, stop, args.act_interval), daemon=True
        )
        acting.start()
        exporters: list[threading.Thread] = []
        samples: list[tuple[int, float]] = [(0, daemon.rss_mb())]
        snapshot_minutes: list[int] = []
        began = time.monotonic()
        i = 0
        minute = 0
        while minute < args.minutes:
            i += 1
            publish(app, tally, i, image)
            elapsed = time.monotonic() - began
            if elapsed >= 60 * (minute + 1):
                minute += 1
                status = proc_status(pid) | daemon_memory(metrics)
                sampled = status["VmRSS"] / 1024
                samples.append((minute, sampled))
                with (run / "rss.jsonl").open("a") as log:
                    log.write(json.dumps({"minute": minute, **status}) + "\n")
                if args.frames and (
                    minute in (1, 10)
                    or minute % 10 == 0
                    or minute == args.minutes
                    or args.minutes < 10
                ):
                    os.kill(pid, signal.SIGUSR2)
                    snapshot_minutes.append(minute)
                if minute % args.export_every == 0:
                    out = run / f"export-{minute:03d}"
                    t = threading.Thread(target=export_round, args=(config, out, tally))
                    t.start()
                    exporters.append(t)
                print(
                    f"minute {minute:3d}: RSS {sampled:7.1f} MB "
                    f"(anon {status['RssAnon'] / 1024:.1f}, "
                    f"file {status['RssFile'] / 1024:.1f}, threads {status['Threads']}; "
                    f"SQLite {status.get('SQLite', 0) / 1024:.1f}), "
                    f"notices {len(tally.notices)}, "
                    f"acts {sum(tally.acts.values())} ({tally.act_errors} refused), "
                    f"deliveries not final {backlog(app)}",
                    flush=True,
                )
            time.sleep(max(0.0, began + i * args.interval - time.monotonic()))
        stop.set()
        for t in exporters:
            t.join()
        wait_final(app, tally, 300)
        end_rss = daemon.rss_mb()
        try:
            daemon.stop(timeout=300)  # writes the last snapshot
        except subprocess.TimeoutExpired:
            print("the daemon did not stop within 300 s; killed", flush=True)
    finally:
        daemon.kill()
    counts = final_counts(app, sandbox, tally)
    sandbox.stop()
    app.close()

    base = 10 if args.minutes >= 20 else max(1, args.minutes // 3)
    rss = dict(samples)
    print(f"\nRSS (MB) by minute: {json.dumps({m: round(r, 1) for m, r in samples})}")
    print(f"RSS after all deliveries final: {end_rss:.1f} MB")
    for m in (1, 10, 30, 60):
        if m in rss:
            print(f"  minute {m:3d}: {rss[m]:7.1f} MB")
    last = samples[-1][0]
    growth = (rss[last] - rss[base]) / rss[base] * 100
    print(
        f"growth after minute {base}: {rss[base]:.1f} -> {rss[last]:.1f} MB at minute {last} = "
        f"{growth:+.1f} % (goal < 5 %)"
    )
    print("tracemalloc (its own memory is part of RSS):")
    try:
        first = snapshot_minutes.index(base) if base in snapshot_minutes else 0
        tracemalloc_report(traces, first, -1, args.frames)
    except (OSError, ValueError) as e:
        print(f"  no tracemalloc report: {e}")
    print(f"visitor acts: {json.dumps(tally.acts)}, refused {tally.act_errors}")
    made = len(tally.exports)
    verified = sum(bool(e.get("ok")) for e in tally.exports)
    print(f"exports: {made} made, {verified} verified")
    print(json.dumps(counts, indent=2))


if __name__ == "__main__":
    main()
