"""Periodic (roll-mark) alarms while the line runs: the offline detector (coils.periodic), fed the
open coil's defects as the runner finds them, raises an alarm as soon as the evidence is there.

The rule: a mark is an alarm once the detector finds it with `min_occurrences` (default 5) detected
occurrences that random defects explain with probability < 0.1 % (< 0.01 % for a period no roll of
the table has); see `coils.periodic`. Cadence: per surface, after a batch that added defects to it
once the surface has advanced `check_every_m` (1 m) since the last check, and when the coil closes;
each check re-analyses the last `PeriodicDetector.alarm_window_m` (200 m) of the coil: about 30 ms
for 400 defects on a loaded 2-core machine. So an alarm comes within a period plus a batch of the
occurrence that completes the evidence.

One alarm per roll (or, with no roll named, per period within the roll tolerance, harmonics
included) and surface on a line, however many coils and checks see it:
- raised: `raise_alarm(AlarmRecord)` to the sink (the database, through the spool when it has one),
  the webhook's "raised" event;
- carried: when the next coil opens on that surface, every alarm still open goes with it
  (`link_alarm`; the database stores the link only while the alarm is open), and a mark seen
  again on that coil is the same alarm, not a new one;
- closed: when a coil opens and the roll table (re-read then, so a roll change during the shift
  counts) gives the alarm's roll an `installed_at` later than the alarm (`close_alarm`, reason
  "roll_changed", the webhook's "closed" event);
- acknowledged (POST /v1/alarms/{id}/ack in the service): learnt when the next coil opens (the
  sink's `alarm_states`); it is not carried further, and the webhook says "acknowledged". A mark
  still there on a later coil then raises a new alarm: the acknowledgement covered the coils so far.

The alarms the database holds open for the line are adopted when a coil opens, so a restarted
runner neither raises them again nor forgets to carry them."""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from ..coils.alarms import roll_changed
from ..coils.periodic import PeriodicConfig, PeriodicDetector, PeriodicFinding
from ..coils.records import AlarmCloseRecord, AlarmLinkRecord, AlarmRecord, CoilInfo, DefectRecord
from ..coils.rolls import DEFAULT_TOLERANCE, RollTable, read_rolls
from ..errors import ConfigError

log = logging.getLogger("steelscan.line.alarms")

DEFAULT_LINE = "line"   # the line of coils whose level-2 data names none
HARMONICS = (1, 2, 3)   # a finding at k or 1/k times an open alarm's period is that alarm's mark


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class _Open:
    """An alarm this runner believes open, and the coils it is recorded on."""

    record: AlarmRecord
    coils: set[str] = field(default_factory=set)


@dataclass
class _Watch:
    """The detector of one surface's open coil."""

    coil_id: str
    line_id: str
    detector: PeriodicDetector
    new: int = 0            # defects added since the last check
    checked_m: float = float("-inf")   # where the last check was


class LiveAlarms:
    """The runner's alarm keeper (see module doc). `rolls`: the roll table, or `rolls_path` to read
    it from (again at every coil, so a roll change in the file counts). `webhook`: an object with
    `send(dict)` (line.alarm_webhook). `clock`: UTC now (tests)."""

    def __init__(self, rolls: RollTable | None = None, *, rolls_path: str | Path | None = None,
                 min_occurrences: int = 5, tolerance: float = DEFAULT_TOLERANCE, webhook=None,
                 check_every_m: float = 1.0, clock: Callable[[], datetime] = _now) -> None:
        if min_occurrences < 3:
            raise ConfigError(f"must be >= 3, got {min_occurrences}", field="--alarm-min-occurrences")
        self.rolls_path = Path(rolls_path) if rolls_path else None
        self.tolerance = tolerance
        self.rolls = read_rolls(self.rolls_path, tolerance) if self.rolls_path else rolls
        self.config = PeriodicConfig(min_occurrences=min_occurrences)
        self.webhook, self.clock, self.check_every_m = webhook, clock, check_every_m
        self.sink = None
        self.on_problem: Callable[[str], None] = lambda text: log.warning(text)
        self.open: dict[str, _Open] = {}            # uid -> alarm
        self.raised: list[AlarmRecord] = []         # raised by this run
        self._watch: dict[str, _Watch] = {}         # surface -> its coil's detector

    def attach(self, sink, on_problem: Callable[[str], None] | None = None) -> None:
        self.sink = sink
        if on_problem is not None:
            self.on_problem = on_problem

    # --- the runner's hooks ------------------------------------------------------------------
    def coil_opened(self, surface: str, info: CoilInfo) -> None:
        """A coil opens on a surface (or is resumed after a restart): learn what people did with the
        alarms, close those whose roll was changed, carry the rest to this coil, watch its defects."""
        line = info.line_id or DEFAULT_LINE
        self._reload_rolls()
        self._sync(line)
        for uid, a in list(self.open.items()):
            r = a.record
            if r.line_id != line or r.surface != surface:
                continue
            if roll_changed(r.roll, r.raised_at, self.rolls):
                self._close(uid, "roll_changed")
            elif info.coil_id not in a.coils:
                a.coils.add(info.coil_id)
                self._call("link_alarm", AlarmLinkRecord(uid, info.coil_id))
        self._watch[surface] = _Watch(info.coil_id, line, PeriodicDetector(info.coil_id, self.rolls, self.config))

    def add(self, surface: str, defects: list[DefectRecord]) -> None:
        w = self._watch.get(surface)
        if w is None:
            return
        for d in defects:
            if d.coil_id == w.coil_id:
                w.detector.add(surface, d.class_id, d.start_m, d.across_start_mm, d.across_end_mm)
                w.new += 1

    def check(self, surface: str, position_m: float, force: bool = False) -> list[AlarmRecord]:
        """Run the detector if defects came since the last check and the surface advanced
        `check_every_m` (or `force`); raise what is new. Call after the defects are handed to the
        sink (an alarm is stored after the defects behind it)."""
        w = self._watch.get(surface)
        if w is None or w.new == 0 or (not force and position_m - w.checked_m < self.check_every_m):
            return []
        w.new, w.checked_m = 0, position_m
        out = []
        for f in w.detector.new_alarms():
            same = self._same(w.line_id, f)
            if same is not None:
                if w.coil_id not in same.coils:
                    same.coils.add(w.coil_id)
                    self._call("link_alarm", AlarmLinkRecord(same.record.uid, w.coil_id))
                continue
            out.append(self._raise(w, f, position_m))
        return out

    def coil_closed(self, surface: str, coil_id: str, position_m: float) -> list[AlarmRecord]:
        """Check the coil's last defects, stop watching it; the alarms raised."""
        w = self._watch.get(surface)
        if w is None or w.coil_id != coil_id:
            return []
        raised = self.check(surface, position_m, force=True)
        del self._watch[surface]
        return raised

    # --- inside ----------------------------------------------------------------------------
    def _same(self, line: str, f: PeriodicFinding) -> _Open | None:
        """The open alarm this finding belongs to: same line and surface, and the same roll when both
        name one, else a period within the roll tolerance of the alarm's or of a harmonic of it (x2,
        x3, /2, /3: early in a coil, with turns missed and random defects between, the detector can
        lock onto a multiple or a fraction of a mark's period)."""
        for a in self.open.values():
            r = a.record
            if r.line_id != line or r.surface != f.surface:
                continue
            if r.roll is not None and f.roll is not None:
                if r.roll == f.roll:
                    return a
                continue
            ratio = f.period_m / r.period_m
            if any(abs(ratio * k - 1) <= self.tolerance or abs(ratio / k - 1) <= self.tolerance for k in HARMONICS):
                return a
        return None

    def _raise(self, w: _Watch, f: PeriodicFinding, position_m: float) -> AlarmRecord:
        rec = AlarmRecord(uid=uuid.uuid4().hex, line_id=w.line_id, surface=f.surface, coil_id=w.coil_id,
                          roll=f.roll, period_m=f.period_m, implied_diameter_mm=f.implied_diameter_mm,
                          class_ids=list(f.class_ids), occurrences=f.occurrences, first_m=f.first_m,
                          raised_m=round(float(position_m), 3), across_mm=f.across_mm,
                          confidence=f.confidence, raised_at=self.clock().isoformat(timespec="milliseconds"))
        self.open[rec.uid] = _Open(rec, {w.coil_id})
        self.raised.append(rec)
        log.warning("periodic alarm: %s %s %s, period %.3f m (%s), %d occurrences from %.1f m", rec.line_id,
                    rec.coil_id, rec.surface, rec.period_m, f"roll {rec.roll}" if rec.roll else
                    f"no roll in the table, diameter {rec.implied_diameter_mm:.0f} mm", rec.occurrences, rec.first_m)
        self._call("raise_alarm", rec)
        self._send({"event": "raised", "alarm": asdict(rec)})
        return rec

    def _close(self, uid: str, reason: str) -> None:
        a = self.open.pop(uid)
        self._call("close_alarm", AlarmCloseRecord(uid, reason, self.clock().isoformat(timespec="milliseconds")))
        self._send({"event": "closed", "reason": reason, "alarm": asdict(a.record)})

    def _sync(self, line: str) -> None:
        """Drop alarms the database says were acknowledged or closed; adopt its open ones (a restart)."""
        states = getattr(self.sink, "alarm_states", None)
        if states is None:
            return
        try:
            stored = states(line, [u for u, a in self.open.items() if a.record.line_id == line])
        except Exception as e:   # the database is down: go on with what this runner knows
            log.debug("alarm states not read: %s", e)
            return
        if stored is None:
            return
        for uid, s in stored.items():
            if s["state"] != "open" and uid in self.open:
                a = self.open.pop(uid)
                if s["state"] == "acknowledged":
                    self._send({"event": "acknowledged", "by": s.get("acknowledged_by"),
                                "at": s.get("acknowledged_at"), "alarm": asdict(a.record)})
            elif s["state"] == "open" and uid not in self.open:
                fields = AlarmRecord.__dataclass_fields__
                rec = AlarmRecord(**{k: s[k] for k in fields if k != "class_ids"}, class_ids=list(s["class_ids"]))
                self.open[uid] = _Open(rec, set(s.get("coils") or ()))

    def _reload_rolls(self) -> None:
        if self.rolls_path is None:
            return
        try:
            self.rolls = read_rolls(self.rolls_path, self.tolerance)
        except ConfigError as e:
            self.on_problem(f"roll table not re-read, the previous one stays: {e}")

    def _call(self, method: str, record) -> None:
        fn = getattr(self.sink, method, None)
        if fn is not None:
            fn(record)

    def _send(self, event: dict) -> None:
        if self.webhook is not None:
            self.webhook.send(event)
