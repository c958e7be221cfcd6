// The open-alarm banner (templates/_alarm_banner.html.j2), refreshed from GET /v1/alarms?open=true.
(function () {
  const banner = document.getElementById("alarm-banner");
  if (!banner) return;
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
  const link = (c) => `<a href="/coils/${encodeURIComponent(c)}">${esc(c)}</a>`;
  function render(items) {
    banner.dataset.open = items.length;
    banner.hidden = items.length === 0;
    banner.innerHTML = items.map((a) => {
      const roll = a.roll ? `roll ${esc(a.roll)}` : `no roll in the table (diameter ${a.implied_diameter_mm.toFixed(0)} mm)`;
      const carried = a.coils.length > 1 ? `, carried to ${a.coils.slice(1).map(link).join(", ")}` : "";
      return `<div class="alarm" data-alarm-id="${a.id}"><b>Periodic alarm</b> ${esc(a.line_id)} ${esc(a.surface)}: ` +
        `${roll}, period ${a.period_m.toFixed(3)} m, ${a.occurrences} occurrences from ${a.first_m.toFixed(1)} m ` +
        `on ${link(a.coil_id)}${carried} (raised ${esc(a.raised_at)}). ` +
        `Acknowledge: <code>POST /v1/alarms/${a.id}/ack</code></div>`;
    }).join("");
  }
  async function refresh() {
    try {
      const r = await fetch("/v1/alarms?open=true&limit=20");
      if (r.ok) render((await r.json()).items);
    } catch (e) { /* the next round tries again */ }
  }
  setInterval(refresh, 10000);
})();
