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
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bulletin.app import App
from bulletin.archiver.status import capture_health
from bulletin.logs import get_logger
from bulletin.service.status import gather

log = get_logger("bulletin.metrics")


@dataclass(frozen=True)
class VerifyResult:
    """The daemon's last nightly verify."""

    at: datetime
    problems: int


class StatusCollector(Collector):
    """Gauges read at each scrape; see the module doc."""

    def __init__(
        self,
        app: App,
        heartbeat_seconds: float,
        last_verify: Callable[[], VerifyResult | None] = lambda: None,
    ) -> None:
        self.app = app
        self.heartbeat_seconds = heartbeat_seconds
        self.last_verify = last_verify

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


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _labelled(
    name: str, documentation: str, labels: list[str], values: list[tuple[tuple[str, ...], float]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for label_values, value in values:
        family.add_metric(list(label_values), value)
    return family
