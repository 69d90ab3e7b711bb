#!/usr/bin/env node
// Runs verify.js over a directory of sample receipts (anchor.json,
// expected.json mapping each file to {"ok":..,"step":..,"anchor"?:..}) and
// prints a table; exits 1 when a verdict or a step differs.
//   node test/receipt-node/run-samples.js /tmp/receipt-samples
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const dir = process.argv[2];
if (!dir) { process.stderr.write('usage: node run-samples.js DIR\n'); process.exit(2); }
const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8'));
let bad = 0;
for (const name of Object.keys(expected).sort()) {
  const want = expected[name];
  const anchor = path.join(dir, want.anchor || 'anchor.json');
  const p = spawnSync(process.execPath, [path.join(__dirname, 'verify.js'), '--anchor', anchor, path.join(dir, name)], { encoding: 'utf8' });
  let got = {};
  try { got = JSON.parse(p.stdout); } catch (e) { got = { ok: null, error: (p.stderr || '').trim().split('\n')[0] }; }
  const match = got.ok === want.ok && (want.ok || got.step === want.step) && p.status === (want.ok ? 0 : 1);
  if (!match) bad++;
  const verdict = got.ok ? 'ok' : `refused at ${got.step}`;
  const wanted = want.ok ? 'ok' : `refused at ${want.step}`;
  process.stdout.write(`${match ? 'MATCH' : 'DIFF '}  ${name.padEnd(52)} ${verdict.padEnd(26)} (expected ${wanted})  ${got.ok ? '' : got.error}\n`);
}
process.stdout.write(`${Object.keys(expected).length - bad} of ${Object.keys(expected).length} match\n`);
process.exit(bad ? 1 : 0);
