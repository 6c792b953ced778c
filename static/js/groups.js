// Teams and hotlines (the server's `teams` and `hotlines`, wallboard/groups.py): a row
// each ([data-team="<name>"], [data-hotline="<number>"]) with its own [data-kpi] cells,
// breaching rows first (alarm, then warn), each level shown by colour, icon and word.
// On a screen narrowed to one team or hotline (?team= / ?hotline=) the main KPIs show
// that group's figures (`viewValues`).

import { t, fmtInt, fmtDuration } from './i18n.js';
import { el, setAttr, setText } from './dom.js';
import { levelMark, rank, KPI_FIGURE } from './levels.js';

const COLS = ['waiting', 'longest_wait', 'service_level', 'missed_rate', 'agents_ringing', 'agents_oncall',
  'answered', 'missed', 'avg_wait', 'avg_talk'];
const DURATIONS = new Set(['longest_wait', 'avg_wait', 'avg_talk']);
const OPEN_KEY = 'wb.groups';

// A group's figures as the KPIs name them, at `now` (server time, ms).
export function groupValues(g, now) {
  const since = g.longest_wait_since;
  return {
    waiting: g.waiting,
    longest_wait: since ? Math.max(0, (now - since) / 1000) : (g.waiting === 0 ? 0 : null),
    service_level: g.service_level,
    missed_rate: g.missed_rate,
    agents_ringing: g.ringing,
    agents_oncall: g.oncall,
    agents_idle: g.idle,
    agents_wrapup: g.wrapup,
    answered: g.answered,
    missed: g.missed,
    avg_wait: g.avg_wait,
    avg_talk: g.avg_talk,
  };
}

// The main KPIs of a narrowed screen: its group's figures (null until they come).
export function viewValues(store, view, now) {
  if (!view) return null;
  const g = (view.kind === 'team' ? store.teams : store.hotlines)[view.name];
  if (!g) {
    return { waiting: null, longest_wait: null, service_level: null, answered: null, no_answer: null, total: null,
      avg_talk: null, answer_rate: null, busy: null, failed: null, unknown: null };
  }
  const v = groupValues(g, now);
  const total = v.answered != null && v.missed != null ? v.answered + v.missed : null;
  return { waiting: v.waiting, longest_wait: v.longest_wait, service_level: v.service_level,
    answered: v.answered, no_answer: v.missed, total, avg_talk: v.avg_talk,
    answer_rate: v.missed_rate != null ? 100 - v.missed_rate : null,
    // The PBX's report is the floor's: a team's screen has no busy, failed or unknown of its own.
    busy: null, failed: null, unknown: null };
}

function fmt(name, value) {
  if (value == null) return t('kpi.none');
  if (DURATIONS.has(name)) return fmtDuration(value);
  return fmtInt(Math.round(value));
}

export class Groups {
  constructor(root, store, { kiosk = false, openByDefault = false, base = '' } = {}) {
    this.store = store;
    this.base = base;
    this.kiosk = kiosk;
    this.details = root.querySelector('[data-groups]');
    this.body = root.querySelector('[data-group-rows]');
    this.empty = root.querySelector('[data-groups-empty]');
    this.count = root.querySelector('[data-groups-count]');
    this.rows = new Map(); // "team:<name>" | "hotline:<n>" -> {el, cells}
    if (this.details) {
      const saved = kiosk ? null : localStorage.getItem(OPEN_KEY);
      this.details.open = saved ? saved === 'open' : openByDefault;
      this.details.addEventListener('toggle', () => {
        if (!kiosk) localStorage.setItem(OPEN_KEY, this.details.open ? 'open' : 'closed');
        this.last = null;
      });
    }
    this.last = null;
  }

  // Rows are drawn only while the panel is open: a closed panel costs nothing.
  render(now, ticked) {
    if (!this.body) return;
    const { teams, hotlines, levels } = this.store;
    const n = Object.keys(teams).length + Object.keys(hotlines).length;
    setText(this.count, n ? fmtInt(n) : '');
    if (!this.details.open) {
      if (this.rows.size) {
        this.body.replaceChildren();
        this.rows.clear();
      }
      return;
    }
    const changed = this.last === null || this.last.teams !== teams || this.last.hotlines !== hotlines
      || this.last.levels !== levels;
    if (!changed && !ticked) return;
    this.last = { teams, hotlines, levels };
    const wanted = [];
    for (const [name, g] of Object.entries(teams)) wanted.push({ key: `team:${name}`, kind: 'team', name, g });
    for (const [name, g] of Object.entries(hotlines)) wanted.push({ key: `hotline:${name}`, kind: 'hotline', name, g });
    for (const w of wanted) {
      const own = levels[w.key] || {};
      w.level = Object.values(own).reduce((worst, l) => (rank(l) > rank(worst) ? l : worst), 'ok');
      w.own = own;
    }
    // Breaching rows first (alarm, then warn), then teams before hotlines, by name.
    wanted.sort((a, b) => rank(b.level) - rank(a.level) || a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name));
    const keep = new Set(wanted.map((w) => w.key));
    for (const [key, row] of this.rows) {
      if (!keep.has(key)) {
        row.el.remove();
        this.rows.delete(key);
      }
    }
    let prev = null;
    for (const w of wanted) {
      let row = this.rows.get(w.key);
      if (!row) row = this.makeRow(w);
      this.fill(row, w, now);
      const at = prev ? prev.nextSibling : this.body.firstChild;
      if (at !== row.el) this.body.insertBefore(row.el, at);
      prev = row.el;
    }
    this.empty.hidden = wanted.length > 0;
  }

  makeRow(w) {
    const rowEl = el('div', 'group-row');
    rowEl.setAttribute('role', 'row');
    rowEl.setAttribute(w.kind === 'team' ? 'data-team' : 'data-hotline', w.name);
    const name = el('span', 'g-name');
    name.setAttribute('role', 'cell');
    const link = el(this.kiosk ? 'span' : 'a', 'g-link');
    if (!this.kiosk) link.href = `${this.base}/?${w.kind}=${encodeURIComponent(w.name)}`;
    link.textContent = w.kind === 'team' ? w.name : `☎ ${w.name}`;
    const mark = el('span', 'level-mark');
    name.append(link, mark);
    rowEl.append(name);
    const cells = {};
    for (const col of COLS) {
      const cell = el('span', 'g-num');
      cell.setAttribute('role', 'cell');
      const value = el('span', 'g-value');
      value.setAttribute('data-kpi', col);
      cell.append(value);
      rowEl.append(cell);
      cells[col] = { cell, value };
    }
    const row = { el: rowEl, cells, mark };
    this.rows.set(w.key, row);
    return row;
  }

  fill(row, w, now) {
    const values = groupValues(w.g, now);
    setAttr(row.el, 'data-level', w.level);
    levelMark(row.mark, w.level);
    for (const col of COLS) {
      const { cell, value } = row.cells[col];
      setText(value, fmt(col, values[col]));
      const figure = KPI_FIGURE[col];
      const level = figure ? (w.own[figure] || 'ok') : null;
      setAttr(value, 'data-level', level);
      setAttr(cell, 'data-level', level);
    }
  }
}
