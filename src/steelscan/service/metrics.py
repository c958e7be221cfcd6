"""Service metrics with prometheus_client, in a registry of their own per app (two apps in
one process, e.g. in tests, never share counters). Exposed at /metrics in the Prometheus text
format 0.0.4.

    steelscan_http_requests_total{path,method,status}   counter
    steelscan_inspection_latency_seconds                 histogram (decode + cascade + storage)
    steelscan_inspections_total{verdict}                 counter
    steelscan_ng_images_total{class_name}                counter (0 for every class from the start)
    steelscan_rejected_busy_total                        counter (503: all slots busy)
    steelscan_in_flight                                  gauge
    steelscan_stored_inspections                         gauge (rows in the history)
    steelscan_periodic_alarms_open{line,surface}         gauge (open roll-mark alarms in the database)

The alarm gauge is the service's, read from the database at each scrape: the database is where
the runner's alarms and people's acknowledgements meet (a runner knows an acknowledgement only
at its next coil). A (line, surface) whose alarms were all acknowledged or closed reads 0.

prometheus_client also writes a `*_created` gauge (start time, Unix seconds) beside each
counter and histogram: standard, and ignored by dashboards that do not ask for it."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # "text/plain; version=0.0.4; charset=utf-8"


class ServiceMetrics:
    """The service's metrics; prometheus_client's metric objects are thread-safe."""

    def __init__(self, class_names: list[str]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("steelscan_http_requests", "HTTP requests by route, method and status code.",
                                ["path", "method", "status"], registry=r)
        self.latency = Histogram("steelscan_inspection_latency_seconds", "Upload decode + cascade + storage time.",
                                 buckets=LATENCY_BUCKETS_S, registry=r)
        self.verdicts = Counter("steelscan_inspections", "Inspections by verdict.", ["verdict"], registry=r)
        self.ng_by_class = Counter("steelscan_ng_images", "Images judged NG, by defect class.", ["class_name"],
                                   registry=r)
        for name in class_names:  # a class never seen still shows 0, so rate() works from the start
            self.ng_by_class.labels(name)
        self.rejected = Counter("steelscan_rejected_busy", "Requests refused with 503 (all slots busy).",
                                registry=r)
        self.in_flight = Gauge("steelscan_in_flight", "Inspections running now.", registry=r)
        self.stored = Gauge("steelscan_stored_inspections", "Rows in the inspection store.", registry=r)
        self.alarms_open = Gauge("steelscan_periodic_alarms_open", "Open periodic (roll-mark) alarms.",
                                 ["line", "surface"], registry=r)
        self._alarm_labels: set[tuple[str, str]] = set()

    def observe_request(self, path: str, method: str, status: int) -> None:
        self.requests.labels(path, method, str(int(status))).inc()

    def observe_inspection(self, result: dict, seconds: float) -> None:
        """One successful inspection: its latency (s), verdict and the classes with a defect."""
        self.verdicts.labels(result.get("verdict") or "none").inc()
        for name in {d["class_name"] for d in result.get("defects", [])}:
            self.ng_by_class.labels(name).inc()
        self.latency.observe(seconds)

    def exposition(self, in_flight: int, stored: int, alarms_open: dict[tuple[str, str], int] | None = None) -> bytes:
        """The text exposition, with the gauges read now (`alarms_open`: (line, surface) -> open alarms)."""
        self.in_flight.set(in_flight)
        self.stored.set(stored)
        alarms_open = alarms_open or {}
        self._alarm_labels |= set(alarms_open)
        for key in self._alarm_labels:   # once seen, a line/surface stays in the exposition (0 when none)
            self.alarms_open.labels(*key).set(alarms_open.get(key, 0))
        return generate_latest(self.registry)
