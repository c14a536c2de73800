"""A Prometheus endpoint for the daemon (``[daemon] metrics_address``, off by default).

Each scrape reads the same figures as ``bulletin status`` and ``bulletin archive status`` from
the database, so every daemon of a PostgreSQL group serves the whole group's figures, and a
restart loses nothing. A scrape that cannot read them answers ``bulletin_scrape_error 1`` (and
logs why) instead of failing, so an alert can fire on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from bulletin.app import App
from bulletin.app.facebook_webhooks import rejected_counts
from bulletin.archiver.capture.lag import capture_lags
from bulletin.archiver.status import capture_health
from bulletin.logs import get_logger
from bulletin.service.memory import resident_bytes, sqlite_memory
from bulletin.service.status import gather

log = get_logger("bulletin.metrics")

# capture lag buckets, seconds: a webhook's seconds to a cold thread's day
LAG_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 86400.0)


@dataclass(frozen=True)
class VerifyResult:
    """The daemon's last nightly verify."""

    at: datetime
    problems: int


@dataclass(frozen=True)
class StampingResult:
    """The daemon's last try to time-stamp ledger checkpoints: when (``at``), how many still
    wait, the oldest of them, and when a time-stamp authority last answered."""

    at: datetime
    waiting: int
    oldest_waiting: datetime | None
    last_ok_at: datetime | None


class StatusCollector(Collector):
    """Gauges read at each scrape; see the module doc."""

    def __init__(
        self,
        app: App,
        heartbeat_seconds: float,
        last_verify: Callable[[], VerifyResult | None] = lambda: None,
        last_stamping: Callable[[], StampingResult | None] = lambda: None,
    ) -> None:
        self.app = app
        self.heartbeat_seconds = heartbeat_seconds
        self.last_verify = last_verify
        self.last_stamping = last_stamping

    def collect(self) -> Iterable[Metric]:
        try:
            metrics = self._read()
        except Exception as e:  # any failure to read is the scrape's error, not the daemon's
            log.error("metrics could not be read", error=f"{type(e).__name__}: {e}")
            metrics = []
            failed = 1
        else:
            failed = 0
        yield from metrics
        yield _gauge(
            "bulletin_scrape_error", "1 when this scrape could not read the figures", failed
        )
        yield from process_memory()

    def _read(self) -> list[Metric]:
        app = self.app
        state = gather(app, self.heartbeat_seconds)
        sweeps, quarantined = capture_health(app.engine, app.settings)
        out: list[Metric] = [
            _gauge("bulletin_daemons_live", "Daemons with a recent heartbeat", len(state.daemons)),
            _labelled(
                "bulletin_deliveries",
                "Deliveries (one notice to one account) by state",
                ["state"],
                [((state_name,), n) for state_name, n in sorted(state.deliveries.items())],
            ),
            _gauge("bulletin_deliveries_due", "Deliveries due now, not yet sent", state.due_now),
            _gauge(
                "bulletin_deliveries_failed",
                "Failed deliveries nobody has acknowledged (bulletin notice ack), last 7 days",
                sum(len(f.failed) for f in state.failed),
            ),
            _labelled(
                "bulletin_notices",
                "Notices by state",
                ["state"],
                [((name,), n) for name, n in sorted(state.notices.items())],
            ),
            _gauge("bulletin_late_notices", "Notices waiting for a late decision", len(state.late)),
            _gauge("bulletin_archive_records", "Archived record versions", state.records),
            _gauge(
                "bulletin_ledger_head",
                "Sequence number of the ledger's newest entry",
                state.ledger_head,
            ),
            _gauge(
                "bulletin_store_backlog_objects",
                "Objects waiting in the spool for the archive store",
                state.store_backlog,
            ),
            _gauge("bulletin_requests_open", "Open records requests", state.requests_open),
            _gauge(
                "bulletin_requests_due_soon",
                "Open records requests due within [requests] warn_days",
                len(state.requests_near) - len(state.requests_overdue),
            ),
            _gauge(
                "bulletin_requests_overdue",
                "Open records requests past their deadline",
                len(state.requests_overdue),
            ),
            _gauge(
                "bulletin_webhooks_disabled",
                "Webhooks disabled after failing for a day",
                len(state.webhooks_disabled),
            ),
            _gauge(
                "bulletin_web_console_unavailable",
                "Live daemons that could not serve the web console at [web] address",
                len(state.web_unavailable),
            ),
            _gauge(
                "bulletin_quarantined_answers",
                "Platform answers kept aside as malformed",
                quarantined,
            ),
        ]
        done = sorted((name, s) for name, s in sweeps.items() if s is not None)
        out.append(
            _labelled(
                "bulletin_capture_last_sweep_timestamp_seconds",
                "When each account's last capture sweep started",
                ["account"],
                [((name,), s["started_at"].timestamp()) for name, s in done],
            )
        )
        out.append(
            _labelled(
                "bulletin_capture_last_sweep_ok",
                "1 when each account's last capture sweep ended ok",
                ["account"],
                [((name,), 1.0 if s["result"] == "ok" else 0.0) for name, s in done],
            )
        )
        out.append(_lag_histogram(capture_lags(app.engine)))
        refused = CounterMetricFamily(
            "bulletin_facebook_webhooks_refused",
            "Facebook webhook requests refused (bad or missing signature or verify token) by "
            "this process since it started",
            labels=["reason"],
        )
        for reason, count in sorted(rejected_counts().items()):
            refused.add_metric([reason], count)
        out.append(refused)
        disks = [(", ".join(d.roles), d.path, d) for d in state.disks]
        out.append(
            _labelled(
                "bulletin_disk_free_ratio",
                "Share of the space free where Bulletin writes",
                ["roles", "path"],
                [((roles, path), d.free_percent / 100) for roles, path, d in disks],
            )
        )
        out.append(
            _labelled(
                "bulletin_disk_free_inodes_ratio",
                "Share of the inodes free where Bulletin writes",
                ["roles", "path"],
                [
                    ((roles, path), d.free_inode_percent / 100)
                    for roles, path, d in disks
                    if d.free_inode_percent is not None
                ],
            )
        )
        verified = self.last_verify()
        if verified is not None:
            out.append(
                _gauge(
                    "bulletin_verify_problems",
                    "Problems the daemon's last nightly verify found",
                    verified.problems,
                )
            )
            out.append(
                _gauge(
                    "bulletin_verify_last_run_timestamp_seconds",
                    "When the daemon's last nightly verify ran",
                    verified.at.timestamp(),
                )
            )
        out += _stamping_metrics(self.last_stamping())
        return out


def _stamping_metrics(stamping: StampingResult | None) -> list[Metric]:
    """The time-stamp backlog as this daemon last saw it (nothing before its first try)."""
    if stamping is None:
        return []
    out: list[Metric] = [
        _gauge(
            "bulletin_checkpoints_unstamped",
            "Ledger checkpoints waiting for an RFC 3161 time stamp (no authority answered)",
            stamping.waiting,
        )
    ]
    if stamping.oldest_waiting is not None:
        out.append(
            _gauge(
                "bulletin_checkpoints_unstamped_oldest_timestamp_seconds",
                "When the oldest checkpoint still without a time stamp was taken",
                stamping.oldest_waiting.timestamp(),
            )
        )
    if stamping.last_ok_at is not None:
        out.append(
            _gauge(
                "bulletin_timestamp_last_success_timestamp_seconds",
                "When a time-stamp authority last answered",
                stamping.last_ok_at.timestamp(),
            )
        )
    return out


def serve_metrics(address: str, collector: Collector) -> Callable[[], None] | None:
    """Serve ``collector`` at ``http://<address>/metrics``; returns how to stop it, or None
    (logged) when the address cannot be bound: the daemon goes on without metrics."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")  # an IPv6 address is written [::1]:9464
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    try:
        server, thread = start_http_server(int(port), addr=host, registry=registry)
    except OSError as e:
        log.error("metrics endpoint not started", address=address, error=e.strerror or str(e))
        return None
    log.info("metrics endpoint started", url=f"http://{address}/metrics")

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop


def _lag_histogram(lags: dict[tuple[str, str], list[float]]) -> HistogramMetricFamily:
    """``bulletin_capture_lag_seconds{account,path}`` over the newest records' comments."""
    family = HistogramMetricFamily(
        "bulletin_capture_lag_seconds",
        "Seconds from a comment's posting to its first archived version, by capture path "
        "(webhook, stream or sweep), over the comments among the newest 10,000 records",
        labels=["account", "path"],
    )
    for (account, path), values in sorted(lags.items()):
        buckets = [(str(b), float(sum(1 for v in values if v <= b))) for b in LAG_BUCKETS]
        buckets.append(("+Inf", float(len(values))))
        family.add_metric([account, path], buckets, sum_value=sum(values))
    return family


def process_memory() -> list[Metric]:
    """This daemon process's own memory (the one figure not about the whole group): resident,
    and what SQLite holds of it (its connections' page caches, statements and schemas)."""
    out: list[Metric] = []
    resident = resident_bytes()
    if resident is not None:
        out.append(
            _gauge(
                "bulletin_daemon_resident_memory_bytes",
                "Resident memory of this daemon process",
                resident,
            )
        )
    held = sqlite_memory()
    if held is not None:
        out.append(
            _gauge(
                "bulletin_daemon_sqlite_memory_bytes",
                "Memory SQLite holds in this daemon process (page caches, statements, schemas)",
                held[0],
            )
        )
        out.append(
            _gauge(
                "bulletin_daemon_sqlite_memory_highwater_bytes",
                "The most memory SQLite has held in this daemon process since it started",
                held[1],
            )
        )
    return out


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _labelled(
    name: str, documentation: str, labels: list[str], values: list[tuple[tuple[str, ...], float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for label_values, value in values:
        family.add_metric(list(label_values), value)
    return family
