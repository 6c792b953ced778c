// How old what the board shows is, and saying so: the connection indicator
// ([data-conn]), "Updated hh:mm:ss", and each region and KPI greyed (data-stale)
// or blanked (data-blank) when the PBX source it comes from is old or failing,
// with a note that names the source.

import { t, fmtInt, fmtClock, fmtAge } from './i18n.js';
import { setText, setAttr } from './dom.js';
import { SOURCES } from './rules.js';
import { SOURCE_WORDS } from './words.js';

// Which PBX source each number comes from: it is greyed when that source is old.
const KPI_SOURCE = {
  agents_online: 'agents', agents_idle: 'agents', agents_ringing: 'agents', agents_oncall: 'agents',
  active_calls: 'calls', waiting: 'calls', longest_wait: 'calls',
  answered: 'status', busy: 'status', no_answer: 'status', failed: 'status', unknown: 'status',
  total: 'status', answer_rate: 'status',
  service_level: 'cdr', avg_talk: 'cdr',
};
const REGION_SOURCES = {
  kpis: ['agents', 'calls', 'status', 'cdr'], agents: ['agents'], calls: ['calls'],
  charts: ['status', 'cdr'],
};

export class Freshness {
  // kpis: the KPIs' elements by name (kpis.js `items`).
  constructor(root, store, opts, kpis) {
    this.store = store;
    this.th = opts.thresholds;
    this.staleAfter = opts.staleAfter || {};
    this.kpis = kpis;
    this.connected = false;
    this.connEl = root.querySelector('[data-conn]');
    this.connText = root.querySelector('[data-conn-text]');
    this.updatedEl = root.querySelector('[data-updated]');
    this.regions = new Map();
    for (const r of root.querySelectorAll('[data-region]')) this.regions.set(r.dataset.region, r);
    this.notes = new Map();
    for (const n of root.querySelectorAll('[data-stale-note]')) this.notes.set(n.dataset.staleNote, n);
  }

  sources(now) {
    const s = this.store;
    const out = {};
    const blankAfter = (this.th.blank_after || 300) * 1000;
    for (const name of SOURCES) {
      const src = s.sources ? s.sources[name] : null;
      const at = src && src.at ? src.at : (s.lastDataAt || null);
      const age = at ? Math.max(0, now - at) : Infinity;
      const limit = (this.staleAfter[name] || 30) * 1000;
      const failing = !!src && (src.ok === false || age > limit);
      out[name] = {
        age,
        stale: !this.connected || !s.ready || failing,
        blank: !s.ready || age > blankAfter,
        failing,
      };
    }
    return out;
  }

  render(now) {
    const f = this.sources(now);
    const anyStale = SOURCES.some((n) => f[n].stale);
    const conn = !this.connected || !this.store.ready ? 'reconnecting' : anyStale ? 'stale' : 'live';
    if (this.connEl.dataset.conn !== conn) {
      this.connEl.dataset.conn = conn;
      setText(this.connText, t(`conn.${conn}`));
      document.documentElement.dataset.conn = conn;
    }
    // "Updated" is the oldest of the live sources: the moment the board was last all true.
    const ats = ['agents', 'calls'].map((n) => this.store.sources?.[n]?.at).filter(Boolean);
    const updated = ats.length ? Math.min(...ats) : this.store.lastDataAt;
    if (updated) {
      setText(this.updatedEl, t('updated.label', { time: fmtClock(updated) }));
      setAttr(this.updatedEl, 'data-updated-at', String(updated));
    }
    for (const [region, sources] of Object.entries(REGION_SOURCES)) {
      const node = this.regions.get(region);
      const stale = sources.some((n) => f[n].stale);
      const blank = sources.every((n) => f[n].blank);
      if (node) {
        setAttr(node, 'data-stale', stale ? 'true' : null);
        setAttr(node, 'data-blank', blank ? 'true' : null);
      }
      const note = this.notes.get(region);
      if (note) {
        // Before the first snapshot the connection indicator says enough.
        note.hidden = !stale || !this.store.ready;
        if (stale) setText(note, this.note(sources, f));
      }
    }
    for (const k of this.kpis.values()) {
      if (!k.tile) continue;
      const src = f[KPI_SOURCE[k.el.dataset.kpi]];
      if (!src) continue;
      setAttr(k.tile, 'data-stale', src.stale ? 'true' : null);
      setAttr(k.tile, 'data-blank', src.blank ? 'true' : null);
    }
  }

  note(sources, f) {
    const blank = sources.every((n) => f[n].blank);
    if (blank && this.store.ready) {
      return t('stale.blank', { n: fmtInt(Math.round((this.th.blank_after || 300) / 60)) });
    }
    const age = Math.max(...sources.map((n) => f[n].age).filter(Number.isFinite), 0) / 1000;
    if (!this.connected) return t('stale.offline', { age: fmtAge(age) });
    const failing = sources.filter((n) => f[n].failing);
    return t('stale.note', {
      source: failing.map((n) => t(SOURCE_WORDS[n])).join(', '),
      age: fmtAge(Math.max(...failing.map((n) => f[n].age).filter(Number.isFinite), 0) / 1000),
    });
  }
}
