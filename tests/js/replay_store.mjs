// static/js/store.js fed what screens get, handed over as main.js does, saying after
// each message what it answered and what it holds. stdin: one JSON per line,
// {"screen": name, "message": {...}} (a store per screen); stdout: one JSON per line,
// {"answer": "ok" | "old" | "gap", "state": {...}}. Used by tests/test_apply.py.
import { createInterface } from 'node:readline';
import { Store } from '../../static/js/store.js';
import { BOARD_KEYS } from '../../static/js/rules.js';

const stores = new Map();

function held(store) {
  return {
    seq: store.seq,
    agents: Object.fromEntries(store.agents),
    calls: Object.fromEntries(store.calls),
    status: store.status,
    stats: store.stats,
    sources: store.sources,
    monitors: store.monitors,
    domain: store.domain,
    ...Object.fromEntries(BOARD_KEYS.map((key) => [key, store[key]])),
  };
}

function handle({ screen, message: msg }) {
  if (!stores.has(screen)) stores.set(screen, new Store());
  const store = stores.get(screen);
  let answer = 'ok';
  if (msg.type === 'snapshot') store.snapshot(msg.seq ?? (msg.state && msg.state.seq), msg.state || {}, msg.fields);
  else if (msg.type === 'patch') answer = store.patch(msg, 0);
  else if (msg.type === 'ping') store.heard(msg.at);
  return { answer, state: held(store) };
}

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (line) process.stdout.write(`${JSON.stringify(handle(JSON.parse(line)))}\n`);
}
