"""Service metrics in the Prometheus text exposition format (version 0.0.4), by hand:
prometheus_client is not a dependency."""

from __future__ import annotations

import threading
from collections import Counter

LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class ServiceMetrics:
    """Counters and one histogram, updated from request handlers (thread-safe)."""

    def __init__(self, class_names: list[str]) -> None:
        self.class_names = list(class_names)
        self._lock = threading.Lock()
        self.requests: Counter = Counter()  # (path, method, status) -> count
        self.verdicts: Counter = Counter()
        self.ng_by_class: Counter = Counter({name: 0 for name in self.class_names})
        self.bucket_counts = [0] * len(LATENCY_BUCKETS_S)
        self.latency_sum = 0.0
        self.latency_count = 0
        self.rejected = 0

    def observe_request(self, path: str, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(path, method, int(status))] += 1

    def observe_inspection(self, result: dict, seconds: float) -> None:
        """One successful inspection: its latency (s), verdict and classes with a defect."""
        with self._lock:
            self.verdicts[result.get("verdict") or "none"] += 1
            for name in {d["class_name"] for d in result.get("defects", [])}:
                self.ng_by_class[name] += 1
            self.latency_sum += seconds
            self.latency_count += 1
            for i, bound in enumerate(LATENCY_BUCKETS_S):
                if seconds <= bound:
                    self.bucket_counts[i] += 1

    def exposition(self, in_flight: int, stored: int) -> str:
        with self._lock:
            out = ["# HELP steelscan_http_requests_total HTTP requests by route, method and status code.",
                   "# TYPE steelscan_http_requests_total counter"]
            for (path, method, status), n in sorted(self.requests.items()):
                out.append(f'steelscan_http_requests_total{{path="{_label(path)}",method="{method}",'
                           f'status="{status}"}} {n}')
            out += ["# HELP steelscan_inspection_latency_seconds Upload decode + cascade + storage time.",
                    "# TYPE steelscan_inspection_latency_seconds histogram"]
            for bound, n in zip(LATENCY_BUCKETS_S, self.bucket_counts):
                out.append(f'steelscan_inspection_latency_seconds_bucket{{le="{bound}"}} {n}')
            out += [f'steelscan_inspection_latency_seconds_bucket{{le="+Inf"}} {self.latency_count}',
                    f"steelscan_inspection_latency_seconds_sum {self.latency_sum:.6f}",
                    f"steelscan_inspection_latency_seconds_count {self.latency_count}",
                    "# HELP steelscan_inspections_total Inspections by verdict.",
                    "# TYPE steelscan_inspections_total counter"]
            for verdict, n in sorted(self.verdicts.items()):
                out.append(f'steelscan_inspections_total{{verdict="{_label(verdict)}"}} {n}')
            out += ["# HELP steelscan_ng_images_total Images judged NG, by defect class.",
                    "# TYPE steelscan_ng_images_total counter"]
            for name, n in self.ng_by_class.items():
                out.append(f'steelscan_ng_images_total{{class_name="{_label(name)}"}} {n}')
            out += ["# HELP steelscan_rejected_busy_total Requests refused with 503 (all slots busy).",
                    "# TYPE steelscan_rejected_busy_total counter", f"steelscan_rejected_busy_total {self.rejected}",
                    "# HELP steelscan_in_flight Inspections running now.", "# TYPE steelscan_in_flight gauge",
                    f"steelscan_in_flight {in_flight}",
                    "# HELP steelscan_stored_inspections Rows in the inspection store.",
                    "# TYPE steelscan_stored_inspections gauge", f"steelscan_stored_inspections {stored}"]
        return "\n".join(out) + "\n"
