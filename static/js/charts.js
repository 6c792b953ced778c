// Small SVG charts drawn from numbers; labels go in through textContent.
// Sizes are in viewBox units, so a chart scales with its box from phone to TV.

import { t, fmtInt } from './i18n.js';

const NS = 'http://www.w3.org/2000/svg';
const STATUS_ORDER = [
  ['ANSWERED', 'kpi.answered', 'answered'],
  ['NO ANSWER', 'kpi.no_answer', 'no_answer'],
  ['BUSY', 'kpi.busy', 'busy'],
  ['FAILED', 'kpi.failed', 'failed'],
  ['UNKNOWN', 'kpi.unknown', 'unknown'],
];

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

// Calls per PBX-local hour, all calls behind and answered in front; the
// current hour is marked. Only the hours up to now are drawn.
export function drawHourly(box, calls, answered, currentHour) {
  const W = 480;
  const H = 200;
  const pad = { l: 34, r: 6, t: 10, b: 26 };
  const data = Array.isArray(calls) ? calls.slice(0, 24) : [];
  const ans = Array.isArray(answered) ? answered.slice(0, 24) : [];
  const label = t('section.hourly_chart');
  const root = frame(W, H, label);
  const max = Math.max(1, ...data, ...ans);
  const step = niceStep(max);
  const top = Math.ceil(max / step) * step;
  const iw = W - pad.l - pad.r;
  const ih = H - pad.t - pad.b;
  const bw = iw / 24;
  for (let v = 0; v <= top; v += step) {
    const y = pad.t + ih - (v / top) * ih;
    root.append(svg('line', { x1: pad.l, x2: W - pad.r, y1: y, y2: y, class: 'grid-line' }));
    root.append(svg('text', { x: pad.l - 4, y: y + 4, 'text-anchor': 'end', class: 'axis' }, fmtInt(v)));
  }
  for (let h = 0; h < 24; h += 1) {
    const x = pad.l + h * bw;
    if (h === currentHour) {
      root.append(svg('rect', { x, y: pad.t, width: bw, height: ih, class: 'now-band' }));
    }
    const total = data[h] || 0;
    const ok = Math.min(ans[h] || 0, total || ans[h] || 0);
    if (total > 0) {
      const hgt = (total / top) * ih;
      const r = svg('rect', { x: x + bw * 0.12, y: pad.t + ih - hgt, width: bw * 0.76, height: hgt, class: 'bar-calls' });
      r.append(svg('title', {}, `${t('chart.hour', { h })}: ${fmtInt(total)} ${t('chart.calls')}, ${fmtInt(ans[h] || 0)} ${t('chart.answered')}`));
      root.append(r);
    }
    if (ok > 0) {
      const hgt = (ok / top) * ih;
      root.append(svg('rect', { x: x + bw * 0.24, y: pad.t + ih - hgt, width: bw * 0.52, height: hgt, class: 'bar-answered' }));
    }
    if (h % 3 === 0) {
      root.append(svg('text', { x: x + bw / 2, y: H - 8, 'text-anchor': 'middle', class: 'axis' }, t('chart.hour', { h })));
    }
  }
  box.replaceChildren(root);
}

// Today's calls by result: one horizontal bar each, the number at its end.
export function drawStatus(box, counts) {
  const W = 480;
  const rowH = 34;
  const H = STATUS_ORDER.length * rowH + 6;
  const labelW = 150;
  const numW = 70;
  const root = frame(W, H, t('section.status_chart'));
  const values = STATUS_ORDER.map(([k]) => (counts && counts[k]) || 0);
  const max = Math.max(1, ...values);
  STATUS_ORDER.forEach(([, word, cls], i) => {
    const y = 4 + i * rowH;
    const width = ((W - labelW - numW) * values[i]) / max;
    root.append(svg('text', { x: 0, y: y + rowH * 0.62, class: 'bar-label' }, t(word)));
    root.append(svg('rect', { x: labelW, y: y + 5, width: Math.max(width, values[i] ? 2 : 0), height: rowH - 12, rx: 3, class: `bar res-${cls}` }));
    root.append(svg('text', { x: labelW + width + 6, y: y + rowH * 0.62, class: 'bar-value' }, counts ? fmtInt(values[i]) : t('kpi.none')));
  });
  box.replaceChildren(root);
}

function niceStep(max) {
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw || 1));
  for (const m of [1, 2, 5, 10]) if (m * mag >= raw) return Math.max(1, m * mag);
  return Math.max(1, 10 * mag);
}
