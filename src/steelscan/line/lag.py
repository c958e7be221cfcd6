"""How far the runner is behind the line: a Prometheus gauge and a log line every few seconds.

Lag is the age of the newest frame the runner has taken from its source when it finishes a batch
(now minus when that frame passed the camera): 0 for a recorded replay that is read as fast as it
is inspected, growing when a live line outruns inspection."""

from __future__ import annotations

import logging
import time

from prometheus_client import Counter, Gauge

LAG = Gauge("steelscan_line_lag_seconds", "age of the newest frame taken from the source when its batch was done")
SKIPPED = Counter("steelscan_line_frames_behind_total", "frames skipped on purpose because inspection fell behind")
LOG_EVERY_S = 5.0    # the "behind" log line repeats at most this often
QUIET_LAG_S = 1.0    # below this lag (and with nothing skipped) nothing is logged

log = logging.getLogger("steelscan.line")


class LagReport:
    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock
        self.newest: float | None = None
        self.lag_s = 0.0
        self.max_lag_s = 0.0
        self._skipped_since = 0
        self._last_log = -LOG_EVERY_S

    def seen(self, arrived: float) -> None:
        self.newest = arrived if self.newest is None else max(self.newest, arrived)

    def skipped(self, file: str) -> None:
        self._skipped_since += 1
        SKIPPED.inc()

    def report(self, summary) -> None:
        """After a batch: set the gauge; log a line when behind, at most every LOG_EVERY_S."""
        if self.newest is None:
            return
        now = self.clock()
        self.lag_s = max(0.0, now - self.newest)
        self.max_lag_s = max(self.max_lag_s, self.lag_s)
        LAG.set(self.lag_s)
        if summary is not None and self._skipped_since:
            summary.behind += self._skipped_since
        if (self.lag_s >= QUIET_LAG_S or self._skipped_since) and now - self._last_log >= LOG_EVERY_S:
            self._last_log = now
            log.warning("line: %.1f s behind the line; %d frames (%.2f m) skipped as behind so far",
                        self.lag_s, summary.behind if summary is not None else self._skipped_since,
                        summary.behind_m if summary is not None else 0.0)
        self._skipped_since = 0
