// What static/js/rules.js exports, and its `follows` of each call given on stdin (one
// JSON per line), as one JSON line. Used by tests/test_shared_rules.py.
import { createInterface } from 'node:readline';
import * as rules from '../../static/js/rules.js';

const calls = [];
for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (line) calls.push(JSON.parse(line));
}
const values = Object.fromEntries(Object.entries(rules).filter(([, v]) => typeof v !== 'function'));
const functions = Object.keys(rules).filter((name) => typeof rules[name] === 'function');
process.stdout.write(`${JSON.stringify({ values, functions, follows: calls.map(rules.follows) })}\n`);
