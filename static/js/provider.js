// The provider's view: one row per tenant, kept live over /provider/ws with the board's
// socket (resume, backoff, watchdog). Rows hold counts and times only; tenants in
// trouble first (refused, stale, starting, callers waiting too long), then by name.

import { LiveSocket } from './socket.js';
import { fmtInt, fmtDuration, setupI18n, t } from './i18n.js';

const boot = JSON.parse(document.getElementById('boot').textContent);
setupI18n(boot);

const rows = new Map(); // id -> row record
const els = new Map(); // id -> its element
const root = document.querySelector('[data-tenant-rows]');
const conn = document.querySelector('[data-conn]');
const connText = document.querySelector('[data-conn-text]');
const count = document.querySelector('[data-tenant-count]');
let seq = -1;
let epoch = null;
let offset = 0; // server clock minus ours
let scheduled = false;

const COLUMNS = ['name', 'health', 'agents_online', 'agents_ringing', 'agents_oncall', 'active_calls',
  'waiting', 'longest', 'service_level', 'answered_today'];

function setConn(state) {
  conn.dataset.conn = state;
  connText.textContent = t(`conn.${state}`);
}

function cell(row, name) {
  switch (name) {
    case 'name':
      return row.name;
    case 'health':
      return t(`provider.health.${row.health}`);
    case 'longest':
      return row.longest_wait_since ? fmtDuration(Math.max(0, (Date.now() + offset - row.longest_wait_since) / 1000)) : '–';
    case 'service_level':
      return row.service_level == null ? '–' : `${row.service_level}%`;
    default:
      return fmtInt(row[name]);
  }
}

function element(id) {
  let el = els.get(id);
  if (!el) {
    el = document.createElement('div');
    el.className = 'provider-row';
    el.setAttribute('role', 'row');
    el.dataset.tenant = id;
    for (const name of COLUMNS) {
      const span = document.createElement('span');
      span.setAttribute('role', 'cell');
      span.dataset.col = name;
      el.append(span);
    }
    els.set(id, el);
  }
  return el;
}

function render() {
  scheduled = false;
  const ordered = [...rows.values()].sort((a, b) => a.trouble - b.trouble || a.name.localeCompare(b.name));
  for (const [id, el] of els) {
    if (!rows.has(id)) {
      el.remove();
      els.delete(id);
    }
  }
  ordered.forEach((row, i) => {
    const el = element(row.id);
    el.dataset.health = row.health;
    el.dataset.trouble = row.trouble < 4 ? 'yes' : 'no';
    for (const span of el.children) {
      const text = cell(row, span.dataset.col);
      if (span.textContent !== text) span.textContent = text;
    }
    if (root.children[i] !== el) root.insertBefore(el, root.children[i] || null);
  });
  count.textContent = t('provider.count', { n: rows.size });
}

function schedule() {
  if (!scheduled) {
    scheduled = true;
    requestAnimationFrame(render);
  }
}

function apply(op) {
  const [kind, key, id, value] = op;
  if (kind === 'set' && key === 'now') offset = value - Date.now();
  else if (key !== 'tenants') return true;
  else if (kind === 'put') rows.set(id, value);
  else if (kind === 'upd') {
    if (!rows.has(id)) return false;
    rows.set(id, { ...rows.get(id), ...value });
  } else if (kind === 'del') rows.delete(id);
  return true;
}

const socket = new LiveSocket(boot.ws_path, {
  onOpen() {},
  onMessage(msg) {
    if (msg.type === 'snapshot') {
      rows.clear();
      for (const row of msg.state.tenants) rows.set(row.id, row);
      seq = msg.seq;
      epoch = msg.epoch;
      offset = msg.state.now - Date.now();
      setConn('live');
    } else if (msg.type === 'patch') {
      if (msg.seq <= seq) return;
      if (msg.seq !== seq + 1 || !msg.ops.every(apply)) {
        socket.resync();
        return;
      }
      seq = msg.seq;
    } else if (msg.type === 'ping') {
      offset = msg.now - Date.now();
      if (msg.seq === seq) setConn('live');
    }
    schedule();
  },
  onDown() {
    setConn('reconnecting');
  },
  resumeFrom() {
    return epoch == null ? null : { epoch, seq };
  },
});
socket.start();
setInterval(schedule, 1000);
