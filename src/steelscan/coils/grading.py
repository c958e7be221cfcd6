"""Grade a coil against its rule set, with reasons a person can check, and a cut list.

`grade_coil` evaluates every rule of the coil's rule set (steelscan.coils.grading_rules) on the
defects, periodic findings and uninspected lengths of the coil. Each rule that fires gives a
`Reason` (rule, measured value against the limit, where, and the defects behind it); the
strictest decision wins (REJECT > HOLD > DOWNGRADE > ACCEPT; among downgrades the worst grade
of the set's `grades`). When the coil is not ACCEPT, the cut list is the cutting that maximises
prime (ACCEPT) metres: every piece >= `min_piece_m`, `cut_loss_m` lost after each cut, found by
dynamic programming over candidate cut positions (the edges of what made rules fire, and those
shifted by one minimum piece or one cut loss); each piece is graded again as a coil of its own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
import heapq
from typing import Sequence

import numpy as np

from .defect_list import DefectList
from .grading_rules import (Decision, DensityRule, ExposedRule, PeriodicRule, RuleFile, RuleSet, SizeRule,
                            UninspectedRule)
from .periodic import PeriodicFinding, find_periodic
from .records import SURFACES, CoilInfo, UninspectedRecord
from .rolls import RollTable


@dataclass
class Reason:
    rule: str
    kind: str
    decision: str
    grade: str | None
    message: str
    measured: float
    limit: float
    unit: str
    surface: str | None
    start_m: float
    end_m: float
    defect_ids: list = field(default_factory=list)


@dataclass
class Piece:
    start_m: float
    end_m: float
    length_m: float
    decision: str
    grade: str | None
    reasons: list[Reason]


@dataclass
class CoilGrade:
    coil_id: str
    rule_set: str
    decision: str
    grade: str | None
    reasons: list[Reason]
    length_m: float
    length_source: str            # "coils.csv" | "last defect"
    cuts_m: list[float]           # cut positions (each loses cut_loss_m after it)
    pieces: list[Piece]
    prime_m: float                # metres of ACCEPT pieces

    def to_json(self) -> dict:
        d = asdict(self)
        for r in d["reasons"] + [r for p in d["pieces"] for r in p["reasons"]]:
            r["defect_ids"] = [v.item() if isinstance(v, np.generic) else v for v in r["defect_ids"]]
        return d


@dataclass
class CoilEvidence:
    """Everything a rule looks at for one coil."""

    info: CoilInfo
    defects: DefectList                       # this coil's defects only
    findings: Sequence[PeriodicFinding] = ()
    uninspected: Sequence[UninspectedRecord] = ()
    length_m: float | None = None             # None: info.length_m, else the last defect's end


# --- rules on one stretch [a, b) of the coil -----------------------------------------------------

def _r(x: float) -> float:
    return round(float(x), 4)


def _counted(rs: RuleSet, ev: CoilEvidence) -> np.ndarray:
    """Defects the rules look at: all but those wholly within the edge zone of either edge
    (the far edge only when the coil's width is known)."""
    d, edge = ev.defects, rs.edge_zone_mm
    if edge <= 0:
        return np.ones(len(d), bool)
    tolerated = d.across_end_mm <= edge
    if ev.info.width_mm:
        tolerated |= d.across_start_mm >= ev.info.width_mm - edge
    return ~tolerated


def evaluate(rs: RuleSet, ev: CoilEvidence, a: float, b: float) -> list[Reason]:
    """Reasons of every rule that fires on the stretch a..b metres."""
    d = ev.defects
    inside = (d.start_m < b) & ((d.end_m > a) | (d.start_m >= a))
    counted = inside & _counted(rs, ev)
    exposed = ev.info.exposed_surface or rs.exposed_surface
    out: list[Reason] = []
    for rule in rs.rules:
        base = dict(rule=rule.name, kind=rule.kind, decision=rule.decision.value, grade=rule.grade)
        if isinstance(rule, DensityRule):
            limit = rule.max_per_100m * rule.window_m / 100.0
            for surface in rule.surfaces:
                for cls in rule.classes:
                    sel = np.flatnonzero(counted & (d.surface == surface) & (d.class_id == cls))
                    if len(sel) <= limit:
                        continue
                    sel = sel[np.argsort(d.start_m[sel], kind="stable")]
                    s = d.start_m[sel]
                    counts = np.searchsorted(s, s + rule.window_m, "left") - np.arange(len(s))
                    k = int(np.argmax(counts))
                    if counts[k] > limit:
                        win = sel[k:k + counts[k]]
                        out.append(Reason(**base, message=f"{counts[k]} class-{cls} defects on {surface} in "
                                          f"{rule.window_m:g} m from {s[k]:.1f} m (limit {limit:g})",
                                          measured=int(counts[k]), limit=limit, unit=f"defects/{rule.window_m:g} m",
                                          surface=surface, start_m=_r(s[k]), end_m=_r(s[k] + rule.window_m),
                                          defect_ids=d.ids[win].tolist()))
        elif isinstance(rule, SizeRule):
            for surface in rule.surfaces:
                sel = counted & (d.surface == surface) & np.isin(d.class_id, rule.classes)
                for name, values, lim, unit in (("length", d.length_mm, rule.max_length_mm, "mm"),
                                                ("area", d.area_mm2, rule.max_area_mm2, "mm2")):
                    if lim is None:
                        continue
                    bad = np.flatnonzero(sel & (values > lim))
                    if len(bad):
                        worst = bad[np.argmax(values[bad])]
                        out.append(Reason(**base, message=f"{len(bad)} defect(s) on {surface} over {lim:g} {unit} "
                                          f"{name}, largest {values[worst]:g} {unit} at {d.start_m[worst]:.2f} m",
                                          measured=float(values[worst]), limit=lim, unit=unit, surface=surface,
                                          start_m=_r(d.start_m[bad].min()), end_m=_r(d.end_m[bad].max()),
                                          defect_ids=d.ids[bad].tolist()))
        elif isinstance(rule, ExposedRule):
            bad = np.flatnonzero(counted & (d.surface == exposed) & np.isin(d.class_id, rule.classes))
            if len(bad):
                classes = sorted({int(c) for c in d.class_id[bad]})
                out.append(Reason(**base, message=f"{len(bad)} defect(s) of class {classes} on the exposed "
                                  f"surface ({exposed})", measured=len(bad), limit=0, unit="defects",
                                  surface=exposed, start_m=_r(d.start_m[bad].min()), end_m=_r(d.end_m[bad].max()),
                                  defect_ids=d.ids[bad].tolist()))
        elif isinstance(rule, PeriodicRule):
            for f in ev.findings:
                pos = np.asarray(f.positions_m)
                on = (pos >= a) & (pos < b)
                if f.occurrences >= rule.min_occurrences and on.any():
                    roll = f.roll or (f"ambiguous {f.ambiguous_rolls}" if f.ambiguous_rolls else
                                      f"no roll in the table (implied diameter {f.implied_diameter_mm:g} mm)")
                    out.append(Reason(**base, message=f"periodic mark on {f.surface} every {f.period_m:g} m "
                                      f"({roll}), {int(on.sum())} occurrences here, {f.first_m:.1f}-{f.last_m:.1f} m",
                                      measured=int(on.sum()), limit=0, unit="occurrences", surface=f.surface,
                                      start_m=_r(pos[on].min()), end_m=_r(pos[on].max()),
                                      defect_ids=[i for i, o in zip(f.defect_ids, on) if o]))
        elif isinstance(rule, UninspectedRule):
            for surface in SURFACES:
                spans = [(max(u.start_m, a), min(u.end_m, b)) for u in ev.uninspected
                         if u.surface == surface and u.end_m > a and u.start_m < b]
                total = sum(e - s for s, e in spans)
                if total > rule.max_m:
                    out.append(Reason(**base, message=f"{total:.1f} m of {surface} not inspected "
                                      f"(limit {rule.max_m:g} m)", measured=_r(total), limit=rule.max_m, unit="m",
                                      surface=surface, start_m=_r(min(s for s, _ in spans)),
                                      end_m=_r(max(e for _, e in spans))))
    return out


def decide(rs: RuleSet, reasons: list[Reason]) -> tuple[Decision, str | None]:
    """Strictest decision; for DOWNGRADE the worst grade (by the set's `grades` order)."""
    if not reasons:
        return Decision.ACCEPT, None
    decision = max((Decision(r.decision) for r in reasons), key=lambda x: x.severity)
    grade = None
    if decision == Decision.DOWNGRADE:
        grade = max((r.grade for r in reasons if r.decision == "DOWNGRADE"), key=rs.grades.index)
    return decision, grade


# --- the cut list --------------------------------------------------------------------------------

class _PrimeIndex:
    """Answers "how far can an ACCEPT piece starting at S reach?" in O(log n): the rules, turned
    into sorted arrays once (defects that fire on their own, density windows, uninspected length)."""

    def __init__(self, rs: RuleSet, ev: CoilEvidence, length: float) -> None:
        d, self.length = ev.defects, length
        counted = _counted(rs, ev)
        exposed = ev.info.exposed_surface or rs.exposed_surface
        starts, ends = [np.zeros(0)], [np.zeros(0)]
        self.density: list[tuple[np.ndarray, np.ndarray]] = []
        self.uninspected: list[tuple[np.ndarray, np.ndarray, float]] = []
        for rule in rs.rules:
            if isinstance(rule, SizeRule):
                bad = counted & np.isin(d.surface, rule.surfaces) & np.isin(d.class_id, rule.classes)
                over = np.zeros(len(d), bool)
                if rule.max_length_mm is not None:
                    over |= d.length_mm > rule.max_length_mm
                if rule.max_area_mm2 is not None:
                    over |= d.area_mm2 > rule.max_area_mm2
                starts.append(d.start_m[bad & over]), ends.append(d.end_m[bad & over])
            elif isinstance(rule, ExposedRule):
                bad = counted & (d.surface == exposed) & np.isin(d.class_id, rule.classes)
                starts.append(d.start_m[bad]), ends.append(d.end_m[bad])
            elif isinstance(rule, PeriodicRule):
                for f in ev.findings:
                    if f.occurrences >= rule.min_occurrences:
                        pos = np.asarray(f.positions_m, float)
                        starts.append(pos), ends.append(pos)
            elif isinstance(rule, DensityRule):
                most = int(np.floor(rule.max_per_100m * rule.window_m / 100.0))   # allowed per window
                for surface in rule.surfaces:
                    for cls in rule.classes:
                        x = np.sort(d.start_m[counted & (d.surface == surface) & (d.class_id == cls)])
                        v = np.full(len(x) + 1, np.inf)
                        if len(x) > most:
                            k = np.arange(len(x) - most)
                            v[k] = np.where(x[k + most] - x[k] < rule.window_m, x[k + most], np.inf)
                        self.density.append((x, np.minimum.accumulate(v[::-1])[::-1]))
            elif isinstance(rule, UninspectedRule):
                for surface in SURFACES:
                    spans = sorted((u.start_m, u.end_m) for u in ev.uninspected if u.surface == surface)
                    if spans:
                        xs = np.array([p for s in spans for p in s], float)
                        cum = np.concatenate([[0.0], np.cumsum([(e - s, 0.0) for s, e in spans]).ravel()[:-1]])
                        self.uninspected.append((xs, cum, rule.max_m))
        s, e = np.concatenate(starts), np.concatenate(ends)
        order = np.argsort(s, kind="stable")
        self.bad_start, self.bad_end_max = s[order], np.maximum.accumulate(e[order]) if len(e) else e

    def furthest(self, start: float) -> float:
        """The largest end E (<= coil length) such that start..E grades ACCEPT; <= start when none."""
        e = self.length
        k = int(np.searchsorted(self.bad_start, start, "left"))
        if k > 0 and self.bad_end_max[k - 1] > start:
            return start   # a defect that fires straddles the start
        if k < len(self.bad_start):
            e = min(e, float(self.bad_start[k]))
        for x, suffix_min in self.density:
            e = min(e, float(suffix_min[int(np.searchsorted(x, start, "left"))]))
        for xs, cum, most in self.uninspected:
            u0 = float(np.interp(start, xs, cum))
            if cum[-1] - u0 > most:   # the piece may reach where `most` more metres are uninspected
                e = min(e, float(np.interp(u0 + most, cum, xs, period=None)))
        return e


def cut_list(rs: RuleSet, ev: CoilEvidence, reasons: list[Reason], length: float) -> list[tuple[float, float]]:
    """Pieces [(start_m, end_m)] that maximise ACCEPT metres (fewest cuts on a tie): dynamic
    programming over candidate piece ends, O(C log C) with a heap of open ACCEPT pieces."""
    lp, loss = rs.min_piece_m, rs.cut_loss_m
    if length < 2 * lp + loss:
        return [(0.0, length)]
    index = _PrimeIndex(rs, ev, length)
    base = {0.0, length} | {float(x) for x in index.bad_start} | {r.start_m for r in reasons} | \
        {r.end_m for r in reasons} | {u.start_m for u in ev.uninspected} | {u.end_m for u in ev.uninspected}
    base |= {float(index.bad_end_max[k]) for k in range(len(index.bad_end_max))}
    cands = set()
    for x in base:
        cands |= {x, x - loss, x + loss, x - lp, x + lp, x - lp - loss, x + lp + loss}
    starts = sorted({0.0} | {c + loss for c in cands if 0 <= c + loss < length})
    reach = {s: index.furthest(s) for s in starts}
    cands |= {r for r in reach.values()}
    ends = sorted({round(x, 6) for x in cands if lp <= x <= length} | {length})
    eps = 1e-6   # one cut fewer is worth more than a micrometre of prime strip
    score: dict[float, float] = {}
    back: dict[float, float | None] = {}
    heap: list[tuple[float, float]] = []         # (-(score[p] - start), p) of open ACCEPT pieces from p
    best_any = (-np.inf, None)                    # best score[p] among p with p + loss + lp <= e
    pending = []                                  # ends p in order, waiting to become usable
    ptr = 0
    for e in ends:
        while ptr < len(pending) and pending[ptr] + loss + lp <= e + 1e-9:
            p = pending[ptr]
            ptr += 1
            if score[p] > best_any[0]:
                best_any = (score[p], p)
            s = round(p + loss, 6)
            r = reach.get(s) if s in reach else index.furthest(s)
            heapq.heappush(heap, (-(score[p] - s), p, r))
        options = []
        if e >= lp:   # the first piece, 0..e
            options.append((e if index.furthest(0.0) >= e - 1e-9 else 0.0, None))
        if best_any[1] is not None:
            options.append((best_any[0] - eps, best_any[1]))
        while heap and heap[0][2] < e - 1e-9:
            heapq.heappop(heap)   # that piece can no longer reach e as ACCEPT
        if heap:
            neg, p, _ = heap[0]
            options.append((-neg + e - eps, p))
        if options:
            score[e], back[e] = max(options, key=lambda t: t[0])
            pending.append(e)
    pieces, e = [], length
    while e is not None:
        prev = back[e]
        pieces.append((0.0 if prev is None else round(prev + loss, 4), e))
        e = prev
    return pieces[::-1]


def grade_coil(rs: RuleSet, ev: CoilEvidence, *, with_cuts: bool = True) -> CoilGrade:
    d = ev.defects
    if ev.length_m or ev.info.length_m:
        length, source = float(ev.length_m or ev.info.length_m), "coils.csv"
    else:
        length = float(max(d.end_m.max() if len(d) else 0.0,
                           max((u.end_m for u in ev.uninspected), default=0.0)))
        source = "last defect"
    reasons = evaluate(rs, ev, 0.0, length + 1e-9)
    decision, grade = decide(rs, reasons)
    spans = [(0.0, length)]
    if with_cuts and decision != Decision.ACCEPT:
        spans = cut_list(rs, ev, reasons, length)
    pieces = []
    for a, b in spans:
        pr = reasons if len(spans) == 1 else evaluate(rs, ev, a, b + (1e-9 if b >= length else 0.0))
        pd, pg = decide(rs, pr)
        pieces.append(Piece(_r(a), _r(b), _r(b - a), pd.value, pg, pr))
    prime = sum(p.length_m for p in pieces if p.decision == "ACCEPT")
    return CoilGrade(ev.info.coil_id, rs.name, decision.value, grade, reasons, _r(length), source,
                     [p.end_m for p in pieces[:-1]], pieces, _r(prime))


def grade_coils(rules: RuleFile, defects: DefectList, coils: dict[str, CoilInfo] | None = None,
                uninspected: Sequence[UninspectedRecord] = (), rolls: RollTable | None = None, *,
                with_cuts: bool = True, progress: bool = False) -> list[CoilGrade]:
    """Grade every coil of a defect list (and every coil of `coils`, defects or not)."""
    from tqdm import tqdm

    coils = coils or {}
    ids = list(dict.fromkeys(defects.coils() + list(coils)))
    out = []
    for coil_id in tqdm(ids, desc="grading", unit="coil", disable=not progress or len(ids) < 20):
        info = coils.get(coil_id) or CoilInfo(coil_id)
        rs = rules.for_coil(info.customer, info.order)
        d = defects.select(defects.coil_id == coil_id)
        if rs is None:
            reason = Reason("rule-set", "selection", "HOLD", None, f"no rule set for customer {info.customer!r}, "
                            f"order {info.order!r} and no default set", 0, 0, "", None, 0.0, 0.0)
            out.append(CoilGrade(coil_id, "-", "HOLD", None, [reason], float(info.length_m or 0.0), "coils.csv",
                                 [], [], 0.0))
            continue
        findings = []
        if any(isinstance(r, PeriodicRule) for r in rs.rules):
            findings = find_periodic(d, rolls, lengths_m={coil_id: info.length_m} if info.length_m else None)
        spans = [u for u in uninspected if u.coil_id == coil_id]
        out.append(grade_coil(rs, CoilEvidence(info, d, findings, spans), with_cuts=with_cuts))
    return out
