"""Chaos: SIGKILL the daemon at random moments while notices publish through faults.

``--notices`` notices (default 500) to the sandbox X account, the sandbox Facebook Page, the
sandbox Mastodon, Bluesky and Threads accounts and the feed become due over the first seconds
of the run; the
sandbox keeps injecting 429s (short resets), 500/503 bursts and timeouts-after-commit. A
daemon subprocess is started and killed with SIGKILL after a random 0.2 to 2 s, ``--rounds``
times (default 100); then one last daemon runs until every delivery is final. The report
counts, by the sandbox's own records and the database:

- duplicates: a notice's text created more than once on one platform account (must be 0)
- lost: approved notices with a delivery neither published nor failed-with-reason (must be 0)
- not final: deliveries still pending, in flight or uncertain (must be 0)
- not archived: published deliveries without an archived record (must be 0)

Every tenth notice is bilingual (English and Spanish): each account posts both, the Spanish
as a reply to the English, so exactly once is counted per (language, account) too.

    python bench/chaos.py [--rounds 100] [--notices 500] [--db sqlite|postgres] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _support import Daemon, configure, database, start_sandbox
from sqlmodel import Session, select

from bulletin.connectors.sandbox import SandboxServer
from bulletin.connectors.sandbox.faults import Fault, FaultKind
from bulletin.models import Delivery
from bulletin.publisher.approval import approve_notice
from bulletin.publisher.languages import LanguageVariant
from bulletin.publisher.notices import NoticeDraft, create_notice

FINAL = {"published", "failed", "cancelled"}


def inject_faults(sandbox: SandboxServer, stop: threading.Event, rng: random.Random) -> None:
    """Keep a trickle of faults armed on the create-post endpoints."""
    while not stop.wait(0.3):
        path = rng.choice(
            [
                r"/2/tweets$",
                r"/feed$",
                r"^/api/v1/statuses$",
                r"createRecord$",
                r"/threads_publish$",
            ]
        )
        kinds: list[FaultKind] = ["rate_limit", "error", "error", "timeout"]
        kind = rng.choice(kinds)
        sandbox.app.faults.add(
            Fault(
                kind=kind,
                path=path,
                method="POST",
                count=rng.randint(1, 3),
                status=503,
                seconds=rng.choice([0.5, 1.0, 2.0]) if kind != "timeout" else 35.0,
            )
        )


def report(app_engine, sandbox: SandboxServer, approved: int, feed_path: Path) -> dict[str, int]:  # type: ignore[no-untyped-def]
    created: Counter[tuple[str, str]] = Counter()
    for account, posts in _created_texts(sandbox).items():
        for text in posts:
            created[(account, text)] += 1
    feed = Path(feed_path).read_text() if Path(feed_path).exists() else ""
    for i in range(approved):
        entry = f"urn:bulletin:feed:notice-{i + 1}<"
        created[("feed", entry)] += max(0, feed.count(entry) - 1) + (1 if entry in feed else 0)
    with Session(app_engine) as session:
        deliveries = session.exec(select(Delivery)).all()
    not_final = [d for d in deliveries if d.state not in FINAL]
    failed_without_reason = [d for d in deliveries if d.state == "failed" and not d.last_error]
    return {
        "notices": approved,
        "deliveries": len(deliveries),
        "published": sum(d.state == "published" for d in deliveries),
        "published in es": sum(d.state == "published" and d.lang == "es" for d in deliveries),
        "failed (with reason)": sum(d.state == "failed" and bool(d.last_error) for d in deliveries),
        "duplicates": sum(n - 1 for n in created.values() if n > 1),
        "lost": len(failed_without_reason) + len(not_final),
        "not final": len(not_final),
        "not archived": sum(
            d.state == "published" and not d.archived_record_id for d in deliveries
        ),
    }


def _created_texts(sandbox: SandboxServer) -> dict[str, list[str]]:
    snapshot = sandbox.app.state.snapshot()
    out: dict[str, list[str]] = {}
    for tweet in snapshot["x"]["tweets"].values():
        out.setdefault(f"x:{tweet.get('author_id')}", []).append(tweet.get("text", ""))
    for post in snapshot["fb"]["posts"].values():
        out.setdefault(f"fb:{post.get('page_id')}", []).append(post.get("message", ""))
    for status in snapshot.get("mastodon", {}).get("statuses", {}).values():
        out.setdefault(f"mastodon:{status.get('account_id')}", []).append(status.get("text", ""))
    for record in snapshot.get("bluesky", {}).get("records", {}).values():
        if record.get("collection") == "app.bsky.feed.post":
            text = (record.get("value") or {}).get("text", "")
            out.setdefault(f"bluesky:{record.get('repo')}", []).append(text)
    for media in snapshot.get("threads", {}).get("media", {}).values():
        out.setdefault(f"threads:{media.get('owner')}", []).append(media.get("text", ""))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="SIGKILL chaos against the daemon")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--notices", type=int, default=500)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    sandbox = start_sandbox()
    sandbox.app.state.data["settings"]["enforce_rate_limits"] = False
    stop = threading.Event()
    with (
        tempfile.TemporaryDirectory(prefix="chaos-") as tmp_name,
        database(args.db, Path(tmp_name)) as url,
    ):
        tmp = Path(tmp_name)
        config, app = configure(tmp, url, sandbox.url, lease=10)
        start = datetime.now(UTC)
        for i in range(args.notices):
            notice = create_notice(
                app.engine,
                app.settings,
                app.clock,
                NoticeDraft(
                    "traffic",
                    f"Chaos notice {i}: detour via Route {i % 9}.",
                    ("x", "facebook", "mastodon", "bluesky", "threads", "feed"),
                    publish_at=start + timedelta(seconds=rng.uniform(0, 20)),
                    languages=[LanguageVariant("es", f"Aviso {i}: desvío por la Ruta {i % 9}.")]
                    if i % 10 == 0
                    else [],
                ),
                "dispatcher",
            )
            approve_notice(app.engine, app.settings, app.clock, notice.id or 0, "chief")
        faults = threading.Thread(target=inject_faults, args=(sandbox, stop, rng), daemon=True)
        faults.start()
        began = time.monotonic()
        for _ in range(args.rounds):
            daemon = Daemon(config, tmp / "daemon.log").start()
            time.sleep(rng.uniform(0.2, 2.0))
            daemon.kill()
        stop.set()
        sandbox.app.faults.clear()
        daemon = Daemon(config, tmp / "daemon.log").start()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with Session(app.engine) as session:
                states = [d.state for d in session.exec(select(Delivery))]
                unarchived = sum(
                    1
                    for d in session.exec(select(Delivery))
                    if d.state == "published" and not d.archived_record_id
                )
            if all(s in FINAL for s in states) and not unarchived:
                break
            time.sleep(0.5)
        daemon.stop()
        figures = report(app.engine, sandbox, args.notices, app.settings.feed_path("feed"))
        app.close()
    sandbox.stop()
    elapsed = time.monotonic() - began
    print(
        f"chaos: {args.rounds} SIGKILL rounds, {args.notices} notices x 6 accounts "
        f"(every tenth in English and Spanish), {args.db}, {elapsed:.0f} s"
    )
    print(json.dumps(figures, indent=2))
    bad = figures["duplicates"] + figures["lost"] + figures["not final"] + figures["not archived"]
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
