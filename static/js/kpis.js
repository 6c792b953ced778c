// The numbers at the top of the board ([data-kpi]): counted from the agents and
// calls the store holds, or taken from the server's figures (`stats`, `status`).
// A number is written only when its text changes; a long wait warns (and may sound).

import { t, fmtInt, fmtDuration } from './i18n.js';
import { setAttr } from './dom.js';
import { viewValues } from './groups.js';

// The KPI and the PBX's word for it in today's call status report.
const STATUS_KPIS = {
  answered: 'ANSWERED', busy: 'BUSY', no_answer: 'NO ANSWER', failed: 'FAILED', unknown: 'UNKNOWN',
};

export class Kpis {
  constructor(root, store, opts) {
    this.store = store;
    this.th = opts.thresholds;
    this.onWarn = opts.onWarn;
    // name -> its element, the tile around it and the text it shows
    this.items = new Map();
    for (const k of root.querySelectorAll('[data-kpi]')) {
      this.items.set(k.dataset.kpi, { el: k, tile: k.closest('[data-kpi-tile]'), text: null });
    }
    this.warnedWait = false;
    this.view = opts.view || null; // ?team= / ?hotline=: the main figures are that group's
  }

  values(now) {
    const s = this.store;
    const v = { agents_online: 0, agents_idle: 0, agents_wrapup: 0, agents_ringing: 0, agents_oncall: 0 };
    const wrapup = s.wrapup || {};
    for (const a of s.agents.values()) {
      if (a.state === 'offline') continue;
      v.agents_online += 1;
      // After a call, idle but in wrap-up (display.wrapup_seconds): counted apart.
      const k = a.state === 'idle' && wrapup[a.ext] > now ? 'agents_wrapup' : `agents_${a.state}`;
      if (k in v) v[k] += 1;
    }
    v.active_calls = s.calls.size;
    const stats = s.stats || {};
    v.waiting = stats.waiting ?? null;
    v.longest_wait = stats.longest_wait_since ? Math.max(0, (now - stats.longest_wait_since) / 1000)
      : (stats.waiting === 0 ? 0 : null);
    v.service_level = stats.service_level ?? null;
    v.answer_rate = stats.answer_rate ?? null;
    v.avg_talk = stats.avg_talk_seconds ?? null;
    const counts = (s.status && s.status.counts) || null;
    for (const [k, pbx] of Object.entries(STATUS_KPIS)) v[k] = counts ? counts[pbx] ?? 0 : null;
    v.total = s.status ? s.status.total ?? null : null;
    const own = viewValues(s, this.view, now);
    if (own) Object.assign(v, own);
    return v;
  }

  render(now) {
    const values = this.values(now);
    for (const [name, k] of this.items) {
      const value = values[name];
      const blank = k.tile && k.tile.dataset.blank === 'true';
      let text;
      if (blank || value == null) text = t('kpi.none');
      else if (name === 'longest_wait' || name === 'avg_talk') text = fmtDuration(value);
      else text = fmtInt(Math.round(value));
      if (text !== k.text) {
        k.text = text;
        k.el.textContent = text;
        setAttr(k.el, 'data-value', blank || value == null ? null : String(Math.round(value)));
      }
    }
    const waitWarn = values.longest_wait != null && values.longest_wait > this.th.waiting_warn;
    const waitTile = this.items.get('longest_wait');
    if (waitTile && waitTile.tile) setAttr(waitTile.tile, 'data-warn', waitWarn ? 'true' : null);
    if (waitWarn && !this.warnedWait && this.onWarn) this.onWarn('wait', null);
    this.warnedWait = waitWarn;
  }
}
