// The active calls list: one row per call, created once and then changed in place,
// keyed by call_id, in the order the calls began (the DOM's). As with the tiles,
// every row is up to date but in a long list only those near the screen are
// displayed, and only the timers of those on screen are written. The TV's list
// never scrolls: it says how many calls do not fit instead.

import { t, fmtInt, fmtDuration, fmtSpoken } from './i18n.js';
import { el, setText, setAttr, hide, forget } from './dom.js';
import { CALL_ACTIONS, CALL_STATES } from './rules.js';
import { ListWindow, follow } from './windowing.js';
import { CALL_STATE_WORDS, DIR_WORDS, DIR_ICONS, LEG_WORDS, ACTION_WORDS } from './words.js';

// A call is a row of a div "table" (ARIA roles, no <table>): a fixed-height,
// contained box, so a call coming, going or ticking lays out that row alone.
function rowProto(withActions) {
  const row = el('div', 'call');
  row.setAttribute('role', 'row');
  row.hidden = true; // until the window displays it
  for (const cls of ['c-dir', 'c-from', 'c-to', 'c-agent', 'c-state', 'c-dur num']) {
    const cell = el('span', cls);
    cell.setAttribute('role', 'cell');
    row.append(cell);
  }
  // As a tile's: the eye reads m:ss, a screen reader the words (.sr-only), so a row
  // reads as one sentence (the commas between cells are CSS content, board.css).
  const shown = el('span');
  shown.setAttribute('data-timer', '');
  shown.setAttribute('aria-hidden', 'true');
  shown.append(document.createTextNode(''));
  const spoken = el('span', 'sr-only');
  spoken.append(document.createTextNode(''));
  row.children[5].append(shown, spoken);
  if (withActions) {
    const cell = el('span', 'c-actions');
    cell.setAttribute('role', 'cell');
    for (const action of CALL_ACTIONS) {
      const b = el('button', `btn btn-sm act-${action}`);
      b.type = 'button';
      b.dataset.action = action;
      cell.append(b);
    }
    row.append(cell);
  }
  return row;
}

export class CallRows {
  constructor(root, store, opts) {
    this.store = store;
    this.th = opts.thresholds;
    this.body = root.querySelector('[data-calls]');
    this.empty = root.querySelector('[data-calls-empty]');
    // The TV's list never scrolls: callers waiting first, and how many calls did not fit.
    this.tv = opts.windowed === 'fit';
    this.more = this.tv ? root.querySelector('[data-calls-more]') : null;
    this.panel = this.body && this.body.closest('.calls-panel');
    this.fit = Infinity; // rows the TV's calls panel has room for
    this.proto = rowProto(!!opts.actions);
    this.items = new Map();
    // Rows in display order, and as with the tiles those displayed and those on screen.
    this.list = [];
    this.listDirty = true;
    this.shown = new Set();
    this.seen = new Set();
    this.window = new ListWindow(this.body, this.tv ? this.panel : this.body && this.body.closest('.table-wrap'),
      opts.windowed);
  }

  measure() {
    this.window.measure();
  }

  // A whole new state (a snapshot).
  sync(now) {
    for (const id of this.items.keys()) if (!this.store.calls.has(id)) this.remove(id);
    const calls = [...this.store.calls.values()].sort((a, b) => (a.started_at || 0) - (b.started_at || 0));
    for (const c of calls) this.upsert(String(c.call_id), now);
  }

  // A call's agent cell shows the agent's name: keep it current.
  agentsChanged(exts, now) {
    for (const [id, row] of this.items) if (exts.has(row.agent)) this.upsert(id, now);
  }

  upsert(id, now) {
    const call = this.store.calls.get(id);
    let row = this.items.get(id);
    if (!call) {
      if (row) this.remove(id);
      return;
    }
    if (!row) {
      const node = this.proto.cloneNode(true);
      node.dataset.call = id;
      const c = node.children;
      row = {
        el: node, dir: c[0], from: c[1], to: c[2], agentCell: c[3], state: c[4], timer: c[5].firstChild.firstChild, spoken: c[5].lastChild.firstChild,
        buttons: c[6] ? [...c[6].children] : [], call: null, timerText: '', warn: false, agent: null,
        slot: -1, shown: false, seen: false,
      };
      this.items.set(id, row);
      this.body.append(node);
      this.listDirty = true;
    }
    row.call = call;
    row.agent = call.agent != null ? String(call.agent) : null;
    const dir = DIR_WORDS[call.direction] ? call.direction : null;
    setText(row.dir, dir ? `${DIR_ICONS[dir]} ${t(DIR_WORDS[dir])}` : '');
    setText(row.from, call.from != null ? String(call.from) : '');
    setText(row.to, call.to != null ? String(call.to) : '');
    const agent = row.agent ? this.store.agents.get(row.agent) : null;
    const agentName = agent ? `${agent.name || agent.username || row.agent} · ${row.agent}` : (row.agent || '');
    setText(row.agentCell, agentName);
    const state = CALL_STATES.includes(call.state) ? call.state : 'ringing';
    if (this.tv && row.el.dataset.state !== state) this.listDirty = true; // ringing rows first
    setAttr(row.el, 'data-state', state);
    const ownLeg = this.store.monitorLegOf(call);
    setAttr(row.el, 'data-monitor-leg', ownLeg ? ownLeg.mode || 'listen' : null);
    setText(row.state, t(ownLeg ? LEG_WORDS[ownLeg.mode] || LEG_WORDS.listen : CALL_STATE_WORDS[state]));
    for (const b of row.buttons) {
      const word = t(ACTION_WORDS[b.dataset.action]);
      setText(b, word);
      setAttr(b, 'aria-label', t('action.aria', { action: word, agent: agentName || id }));
      b.disabled = !!ownLeg || b.dataset.pending === 'true'; // (actions.js: one click at a time)
    }
    this.time(row, now);
  }

  remove(id) {
    forget(this.items, id, this.shown, this.seen);
    this.listDirty = true;
  }

  // Display the rows in the window, hide the others; `changed`: calls came or went.
  draw(now, changed) {
    if (this.listDirty) {
      // The Map keeps insertion order, which is the DOM's.
      this.listDirty = false;
      this.list = [...this.items.values()];
      // On the TV callers still waiting come first (CSS `order` puts them first on screen too).
      if (this.tv) this.list.sort((a, b) => (b.call.state === 'ringing') - (a.call.state === 'ringing'));
      this.list.forEach((row, i) => { row.slot = i; });
    }
    const r = this.window.range(this.list.length);
    this.fit = r.end;
    follow(this.list, r.start, r.end, this.shown, 'shown', (row) => {
      row.el.hidden = false;
      this.time(row, now, true);
    }, hide);
    follow(this.list, r.seenStart, r.seenEnd, this.seen, 'seen', (row) => this.time(row, now));
    if (changed) this.empty.hidden = this.items.size > 0;
    if (this.more) this.drawMore();
  }

  drawMore() {
    const hidden = Math.max(0, this.items.size - this.fit);
    const text = hidden ? t('calls.more', { n: fmtInt(hidden) }) : '';
    setText(this.more, text);
    if (this.more.hidden !== !hidden) this.more.hidden = !hidden;
  }

  time(row, now, force) {
    if (row.seen || force) this.timerText(row, now);
    this.warn(row, now);
  }

  seconds(row, now) {
    const c = row.call;
    const from = c.state === 'answered' && c.answered_at ? c.answered_at : c.started_at;
    return from ? (now - from) / 1000 : null;
  }

  timerText(row, now) {
    const secs = this.seconds(row, now);
    const text = fmtDuration(secs);
    if (text !== row.timerText) {
      row.timerText = text;
      row.timer.data = text;
      row.spoken.data = fmtSpoken(secs);
    }
  }

  warn(row, now) {
    const c = row.call;
    const secs = this.seconds(row, now);
    const warn = secs != null && ((c.state === 'ringing' && secs > this.th.ringing_warn)
      || (c.state === 'answered' && secs > this.th.oncall_warn));
    if (warn !== row.warn) {
      row.warn = warn;
      setAttr(row.el, 'data-warn', warn ? 'true' : null);
    }
  }
}
