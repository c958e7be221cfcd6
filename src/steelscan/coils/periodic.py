"""Periodic (roll-mark) defects: find marks that repeat along a coil and name the roll.

The method, per coil and surface, over all classes at once (a mark the classifier calls
class 1 on one turn and class 3 on the next stays one finding; `class_ids` lists them):

1. **Seeds.** Every pair of defects that lie within `band_mm` across of each other and
   `min_period..max_gap_turns*max_period` apart along proposes periods `gap / m` for
   m = 1..max_gap_turns (m > 1: turns between them left no detected mark). Each proposal is
   checked on `seed_turns` turns either side for a third defect, then on twice that around the
   line through the three (vectorised); seeds with `seed_support` matching defects go on.
2. **Tracking.** From the strongest seeds, follow the sequence turn by turn in both
   directions: a least-squares line through the last occurrences predicts the next one;
   the nearest defect within `tol_along_mm` (plus the line's uncertainty) and `band_mm`
   across of the last occurrence extends it (the mark may drift sideways slowly, the period
   may differ from the table by wear); after `max_missing_turns` empty turns it stops.
   Defects taken by a track are not seeds again; seeds go by support, then the longer period.
   A track at a multiple of the true period (its in-between turns fill with defects) is tracked
   again at the period; a stretch that lies on an accepted track's turn grid (lost to a long gap
   or fast drift) joins it; occurrences off the line through their neighbours (> 1.5 x
   `fit_tol_mm`) are dropped. So one mark gives one finding.
3. **Significance.** Random defects also fall on the predicted positions: with `lam` defects
   per metre in the mark's across band, each turn matches by chance with
   `p0 = lam * 2 * 1.5 * fit_tol_mm`. A sequence of k occurrences over N turns is kept when
   `P(>= k - 2 of N - 2 | p0)` (the two seed defects are chosen, not found), times the number
   of seeds tried, is below `1 - min_confidence` (`1 - unlisted_confidence` when a roll table is
   given and no roll has that period: marks come from known rolls, so an unknown period needs
   more evidence), and k >= `min_occurrences`.
4. **Roll.** The fitted period is matched against the roll table (`rolls.RollTable.match`).

The alarm rule (for a running line): a finding is an alarm once it has `min_occurrences`
(5) detected occurrences and the confidence above; `PeriodicDetector` takes defects as they
arrive and answers `findings()` / `new_alarms()` at any time.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import binom

from .defect_list import DefectList
from .rolls import RollTable


@dataclass(frozen=True)
class PeriodicConfig:
    """Every default of the detector (units in the names)."""

    min_period_m: float = 0.3       # generic search range (roll periods outside it are added)
    max_period_m: float = 8.0
    tol_along_mm: float = 8.0       # along tolerance while tracking (jitter +-3 mm, extrapolation)
    fit_tol_mm: float = 4.0         # an occurrence lies within 1.5x this of the line through its neighbours
    band_mm: float = 30.0           # across distance between successive occurrences ...
    drift_mm_per_m: float = 6.0     # ... plus this much per metre between them (the mark wanders) ...
    max_band_mm: float = 100.0      # ... up to this
    max_gap_turns: int = 3          # seeds bridge up to this many turns (missed marks)
    seed_turns: int = 3             # turns checked either side of a seed for a third occurrence, then
    seed_support: int = 4           # 2x that either side of the three for this many occurrences
    max_missing_turns: int = 6      # tracking stops after this many empty turns
    fit_points: int = 12            # occurrences in the local period fit while tracking
    min_occurrences: int = 5        # the alarm rule: 5 detected occurrences ...
    min_confidence: float = 0.999   # ... that random defects explain with probability < 0.1 %
    unlisted_confidence: float = 0.9999   # ... < 0.01 % for a period no roll of the table has


@dataclass
class PeriodicFinding:
    coil_id: str
    surface: str
    class_ids: list[int]
    period_m: float
    roll: str | None
    implied_diameter_mm: float
    ambiguous_rolls: list[str]
    occurrences: int
    turns: int                    # turns from first to last occurrence (occurrences + missed)
    first_m: float
    last_m: float
    across_mm: float              # median across position of the occurrences
    across_range_mm: list[float]  # [min, max]: how far the mark drifted sideways
    confidence: float
    defect_ids: list = field(default_factory=list)
    positions_m: list[float] = field(default_factory=list)

    def to_json(self) -> dict:
        d = asdict(self)
        d["defect_ids"] = [_plain(v) for v in self.defect_ids]
        return d


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def _band(cfg: PeriodicConfig, gap_m):
    """Across distance allowed between two occurrences `gap_m` metres apart."""
    return np.minimum(cfg.band_mm + cfg.drift_mm_per_m * gap_m, cfg.max_band_mm)


# --- seeds ---------------------------------------------------------------------------------------

def _seeds(s: np.ndarray, c: np.ndarray, cfg: PeriodicConfig, pmin: float, pmax: float):
    """Seed pairs worth tracking, and how many proposals were tried (for the significance).

    Every pair (i, j) `min_period..max_gap_turns * max_period` apart and near across proposes
    periods gap/m. Stage 1 looks `seed_turns` turns around the pair for a third defect on that
    period; stage 2 fits a line through the three and counts defects `2 * seed_turns` turns
    around them. Returns (i, j, m, period, support) of the seeds with >= `seed_support`."""
    n = len(s)
    lo = np.searchsorted(s, s + pmin, "left")
    hi = np.searchsorted(s, s + cfg.max_gap_turns * pmax, "right")
    counts = hi - lo
    total = int(counts.sum())
    if total == 0:
        return (np.zeros(0, int),) * 3 + (np.zeros(0),) * 2, 0
    i = np.repeat(np.arange(n), counts)
    j = lo[i] + (np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts))
    keep = np.abs(c[j] - c[i]) <= _band(cfg, s[j] - s[i])
    i, j = i[keep], j[keep]
    gap = s[j] - s[i]
    ii, jj, mm, pp = [], [], [], []
    for m in range(1, cfg.max_gap_turns + 1):
        p = gap / m
        ok = (p >= pmin) & (p <= pmax)
        ii.append(i[ok]), jj.append(j[ok]), mm.append(np.full(int(ok.sum()), m)), pp.append(p[ok])
    i, j, m, p = (np.concatenate(a) for a in (ii, jj, mm, pp))
    tried = len(i)
    tol = cfg.tol_along_mm / 1000.0
    pair_err = 2 * cfg.tol_along_mm / 1000.0 * 0.75   # period error of a two-point estimate x m
    K = cfg.seed_turns
    # stage 1: the pair's own period, +-K turns around it
    support = np.full(len(i), 2)
    t_far, s_far = np.zeros(len(i), int), np.zeros(len(i))
    for t in range(-K, cfg.max_gap_turns + K + 1):
        valid = (t != 0) & (t != m) & (t <= m + K)
        dist = np.where(t < 0, -t, np.where(t > m, t - m, 0))
        hit, q = _hits(s, c, i, s[i] + t * p, tol + dist * pair_err / m, cfg)
        hit &= valid
        support += hit
        far = hit & (abs(t - m / 2) >= np.abs(t_far - m / 2))
        t_far[far], s_far[far] = t, s[q[far]]
    keep = support >= 3
    i, j, m, t_far, s_far = i[keep], j[keep], m[keep], t_far[keep], s_far[keep]
    # stage 2: a line through the three, +-2K turns around them
    tt = np.stack([np.zeros(len(i)), m, t_far], 1).astype(float)
    xx = np.stack([s[i], s[j], s_far], 1)
    tm, xm = tt.mean(1, keepdims=True), xx.mean(1, keepdims=True)
    p = ((tt - tm) * (xx - xm)).sum(1) / ((tt - tm) ** 2).sum(1)
    a0 = xm[:, 0] - p * tm[:, 0]
    t_lo, t_hi = np.minimum(0, t_far), np.maximum(m, t_far)
    span = t_hi - t_lo
    support = np.zeros(len(i), int)
    for t in range(-3 * K, cfg.max_gap_turns + 3 * K + 1):
        valid = (t >= t_lo - 2 * K) & (t <= t_hi + 2 * K)
        dist = np.maximum(np.maximum(t_lo - t, t - t_hi), 0)
        hit, _ = _hits(s, c, i, a0 + t * p, tol + dist * pair_err / span, cfg)
        support += hit & valid
    keep = (support >= cfg.seed_support) & (p >= pmin) & (p <= pmax)
    return (i[keep], j[keep], m[keep], p[keep], support[keep]), tried


def _hits(s: np.ndarray, c: np.ndarray, i: np.ndarray, pred: np.ndarray, w: np.ndarray, cfg: PeriodicConfig):
    """Whether a defect lies within `w` (m) of each predicted position and within the band across
    of defect i; (hit, index of that defect)."""
    n = len(s)
    first = np.searchsorted(s, pred - w, "left")
    hit = np.zeros(len(i), bool)
    found = np.zeros(len(i), int)
    for k in range(3):   # up to 3 defects inside the window (density <= a few per metre)
        q = np.minimum(first + k, n - 1)
        ok = (first + k < n) & (np.abs(s[q] - pred) <= w) & (np.abs(c[q] - c[i]) <= _band(cfg, np.abs(pred - s[i])))
        found = np.where(ok & ~hit, q, found)
        hit |= ok
    return hit, found


# --- tracking ------------------------------------------------------------------------------------

def _fit(turns: list[int], pos: list[float]) -> tuple[float, float]:
    """Least-squares line pos = a + period * turn -> (a, period). Plain Python: a dozen points."""
    n = len(turns)
    tm, xm = sum(turns) / n, sum(pos) / n
    stt = sum((t - tm) ** 2 for t in turns)
    period = sum((t - tm) * (x - xm) for t, x in zip(turns, pos)) / stt
    return xm - period * tm, period


def _track(s: list[float], c: np.ndarray, claimed: np.ndarray, i: int, j: int, m: int,
           cfg: PeriodicConfig, s_lo: float, s_hi: float) -> dict[int, int]:
    """Follow a seed both ways; {turn: defect index}."""
    occ = {0: i, m: j}
    tol = cfg.tol_along_mm / 1000.0
    pair_err = 2 * cfg.tol_along_mm / 1000.0 * 0.75
    for step in (1, -1):
        missing = 0
        turn = m if step == 1 else 0
        while True:
            turn += step
            known = sorted(occ)
            near = known[-cfg.fit_points:] if step == 1 else known[:cfg.fit_points]
            a, period = _fit(near, [s[occ[k]] for k in near])
            span = near[-1] - near[0]
            edge = near[-1] if step == 1 else near[0]
            w = tol + abs(turn - edge) * pair_err / max(span, 1) * (2 if len(near) == 2 else 1)
            pred = a + period * turn
            if pred < s_lo - w or pred > s_hi + w:
                break
            c_last = c[occ[edge]]
            band = _band(cfg, abs(pred - s[occ[edge]]))
            best, best_d = -1, w
            for q in range(bisect_left(s, pred - w), bisect_right(s, pred + w)):
                d = abs(s[q] - pred)
                if d <= best_d and abs(c[q] - c_last) <= band and not claimed[q]:
                    best, best_d = q, d
            if best >= 0:
                occ[turn] = best
                missing = 0
            else:
                missing += 1
                if missing > cfg.max_missing_turns:
                    break
    return occ


def _submultiple(s: np.ndarray, c: np.ndarray, claimed: np.ndarray, occ: dict[int, int],
                 cfg: PeriodicConfig, pmin: float) -> int:
    """k > 1 when the tracked sequence also has marks at 1/k of its turns (it was tracked at
    k times the true period), else 1. Needs >= 3 such marks filling >= 25 % of the slots."""
    turns = np.array(sorted(occ))
    if len(turns) < 3:
        return 1
    idx = np.array([occ[t] for t in turns])
    a, period = _fit(turns.tolist(), s[idx].tolist())
    tol = cfg.tol_along_mm / 1000.0
    fills = {}
    for k in range(2, 7):
        if period / k < pmin:
            break
        sub = np.arange(turns[0] * k, turns[-1] * k + 1)
        sub = sub[sub % k != 0]
        pred = a + sub * period / k
        nearest = np.clip(np.searchsorted(s, pred), 1, len(s) - 1)
        q = np.where(np.abs(s[nearest - 1] - pred) < np.abs(s[nearest] - pred), nearest - 1, nearest)
        ref = c[idx[np.clip(np.searchsorted(turns * k, sub), 0, len(idx) - 1)]]
        hit = (np.abs(s[q] - pred) <= tol) & (np.abs(c[q] - ref) <= _band(cfg, period)) & ~claimed[q]
        if hit.sum() >= 3:
            fills[k] = hit.sum() / len(sub)
    # the largest k whose slots fill about as well as the best (2P fills its half-turns like 6P would)
    good = [k for k, f in fills.items() if f >= max(0.25, 0.7 * max(fills.values()))]
    return max(good, default=1)


def _confidence(k: int, n_turns: int, lam_per_m: float, cfg: PeriodicConfig, tried: int) -> float:
    p0 = min(1.0, lam_per_m * 2 * cfg.fit_tol_mm * 1.5 / 1000.0)
    if k < 3 or p0 <= 0:
        return 1.0 if (k >= 3 and p0 <= 0) else 0.0
    p_value = float(binom.sf(k - 3, max(n_turns - 2, 1), p0))  # P(X >= k - 2)
    return max(0.0, 1.0 - p_value * max(tried, 1))


# --- one surface of one coil ---------------------------------------------------------------------

def find_in_surface(s: np.ndarray, c: np.ndarray, cls: np.ndarray, ids: np.ndarray, *, coil_id: str,
                    surface: str, rolls: RollTable | None = None, config: PeriodicConfig | None = None,
                    length_m: float | None = None) -> list[PeriodicFinding]:
    """Findings among the defects of one surface: start positions `s` (m), across centres `c`
    (mm), class ids and defect ids (any order; arrays of one length)."""
    cfg = config or PeriodicConfig()
    if len(s) < cfg.min_occurrences:
        return []
    order = np.argsort(s, kind="stable")
    s, c, cls, ids = s[order], c[order], cls[order], ids[order]
    pmin, pmax = cfg.min_period_m, cfg.max_period_m
    if rolls is not None and rolls.periods_m(surface):
        pmin = min(pmin, min(rolls.periods_m(surface)) * (1 - 2 * rolls.tolerance))
        pmax = max(pmax, max(rolls.periods_m(surface)) * (1 + 2 * rolls.tolerance))
    (si, sj, sm, sp, sup), tried = _seeds(s, c, cfg, pmin, pmax)
    if len(si) == 0:
        return []
    order = np.lexsort((-sp, -sup))   # support first, then the longer period
    s_list = s.tolist()
    claimed = np.zeros(len(s), bool)
    span_m = max(float(length_m or 0.0), float(s[-1] - s[0]), 1.0)
    groups: list[tuple[np.ndarray, np.ndarray]] = []   # accepted sequences: (defect indices, turns)
    for q in order:
        i, j, m = int(si[q]), int(sj[q]), int(sm[q])
        if claimed[i] or claimed[j]:
            continue
        occ = _track(s_list, c, claimed, i, j, m, cfg, float(s[0]), float(s[-1]))
        for _ in range(2):
            k = _submultiple(s, c, claimed, occ, cfg, pmin)
            if k == 1:
                break
            m *= k   # the seed bridged whole turns: the mark repeats k times as often
            occ = _track(s_list, c, claimed, i, j, m, cfg, float(s[0]), float(s[-1]))
        turns = np.array(sorted(occ))
        idx = np.array([occ[t] for t in turns])
        idx, turns = _on_line(s, idx, turns, cfg)
        if len(idx) < 3:
            continue
        g = _same_mark(s, c, idx, turns, groups, cfg)
        if g is not None:   # a stretch the first track lost (fast drift, long gap): same mark
            groups[g] = _union(s, groups[g], idx)
            claimed[idx] = True
            continue
        if len(idx) < cfg.min_occurrences:
            continue
        if _group_confidence(s, c, idx, turns, cfg, span_m, tried) >= _needed(cfg, rolls, surface, s[idx], turns):
            claimed[idx] = True
            groups.append((idx, turns))
    findings = []
    for idx, turns in groups:
        conf = _group_confidence(s, c, idx, turns, cfg, span_m, tried)
        a, period = _fit(turns.tolist(), s[idx].tolist())
        match = rolls.match(period, surface) if rolls is not None else None
        findings.append(PeriodicFinding(
            coil_id=coil_id, surface=surface, class_ids=sorted({int(v) for v in cls[idx]}),
            period_m=round(period, 5), roll=match.roll if match else None,
            implied_diameter_mm=round(match.implied_diameter_mm if match else period * 1000 / math.pi, 2),
            ambiguous_rolls=list(match.ambiguous_rolls) if match else [], occurrences=len(idx),
            turns=int(turns[-1] - turns[0] + 1), first_m=round(float(s[idx[0]]), 4),
            last_m=round(float(s[idx[-1]]), 4), across_mm=round(float(np.median(c[idx])), 1),
            across_range_mm=[round(float(c[idx].min()), 1), round(float(c[idx].max()), 1)],
            confidence=round(conf, 6), defect_ids=ids[idx].tolist(), positions_m=s[idx].round(4).tolist()))
    return findings


def _needed(cfg: PeriodicConfig, rolls: RollTable | None, surface: str, pos: np.ndarray, turns: np.ndarray) -> float:
    """The confidence a sequence needs: `min_confidence` at a roll table period (or without a table),
    `unlisted_confidence` at a period no roll of the table has (a prior: marks come from known rolls)."""
    if rolls is None or not rolls.periods_m(surface):
        return cfg.min_confidence
    m = rolls.match(_fit(turns.tolist(), pos.tolist())[1], surface)
    return cfg.min_confidence if (m.roll or m.ambiguous_rolls) else cfg.unlisted_confidence


def _local_residuals(turns: np.ndarray, pos: np.ndarray, half: int = 8) -> np.ndarray:
    """Residual of each occurrence from a line fitted to it and its up-to-`half` neighbours on
    either side, metres. Local, so a period that creeps along a long coil still fits."""
    n = len(turns)
    t = (turns - turns[0]).astype(float)
    cs = [np.concatenate([[0.0], np.cumsum(v)]) for v in (np.ones(n), t, pos, t * t, t * pos)]
    lo = np.clip(np.arange(n) - half, 0, n)
    hi = np.clip(np.arange(n) + half + 1, 0, n)
    N, St, Sx, Stt, Stx = (c[hi] - c[lo] for c in cs)
    den = N * Stt - St ** 2
    slope = np.where(den > 0, (N * Stx - St * Sx) / np.where(den > 0, den, 1), 0.0)
    inter = (Sx - slope * St) / np.maximum(N, 1)
    return pos - (inter + slope * t)


def _on_line(s: np.ndarray, idx: np.ndarray, turns: np.ndarray, cfg: PeriodicConfig):
    """Keep the occurrences within 1.5 x `fit_tol_mm` of the line through their neighbours."""
    for _ in range(2):
        if len(idx) < 4:
            break
        ok = np.abs(_local_residuals(turns, s[idx])) <= cfg.fit_tol_mm / 1000.0 * 1.5
        if ok.all():
            break
        idx, turns = idx[ok], turns[ok]
    return idx, turns


def _union(s: np.ndarray, group: tuple[np.ndarray, np.ndarray], idx: np.ndarray):
    gi, gt = group
    a, period = _fit(gt.tolist(), s[gi].tolist())
    turns = np.round((s[idx] - a) / period).astype(int)
    new = ~np.isin(turns, gt)
    allidx, allturns = np.concatenate([gi, idx[new]]), np.concatenate([gt, turns[new]])
    order = np.argsort(allturns)
    return allidx[order], allturns[order]


def _same_mark(s: np.ndarray, c: np.ndarray, idx: np.ndarray, turns: np.ndarray,
               groups: list[tuple[np.ndarray, np.ndarray]], cfg: PeriodicConfig) -> int | None:
    """The accepted group whose turn grid the new sequence lies on (same period, phase, across)."""
    _, p_new = _fit(turns.tolist(), s[idx].tolist())
    for g, (gi, gt) in enumerate(groups):
        a, period = _fit(gt.tolist(), s[gi].tolist())
        if abs(p_new / period - 1) > 0.01:
            continue
        r = (s[idx] - a) / period
        if np.median(np.abs(r - np.round(r))) * period > 2 * cfg.tol_along_mm / 1000.0:
            continue
        if abs(np.median(c[idx]) - np.median(c[gi])) <= cfg.max_band_mm + np.ptp(c[gi]) / 2:
            return g
    return None


def _group_confidence(s: np.ndarray, c: np.ndarray, idx: np.ndarray, turns: np.ndarray, cfg: PeriodicConfig,
                      span_m: float, tried: int) -> float:
    _, period = _fit(turns.tolist(), s[idx].tolist())
    across = float(np.median(c[idx]))
    band = float(_band(cfg, period)) + float(np.ptp(c[idx])) / 2
    in_band = int((np.abs(c - across) <= band).sum()) - len(idx)
    return _confidence(len(idx), int(turns[-1] - turns[0] + 1), max(in_band, 0) / span_m, cfg, tried)


def find_periodic(defects: DefectList, rolls: RollTable | None = None, config: PeriodicConfig | None = None,
                  lengths_m: dict[str, float] | None = None) -> list[PeriodicFinding]:
    """Findings of every coil and surface in a defect list, ordered by coil, surface, first_m."""
    out = []
    across = defects.across_mm
    for coil in defects.coils():
        for surface in ("top", "bottom"):
            sel = (defects.coil_id == coil) & (defects.surface == surface)
            if not sel.any():
                continue
            out += sorted(find_in_surface(defects.start_m[sel], across[sel], defects.class_id[sel],
                                          defects.ids[sel], coil_id=coil, surface=surface, rolls=rolls,
                                          config=config, length_m=(lengths_m or {}).get(coil)),
                          key=lambda f: f.first_m)
    return out


class PeriodicDetector:
    """Incremental use on a running line: `add` defects of the current coil as they arrive,
    ask `findings()` or `new_alarms()` whenever convenient (each answer re-analyses the coil
    so far: well under a second for 10,000 defects). An alarm is a finding that meets the
    alarm rule (`min_occurrences` detected occurrences at `min_confidence`); a mark keeps its
    alarm as it grows (same surface, period within the roll tolerance, across within the band)."""

    def __init__(self, coil_id: str, rolls: RollTable | None = None, config: PeriodicConfig | None = None,
                 alarm_window_m: float = 200.0):
        self.coil_id, self.rolls, self.config = coil_id, rolls, config or PeriodicConfig()
        self.alarm_window_m = alarm_window_m   # new_alarms looks at the last this-many metres only
        self._rows: list[tuple] = []
        self._cache: list[PeriodicFinding] | None = None
        self._alarmed: list[PeriodicFinding] = []

    def add(self, surface: str, class_id: int, start_m: float, across_start_mm: float, across_end_mm: float,
            defect_id=None) -> None:
        self._rows.append((surface, int(class_id), float(start_m), float(across_start_mm), float(across_end_mm),
                           len(self._rows) + 1 if defect_id is None else defect_id))
        self._cache = None

    def findings(self, since_m: float | None = None) -> list[PeriodicFinding]:
        """Findings over the coil so far (or over the defects from `since_m` on)."""
        if since_m is not None:
            return self._analyse([r for r in self._rows if r[2] >= since_m])
        if self._cache is None:
            self._cache = self._analyse(self._rows)
        return self._cache

    def _analyse(self, rows: list[tuple]) -> list[PeriodicFinding]:
        if not rows:
            return []
        surface, cls, s, a0, a1, ids = zip(*rows)
        dl = DefectList.from_arrays(surface=surface, class_id=cls, start_m=s, across_start_mm=a0,
                                    across_end_mm=a1, coil_id=[self.coil_id] * len(s), ids=ids)
        return find_periodic(dl, self.rolls, self.config)

    def new_alarms(self) -> list[PeriodicFinding]:
        """Findings that meet the alarm rule and were not alarmed before (the same mark: it shares
        defects with an alarmed finding, or has its surface, period and across position)."""
        tol = self.rolls.tolerance if self.rolls else 0.01
        new = []
        last = max((r[2] for r in self._rows), default=0.0)
        for f in self.findings(since_m=last - self.alarm_window_m):
            ids = set(f.defect_ids)
            if not any(a.surface == f.surface and (ids & set(a.defect_ids) or (
                    abs(a.period_m / f.period_m - 1) <= tol
                    and abs(a.across_mm - f.across_mm) <= self.config.max_band_mm)) for a in self._alarmed):
                new.append(f)
            self._alarmed = [a for a in self._alarmed if not (a.surface == f.surface and ids & set(a.defect_ids))]
            self._alarmed.append(f)
        return new
