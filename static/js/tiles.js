// The agent tiles: one per agent, created once and then changed in place, keyed by
// extension. Every tile is in the DOM and up to date, but in a long list only
// those near the screen are displayed (windowing.js, in the order filters.js
// keeps), and only the timers of those on screen are written.

import { t, fmtInt, fmtDuration, fmtSpoken } from './i18n.js';
import { el, setText, setAttr, hide, forget } from './dom.js';
import { AGENT_STATES } from './rules.js';
import { ListWindow, follow } from './windowing.js';
import { STATE_WORDS, DIR_WORDS, DIR_ICONS, MONITOR_WORDS } from './words.js';

// A screen reader reads a tile as one sentence, "Phạm Minh Hùng, 1001, đang gọi,
// 1 phút 36 giây": the commas are CSS content only it hears (board.css), the state's
// icon is CSS content it does not, and the timer is read in words (.sr-only) while
// the eye reads m:ss.
function tileProto() {
  const tile = el('div', 'agent');
  tile.setAttribute('role', 'listitem');
  tile.hidden = true; // until the window displays it
  const head = el('div', 'agent-head');
  head.append(el('span', 'agent-name'), el('span', 'agent-ext'));
  const state = el('div', 'agent-state');
  const word = el('span', 'state-word');
  const timer = el('span', 'agent-timer');
  timer.setAttribute('data-timer', '');
  timer.setAttribute('aria-hidden', 'true');
  timer.append(document.createTextNode('')); // changed in place each second: no new node
  const spoken = el('span', 'sr-only');
  spoken.append(document.createTextNode(''));
  state.append(word, timer, spoken);
  const peer = el('div', 'agent-peer');
  // The direction as an arrow and a word; the word gives way to the caller's number
  // when the tile is warning (a caller waiting too long is who the supervisor looks for).
  const dir = el('span', 'agent-dir');
  dir.setAttribute('data-dir', '');
  dir.append(el('span', 'dir-icon'), el('span', 'dir-word'));
  const num = el('span', 'agent-number');
  num.setAttribute('data-peer', '');
  const warn = el('span', 'warn-badge');
  warn.hidden = true;
  // Calls answered and time talked today: in the line the call takes while there is one.
  const today = el('span', 'agent-today');
  today.setAttribute('data-today', '');
  peer.append(dir, num, warn, today);
  const mon = el('div', 'agent-monitor');
  mon.setAttribute('data-monitor', '');
  mon.hidden = true;
  tile.append(head, state, peer, mon);
  return tile;
}

export class Tiles {
  // filter: the AgentFilter (filters.js) that orders and filters these tiles.
  constructor(root, store, opts, filter) {
    this.store = store;
    this.th = opts.thresholds;
    this.onWarn = opts.onWarn;
    this.filter = filter;
    this.grid = root.querySelector('[data-agents]');
    this.empty = root.querySelector('[data-agents-empty]');
    this.countEl = root.querySelector('[data-agent-count]');
    // A TV's grid never scrolls: it says how many tiles did not fit.
    this.more = opts.windowed === 'fit' ? root.querySelector('[data-agents-more]') : null;
    this.hiddenCount = -1;
    this.namesVersion = 0; // bumped when a name or the set of tiles changes (kiosk.js sizes the tiles)
    this.proto = tileProto();
    this.items = new Map();
    // Of the tiles that pass the filter, the ones displayed now, and of those the ones
    // on screen, whose timers are kept current.
    this.shown = new Set();
    this.seen = new Set();
    this.window = new ListWindow(this.grid, opts.windowed === 'fit' ? this.grid : null, opts.windowed);
  }

  measure() {
    this.window.measure();
  }

  // A whole new state (a snapshot).
  sync(now) {
    for (const ext of this.items.keys()) if (!this.store.agents.has(ext)) this.remove(ext);
    const frag = document.createDocumentFragment();
    for (const ext of this.store.agents.keys()) this.upsert(ext, now, frag);
    this.grid.append(frag);
    this.filter.resync();
  }

  upsert(ext, now, parent) {
    const agent = this.store.agents.get(ext);
    let tile = this.items.get(ext);
    if (!agent) {
      if (tile) this.remove(ext);
      return;
    }
    if (!tile) {
      const node = this.proto.cloneNode(true);
      node.dataset.agent = ext;
      const [head, state, peer, mon] = node.children;
      tile = {
        el: node, name: head.children[0], extEl: head.children[1], word: state.children[0],
        timer: state.children[1].firstChild, spoken: state.children[2].firstChild, dirIcon: peer.children[0].children[0],
        dirWord: peer.children[0].children[1], peer: peer.children[1],
        warnBadge: peer.children[2], today: peer.children[3], todayKey: null, mon, agent: null, timerText: '', warn: false,
        nameText: null, rank: 0, order: null, match: false, slot: -1, shown: false, seen: false,
      };
      setText(tile.extEl, ext);
      setText(tile.warnBadge, t('warn.long'));
      this.items.set(ext, tile);
      (parent || this.grid).append(node);
      this.filter.changed();
    }
    tile.agent = agent;
    // Compared with what the tile shows, not with the previous record: a patch may
    // change the record in place.
    const name = agent.name || agent.username || ext;
    if (tile.nameText !== name) {
      if (tile.nameText != null) this.filter.renamed();
      tile.nameText = name;
      this.namesVersion += 1;
      tile.name.textContent = name;
    }
    const state = AGENT_STATES.includes(agent.state) ? agent.state : 'offline';
    setAttr(tile.el, 'data-state', state);
    setText(tile.word, t(STATE_WORDS[state]));
    const busy = state === 'ringing' || state === 'oncall';
    const dir = busy && DIR_WORDS[agent.direction] ? agent.direction : null;
    setAttr(tile.el, 'data-direction', dir);
    setText(tile.dirIcon, dir ? DIR_ICONS[dir] : '');
    setText(tile.dirWord, dir ? t(DIR_WORDS[dir]) : '');
    setText(tile.peer, busy && agent.peer ? String(agent.peer) : '');
    this.today(tile, agent);
    const m = this.store.monitorByAgent.get(ext);
    tile.mon.hidden = !m;
    setText(tile.mon, m ? t('monitor.label', { by: m.by || '', mode: t(MONITOR_WORDS[m.mode] || 'monitor.listen') }) : '');
    setAttr(tile.el, 'data-monitored', m ? m.mode || 'listen' : null);
    this.filter.place(tile);
    this.time(tile, now);
  }

  today(tile, agent) {
    const calls = agent.answered_today;
    const talk = agent.talk_today;
    const key = `${calls}|${talk}`;
    if (key === tile.todayKey) return; // most changes are a call, not a tally
    tile.todayKey = key;
    if (!Number.isFinite(calls)) {
      setText(tile.today, '');
      setAttr(tile.today, 'title', null);
      return;
    }
    // Talk in whole minutes: h:mm:ss under the wall clock reads as a time of day.
    setText(tile.today, t(calls === 1 ? 'agent.today_one' : 'agent.today', {
      calls: fmtInt(calls), minutes: fmtInt(Math.round((talk || 0) / 60)),
    }));
    setAttr(tile.today, 'title', t('agent.today_title', {
      calls: fmtInt(calls), talk: fmtDuration(talk), avg: calls ? fmtDuration(talk / calls) : t('kpi.none'),
    }));
  }

  remove(ext) {
    forget(this.items, ext, this.shown, this.seen);
    this.filter.changed();
    this.namesVersion += 1;
  }

  // The warning is kept for every tile (it may sound); the text for those on
  // screen, and once for each tile as it is displayed.
  time(tile, now, force) {
    if (tile.seen || force) this.timerText(tile, now);
    this.warn(tile, now);
  }

  timerText(tile, now) {
    const a = tile.agent;
    const secs = a.state === 'offline' || !a.since ? null : (now - a.since) / 1000;
    const text = secs == null ? '' : fmtDuration(secs);
    if (text !== tile.timerText) {
      tile.timerText = text;
      tile.timer.data = text;
      tile.spoken.data = secs == null ? '' : fmtSpoken(secs);
    }
  }

  warn(tile, now) {
    const a = tile.agent;
    const secs = a.since ? (now - a.since) / 1000 : null;
    const warn = secs != null && ((a.state === 'ringing' && secs > this.th.ringing_warn)
      || (a.state === 'oncall' && secs > this.th.oncall_warn));
    if (warn !== tile.warn) {
      tile.warn = warn;
      setAttr(tile.el, 'data-warn', warn ? 'true' : null);
      tile.warnBadge.hidden = !warn;
      if (warn && this.onWarn) this.onWarn('agent', a);
    }
  }

  // Display the tiles in the window, hide the others (filtered out or far off screen).
  draw(now) {
    if (this.filter.update(this.items)) {
      this.count();
      this.namesVersion += 1;
    }
    const list = this.filter.sorted;
    const r = this.window.range(list.length);
    if (this.more) this.drawMore(list.length - r.end);
    follow(list, r.start, r.end, this.shown, 'shown', (tile) => {
      tile.el.hidden = false;
      this.time(tile, now, true);
    }, hide);
    follow(list, r.seenStart, r.seenEnd, this.seen, 'seen', (tile) => this.time(tile, now));
  }

  drawMore(hidden) {
    if (hidden === this.hiddenCount) return;
    this.hiddenCount = hidden;
    setText(this.more, hidden ? t('agents.more', { n: fmtInt(hidden) }) : '');
    this.more.hidden = !hidden;
  }

  // The names of the tiles that pass the filter (kiosk.js fits the widest).
  names() {
    return this.filter.sorted.map((tile) => tile.nameText || '');
  }

  count() {
    const shown = this.filter.sorted.length;
    const total = this.items.size;
    if (this.countEl) setText(this.countEl, t('agents.count', { shown: fmtInt(shown), total: fmtInt(total) }));
    this.empty.hidden = shown > 0 || total === 0;
  }
}
