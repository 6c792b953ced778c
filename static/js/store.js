// The board's copy of the live state: a snapshot, then patches applied in
// order. It records what changed (`dirty`) so the renderer touches only that.
//
// Patch ops (documented with the server's wallboard/patches.py):
//   ["put", "agents"|"calls", key, record]   insert or replace; a record given as a
//                                            list holds values in the snapshot's `fields` order
//   ["upd", "agents"|"calls", key, fields]   the changed fields of a known record
//   ["del", "agents"|"calls", key]
//   ["set", "status"|"stats"|"sources"|"monitors"|"domain", value]
//   ["merge", "stats"|..., fields]           the changed keys of a top-level object
//   ["put"|"upd", "calls", key, ..., 1]      ...and the call's agent shows the call (follows)
//   ["del", "calls", key, t]                 ...and the call's agent is idle since t
// Records are replaced, never changed in place, so the renderer can compare them.

import { KEY_FIELD, TOP_KEYS, BOARD_KEYS, follows, IDLE, MONITOR_SLACK_MS } from './rules.js';

const SET_KEYS = new Set(TOP_KEYS);

export class Store {
  constructor() {
    this.agents = new Map();
    this.calls = new Map();
    this.status = null;
    this.stats = null;
    this.sources = {};
    this.monitors = [];
    this.monitorByAgent = new Map(); // the agent listened to -> the monitor
    this.monitorByPhone = new Map(); // the supervisor's phone (ext) -> the monitor
    this.domain = '';
    for (const key of BOARD_KEYS) this[key] = {};
    this.seq = -1;
    this.epoch = null;
    this.ready = false;
    this.lastDataAt = 0; // server time of the last snapshot or patch
    this.fields = {}; // the order of positional records, from the snapshot
    this.resetDirty();
    this.dirty.all = true;
  }

  resetDirty() {
    this.dirty = { all: false, agents: new Set(), calls: new Set(), keys: new Set() };
  }

  takeDirty() {
    const d = this.dirty;
    this.resetDirty();
    return d;
  }

  snapshot(seq, state, fields) {
    this.fields = fields || {};
    this.agents = new Map();
    this.calls = new Map();
    for (const a of state.agents || []) this.agents.set(String(a.ext), a);
    for (const c of state.calls || []) this.calls.set(String(c.call_id), c);
    this.status = state.status || null;
    this.stats = state.stats || null;
    this.sources = state.sources || {};
    this.domain = state.domain || '';
    for (const key of BOARD_KEYS) this[key] = state[key] || {};
    this.setMonitors(state.monitors || []);
    this.seq = seq;
    this.epoch = state.epoch ?? null;
    this.lastDataAt = state.now || 0;
    this.ready = true;
    this.resetDirty();
    this.dirty.all = true;
  }

  // 'ok', 'old' (already seen; ignored) or 'gap' (the caller must resync).
  // `now` is the server's time as this client reckons it (patches carry no clock).
  patch(msg, now) {
    if (!this.ready) return 'gap';
    if (msg.epoch != null && this.epoch != null && msg.epoch !== this.epoch) return 'gap';
    if (msg.seq <= this.seq) return 'old';
    // A screen narrowed to a team or hotline gets only the patches that concern it:
    // `after` is the seq of the one before (what came between changed nothing of its).
    if (msg.seq !== this.seq + 1 && !(typeof msg.after === 'number' && msg.after <= this.seq)) return 'gap';
    for (const op of msg.ops || []) {
      if (!this.apply(op)) return 'gap';
    }
    this.seq = msg.seq;
    if (now) this.lastDataAt = now;
    return 'ok';
  }

  // False when the op needs a record this store does not have: it has lost track.
  apply(op) {
    const [kind, where, key, value] = op;
    if (kind === 'set' || kind === 'merge') {
      if (!SET_KEYS.has(where)) return true;
      if (kind === 'merge') {
        if (!this[where]) return false;
        this[where] = { ...this[where], ...key };
      } else if (where === 'monitors') this.setMonitors(key || []);
      else this[where] = key;
      this.dirty.keys.add(where);
      return true;
    }
    const map = where === 'agents' ? this.agents : where === 'calls' ? this.calls : null;
    if (!map) return true;
    const id = String(key);
    if (kind === 'put') {
      const rec = this.record(where, id, value);
      if (!rec) return false;
      map.set(id, rec);
    } else if (kind === 'upd') {
      const old = map.get(id);
      if (!old) return false;
      map.set(id, { ...old, ...value });
    } else if (kind === 'del') {
      const old = map.get(id);
      map.delete(id);
      // The call's end carries its agent: without the call, this store has lost track.
      if (where === 'calls' && typeof value === 'number' && !(old && this.setAgent(old.agent, { ...IDLE, since: value }))) return false;
    } else return true;
    this.dirty[where].add(id);
    if (where === 'calls' && kind !== 'del' && op[4] === 1) return this.setAgent(map.get(id).agent, follows(map.get(id)));
    return true;
  }

  // A positional record (a list) as an object, in the order the snapshot gave.
  record(where, key, value) {
    if (!Array.isArray(value)) return value;
    const names = this.fields[where];
    if (!names) return null;
    const rec = { [KEY_FIELD[where]]: key };
    names.forEach((name, i) => { rec[name] = i < value.length ? value[i] : null; });
    return rec;
  }

  setAgent(ext, fields) {
    const id = ext == null ? null : String(ext);
    const old = id === null ? null : this.agents.get(id);
    if (!old) return false;
    this.agents.set(id, { ...old, ...fields });
    this.dirty.agents.add(id);
    return true;
  }

  // A ping's word on when each source last answered: a poll that changes nothing
  // sends no patch, and without this the board would look older and older.
  heard(at) {
    if (!at || !this.ready) return;
    let sources = null;
    for (const [name, when] of Object.entries(at)) {
      const src = this.sources[name];
      if (src && when && src.at !== when) {
        sources = sources || { ...this.sources };
        sources[name] = { ...src, at: when };
      }
    }
    if (sources) {
      this.sources = sources;
      this.dirty.keys.add('sources');
    }
  }

  setMonitors(list) {
    const byAgent = new Map();
    const byPhone = new Map();
    for (const m of list) {
      if (m && m.agent != null) byAgent.set(String(m.agent), m);
      if (m && m.ext != null) byPhone.set(String(m.ext), m);
    }
    // The tiles of the agents listened to change, and the rows of the phones listening
    // (render.js re-renders a call's row when its agent is dirty).
    for (const [before, after] of [[this.monitorByAgent, byAgent], [this.monitorByPhone, byPhone]]) {
      for (const ext of new Set([...before.keys(), ...after.keys()])) {
        if (before.get(ext) !== after.get(ext)) this.dirty.agents.add(ext);
      }
    }
    this.monitors = list;
    this.monitorByAgent = byAgent;
    this.monitorByPhone = byPhone;
  }

  // The monitor a call is the supervisor's own leg of: a call their phone made to the
  // agent listened to since the listen/whisper/barge began (the PBX rings the phone
  // first; the server allows the same slack). It is theirs, not a
  // customer's: no actions on it.
  monitorLegOf(call) {
    const m = call && call.agent != null ? this.monitorByPhone.get(String(call.agent)) : null;
    if (!m || call.direction !== 'outbound' || String(call.to) !== String(m.agent)) return null;
    return call.started_at >= m.since - MONITOR_SLACK_MS ? m : null;
  }
}
