#!/usr/bin/env node
// The command line of the JavaScript verifier of iotledger receipts (format
// iotledger-receipt/1). The verifier itself is one ES module,
// receipt/verifyjs/verify.mjs, shared with the console's receipts page,
// which runs the same code in the browser; here it runs over node's
// WebCrypto and protobufjs.
//
//   node verify.js --anchor ANCHOR.json RECEIPT.json
//
// exit 0: {"ok":true,...} on stdout; exit 1: {"ok":false,"step":...,"error":...};
// exit 2: usage error; exit 3: a fault of the verifier.
'use strict';

const fs = require('fs');
const path = require('path');
const protobuf = require('protobufjs');
const core = require('../../receipt/verifyjs/verify.mjs');

const v = core.receiptVerifier(protobuf, fs.readFileSync(path.join(__dirname, '..', '..', 'receipt', 'verifyjs', 'fabric.proto'), 'utf8'));

function usage(msg) {
  process.stderr.write(`${msg}\nusage: node verify.js --anchor ANCHOR.json RECEIPT.json\n`);
  process.exit(2);
}

async function main(argv) {
  let anchorPath = null;
  const files = [];
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    if (a === '--anchor') {
      if (k + 1 >= argv.length) usage('--anchor needs a file');
      anchorPath = argv[++k];
    } else if (a.startsWith('--anchor=')) {
      anchorPath = a.slice('--anchor='.length);
    } else if (a.startsWith('-') && a !== '-') {
      usage(`unknown flag ${a}`);
    } else {
      files.push(a);
    }
  }
  if (anchorPath === null) usage('missing --anchor');
  if (files.length !== 1) usage('give exactly one receipt file');
  let anchorBytes;
  let receiptBytes;
  try { anchorBytes = fs.readFileSync(anchorPath); } catch (e) { usage(`cannot read the anchor: ${e.message}`); }
  try { receiptBytes = files[0] === '-' ? fs.readFileSync(0) : fs.readFileSync(files[0]); } catch (e) { usage(`cannot read the receipt: ${e.message}`); }
  let anchor;
  try { anchor = v.parseAnchor(anchorBytes); } catch (e) { usage(`invalid anchor ${anchorPath}: ${e.message}`); }
  let result;
  try {
    result = await v.verifyReceipt(receiptBytes, anchor);
  } catch (e) {
    if (!(e instanceof core.Refusal)) {
      // A fault of this verifier, not a verdict: say so, and refuse nothing silently.
      process.stderr.write(`internal error: ${e.stack}\n`);
      process.exit(3);
    }
    process.stdout.write(JSON.stringify({ ok: false, step: e.step, error: e.message }) + '\n');
    process.exit(1);
  }
  const text = JSON.stringify(result, (k, val) => (typeof val === 'bigint' ? `@@big:${val}` : val))
    .replace(/"@@big:(\d+)"/g, '$1');
  process.stdout.write(text + '\n');
  process.exit(0);
}

if (require.main === module) main(process.argv.slice(2));

module.exports = { ...core, ...v };
