// The levels of the figures (the server's `levels`: {scope: {figure: "warn"|"alarm"}},
// worked out with debounce and hysteresis by wallboard/watch.py) shown on the board:
// data-level="ok|warn|alarm" on each [data-kpi] that has one, and beside it an icon and
// a word (never colour alone); a strip listing every breach, worst first; a sound when
// a figure reaches alarm; on the TV, a flash (none under prefers-reduced-motion: CSS).

import { t } from './i18n.js';
import { el, setAttr, setText } from './dom.js';

// The figure each KPI of the main row shows.
export const KPI_FIGURE = {
  waiting: 'waiting', longest_wait: 'longest_wait', service_level: 'service_level',
  missed_rate: 'missed_rate', agents_ringing: 'ringing', agents_oncall: 'oncall',
};
export const LEVEL_ICONS = { ok: '✓', warn: '▲', alarm: '⬣' };
const RANK = { ok: 0, warn: 1, alarm: 2 };

export function rank(level) {
  return RANK[level] || 0;
}

// The mark of a level: an icon and a word, in a span the CSS colours.
export function levelMark(node, level) {
  let icon = node.querySelector('.level-icon');
  let word = node.querySelector('.level-word');
  if (!icon) {
    icon = el('span', 'level-icon');
    icon.setAttribute('aria-hidden', 'true');
    word = el('span', 'level-word');
    node.append(icon, word);
  }
  setText(icon, LEVEL_ICONS[level]);
  setText(word, t(`level.${level}`));
  setAttr(node, 'data-level', level);
}

function scopeWords(scope) {
  if (scope.startsWith('team:')) return t('alert.where.team', { name: scope.slice(5) });
  if (scope.startsWith('hotline:')) return t('alert.where.hotline', { number: scope.slice(8) });
  return t('alert.where.floor');
}

export class Levels {
  // scope: the screen's own ("" the floor, "team:<name>", "hotline:<number>");
  // onAlarm: called once when a figure of this screen's reaches alarm (the sound).
  constructor(root, store, { scope = '', onAlarm = null } = {}) {
    this.store = store;
    this.scope = scope;
    this.onAlarm = onAlarm;
    this.kpis = [];
    for (const k of root.querySelectorAll('[data-region="kpis"] [data-kpi]')) {
      const figure = KPI_FIGURE[k.dataset.kpi];
      if (!figure) continue;
      const tile = k.closest('[data-kpi-tile]') || k.parentElement;
      const mark = el('span', 'level-mark');
      mark.setAttribute('data-level-mark', k.dataset.kpi);
      tile.append(mark);
      this.kpis.push({ el: k, tile, mark, figure });
    }
    this.strip = root.querySelector('[data-breaches]');
    this.alarmed = new Set();
    this.last = null;
  }

  render() {
    const levels = this.store.levels || {};
    if (levels === this.last) return;
    this.last = levels;
    const own = levels[this.scope] || {};
    for (const k of this.kpis) {
      const level = own[k.figure] || 'ok';
      setAttr(k.el, 'data-level', level);
      setAttr(k.tile, 'data-level', level);
      levelMark(k.mark, level);
    }
    const alarmed = new Set();
    for (const [scope, figures] of Object.entries(levels)) {
      for (const [figure, level] of Object.entries(figures)) {
        if (level === 'alarm') alarmed.add(`${scope}|${figure}`);
      }
    }
    const fresh = [...alarmed].some((key) => !this.alarmed.has(key));
    this.alarmed = alarmed;
    if (fresh && this.onAlarm) this.onAlarm();
    this.drawStrip(levels);
  }

  drawStrip(levels) {
    if (!this.strip) return;
    const items = [];
    for (const [scope, figures] of Object.entries(levels)) {
      for (const [figure, level] of Object.entries(figures)) items.push({ scope, figure, level });
    }
    items.sort((a, b) => rank(b.level) - rank(a.level) || a.scope.localeCompare(b.scope));
    const rows = items.map(({ scope, figure, level }) => {
      const li = el('li', 'breach');
      li.setAttribute('data-breach', `${scope}|${figure}`);
      const mark = el('span', 'level-mark');
      levelMark(mark, level);
      const what = el('span', 'breach-what');
      what.textContent = `${t(`threshold.figure.${figure}`)} · ${scopeWords(scope)}`;
      li.append(mark, what);
      return li;
    });
    this.strip.replaceChildren(...rows);
    this.strip.hidden = rows.length === 0;
  }
}
