// The rules this code shares with the server, in one place. Each mirrors a value
// of the Python named beside it; tests/test_shared_rules.py runs this module in
// node and fails when the two drift apart.

// The key of each collection a patch op addresses (wallboard/patches.py KEY_FIELD).
export const KEY_FIELD = Object.freeze({ agents: 'ext', calls: 'call_id' });

// The top-level values a `set` or `merge` op replaces: the snapshot's keys less
// its identity (epoch, seq, now) and the two collections (state.py LiveState.snapshot).
// The last six are the board's own (state.py BOARD_KEYS): objects, `{}` when empty.
export const BOARD_KEYS = Object.freeze(['teams', 'hotlines', 'levels', 'wall', 'alerts', 'wrapup']);
export const TOP_KEYS = Object.freeze(['status', 'stats', 'sources', 'monitors', 'domain', ...BOARD_KEYS]);

// The fields of an agent on `call`, as the call shows them (patches.py `follows`;
// their names are patches.py FOLLOW_FIELDS).
export function follows(call) {
  const answered = call.state === 'answered';
  return {
    state: answered ? 'oncall' : 'ringing',
    since: answered ? call.answered_at : call.started_at,
    call_id: call.call_id,
    direction: call.direction,
    peer: call.direction === 'inbound' ? call.from : call.to,
  };
}

// An agent whose call ended, less its `since` (patches.py IDLE).
export const IDLE = Object.freeze({ state: 'idle', call_id: null, direction: null, peer: null });

// A supervisor's phone rings before a listen/whisper/barge begins: a leg that began
// this long before the monitor is still its leg (state.py MONITOR_SLACK_MS).
export const MONITOR_SLACK_MS = 5000;

// The PBX reads whose age a screen shows (state.py SOURCES).
export const SOURCES = Object.freeze(['agents', 'calls', 'status', 'cdr']);

// Agent states in the board's order (busiest first), and call states; the server
// sends no other (state.py).
export const AGENT_STATES = Object.freeze(['ringing', 'oncall', 'idle', 'offline']);
export const CALL_STATES = Object.freeze(['ringing', 'answered']);

// What a supervisor can do to a call: a button each (actions.py CALL_ACTIONS).
export const CALL_ACTIONS = Object.freeze(['listen', 'whisper', 'barge', 'transfer']);
