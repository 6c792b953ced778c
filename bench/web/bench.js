// Render benchmark: the real store and renderer, a seeded 2,000-agent
// snapshot, then `rate` changes per second for `seconds`. Measures the time
// spent in each animation frame's DOM work, the browser's long tasks (style,
// layout and paint included) and how long a change waits for its frame, and
// writes the figures as JSON into #bench-result (data-done="true" when finished).
// Options: ?agents=2000&rate=50&seconds=10&seed=1&sort=state|name|ext&polls=0 (no
// source updates: the board goes stale 5 s in, as when the PBX stops answering)
// &scroll=agents (the agent grid fills the screen: the most tiles and timers on it)
// &layout=kiosk (the TV: what /kiosk renders, set up as main.js sets up a TV)

import { setupI18n, hourOf } from '/static/js/i18n.js';
import { observeServerNow, serverNow } from '/static/js/clock.js';
import { Store } from '/static/js/store.js';
import { Renderer } from '/static/js/render.js';
import { setupKiosk, kioskOptions } from '/static/js/kiosk.js';

const params = new URLSearchParams(location.search);
const N = Number(params.get('agents')) || 2000;
const RATE = Number(params.get('rate')) || 50;
const SECONDS = Number(params.get('seconds')) || 10;
const SORT = params.get('sort') || 'state';
const POLLS = params.get('polls') !== '0';
const SCROLL = params.get('scroll');
const KIOSK = params.get('layout') === 'kiosk';
let seed = Number(params.get('seed')) || 1;

function random() {
  // mulberry32: small, seeded, good enough to pick agents and states.
  seed = (seed + 0x6d2b79f5) | 0;
  let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
  return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
}
const pick = (list) => list[Math.floor(random() * list.length)];
const STATES = ['idle', 'idle', 'ringing', 'oncall', 'oncall', 'offline'];

function agentFor(i, state, now) {
  const ext = String(10000 + i);
  const busy = state === 'ringing' || state === 'oncall';
  return {
    ext, name: `Agent ${ext}`, username: `a${ext}`, state, since: now - Math.floor(random() * 600000),
    call_id: busy ? `call-${ext}` : null, direction: busy ? pick(['inbound', 'outbound']) : null,
    peer: busy ? `0899***${String(i % 1000).padStart(3, '0')}` : null,
  };
}

function callFor(agent) {
  return {
    call_id: agent.call_id, direction: agent.direction, from: agent.peer, to: agent.ext,
    agent: agent.ext, state: agent.state === 'oncall' ? 'answered' : 'ringing',
    started_at: agent.since, answered_at: agent.state === 'oncall' ? agent.since : null,
  };
}

function snapshot(now) {
  const agents = [];
  const calls = [];
  for (let i = 0; i < N; i += 1) {
    const a = agentFor(i, pick(STATES), now);
    agents.push(a);
    if (a.call_id) calls.push(callFor(a));
  }
  const perHour = Array.from({ length: 24 }, (_, h) => (h < 18 ? 100 + h * 10 : 0));
  const ok = { ok: true, at: now, error: null };
  return {
    seq: 1, now, epoch: 'bench', domain: 'bench.local', agents, calls,
    status: { counts: { ANSWERED: 15225, BUSY: 7161, FAILED: 1515, 'NO ANSWER': 700, UNKNOWN: 59 }, total: 24660 },
    stats: { service_level: 86.4, answer_rate: 78, avg_talk_seconds: 187, waiting: 4,
      longest_wait_since: now - 30000, calls_per_hour: perHour, answered_per_hour: perHour.map((v) => v * 0.8) },
    sources: { agents: ok, calls: ok, status: ok, cdr: ok }, monitors: [],
  };
}

function summary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] || 0;
  const sum = sorted.reduce((s, v) => s + v, 0);
  const round = (v) => Math.round(v * 1000) / 1000;
  return { count: sorted.length, mean: round(sum / (sorted.length || 1)), p50: round(at(0.5)),
    p95: round(at(0.95)), p99: round(at(0.99)), max: round(sorted[sorted.length - 1] || 0) };
}

// Timers on screen that are more than 2 s off (they move once a second, over a few frames).
function timersOff(store) {
  const secs = (text) => text.split(':').reduce((s, part) => s * 60 + Number(part), 0);
  let off = 0;
  for (const tile of document.querySelectorAll('[data-agent]:not([hidden])')) {
    const box = tile.getBoundingClientRect();
    const a = store.agents.get(tile.dataset.agent);
    const text = tile.querySelector('[data-timer]').textContent;
    if (box.bottom < 0 || box.top > innerHeight || a.state === 'offline') continue;
    if (!text || Math.abs(secs(text) - (serverNow() - a.since) / 1000) > 2) off += 1;
  }
  return off;
}

// The board still says what the store says: one tile per agent with its state,
// one row per call, and the displayed tiles in state order on the page.
function checkBoard(store) {
  const rank = { ringing: 0, oncall: 1, idle: 2, offline: 3 };
  const sorted = SORT === 'state' && !KIOSK;
  let tilesWrong = 0;
  for (const [ext, a] of store.agents) {
    const tiles = document.querySelectorAll(`[data-agent="${ext}"]`);
    if (tiles.length !== 1 || tiles[0].dataset.state !== a.state) tilesWrong += 1;
  }
  const rows = document.querySelectorAll('[data-call]');
  let rowsWrong = Math.abs(rows.length - store.calls.size);
  for (const row of rows) if (!store.calls.has(row.dataset.call)) rowsWrong += 1;
  const shown = [...document.querySelectorAll('[data-agent]:not([hidden])')]
    .map((t) => ({ box: t.getBoundingClientRect(), state: t.dataset.state }))
    .sort((a, b) => a.box.top - b.box.top || a.box.left - b.box.left);
  let outOfOrder = 0;
  for (let i = 1; i < shown.length; i += 1) if (rank[shown[i].state] < rank[shown[i - 1].state]) outOfOrder += 1;
  return { tiles_wrong: tilesWrong, rows_wrong: rowsWrong, displayed_out_of_state_order: sorted ? outOfOrder : null };
}

// The page is the supervisor's tab; the TV's differs by its layout attribute and
// no action column (templates/board.html with layout == 'kiosk').
function asKiosk() {
  document.documentElement.dataset.layout = 'kiosk';
  document.querySelector('.calls').removeAttribute('data-actions');
  document.querySelector('.calls-head .c-actions').remove();
}

// Every frame's distance from the one before, as the screen sees it (script, style,
// layout and paint of the board, and anything else the page does).
function frameIntervals(out) {
  let last = null;
  let on = true;
  const step = (t) => {
    if (last != null) out.push(t - last);
    last = t;
    if (on) requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
  return () => { on = false; };
}

async function run() {
  if (KIOSK) asKiosk();
  setupI18n({ catalogue: {}, locale: 'en-US', timezone: 'UTC' });
  const store = new Store();
  const frames = [];
  const waits = [];
  let waitingSince = null;
  const tickFrames = [];
  // Script plus the style, layout and paint after it: a message posted at the end
  // of the frame's script is handled once the browser has rendered that frame.
  const totals = [];
  const tickTotals = [];
  const afterRender = new MessageChannel();
  afterRender.port1.onmessage = (e) => (e.data.ticked ? tickTotals : totals).push(performance.now() - e.data.start);
  const renderer = new Renderer(document.body, store, {
    thresholds: { ringing_warn: 15, oncall_warn: 300, waiting_warn: 60, blank_after: 300 },
    staleAfter: { agents: 5, calls: 5, status: 31, cdr: 121 },
    actions: !KIOSK, locale: 'en-US', sort: SORT, windowed: true,
    ...(KIOSK ? kioskOptions() : {}),
    onFrame: (ms, ticked) => {
      (ticked ? tickFrames : frames).push(ms);
      if (ticked) performance.mark('tick-frame'); // findable in a --trace
      afterRender.port2.postMessage({ ticked, start: performance.now() - ms });
      if (waitingSince != null) waits.push(performance.now() - waitingSince);
      waitingSince = null;
    },
  });
  const now0 = Date.now();
  const state = snapshot(now0);
  observeServerNow(now0);
  store.snapshot(1, state);
  renderer.setConnected(true);
  if (KIOSK) setupKiosk({ rotate_seconds: 0 }, document.querySelector('[data-views]'));
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  if (SCROLL === 'agents') {
    document.querySelector('[data-agents]').scrollIntoView();
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  }
  const initialMs = [...frames.splice(0), ...tickFrames.splice(0)].reduce((s, v) => s + v, 0);
  totals.length = 0;
  tickTotals.length = 0;

  const longTasks = [];
  let observer = null;
  if ('PerformanceObserver' in window) {
    try {
      observer = new PerformanceObserver((list) => {
        for (const e of list.getEntries()) longTasks.push(e);
      });
      observer.observe({ type: 'longtask', buffered: false });
    } catch {
      observer = null;
    }
  }

  let seq = 1;
  let changes = 0;
  const agents = state.agents;
  let ringing = agents.filter((a) => a.state === 'ringing').length;
  // As on a live board: the polls keep the sources fresh, and timers move once a second.
  const pollTimer = POLLS && setInterval(() => {
    const at = Date.now();
    const ok = { ok: true, at, error: null };
    seq += 1;
    store.patch({ type: 'patch', seq, epoch: 'bench',
      ops: [['set', 'sources', { agents: ok, calls: ok, status: ok, cdr: ok }]] }, at);
    renderer.schedule();
  }, 2000);
  const tickTimer = setInterval(() => renderer.tick(), 1000);
  const intervals = [];
  const stopIntervals = frameIntervals(intervals);
  const started = performance.now();
  const changeTimer = setInterval(() => {
    const now = Date.now();
    const i = Math.floor(random() * N);
    const a = agentFor(i, pick(STATES), now);
    a.since = now;
    const was = agents[i];
    const ops = [['put', 'agents', a.ext, a]];
    if (was.call_id) ops.push(['del', 'calls', was.call_id]);
    if (a.call_id) ops.push(['put', 'calls', a.call_id, callFor(a)]);
    // As the server's: the waiting figures move with every ring and answer, and a call
    // that ends counts in today's hour.
    ringing += (a.state === 'ringing') - (was.state === 'ringing');
    const stats = { ...store.stats, waiting: ringing };
    if (was.call_id) {
      const h = hourOf(now);
      stats.calls_per_hour = stats.calls_per_hour.map((v, k) => (k === h ? v + 1 : v));
      if (was.state === 'oncall') stats.answered_per_hour = stats.answered_per_hour.map((v, k) => (k === h ? v + 1 : v));
    }
    ops.push(['set', 'stats', stats]);
    agents[i] = a;
    seq += 1;
    changes += 1;
    observeServerNow(now);
    store.patch({ type: 'patch', seq, epoch: 'bench', ops }, now);
    if (waitingSince == null) waitingSince = performance.now();
    renderer.schedule();
  }, 1000 / RATE);

  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const timersWrong = timersOff(store);
  clearInterval(changeTimer);
  clearInterval(tickTimer);
  clearInterval(pollTimer);
  stopIntervals();
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  if (observer) observer.disconnect();
  const elapsed = (performance.now() - started) / 1000;
  const durations = longTasks.map((e) => e.duration);
  const check = { ...checkBoard(store), timers_off_on_screen: timersWrong };
  const steady = longTasks.filter((e) => e.startTime > started + 1000).map((e) => e.duration);
  const result = {
    agents: N, calls: store.calls.size, changes_per_second_target: RATE,
    changes_per_second: Math.round((changes / elapsed) * 10) / 10, seconds: Math.round(elapsed * 10) / 10,
    initial_render_ms: Math.round(initialMs * 10) / 10,
    // Frames that applied patches only, and the once-a-second frames that also move every timer.
    frame_ms: summary(frames),
    frames_over_4ms: frames.filter((v) => v > 4).length,
    tick_frame_ms: summary(tickFrames),
    frame_total_ms: summary(totals),
    tick_frame_total_ms: summary(tickTotals),
    // From one frame to the next on screen: 16.7 ms at 60 Hz when nothing is late.
    frame_interval_ms: summary(intervals),
    // From the first change to the end, and from one second in (steady state).
    long_tasks: { supported: !!observer, ...summary(durations) },
    long_tasks_steady: summary(steady),
    // When each long task began (ms from the first change) and how long it took.
    long_task_list: longTasks.map((e) => [Math.round(e.startTime - started), Math.round(e.duration)]),
    // From a change reaching the store to the end of the frame's script that renders it.
    change_to_frame_ms: summary(waits),
    sort: SORT,
    layout: KIOSK ? 'kiosk' : 'tab',
    polls: POLLS,
    scroll: SCROLL,
    tiles: document.querySelectorAll('[data-agent]').length,
    tiles_displayed: document.querySelectorAll('[data-agent]:not([hidden])').length,
    check,
    user_agent: navigator.userAgent,
  };
  const out = document.getElementById('bench-result');
  out.textContent = JSON.stringify(result, null, 1);
  out.dataset.done = 'true';
}

run();
