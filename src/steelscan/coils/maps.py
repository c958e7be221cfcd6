"""Coil pictures (matplotlib, PNG): the defect map of a surface, defect density along the coil,
the distribution across the width. Inputs are the dicts of steelscan.coils.queries.

Maps are drawn as the strip lies on the line: length along x (metres from the head, head at
the left), width across y (millimetres from the drive-side edge, drive side at the bottom)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np

from ..atomic import write_bytes
from ..overlay import class_color
from .records import SURFACES

STRIP = "#eef1f4"
UNINSPECTED = "#9aa3ad"
INK = "#263445"
NOMINAL_WIDTH_MM = 1000.0


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def colour(class_id: int) -> str:
    return "#%02x%02x%02x" % class_color(int(class_id) - 1)


def coil_extent(coil: dict, defects: Sequence[dict], spans: Sequence[dict]) -> tuple[float, float]:
    """(length_m, width_mm) to draw: level-2 data when known, else what was seen (else a nominal
    width, only to draw an empty strip)."""
    seen_m = [s.get("end_m") or 0 for s in coil.get("surfaces", [])] + [d["end_m"] for d in defects] + \
        [s["end_m"] for s in spans]
    length = coil.get("length_m") or max(seen_m, default=1.0) or 1.0
    seen_mm = [s.get("strip_width_mm_max") or 0 for s in coil.get("surfaces", [])] + \
        [d["across_end_mm"] for d in defects]
    width = coil.get("width_mm") or max(seen_mm, default=0.0) or NOMINAL_WIDTH_MM
    return float(length), float(width)


def _classes(defects: Sequence[dict]) -> list[tuple[int, str]]:
    return sorted({(int(d["class_id"]), d["class_name"]) for d in defects})


def _save(fig, path: str | Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)   # constrained layout: one draw, no bbox_inches="tight" pass
    _plt().close(fig)
    write_bytes(path, buf.getvalue())
    return Path(path)


def surface_map(coil: dict, surface: str, defects: Sequence[dict], spans: Sequence[dict],
                path: str | Path) -> Path:
    """The defect map of one surface: each defect a class-coloured marker at its centre, sized by
    its area (long ones also as a bar over their true length), uninspected lengths greyed."""
    plt = _plt()
    from matplotlib.patches import Patch, Rectangle

    all_defects = defects
    defects = [d for d in defects if d["surface"] == surface]
    spans = [s for s in spans if s["surface"] == surface]
    length, width = coil_extent(coil, all_defects, spans)
    fig, ax = plt.subplots(figsize=(13, 3.6), layout="constrained")
    ax.add_patch(Rectangle((0, 0), length, width, facecolor=STRIP, edgecolor="#b9c2cc", lw=0.8, zorder=0))
    for s in spans:
        ax.add_patch(Rectangle((s["start_m"], 0), s["end_m"] - s["start_m"], width, facecolor=UNINSPECTED,
                               edgecolor="none", alpha=0.55, hatch="///", zorder=1))
    if defects:
        x0 = np.array([d["start_m"] for d in defects])
        x1 = np.array([d["end_m"] for d in defects])
        y0 = np.array([d["across_start_mm"] for d in defects])
        y1 = np.array([d["across_end_mm"] for d in defects])
        area = np.array([d["area_mm2"] for d in defects], float)
        colours = [colour(d["class_id"]) for d in defects]
        long = (x1 - x0) > length / 150  # longer than a marker: show the true extent too
        for i in np.flatnonzero(long):
            ax.add_patch(Rectangle((x0[i], y0[i]), x1[i] - x0[i], max(y1[i] - y0[i], width / 120),
                                   facecolor=colours[i], edgecolor="none", alpha=0.45, zorder=2))
        size = 12 + 260 * np.sqrt(area / max(area.max(), 1e-9))
        ax.scatter((x0 + x1) / 2, (y0 + y1) / 2, s=size, c=colours, edgecolors=INK, linewidths=0.5,
                   alpha=0.85, zorder=3)
    counts = {c: sum(d["class_id"] == c for d in defects) for c, _ in _classes(all_defects)}
    handles = [Patch(color=colour(c), label=f"{name} ({counts[c]})") for c, name in _classes(all_defects)]
    if spans:
        handles.append(Patch(facecolor=UNINSPECTED, alpha=0.55, hatch="///",
                             label=f"uninspected ({sum(s['end_m'] - s['start_m'] for s in spans):.1f} m)"))
    if handles:
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(6, len(handles)),
                  frameon=False, fontsize=9)
    ax.set_xlim(-length * 0.005, length * 1.005)
    ax.set_ylim(-width * 0.03, width * 1.03)
    ax.set_xlabel("metres from the coil head")
    ax.set_ylabel("mm from drive side")
    ax.set_title(f"Coil {coil['coil_id']} — {surface} surface: {len(defects)} defects", loc="left",
                 fontsize=11, color=INK)
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path)


def density_figure(coil: dict, defects: Sequence[dict], spans: Sequence[dict], path: str | Path) -> Path:
    """Defects per 100 m along the coil, per class (stacked), one panel per surface. Bins are
    100 m, or shorter on short coils (still scaled to per 100 m)."""
    plt = _plt()
    length, _ = coil_extent(coil, defects, spans)
    bin_m = 100.0 if length >= 1000 else max(length / 10, 0.5)
    edges = np.arange(0, length + bin_m, bin_m)
    classes = _classes(defects)
    fig, axes = plt.subplots(2, 1, figsize=(13, 4.8), sharex=True, sharey=True, layout="constrained")
    for ax, surface in zip(axes, SURFACES):
        bottom = np.zeros(len(edges) - 1)
        for c, name in classes:
            centre = [(d["start_m"] + d["end_m"]) / 2 for d in defects
                      if d["surface"] == surface and d["class_id"] == c]
            n = np.histogram(centre, edges)[0] * (100.0 / bin_m)
            ax.bar(edges[:-1], n, width=bin_m * 0.92, bottom=bottom, align="edge", color=colour(c), label=name)
            bottom += n
        for s in spans:
            if s["surface"] == surface:
                ax.axvspan(s["start_m"], s["end_m"], color=UNINSPECTED, alpha=0.35, lw=0)
        ax.set_ylabel(f"{surface}\nper 100 m")
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_title(f"Coil {coil['coil_id']} — defect density along the coil (bins of {bin_m:g} m)",
                      loc="left", fontsize=11, color=INK)
    axes[-1].set_xlabel("metres from the coil head")
    axes[0].set_ylim(0, max(axes[0].get_ylim()[1], 1) * 1.25)  # room for the legend
    if classes:
        axes[0].legend(loc="upper right", ncol=len(classes), frameon=False, fontsize=9)
    return _save(fig, path)


def across_figure(coil: dict, defects: Sequence[dict], path: str | Path) -> Path:
    """Histogram of defect centres across the width (mm from the drive side), per surface,
    stacked by class: edge defects and a roll's track show up as peaks."""
    plt = _plt()
    _, width = coil_extent(coil, defects, [])
    edges = np.linspace(0, width, 41)
    classes = _classes(defects)
    fig, axes = plt.subplots(1, 2, figsize=(13, 3.6), sharey=True, layout="constrained")
    for ax, surface in zip(axes, SURFACES):
        bottom = np.zeros(len(edges) - 1)
        for c, name in classes:   # stacked steps: one artist per class, not one per bar
            centre = [(d["across_start_mm"] + d["across_end_mm"]) / 2 for d in defects
                      if d["surface"] == surface and d["class_id"] == c]
            n = np.histogram(centre, edges)[0]
            ax.stairs(bottom + n, edges, baseline=bottom, fill=True, color=colour(c), label=name)
            bottom = bottom + n
        ax.set_title(f"{surface} surface", loc="left", fontsize=10, color=INK)
        ax.set_xlabel("mm from drive side")
        ax.set_xlim(0, width)
        ax.spines[["top", "right"]].set_visible(False)
    axes[0].set_ylabel("defects")
    axes[0].yaxis.get_major_locator().set_params(integer=True)
    if classes:
        axes[1].legend(frameon=False, fontsize=9)
    fig.suptitle(f"Coil {coil['coil_id']} — defects across the width", x=0.01, ha="left", fontsize=11, color=INK)
    return _save(fig, path)
