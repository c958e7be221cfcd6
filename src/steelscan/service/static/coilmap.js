"use strict";
// Coil maps for the coil and live pages: one canvas per surface (length along x, head at the left;
// width across y, drive side at the bottom), an axis in metres, and a density strip of the whole coil.
// Only the defects in the visible range are fetched (/v1/coils/{id}/defects?from_m=&to_m=); the
// density strip comes from /v1/coils/{id}/density. Plain JS, no build step.

// Same palette as steelscan.overlay.CLASS_COLORS (colour-blind safe), by class id - 1.
const COLORS = [[230,159,0],[86,180,233],[0,158,115],[204,121,167],[240,228,66],[0,114,178],[213,94,0]];
const classColor = (id, a = 1) => { const c = COLORS[(id - 1) % COLORS.length]; return `rgba(${c[0]},${c[1]},${c[2]},${a})`; };
const DECISION_COLORS = {ACCEPT: "#2e7d32", DOWNGRADE: "#b26a00", HOLD: "#5e35b1", REJECT: "#c62828"};
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const fmt = (x, d = 1) => (x === null || x === undefined) ? "—" : Number(x).toFixed(d);

async function getJSON(url, signal) {
  const r = await fetch(url, {signal});
  if (!r.ok) {
    let detail = r.statusText;
    try { detail = (await r.json()).detail; } catch (e) { /* not JSON */ }
    throw new Error(`${r.status}: ${detail}`);
  }
  return r.json();
}

function niceStep(span, target) {
  const raw = span / target, p = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * p >= raw) return m * p;
  return 10 * p;
}

function sizeCanvas(cv) {
  const dpr = window.devicePixelRatio || 1, w = cv.clientWidth, h = cv.clientHeight;
  if (cv.width !== Math.round(w * dpr) || cv.height !== Math.round(h * dpr)) {
    cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr);
  }
  const ctx = cv.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return [ctx, w, h];
}

function hatch(ctx) {
  const p = document.createElement("canvas"); p.width = p.height = 8;
  const c = p.getContext("2d");
  c.fillStyle = "rgba(154,163,173,0.55)"; c.fillRect(0, 0, 8, 8);
  c.strokeStyle = "rgba(90,100,112,0.6)"; c.beginPath(); c.moveTo(0, 8); c.lineTo(8, 0); c.stroke();
  return ctx.createPattern(p, "repeat");
}

class CoilMap {
  // opts: {root: element, coilId, surfaces, limit, onSelect(defect), onSelectSpan(uninspected span), onView(from, to)}
  constructor(opts) {
    Object.assign(this, {surfaces: ["top", "bottom"], limit: 2000, onSelect: () => {}, onSelectSpan: () => {},
                         onView: () => {}}, opts);
    this.view = [0, 1]; this.extent = 1; this.width = 1000; this.spans = [];
    this.defects = {}; this.truncated = {}; this.requests = []; this.loading = 0; this.selected = null;
    this.density = null; this.timer = null; this.abort = null;
    this.highlight = new Set(); this.pieces = [];   // defects behind a grading reason; the cut list
    this.build();
  }

  build() {
    this.canvases = {};
    for (const s of this.surfaces) {
      const label = document.createElement("div"); label.className = "maplabel";
      label.innerHTML = `<span>${s} surface</span><span class="muted" id="count-${s}"></span>`;
      const cv = document.createElement("canvas"); cv.className = "map"; cv.id = `map-${s}`;
      this.root.append(label, cv);
      this.canvases[s] = cv;
      this.bindMap(cv, s);
    }
    this.axis = document.createElement("canvas"); this.axis.className = "axis";
    this.strip = document.createElement("canvas"); this.strip.className = "density"; this.strip.id = "density";
    this.strip.title = "defect density along the whole coil: click to move the view there";
    this.root.append(this.axis, this.strip);
    this.strip.addEventListener("click", (e) => {
      const r = this.strip.getBoundingClientRect(), m = (e.clientX - r.left) / r.width * this.extent;
      const half = (this.view[1] - this.view[0]) / 2;
      this.setView(m - half, m + half);
    });
    window.addEventListener("resize", () => this.draw());
  }

  bindMap(cv, surface) {
    let drag = null;
    cv.addEventListener("wheel", (e) => {
      e.preventDefault();
      const r = cv.getBoundingClientRect(), f = e.deltaY > 0 ? 1.4 : 1 / 1.4;
      const [a, b] = this.view, m = a + (e.clientX - r.left) / r.width * (b - a);
      this.setView(m - (m - a) * f, m + (b - m) * f);
    }, {passive: false});
    cv.addEventListener("mousedown", (e) => { drag = {x: e.clientX, view: [...this.view], moved: false}; cv.style.cursor = "grabbing"; });
    window.addEventListener("mousemove", (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x; if (Math.abs(dx) > 3) drag.moved = true;
      if (!drag.moved) return;
      const dm = dx / cv.clientWidth * (drag.view[1] - drag.view[0]);
      this.setView(drag.view[0] - dm, drag.view[1] - dm);
    });
    window.addEventListener("mouseup", (e) => {
      if (!drag) return;
      const click = !drag.moved; drag = null; cv.style.cursor = "grab";
      if (click && e.target === cv) this.pick(cv, surface, e);
    });
  }

  setCoil(detail) {
    this.extent = Math.max(detail.extent_m || 1, 0.001);
    this.width = detail.extent_width_mm || 1000;
    this.spans = detail.uninspected || [];
  }

  // The current grade's cut list (pieces with start_m, end_m, decision), drawn under the density strip.
  setPieces(pieces) { this.pieces = pieces || []; this.draw(); }

  // Ring these defect ids on the maps (the defects behind a grading reason).
  setHighlight(ids) { this.highlight = new Set(ids || []); this.draw(); }

  // Move the view to [a, b] metres (clamped to the coil) and fetch that range's defects.
  setView(a, b) {
    let span = Math.min(Math.max(b - a, Math.min(0.5, this.extent)), this.extent);
    a = Math.max(0, Math.min(a, this.extent - span));
    this.view = [a, a + span];
    this.onView(a, a + span);
    this.draw();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.fetchView(), 120);
  }

  async fetchView() {
    if (this.abort) this.abort.abort();
    const ctl = this.abort = new AbortController(), [a, b] = this.view;
    this.loading++;
    try {
      const got = await Promise.all(this.surfaces.map((s) => {
        const url = `/v1/coils/${encodeURIComponent(this.coilId)}/defects?surface=${s}` +
                    `&from_m=${a.toFixed(3)}&to_m=${b.toFixed(3)}&order=area&limit=${this.limit}`;
        this.requests.push(url);
        return getJSON(url, ctl.signal);
      }));
      this.surfaces.forEach((s, i) => { this.defects[s] = got[i].items; this.truncated[s] = got[i].truncated; });
      this.draw();
    } catch (e) {
      if (e.name !== "AbortError") this.error = String(e);
    } finally {
      this.loading--;
    }
  }

  async fetchDensity() {
    this.density = await getJSON(`/v1/coils/${encodeURIComponent(this.coilId)}/density`);
    this.drawDensity();
  }

  x(m, w) { const [a, b] = this.view; return (m - a) / (b - a) * w; }

  defectBox(d, w, h) {
    const x0 = this.x(d.start_m, w), x1 = this.x(d.end_m, w);
    const y1 = h - d.across_start_mm / this.width * h, y0 = h - d.across_end_mm / this.width * h;
    const bw = Math.max(x1 - x0, 3), bh = Math.max(y1 - y0, 3);
    return [x0 + (x1 - x0) / 2 - bw / 2, y0 + (y1 - y0) / 2 - bh / 2, bw, bh];
  }

  inView(s) {
    const [a, b] = this.view;
    return (this.defects[s] || []).filter((d) => d.end_m >= a && d.start_m <= b);
  }

  draw() {
    for (const s of this.surfaces) this.drawMap(s);
    this.drawAxis();
    this.drawDensity();
  }

  drawMap(s) {
    const [ctx, w, h] = sizeCanvas(this.canvases[s]);
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#e9edf1"; ctx.fillRect(0, 0, w, h);
    const xe = this.x(this.extent, w), x0 = this.x(0, w);
    ctx.fillStyle = "#f7f9fb"; ctx.fillRect(x0, 0, xe - x0, h);   // the strip
    const pat = hatch(ctx);
    for (const sp of this.spans.filter((sp) => sp.surface === s)) {
      const a = this.x(sp.start_m, w), b = this.x(sp.end_m, w);
      if (b < 0 || a > w) continue;
      ctx.fillStyle = pat; ctx.fillRect(a, 0, Math.max(b - a, 1), h);
    }
    // grid lines at the axis ticks
    const [a, b] = this.view, step = niceStep(b - a, Math.max(4, w / 110));
    ctx.strokeStyle = "rgba(0,0,0,0.06)"; ctx.beginPath();
    for (let m = Math.ceil(a / step) * step; m <= b; m += step) { const x = Math.round(this.x(m, w)) + .5; ctx.moveTo(x, 0); ctx.lineTo(x, h); }
    ctx.moveTo(0, h / 2 + .5); ctx.lineTo(w, h / 2 + .5); ctx.stroke();
    const shown = this.inView(s);
    for (const d of [...shown].reverse()) {   // largest last: on top
      const [bx, by, bw, bh] = this.defectBox(d, w, h);
      ctx.fillStyle = classColor(d.class_id, 0.75); ctx.fillRect(bx, by, bw, bh);
      ctx.strokeStyle = classColor(d.class_id, 1); ctx.lineWidth = 1; ctx.strokeRect(bx + .5, by + .5, bw - 1, bh - 1);
      if (this.selected && this.selected.id === d.id) {
        ctx.strokeStyle = "#000"; ctx.lineWidth = 2; ctx.strokeRect(bx - 3, by - 3, bw + 6, bh + 6);
      }
      if (this.highlight.has(d.id)) {
        ctx.strokeStyle = "#c62828"; ctx.lineWidth = 2; ctx.setLineDash([4, 3]);
        ctx.strokeRect(bx - 5, by - 5, bw + 10, bh + 10); ctx.setLineDash([]);
      }
    }
    ctx.strokeStyle = "rgba(28,36,48,0.7)"; ctx.setLineDash([6, 4]); ctx.beginPath();   // the cuts
    for (const p of this.pieces.slice(0, -1)) { const x = Math.round(this.x(p.end_m, w)) + .5; ctx.moveTo(x, 0); ctx.lineTo(x, h); }
    ctx.stroke(); ctx.setLineDash([]);
    this.canvases[s].dataset.highlighted = shown.filter((d) => this.highlight.has(d.id)).length;
    ctx.fillStyle = "rgba(28,36,48,0.55)"; ctx.font = "10px system-ui";
    ctx.fillText("drive side", 4, h - 4);
    const el = $(`count-${s}`);
    if (el) el.textContent = `${shown.length} defects in view` + (this.truncated[s] ? ` (the ${this.limit} largest: zoom in for all)` : "");
    this.canvases[s].dataset.shown = shown.length;
  }

  drawAxis() {
    const [ctx, w, h] = sizeCanvas(this.axis), [a, b] = this.view;
    ctx.clearRect(0, 0, w, h);
    const step = niceStep(b - a, Math.max(4, w / 110)), dec = step >= 1 ? 0 : Math.ceil(-Math.log10(step));
    ctx.fillStyle = "#5d6b7a"; ctx.strokeStyle = "#5d6b7a"; ctx.font = "11px system-ui"; ctx.textAlign = "center";
    for (let m = Math.ceil(a / step) * step; m <= b + 1e-9; m += step) {
      const x = this.x(m, w);
      ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, 4); ctx.stroke();
      ctx.fillText(`${m.toFixed(dec)} m`, Math.min(Math.max(x, 20), w - 20), 15);
    }
  }

  drawDensity() {
    const [ctx, w, h] = sizeCanvas(this.strip);
    ctx.clearRect(0, 0, w, h);
    ctx.fillStyle = "#f7f9fb"; ctx.fillRect(0, 0, w, h);
    const pat = hatch(ctx);
    for (const sp of this.spans) {   // either surface's gaps, faintly
      ctx.fillStyle = pat; ctx.globalAlpha = 0.5;
      ctx.fillRect(sp.start_m / this.extent * w, 0, Math.max((sp.end_m - sp.start_m) / this.extent * w, 1), h);
      ctx.globalAlpha = 1;
    }
    const dens = this.density;
    if (dens && dens.classes.length) {
      const n = dens.n_bins, totals = new Array(n).fill(0);
      for (const c of dens.classes) c.counts.forEach((k, i) => { totals[i] += k; });
      const peak = Math.max(...totals, 1), bw = w / n * (dens.bin_m * n / this.extent), base = new Array(n).fill(0);
      for (const c of dens.classes) {
        ctx.fillStyle = classColor(c.class_id, 0.9);
        c.counts.forEach((k, i) => {
          if (!k) return;
          const bh = k / peak * (h - 4);
          ctx.fillRect(i * bw, h - base[i] - bh, Math.max(bw - 0.5, 1), bh);
          base[i] += bh;
        });
      }
      ctx.fillStyle = "#5d6b7a"; ctx.font = "10px system-ui"; ctx.textAlign = "right";
      ctx.fillText(`peak ${peak} / ${fmt(dens.bin_m, dens.bin_m < 1 ? 2 : 0)} m`, w - 4, 11);
    }
    for (const p of this.pieces) {   // the cut list: one band per piece, coloured by its decision
      ctx.fillStyle = DECISION_COLORS[p.decision] || "#9aa3ad";
      ctx.fillRect(p.start_m / this.extent * w, h - 5, Math.max((p.end_m - p.start_m) / this.extent * w - 1, 1), 5);
    }
    const [a, b] = this.view, x0 = a / this.extent * w, x1 = b / this.extent * w;
    ctx.fillStyle = "rgba(11,99,197,0.12)"; ctx.fillRect(x0, 0, Math.max(x1 - x0, 2), h);
    ctx.strokeStyle = "#0b63c5"; ctx.lineWidth = 1.5; ctx.strokeRect(x0 + .5, .5, Math.max(x1 - x0, 2) - 1, h - 1);
  }

  pick(cv, s, e) {
    const r = cv.getBoundingClientRect(), px = e.clientX - r.left, py = e.clientY - r.top;
    let best = null, bestD = 6;
    for (const d of this.inView(s)) {
      const [bx, by, bw, bh] = this.defectBox(d, cv.clientWidth, cv.clientHeight);
      const dx = Math.max(bx - px, 0, px - (bx + bw)), dy = Math.max(by - py, 0, py - (by + bh)), dist = Math.hypot(dx, dy);
      if (dist < bestD) { best = d; bestD = dist; }
    }
    if (best) { this.selected = best; this.draw(); this.onSelect(best); return; }
    // no defect there: the uninspected span under the pointer, if any (at least 3 px wide to hit)
    const [a, b] = this.view, m = a + px / cv.clientWidth * (b - a), slack = 1.5 / cv.clientWidth * (b - a);
    const span = this.spans.find((sp) => sp.surface === s && sp.start_m - slack <= m && m <= sp.end_m + slack);
    if (span) this.onSelectSpan(span);
  }
}

// The fields of one defect beside its crop (the coil and live pages).
function showDefect(d) {
  const img = $("crop");
  if (d.has_crop) { img.src = `/v1/defects/${d.id}/crop.png`; img.style.display = "block"; }
  else { img.removeAttribute("src"); img.style.display = "none"; }
  $("crop-note").textContent = d.has_crop ? "" : "no crop kept for this defect";
  const rows = [["id", d.id], ["class", `<span class="swatch" style="background:${classColor(d.class_id)}"></span>${esc(d.class_name)} (${d.class_id})`],
    ["surface", `${esc(d.surface)} · ${esc(d.camera_id)}`], ["score", fmt(d.score, 3)],
    ["along", `${fmt(d.start_m, 3)} – ${fmt(d.end_m, 3)} m`], ["across", `${fmt(d.across_start_mm, 1)} – ${fmt(d.across_end_mm, 1)} mm`],
    ["length × width", `${fmt(d.length_mm, 1)} × ${fmt(d.width_mm, 1)} mm`], ["area", `${fmt(d.area_mm2, 1)} mm²`],
    ["frames", esc((d.frames || []).join(", "))], ["model", `${esc(d.model_name)} ${esc(d.model_version)}`],
    ["pinned", d.pinned ? "yes" : "no"]];
  $("fields").innerHTML = rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
}

// The fields of one uninspected span in the same panel (the coil and live pages).
function showSpan(u) {
  const img = $("crop");
  img.removeAttribute("src"); img.style.display = "none";
  $("crop-note").textContent = "uninspected: no image of this length was inspected";
  const rows = [["uninspected", `${esc(u.surface)} · ${esc(u.camera_id)}`], ["along", `${fmt(u.start_m, 3)} – ${fmt(u.end_m, 3)} m`],
    ["length", `${fmt(u.end_m - u.start_m, 3)} m`], ["reason", esc(u.reason)], ["detail", esc(u.detail ?? "—")], ["uid", esc(u.uid ?? "—")]];
  $("fields").innerHTML = rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
}

function classLegend(counts) {
  return counts.map((c) => `<span><span class="swatch" style="background:${classColor(c.class_id)}"></span>${esc(c.class_name)} <b>${c.count}</b></span>`).join("");
}

// A grading decision as a coloured badge ("DOWNGRADE → secondary").
function decisionBadge(decision, grade) {
  if (!decision) return `<span class="muted">not graded</span>`;
  return `<span class="badge ${esc(decision)}">${esc(decision)}${grade ? ` → ${esc(grade)}` : ""}</span>`;
}
