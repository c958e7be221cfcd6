"""Nothing lost when the database goes away: a DefectSink wrapper that writes every call to an
on-disk journal first and forwards it to the database from there.

    sink = SpoolingSink(lambda: CoilStore(url), "state/spool")

- The runner's calls (`upsert_coil`, `add_defects`, ...) append one journal entry each (a JSON
  line, crops base64) to `journal-<first seq>.jsonl`, flushed and fsync'd before the call returns;
  they never wait on the database.
- A forwarder thread reads the journal in order and hands each entry to the real sink, then
  flushes it (one transaction per entry), and only then records the entry's sequence number in
  `acked.json` (written atomically). Fully acknowledged journal files are deleted.
- When the database fails (stopped, unreachable), the forwarder logs one line, closes the broken
  sink, waits `retry_s` and opens a new one (`open_sink()`), then goes on from the first entry that
  was not acknowledged: in order, each entry once. The journal survives a restart of the runner:
  a new SpoolingSink on the same folder forwards what the old one left.
- Every defect gets a stable `uid` (`<journal id>:<seq>:<index>`) before it is journalled; the
  database keeps uids unique, which makes the one ambiguous case (a commit that succeeded but whose
  acknowledgement was lost with the connection) idempotent. Uninspected spans carry their own
  uid (`span_uid`: coil, surface, camera, start, reason), the same in every run, so they are
  stored once even when a restarted runner journals the same span again.
- A full disk (the database's or the spool's): the defect records are still written, without
  their crops; one warning line per minute, not per frame.
- An entry the database rejects for what it holds (not for being unreachable: a constraint, a bad
  value) is not retried forever: it goes to `rejected.jsonl` with the error, and is named in the log.

`flush()` returns when everything handed over is journalled and either stored or the database is
down (then it is safe on disk); `close()` forwards what it can within `drain_s`, then stops.
"""

from __future__ import annotations

import base64
import errno
import json
import logging
import os
import threading
import time
import uuid
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Callable

from ..atomic import write_json
from ..coils.records import (AlarmCloseRecord, AlarmLinkRecord, AlarmRecord, CoilInfo, DefectRecord, DefectSink,
                             SurfaceSummary, UninspectedRecord)

log = logging.getLogger("steelscan.line.spool")

KINDS = {"coil": CoilInfo, "defects": DefectRecord, "uninspected": UninspectedRecord, "surface": SurfaceSummary,
         "alarm": AlarmRecord, "alarm_link": AlarmLinkRecord, "alarm_close": AlarmCloseRecord}
SEGMENT_BYTES = 8 << 20   # a journal file is closed for appends past this size
WARN_EVERY_S = 60.0       # "database down" repeats at most this often


def _encode(record) -> dict:
    d = asdict(record)
    if d.get("crop_png") is not None:
        d["crop_png"] = base64.b64encode(d["crop_png"]).decode("ascii")
    return d


def _decode(kind: str, d: dict):
    cls = KINDS[kind]
    if d.get("crop_png") is not None:
        d = {**d, "crop_png": base64.b64decode(d["crop_png"])}
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


def _disk_full(e: BaseException) -> bool:
    """SQLite's SQLITE_FULL, PostgreSQL's DiskFull (53100), ENOSPC: anywhere in the cause chain."""
    chain, seen = e, 0
    while chain is not None and seen < 6:
        text = str(chain).lower()
        if ("disk is full" in text or "no space left" in text or "diskfull" in type(chain).__name__.lower()
                or getattr(chain, "errno", None) == errno.ENOSPC or getattr(chain, "sqlstate", None) == "53100"):
            return True
        chain, seen = chain.__cause__ or chain.__context__, seen + 1
    return False


def _without_crops(records: list) -> list:
    return [replace(r, crop_png=None) if getattr(r, "crop_png", None) is not None else r for r in records]


def _transient(e: BaseException) -> bool:
    """Unreachable/restarting database (retry) versus a row the database refuses (do not)."""
    from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

    chain, seen = e, 0
    while chain is not None and seen < 5:
        if isinstance(chain, IntegrityError) or (isinstance(chain, DBAPIError) and not isinstance(
                chain, OperationalError) and not chain.connection_invalidated):
            return False
        chain, seen = chain.__cause__ or chain.__context__, seen + 1
    return True


class SpoolingSink:
    """A DefectSink that journals to `spool_dir` and forwards to `open_sink()` (see module doc).

    Counters: `journalled`, `forwarded` (entries), `outages` (times the database went away),
    `rejected`. `down`: the database is failing now. `durable`: a call's records are on disk when
    it returns (the runner need not flush before saving its place)."""

    durable = True

    def __init__(self, open_sink: Callable[[], DefectSink], spool_dir: str | Path, *, retry_s: float = 2.0,
                 drain_s: float = 30.0, sleep: Callable[[float], None] | None = None) -> None:
        self.open_sink = open_sink
        self.dir = Path(spool_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = self._take_lock()
        self.retry_s, self.drain_s = retry_s, drain_s
        self.journalled = self.forwarded = self.outages = self.rejected = 0
        self.crops_dropped = 0          # crops not stored because a disk was full (records kept)
        self._last_full_warn = -WARN_EVERY_S
        self.down = False
        self._id = uuid.uuid4().hex[:12]
        self._cv = threading.Condition()
        self._stop = False
        self._sink: DefectSink | None = None
        self._last_warn = -WARN_EVERY_S
        self._acked = self._read_acked()
        self._seq = max(self._acked, self._last_seq_on_disk())
        self._out = None
        self._out_path: Path | None = None
        self._pos: tuple[Path, int] | None = None   # where the forwarder reads next
        pending = self._seq - self._acked
        if pending:
            log.warning("spool %s: %d entries from an earlier run not yet in the database; forwarding them",
                        self.dir, pending)
        self._thread = threading.Thread(target=self._forward, name="spool-forwarder", daemon=True)
        self._thread.start()

    def _take_lock(self):
        """One process per spool folder (two would forward the same entries twice)."""
        import fcntl

        from ..errors import ConfigError

        f = open(self.dir / "spool.lock", "a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            raise ConfigError("another process uses this spool folder (one per runner: give each its own "
                              "--state or --surface)", path=self.dir) from None
        return f

    # --- DefectSink: journal ------------------------------------------------------------------
    def upsert_coil(self, coil: CoilInfo) -> None:
        self._append("coil", [coil])

    def add_defects(self, defects) -> None:
        if defects:
            self._append("defects", list(defects))

    def add_uninspected(self, spans) -> None:
        if spans:
            self._append("uninspected", list(spans))

    def close_surface(self, summary: SurfaceSummary) -> None:
        self._append("surface", [summary])

    def raise_alarm(self, alarm: AlarmRecord) -> None:
        self._append("alarm", [alarm])

    def link_alarm(self, link: AlarmLinkRecord) -> None:
        self._append("alarm_link", [link])

    def close_alarm(self, close: AlarmCloseRecord) -> None:
        self._append("alarm_close", [close])

    def alarm_states(self, line_id: str, uids=()) -> dict[str, dict] | None:
        """The database's view of the line's alarms when it is up (None when down: the runner goes on
        with what it knows; its alarm records wait in the journal like the rest). A read: from the
        forwarder's database connection, or one opened for it when the forwarder has none yet."""
        if self.down:
            return None
        sink, own = self._sink, False
        try:
            if sink is None:
                sink, own = self.open_sink(), True
            return sink.alarm_states(line_id, uids) if hasattr(sink, "alarm_states") else None
        except Exception as e:
            log.debug("spool: alarm states not read: %s", e)
            return None
        finally:
            if own and sink is not None:
                try:
                    sink.close()
                except Exception:
                    pass

    def publish_status(self, status) -> None:
        """The live status goes straight to the database when it is up and is never journalled:
        only the newest one matters, and a stale one after an outage would mislead the live page."""
        sink = self._sink
        if sink is None or self.down or not hasattr(sink, "publish_status"):
            return
        try:
            sink.publish_status(status)
        except Exception as e:   # best effort: the records themselves go through the journal
            log.debug("spool: live status not sent: %s", e)

    def flush(self) -> None:
        """Return once the forwarder has stored everything, or the database is down (the
        entries are on disk then and go in when it returns)."""
        with self._cv:
            while self._acked < self._seq and not self.down and self._thread.is_alive():
                self._cv.wait(0.2)

    def close(self) -> None:
        """Forward what is journalled for up to `drain_s` (not waiting if the database is down),
        then stop; what is left stays in the spool for the next run."""
        deadline = time.monotonic() + self.drain_s
        with self._cv:
            while self._acked < self._seq and not self.down and self._thread.is_alive() \
                    and time.monotonic() < deadline:
                self._cv.wait(0.2)
            self._stop = True
            self._cv.notify_all()
        self._thread.join(timeout=max(5.0, self.retry_s + 5.0))
        if self._out is not None:
            self._out.close()
            self._out = None
        left = self._seq - self._acked
        if left:
            log.warning("spool %s: %d entries kept on disk for the database (the next run forwards them)",
                        self.dir, left)
        if self._sink is not None:
            try:
                self._sink.close()
            except Exception as e:  # its entries are acknowledged only after a flush; nothing is lost
                log.warning("spool: closing the database sink failed: %s", e)
            self._sink = None
        self._lock.close()

    @property
    def pending(self) -> int:
        """Entries journalled but not yet acknowledged by the database."""
        return self._seq - self._acked

    def _append(self, kind: str, records: list) -> None:
        with self._cv:
            self._seq += 1
            seq = self._seq
            for i, r in enumerate(records):
                if hasattr(r, "uid") and r.uid is None:
                    r.uid = f"{self._id}:{seq}:{i}"
            try:
                self._write_entry(seq, kind, records)
            except OSError as e:
                if e.errno != errno.ENOSPC or not any(getattr(r, "crop_png", None) for r in records):
                    self._seq -= 1
                    raise
                dropped = sum(1 for r in records if getattr(r, "crop_png", None))
                records = _without_crops(records)   # the spool's disk is full: keep the records
                try:
                    self._write_entry(seq, kind, records)
                except OSError:
                    self._seq -= 1
                    raise
                self._crops_dropped(dropped, "the spool's disk is full")
            self.journalled += 1
            self._cv.notify_all()

    def _write_entry(self, seq: int, kind: str, records: list) -> None:
        """One journal line, fsync'd; on failure the file is cut back to where it was."""
        data = (json.dumps({"seq": seq, "kind": kind, "records": [_encode(r) for r in records]},
                           separators=(",", ":")) + "\n").encode("utf-8")
        out = self._segment(seq)
        start = os.lseek(out.fileno(), 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(out.fileno(), view):]
            os.fsync(out.fileno())
        except OSError:
            os.ftruncate(out.fileno(), start)
            raise

    def _crops_dropped(self, n: int, why: str) -> None:
        self.crops_dropped += n
        now = time.monotonic()
        if now - self._last_full_warn >= WARN_EVERY_S:
            self._last_full_warn = now
            log.warning("spool: %s: defect crops are not stored, the defect records are (%d crops dropped so far)",
                        why, self.crops_dropped)

    def _segment(self, seq: int):
        if self._out is not None and os.fstat(self._out.fileno()).st_size < SEGMENT_BYTES:
            return self._out
        if self._out is not None:
            self._out.close()
        self._out_path = self.dir / f"journal-{seq:012d}.jsonl"
        self._out = open(self._out_path, "ab", buffering=0)
        return self._out

    # --- the forwarder ------------------------------------------------------------------------
    def _forward(self) -> None:
        while True:
            with self._cv:
                while self._acked >= self._seq and not self._stop:
                    self._cv.wait(0.5)
                if self._stop:
                    return
            for seq, kind, records, pos in self._entries_after(self._acked):
                if self._stop:
                    return
                if not self._deliver(seq, kind, records):
                    break   # the database is down: wait, then go on from this entry
                self._pos = pos

    def _deliver(self, seq: int, kind: str, records: list) -> bool:
        try:
            if self._sink is None:
                self._sink = self.open_sink()
            apply = {"coil": lambda s: [s.upsert_coil(r) for r in records],
                     "defects": lambda s: s.add_defects(records),
                     "uninspected": lambda s: s.add_uninspected(records),
                     "surface": lambda s: [s.close_surface(r) for r in records],
                     "alarm": lambda s: [s.raise_alarm(r) for r in records],
                     "alarm_link": lambda s: [s.link_alarm(r) for r in records],
                     "alarm_close": lambda s: [s.close_alarm(r) for r in records]}[kind]
            apply(self._sink)
            self._sink.flush()
        except Exception as e:
            self._drop_sink()
            if _disk_full(e) and any(getattr(r, "crop_png", None) for r in records):
                self._crops_dropped(sum(1 for r in records if getattr(r, "crop_png", None)),
                                    f"the database's disk is full ({str(e).splitlines()[0][:120]})")
                return self._deliver(seq, kind, _without_crops(records))
            if not _transient(e):
                self._reject(seq, kind, records, e)
                return True
            self._went_down(e)
            with self._cv:
                self._cv.wait_for(lambda: self._stop, timeout=self.retry_s)
            return False
        self._ack(seq)
        return True

    def _ack(self, seq: int) -> None:
        write_json(self.dir / "acked.json", {"seq": seq})
        with self._cv:
            self._acked = seq
            self.forwarded += 1
            if self.down:
                self.down = False
                log.warning("spool: database back; forwarding the spooled entries (%d left)", self._seq - seq)
            self._cv.notify_all()
        self._drop_acked_segments()

    def _went_down(self, e: BaseException) -> None:
        with self._cv:
            if not self.down:
                self.outages += 1
            self.down = True
            self._cv.notify_all()
        now = time.monotonic()
        if now - self._last_warn >= WARN_EVERY_S:
            self._last_warn = now
            log.warning("spool: database unavailable (%s); %d entries kept in %s, retrying every %g s",
                        str(e).splitlines()[0][:200], self._seq - self._acked, self.dir, self.retry_s)

    def _reject(self, seq: int, kind: str, records: list, e: BaseException) -> None:
        with open(self.dir / "rejected.jsonl", "ab") as f:
            f.write((json.dumps({"seq": seq, "kind": kind, "error": str(e).splitlines()[0][:500],
                                 "records": [_encode(r) for r in records]}) + "\n").encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        self.rejected += 1
        log.error("spool: the database refused entry %d (%s, %d records): %s; kept in %s", seq, kind,
                  len(records), str(e).splitlines()[0][:200], self.dir / "rejected.jsonl")
        self._ack(seq)

    def _drop_sink(self) -> None:
        if self._sink is not None:
            try:
                self._sink.close()
            except Exception:  # a broken sink's close re-raises its error; it is being replaced
                pass
            self._sink = None

    # --- the journal on disk ------------------------------------------------------------------
    def _segments(self) -> list[Path]:
        return sorted(self.dir.glob("journal-*.jsonl"))

    def _entries_after(self, acked: int):
        """(seq, kind, records, position after it) of complete journal lines with seq > acked, in
        order, from where the forwarder left off. A torn last line (a crash mid-append) is
        skipped: its call never returned."""
        start_path, start_off = self._pos or (None, 0)
        for path in self._segments():
            if start_path is not None and path < start_path:
                continue
            with open(path, "rb") as f:
                if path == start_path:
                    f.seek(start_off)
                while True:
                    raw = f.readline()
                    if not raw.endswith(b"\n"):
                        break
                    try:
                        e = json.loads(raw)
                    except ValueError:
                        log.error("spool: unreadable journal line in %s skipped", path)
                        continue
                    if e["seq"] <= acked:
                        continue
                    yield e["seq"], e["kind"], [_decode(e["kind"], d) for d in e["records"]], (path, f.tell())

    def _last_seq_on_disk(self) -> int:
        last = 0
        for path in self._segments():
            with open(path, "rb") as f:
                for raw in f:
                    if raw.endswith(b"\n"):
                        try:
                            last = max(last, json.loads(raw)["seq"])
                        except (ValueError, KeyError):
                            continue
        return last

    def _read_acked(self) -> int:
        try:
            return int(json.loads((self.dir / "acked.json").read_text())["seq"])
        except (FileNotFoundError, ValueError, KeyError):
            return 0

    def _drop_acked_segments(self) -> None:
        """Delete journal files all of whose entries are acknowledged (never the one appended to)."""
        segs = self._segments()
        for path, nxt in zip(segs, segs[1:]):
            first_of_next = int(nxt.stem.split("-")[1])
            if first_of_next - 1 <= self._acked and path != self._out_path:
                path.unlink(missing_ok=True)
