"""`--alarm-webhook URL`: the line's periodic alarms POSTed as JSON to a URL (a chat bridge, a pager).

    {"event": "raised", "alarm": {...AlarmRecord...}}
    {"event": "closed", "alarm": {"uid", "line_id", "surface", "roll", ...}, "reason": "roll_changed"}
    {"event": "acknowledged", "alarm": {...}, "by": "..."}   (the runner learns it at the next coil)

The line never waits for it: `send` puts the event on a bounded queue and returns; one thread posts
them in order, retrying a failed post `len(RETRY_DELAYS_S)` times with growing pauses. An event that
still fails is logged once (one line, with the reason) and dropped; a full queue (the receiver is
down for long) drops new events with one line per outage. The URL may carry a secret (a token in its
path or query): logs name only its scheme and host."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

log = logging.getLogger("steelscan.line.alarms")

RETRY_DELAYS_S = (1.0, 3.0, 10.0)
TIMEOUT_S = 5.0
QUEUE_EVENTS = 100


def masked(url: str) -> str:
    """`scheme://host[:port]/...`: the URL without user info, path or query (they may hold a secret)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/..."


class AlarmWebhook:
    """POST alarm events to `url` from a background thread (see module doc). `delays`: the pauses
    between retries (tests shorten them). `sent`, `failed`, `dropped`: counters."""

    def __init__(self, url: str, *, delays: tuple[float, ...] = RETRY_DELAYS_S, timeout_s: float = TIMEOUT_S) -> None:
        from ..errors import ConfigError

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"must be an http(s) URL, got {masked(url) if parts.hostname else 'no host'}",
                              field="--alarm-webhook")
        self.url, self.where = url, masked(url)
        self.delays, self.timeout_s = tuple(delays), timeout_s
        self.sent = self.failed = self.dropped = 0
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_EVENTS)
        self._full_said = False
        self._thread = threading.Thread(target=self._run, name="alarm-webhook", daemon=True)
        self._thread.start()

    def send(self, event: dict) -> None:
        """Queue one event; never blocks."""
        try:
            self._queue.put_nowait(event)
            self._full_said = False
        except queue.Full:
            self.dropped += 1
            if not self._full_said:
                self._full_said = True
                log.warning("alarm webhook %s: %d events waiting, dropping new ones until it answers",
                            self.where, QUEUE_EVENTS)

    def close(self, wait_s: float = 10.0) -> None:
        """Post what is queued for up to `wait_s`, then stop."""
        self._queue.put(None)
        self._thread.join(timeout=wait_s)

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            self._post(event)

    def _post(self, event: dict) -> None:
        body = json.dumps(event).encode("utf-8")
        reason = ""
        for delay in (*self.delays, None):
            req = urllib.request.Request(self.url, data=body, method="POST",
                                         headers={"Content-Type": "application/json",
                                                  "User-Agent": "steelscan-line"})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    resp.read()
                self.sent += 1
                return
            except urllib.error.HTTPError as e:
                reason = f"HTTP {e.code}"
            except (urllib.error.URLError, OSError) as e:
                why = getattr(e, "reason", None) or e
                reason = f"{type(why).__name__}: {why}".replace(self.url, self.where)
            if delay is not None:
                time.sleep(delay)
        self.failed += 1
        uid = (event.get("alarm") or {}).get("uid")
        log.warning("alarm webhook %s: %s event of alarm %s not delivered after %d tries (%s)", self.where,
                    event.get("event"), uid, len(self.delays) + 1, reason[:200])
