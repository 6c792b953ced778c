// Keyed DOM updates, batched once per animation frame. Each agent has one
// tile and each call one row, created once and then changed in place; PBX
// text only ever goes in through textContent. Every tile and row is in the
// DOM and up to date, but in a long list only those near the screen are
// displayed (windowing.js), and only timers on screen are rewritten, a few
// frames' worth at a time.
//
// A frame reads the layout once, first (where the lists are on screen), then
// only writes, and writes a text or attribute only when it changes.

import { t, fmtInt, fmtDuration, fmtClock, fmtAge, hourOf } from './i18n.js';
import { serverNow } from './clock.js';
import { drawHourly, drawStatus } from './charts.js';
import { ListWindow, follow } from './windowing.js';

const STATE_RANK = { ringing: 0, oncall: 1, idle: 2, offline: 3 };
const STATE_WORDS = {
  offline: 'state.offline', idle: 'state.idle', ringing: 'state.ringing', oncall: 'state.oncall',
};
const CALL_STATE_WORDS = { ringing: 'call.state.ringing', answered: 'call.state.answered' };
const DIR_WORDS = { inbound: 'dir.inbound', outbound: 'dir.outbound', internal: 'dir.internal' };
const DIR_ICONS = { inbound: '↙', outbound: '↗', internal: '↔' };
const MONITOR_WORDS = { listen: 'monitor.listen', whisper: 'monitor.whisper', barge: 'monitor.barge' };
// A supervisor's own leg of a monitor, in the calls list.
const LEG_WORDS = { listen: 'monitor.leg_listen', whisper: 'monitor.leg_whisper', barge: 'monitor.leg_barge' };
const ACTION_WORDS = {
  listen: 'action.listen', whisper: 'action.whisper', barge: 'action.barge', transfer: 'action.transfer',
};
const SOURCE_WORDS = {
  agents: 'source.agents', calls: 'source.calls', status: 'source.status', cdr: 'source.cdr',
};
const SOURCES = ['agents', 'calls', 'status', 'cdr'];
const STATUS_KPIS = {
  answered: 'ANSWERED', busy: 'BUSY', no_answer: 'NO ANSWER', failed: 'FAILED', unknown: 'UNKNOWN',
};
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
const RANK_SPAN = 100000;
// On-screen timers rewritten per frame: a screenful (100 or more) moves every
// second, and spread over a few frames (at most TIMER_FRAMES, however many
// there are) none of those frames goes over budget.
const TIMERS_PER_FRAME = 32;
const TIMER_FRAMES = 4;

function el(tag, cls) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  return e;
}

function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

function setAttr(node, name, value) {
  if (value == null || value === false) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== String(value)) {
    node.setAttribute(name, value);
  }
}

const hide = (item) => { item.el.hidden = true; };

// A tile or row gone from the state: out of the DOM and out of every set that tracks it.
function forget(items, key, shown, seen) {
  const item = items.get(key);
  item.shown = false;
  item.seen = false;
  item.el.remove();
  items.delete(key);
  shown.delete(item);
  seen.delete(item);
}

function tileProto() {
  const tile = el('article', 'agent');
  tile.setAttribute('role', 'listitem');
  tile.hidden = true; // until the window displays it
  const head = el('div', 'agent-head');
  head.append(el('span', 'agent-name'), el('span', 'agent-ext'));
  const state = el('div', 'agent-state');
  const word = el('span', 'state-word');
  const timer = el('span', 'agent-timer');
  timer.setAttribute('data-timer', '');
  timer.append(document.createTextNode('')); // changed in place each second: no new node
  state.append(word, timer);
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
  row.children[5].setAttribute('data-timer', '');
  row.children[5].append(document.createTextNode(''));
  if (withActions) {
    const cell = el('span', 'c-actions');
    cell.setAttribute('role', 'cell');
    for (const action of Object.keys(ACTION_WORDS)) {
      const b = el('button', `btn btn-sm act-${action}`);
      b.type = 'button';
      b.dataset.action = action;
      cell.append(b);
    }
    row.append(cell);
  }
  return row;
}

export class Renderer {
  constructor(root, store, opts) {
    this.root = root;
    this.store = store;
    this.opts = opts;
    this.th = opts.thresholds;
    this.staleAfter = opts.staleAfter || {};
    this.sort = opts.sort || 'state';
    this.filter = { state: opts.filterState || 'all', q: '' };
    this.collator = new Intl.Collator(opts.locale || undefined, { numeric: true, sensitivity: 'base' });
    this.grid = root.querySelector('[data-agents]');
    this.agentsEmpty = root.querySelector('[data-agents-empty]');
    this.count = root.querySelector('[data-agent-count]');
    this.callsBody = root.querySelector('[data-calls]');
    this.callsEmpty = root.querySelector('[data-calls-empty]');
    this.callsMore = opts.windowed ? null : root.querySelector('[data-calls-more]');
    this.callsPanel = this.callsBody && this.callsBody.closest('.calls-panel');
    this.callsFit = Infinity; // rows the TV's calls panel has room for
    this.connEl = root.querySelector('[data-conn]');
    this.connText = root.querySelector('[data-conn-text]');
    this.updatedEl = root.querySelector('[data-updated]');
    this.clockEl = root.querySelector('[data-clock]');
    this.domainEl = root.querySelector('[data-domain]');
    this.hourlyEl = root.querySelector('[data-chart="hourly"]');
    this.statusEl = root.querySelector('[data-chart="status"]');
    this.kpis = new Map();
    for (const k of root.querySelectorAll('[data-kpi]')) {
      this.kpis.set(k.dataset.kpi, { el: k, tile: k.closest('[data-kpi-tile]'), text: null });
    }
    this.regions = new Map();
    for (const r of root.querySelectorAll('[data-region]')) this.regions.set(r.dataset.region, r);
    this.notes = new Map();
    for (const n of root.querySelectorAll('[data-stale-note]')) this.notes.set(n.dataset.staleNote, n);
    this.tileProto = tileProto();
    this.rowProto = rowProto(!!opts.actions);
    this.tiles = new Map();
    this.rows = new Map();
    this.ranksDirty = true;
    // Tiles that pass the filter, in display order; the ones displayed now, and
    // of those the ones on screen, whose timers are kept current.
    this.sorted = [];
    this.sortedDirty = true;
    this.shownTiles = new Set();
    this.seenTiles = new Set();
    // Rows in display order (the DOM's: by start), and the same two sets.
    this.rowList = [];
    this.rowListDirty = true;
    this.shownRows = new Set();
    this.seenRows = new Set();
    this.agentWindow = new ListWindow(this.grid, null, opts.windowed);
    this.callWindow = new ListWindow(this.callsBody, this.callsBody && this.callsBody.closest('.table-wrap'),
      opts.windowed);
    if (opts.windowed) {
      // Scrolling the page or the calls list shows other items (capture: element scrolls do not bubble).
      const onScroll = () => this.schedule();
      document.addEventListener('scroll', onScroll, { capture: true, passive: true });
      window.addEventListener('resize', onScroll, { passive: true });
    }
    this.connected = false;
    this.pending = false;
    this.tickDue = true;
    this.timerQueue = [];
    this.timerBatch = TIMERS_PER_FRAME;
    this.chartHour = -1;
    this.warnedWait = false;
  }

  schedule() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => this.flush());
  }

  setConnected(connected) {
    this.connected = connected;
    this.tick();
  }

  // Once a second: timers, ages and the clock move even when no data arrives.
  tick() {
    this.tickDue = true;
    this.schedule();
  }

  setSort(sort) {
    this.sort = sort;
    this.ranksDirty = true;
    this.schedule();
  }

  setFilter(filter) {
    Object.assign(this.filter, filter);
    this.filterDirty = true;
    this.schedule();
  }

  flush() {
    this.pending = false;
    const started = performance.now();
    // The one layout read of the frame, before any write.
    this.agentWindow.measure();
    this.callWindow.measure();
    if (this.callsMore) this.measureCallsFit();
    const dirty = this.store.takeDirty();
    const now = serverNow();
    if (dirty.all) {
      this.syncAll(now);
    } else {
      for (const ext of dirty.agents) this.upsertTile(ext, now);
      for (const id of dirty.calls) this.upsertRow(id, now);
      // A call's agent cell shows the agent's name: keep it current.
      if (dirty.agents.size) for (const [id, row] of this.rows) if (dirty.agents.has(row.agent)) this.upsertRow(id, now);
    }
    if (this.ranksDirty) this.applyRanks();
    if (this.filterDirty) this.applyFilter();
    this.filterDirty = false;
    if (this.sortedDirty) {
      this.sortTiles();
      this.renderCount();
    }
    this.showTiles(now);
    if (this.rowListDirty) this.listRows();
    this.showRows(now);
    if (dirty.all || dirty.calls.size) this.callsEmpty.hidden = this.rows.size > 0;
    if (this.callsMore) this.renderCallsMore();
    if (dirty.all || dirty.keys.has('domain')) setText(this.domainEl, this.store.domain || '');
    const hour = hourOf(now);
    if (dirty.all || dirty.keys.has('stats') || dirty.keys.has('status') || hour !== this.chartHour) {
      this.chartHour = hour;
      this.renderCharts(hour);
    }
    const ticked = this.tickDue;
    if (ticked) {
      this.tickDue = false;
      this.tickTimers(now);
      setText(this.clockEl, fmtClock(now));
    }
    if (this.timerQueue.length) this.moveTimers(now);
    this.renderFreshness(now);
    this.renderKpis(now);
    if (this.opts.onFrame) this.opts.onFrame(performance.now() - started, ticked);
  }

  // ---- agents ------------------------------------------------------------

  syncAll(now) {
    for (const ext of this.tiles.keys()) if (!this.store.agents.has(ext)) this.removeTile(ext);
    const frag = document.createDocumentFragment();
    for (const ext of this.store.agents.keys()) this.upsertTile(ext, now, frag);
    this.grid.append(frag);
    this.ranksDirty = true;
    this.filterDirty = true;
    for (const id of this.rows.keys()) if (!this.store.calls.has(id)) this.removeRow(id);
    const calls = [...this.store.calls.values()].sort((a, b) => (a.started_at || 0) - (b.started_at || 0));
    for (const c of calls) this.upsertRow(String(c.call_id), now);
  }

  upsertTile(ext, now, parent) {
    const agent = this.store.agents.get(ext);
    let tile = this.tiles.get(ext);
    if (!agent) {
      if (tile) this.removeTile(ext);
      return;
    }
    if (!tile) {
      const node = this.tileProto.cloneNode(true);
      node.dataset.agent = ext;
      const [head, state, peer, mon] = node.children;
      tile = {
        el: node, name: head.children[0], extEl: head.children[1], word: state.children[0],
        timer: state.children[1].firstChild, dirIcon: peer.children[0].children[0],
        dirWord: peer.children[0].children[1], peer: peer.children[1],
        warnBadge: peer.children[2], today: peer.children[3], todayKey: null, mon, agent: null, timerText: '', warn: false,
        nameText: null, rank: 0, order: null, match: false, slot: -1, shown: false, seen: false,
      };
      setText(tile.extEl, ext);
      setText(tile.warnBadge, t('warn.long'));
      this.tiles.set(ext, tile);
      (parent || this.grid).append(node);
      this.ranksDirty = true;
      this.sortedDirty = true;
    }
    tile.agent = agent;
    // Compared with what the tile shows, not with the previous record: a patch may
    // change the record in place.
    const name = agent.name || agent.username || ext;
    if (tile.nameText !== name) {
      if (tile.nameText != null && this.sort === 'name') this.ranksDirty = true;
      tile.nameText = name;
      tile.name.textContent = name;
    }
    const state = STATE_WORDS[agent.state] ? agent.state : 'offline';
    setAttr(tile.el, 'data-state', state);
    setText(tile.word, t(STATE_WORDS[state]));
    const busy = state === 'ringing' || state === 'oncall';
    const dir = busy ? agent.direction : null;
    setAttr(tile.el, 'data-direction', dir && DIR_WORDS[dir] ? dir : null);
    setText(tile.dirIcon, dir && DIR_WORDS[dir] ? DIR_ICONS[dir] : '');
    setText(tile.dirWord, dir && DIR_WORDS[dir] ? t(DIR_WORDS[dir]) : '');
    setText(tile.peer, busy && agent.peer ? String(agent.peer) : '');
    this.todayTile(tile, agent);
    const m = this.store.monitorByAgent.get(ext);
    tile.mon.hidden = !m;
    setText(tile.mon, m ? t('monitor.label', { by: m.by || '', mode: t(MONITOR_WORDS[m.mode] || 'monitor.listen') }) : '');
    setAttr(tile.el, 'data-monitored', m ? m.mode || 'listen' : null);
    if (!this.ranksDirty) this.orderTile(tile);
    this.filterTile(tile);
    this.timeTile(tile, now);
  }

  todayTile(tile, agent) {
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

  removeTile(ext) {
    forget(this.tiles, ext, this.shownTiles, this.seenTiles);
    this.ranksDirty = true;
    this.sortedDirty = true;
  }

  // The warning is kept for every tile (it may sound); the text for those on
  // screen, and once for each tile as it is displayed.
  timeTile(tile, now, force) {
    if (tile.seen || force) this.tileTimerText(tile, now);
    this.tileWarning(tile, now);
  }

  tileTimerText(tile, now) {
    const a = tile.agent;
    const text = a.state === 'offline' || !a.since ? '' : fmtDuration((now - a.since) / 1000);
    if (text !== tile.timerText) {
      tile.timerText = text;
      tile.timer.data = text;
    }
  }

  tileWarning(tile, now) {
    const a = tile.agent;
    const secs = a.since ? (now - a.since) / 1000 : null;
    const warn = secs != null && ((a.state === 'ringing' && secs > this.th.ringing_warn)
      || (a.state === 'oncall' && secs > this.th.oncall_warn));
    if (warn !== tile.warn) {
      tile.warn = warn;
      setAttr(tile.el, 'data-warn', warn ? 'true' : null);
      tile.warnBadge.hidden = !warn;
      if (warn && this.opts.onWarn) this.opts.onWarn('agent', a);
    }
  }

  applyRanks() {
    this.ranksDirty = false;
    const tiles = [...this.tiles.values()];
    const key = this.sort === 'name'
      ? (x) => x.agent.name || x.agent.username || ''
      : (x) => x.agent.ext != null ? String(x.agent.ext) : '';
    tiles.sort((a, b) => this.collator.compare(key(a), key(b))
      || this.collator.compare(String(a.agent.ext), String(b.agent.ext)));
    tiles.forEach((tile, i) => {
      tile.rank = i;
      this.orderTile(tile);
    });
  }

  // CSS `order` places a tile without moving DOM nodes, so a state change
  // re-sorts one tile instead of the whole grid.
  orderTile(tile) {
    const rank = tile.rank;
    const order = this.sort === 'state' ? (STATE_RANK[tile.agent.state] ?? 3) * RANK_SPAN + rank : rank;
    if (order !== tile.order) {
      tile.order = order;
      tile.el.style.order = String(order);
      this.sortedDirty = true;
    }
  }

  matches(agent) {
    const f = this.filter.state;
    if (f === 'online' && agent.state === 'offline') return false;
    if (f !== 'all' && f !== 'online' && agent.state !== f) return false;
    const q = this.filter.q;
    if (!q) return true;
    return [agent.name, agent.username, agent.ext].some((v) => v != null && String(v).toLowerCase().includes(q));
  }

  filterTile(tile) {
    const match = this.matches(tile.agent);
    if (match !== tile.match) {
      tile.match = match;
      this.sortedDirty = true;
    }
  }

  applyFilter() {
    for (const tile of this.tiles.values()) this.filterTile(tile);
  }

  sortTiles() {
    this.sortedDirty = false;
    const list = [];
    for (const tile of this.tiles.values()) {
      tile.slot = -1;
      if (tile.match) list.push(tile);
    }
    list.sort((a, b) => a.order - b.order);
    list.forEach((tile, i) => { tile.slot = i; });
    this.sorted = list;
  }

  // Display the tiles in the window, hide the others (filtered out or far off screen).
  showTiles(now) {
    const r = this.agentWindow.range(this.sorted.length);
    follow(this.sorted, r.start, r.end, this.shownTiles, 'shown', (tile) => {
      tile.el.hidden = false;
      this.timeTile(tile, now, true);
    }, hide);
    follow(this.sorted, r.seenStart, r.seenEnd, this.seenTiles, 'seen', (tile) => this.timeTile(tile, now));
  }

  renderCount() {
    const shown = this.sorted.length;
    const total = this.tiles.size;
    if (this.count) setText(this.count, t('agents.count', { shown: fmtInt(shown), total: fmtInt(total) }));
    this.agentsEmpty.hidden = shown > 0 || total === 0;
  }

  // ---- calls -------------------------------------------------------------

  upsertRow(id, now) {
    const call = this.store.calls.get(id);
    let row = this.rows.get(id);
    if (!call) {
      if (row) this.removeRow(id);
      return;
    }
    if (!row) {
      const node = this.rowProto.cloneNode(true);
      node.dataset.call = id;
      const c = node.children;
      row = {
        el: node, dir: c[0], from: c[1], to: c[2], agentCell: c[3], state: c[4], timer: c[5].firstChild,
        buttons: c[6] ? [...c[6].children] : [], call: null, timerText: '', warn: false, agent: null,
        slot: -1, shown: false, seen: false,
      };
      this.rows.set(id, row);
      this.callsBody.append(node);
      this.rowListDirty = true;
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
    const state = CALL_STATE_WORDS[call.state] ? call.state : 'ringing';
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
    this.timeRow(row, now);
  }

  removeRow(id) {
    forget(this.rows, id, this.shownRows, this.seenRows);
    this.rowListDirty = true;
  }

  // The TV shows every row and cannot scroll: how many fit between the list's top and
  // the bottom of the panel, which clips the rest.
  measureCallsFit() {
    const first = this.rowList.length ? this.rowList[0].el : null;
    const rowH = first ? first.offsetHeight : 0;
    if (!rowH || !this.callsPanel) {
      this.callsFit = Infinity;
      return;
    }
    const room = this.callsPanel.getBoundingClientRect().bottom - this.callsBody.getBoundingClientRect().top;
    this.callsFit = Math.max(0, Math.floor((room + 1) / rowH));
  }

  renderCallsMore() {
    const hidden = Math.max(0, this.rows.size - this.callsFit);
    const text = hidden ? t('calls.more', { n: fmtInt(hidden) }) : '';
    setText(this.callsMore, text);
    if (this.callsMore.hidden !== !hidden) this.callsMore.hidden = !hidden;
  }

  // The Map keeps insertion order, which is the DOM's.
  listRows() {
    this.rowListDirty = false;
    this.rowList = [...this.rows.values()];
    this.rowList.forEach((row, i) => { row.slot = i; });
  }

  showRows(now) {
    const r = this.callWindow.range(this.rowList.length);
    follow(this.rowList, r.start, r.end, this.shownRows, 'shown', (row) => {
      row.el.hidden = false;
      this.timeRow(row, now, true);
    }, hide);
    follow(this.rowList, r.seenStart, r.seenEnd, this.seenRows, 'seen', (row) => this.timeRow(row, now));
  }

  timeRow(row, now, force) {
    if (row.seen || force) this.rowTimerText(row, now);
    this.rowWarning(row, now);
  }

  rowSeconds(row, now) {
    const c = row.call;
    const from = c.state === 'answered' && c.answered_at ? c.answered_at : c.started_at;
    return from ? (now - from) / 1000 : null;
  }

  rowTimerText(row, now) {
    const text = fmtDuration(this.rowSeconds(row, now));
    if (text !== row.timerText) {
      row.timerText = text;
      row.timer.data = text;
    }
  }

  rowWarning(row, now) {
    const c = row.call;
    const secs = this.rowSeconds(row, now);
    const warn = secs != null && ((c.state === 'ringing' && secs > this.th.ringing_warn)
      || (c.state === 'answered' && secs > this.th.oncall_warn));
    if (warn !== row.warn) {
      row.warn = warn;
      setAttr(row.el, 'data-warn', warn ? 'true' : null);
    }
  }

  // Once a second: every warning at once (it may sound), the timers on screen
  // over the next frames.
  tickTimers(now) {
    for (const tile of this.tiles.values()) this.tileWarning(tile, now);
    for (const row of this.rows.values()) this.rowWarning(row, now);
    this.timerQueue = [...this.seenTiles, ...this.seenRows];
    this.timerBatch = Math.max(TIMERS_PER_FRAME, Math.ceil(this.timerQueue.length / TIMER_FRAMES));
  }

  moveTimers(now) {
    for (const item of this.timerQueue.splice(0, this.timerBatch)) {
      if (!item.seen) continue; // scrolled off or gone since the tick
      if (item.call) this.rowTimerText(item, now);
      else this.tileTimerText(item, now);
    }
    if (this.timerQueue.length) this.schedule();
  }

  // ---- KPIs and charts ---------------------------------------------------

  kpiValues(now) {
    const s = this.store;
    const v = { agents_online: 0, agents_idle: 0, agents_ringing: 0, agents_oncall: 0 };
    for (const a of s.agents.values()) {
      if (a.state === 'offline') continue;
      v.agents_online += 1;
      const k = `agents_${a.state}`;
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
    return v;
  }

  renderKpis(now) {
    const values = this.kpiValues(now);
    for (const [name, k] of this.kpis) {
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
    const waitTile = this.kpis.get('longest_wait');
    if (waitTile && waitTile.tile) setAttr(waitTile.tile, 'data-warn', waitWarn ? 'true' : null);
    if (waitWarn && !this.warnedWait && this.opts.onWarn) this.opts.onWarn('wait', null);
    this.warnedWait = waitWarn;
  }

  renderCharts(hour) {
    const stats = this.store.stats;
    if (this.hourlyEl) {
      drawHourly(this.hourlyEl, stats ? stats.calls_per_hour : null,
        stats ? stats.answered_per_hour : null, hour);
    }
    if (this.statusEl) drawStatus(this.statusEl, this.store.status ? this.store.status.counts : null);
  }

  // ---- freshness ---------------------------------------------------------

  sourceFreshness(now) {
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

  renderFreshness(now) {
    const f = this.sourceFreshness(now);
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
        if (stale) setText(note, this.staleNote(sources, f));
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

  staleNote(sources, f) {
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
