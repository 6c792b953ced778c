// The intraday curve: calls offered per 15 minutes today, yesterday and the same weekday
// last week, as an SVG line chart. Fed by GET {base}/api/history/curve (history_views.py);
// words come from the figure's data-label-* attributes (the server's catalogue).
// Not by colour alone: each series has its own dash and its name in the legend.

const SVG = "http://www.w3.org/2000/svg";
const W = 960, H = 260, PAD = { left: 40, right: 24, top: 12, bottom: 28 };
const SERIES = [
  { key: "last_week", label: "labelLastWeek", color: "#999999", dash: "2 4" },
  { key: "yesterday", label: "labelYesterday", color: "#E69F00", dash: "8 5" },
  { key: "today", label: "labelToday", color: "#0072B2", dash: "" },
];

function el(name, attrs = {}, text = "") {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text) node.textContent = text;
  return node;
}

export function draw(figure, data) {
  const slots = data.series.today.offered.length;
  const top = Math.max(1, ...SERIES.flatMap((s) => data.series[s.key].offered));
  const x = (i) => PAD.left + (i / (slots - 1)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "intraday-chart" });
  svg.append(el("title", {}, SERIES.map((s) => `${figure.dataset[s.label]}: ${data.series[s.key].day}`).join(", ")));
  const perHour = 60 / data.slot_minutes;
  for (let hour = 0; hour <= 24; hour += 3) {
    const at = Math.min(slots - 1, hour * perHour);
    svg.append(el("line", { x1: x(at), x2: x(at), y1: PAD.top, y2: H - PAD.bottom, class: "grid" }));
    svg.append(el("text", { x: x(at), y: H - 8, "text-anchor": "middle", class: "axis" }, `${String(hour).padStart(2, "0")}:00`));
  }
  for (const v of [0, Math.round(top / 2), top]) {
    svg.append(el("text", { x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, String(v)));
  }
  for (const s of SERIES) {
    const series = data.series[s.key];  // today's intervals not begun yet are not drawn as zeros
    const points = series.offered.slice(0, series.slots).map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    svg.append(el("polyline", { points, fill: "none", stroke: s.color, "stroke-width": s.key === "today" ? 3 : 2,
      "stroke-dasharray": s.dash, "data-series": s.key }));
  }
  const legend = document.createElement("figcaption");
  legend.className = "intraday-legend";
  for (const s of [...SERIES].reverse()) {
    const item = document.createElement("span");
    item.dataset.series = s.key;
    const swatch = el("svg", { width: 28, height: 10, "aria-hidden": "true" });
    swatch.append(el("line", { x1: 0, x2: 28, y1: 5, y2: 5, stroke: s.color, "stroke-width": 3, "stroke-dasharray": s.dash }));
    item.append(swatch, ` ${figure.dataset[s.label]} (${data.series[s.key].day})`);
    legend.append(item);
  }
  figure.replaceChildren(svg, legend);
  figure.dataset.drawn = "1";
}

async function load(figure) {
  const answer = await fetch(figure.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!answer.ok) {
    figure.textContent = figure.dataset.labelEmpty;
    figure.dataset.drawn = "error";
    return;
  }
  draw(figure, await answer.json());
}

for (const figure of document.querySelectorAll("[data-intraday]")) {
  load(figure);
  const every = Number(figure.dataset.refresh);
  if (every > 0) setInterval(() => load(figure).catch(() => {}), every * 1000);  // the board's: today moves on
}
