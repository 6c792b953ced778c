// Small SVG charts drawn from numbers; labels go in through textContent.
// Sizes are in viewBox units, so a chart scales with its box from phone to TV.
// A chart is built once and then changed in place: the figures move with every
// call, and only the bars whose numbers changed are touched. It is built again
// only when its scale or the current hour changes.

import { t, fmtInt } from './i18n.js';

const NS = 'http://www.w3.org/2000/svg';
const STATUS_ORDER = [
  ['ANSWERED', 'kpi.answered', 'answered'],
  ['NO ANSWER', 'kpi.no_answer', 'no_answer'],
  ['BUSY', 'kpi.busy', 'busy'],
  ['FAILED', 'kpi.failed', 'failed'],
  ['UNKNOWN', 'kpi.unknown', 'unknown'],
];
const built = new WeakMap(); // box -> what was drawn in it, and the nodes to change

function svg(tag, attrs, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text != null) node.textContent = text;
  return node;
}

function frame(width, height, label) {
  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label,
    preserveAspectRatio: 'xMidYMid meet', class: 'chart-svg',
  });
  root.append(svg('title', {}, label));
  return root;
}

function set(node, name, value) {
  const v = String(value);
  if (node.getAttribute(name) !== v) node.setAttribute(name, v);
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// Calls per PBX-local hour, all calls behind and answered in front; the
// current hour is marked. Only the hours up to now have bars.
export function drawHourly(box, calls, answered, currentHour) {
  const W = 480;
  const H = 200;
  const pad = { l: 46, r: 6, t: 10, b: 26 }; // room for "12.500" on the TV's larger axis font
  const data = Array.isArray(calls) ? calls.slice(0, 24) : [];
  const ans = Array.isArray(answered) ? answered.slice(0, 24) : [];
  const max = Math.max(1, ...data, ...ans);
  const step = niceStep(max);
  const top = Math.ceil(max / step) * step;
  const iw = W - pad.l - pad.r;
  const ih = H - pad.t - pad.b;
  const bw = iw / 24;
  let chart = built.get(box);
  if (!chart || chart.kind !== 'hourly' || chart.top !== top || chart.hour !== currentHour) {
    const label = t('section.hourly_chart');
    const root = frame(W, H, label);
    for (let v = 0; v <= top; v += step) {
      const y = pad.t + ih - (v / top) * ih;
      root.append(svg('line', { x1: pad.l, x2: W - pad.r, y1: y, y2: y, class: 'grid-line' }));
      root.append(svg('text', { x: pad.l - 4, y: y + 4, 'text-anchor': 'end', class: 'axis' }, fmtInt(v)));
    }
    chart = { kind: 'hourly', top, hour: currentHour, bars: [] };
    for (let h = 0; h < 24; h += 1) {
      const x = pad.l + h * bw;
      if (h === currentHour) root.append(svg('rect', { x, y: pad.t, width: bw, height: ih, class: 'now-band' }));
      const all = svg('rect', { x: x + bw * 0.12, y: pad.t + ih, width: bw * 0.76, height: 0, class: 'bar-calls' });
      const tip = svg('title', {});
      all.append(tip);
      const ok = svg('rect', { x: x + bw * 0.24, y: pad.t + ih, width: bw * 0.52, height: 0, class: 'bar-answered' });
      root.append(all, ok);
      if (h % 3 === 0) {
        root.append(svg('text', { x: x + bw / 2, y: H - 8, 'text-anchor': 'middle', class: 'axis' }, t('chart.hour', { h })));
      }
      chart.bars.push({ all, tip, ok, total: null, answered: null });
    }
    box.replaceChildren(root);
    built.set(box, chart);
  }
  chart.bars.forEach((bar, h) => {
    const total = data[h] || 0;
    const done = ans[h] || 0;
    if (total === bar.total && done === bar.answered) return;
    bar.total = total;
    bar.answered = done;
    const hAll = (total / top) * ih;
    const hOk = (Math.min(done, total || done) / top) * ih;
    set(bar.all, 'y', pad.t + ih - hAll);
    set(bar.all, 'height', hAll);
    set(bar.ok, 'y', pad.t + ih - hOk);
    set(bar.ok, 'height', hOk);
    setText(bar.tip, total > 0
      ? `${t('chart.hour', { h })}: ${fmtInt(total)} ${t('chart.calls')}, ${fmtInt(done)} ${t('chart.answered')}`
      : '');
  });
}

// Today's calls by result: one horizontal bar each, the number at its end.
export function drawStatus(box, counts) {
  const W = 480;
  const rowH = 34;
  const H = STATUS_ORDER.length * rowH + 6;
  const labelW = 150;
  const numW = 70;
  let chart = built.get(box);
  if (!chart || chart.kind !== 'status') {
    const root = frame(W, H, t('section.status_chart'));
    chart = { kind: 'status', rows: [] };
    STATUS_ORDER.forEach(([, word, cls], i) => {
      const y = 4 + i * rowH;
      root.append(svg('text', { x: 0, y: y + rowH * 0.62, class: 'bar-label' }, t(word)));
      const bar = svg('rect', { x: labelW, y: y + 5, width: 0, height: rowH - 12, rx: 3, class: `bar res-${cls}` });
      const value = svg('text', { x: labelW + 6, y: y + rowH * 0.62, class: 'bar-value' });
      root.append(bar, value);
      chart.rows.push({ bar, value });
    });
    box.replaceChildren(root);
    built.set(box, chart);
  }
  const values = STATUS_ORDER.map(([k]) => (counts && counts[k]) || 0);
  const max = Math.max(1, ...values);
  chart.rows.forEach((row, i) => {
    const width = ((W - labelW - numW) * values[i]) / max;
    set(row.bar, 'width', Math.max(width, values[i] ? 2 : 0));
    set(row.value, 'x', labelW + width + 6);
    setText(row.value, counts ? fmtInt(values[i]) : t('kpi.none'));
  });
}

function niceStep(max) {
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  for (const m of [1, 2, 5, 10]) if (m * mag >= raw) return Math.max(1, m * mag);
  return Math.max(1, 10 * mag);
}
