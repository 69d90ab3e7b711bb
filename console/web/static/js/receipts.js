import { el } from './api.js';

const dl = document.getElementById('download');
dl.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = new FormData(dl);
  // The API answers with Content-Disposition: attachment.
  window.location.href = `/api/v1/devices/${encodeURIComponent(f.get('device'))}/readings/${encodeURIComponent(f.get('seq'))}/receipt`;
});

// The checks of docs/receipts.md §3, in their order, as the verifier names
// them in a refusal.
const CHECKS = [
  ['format', 'Format', 'strict JSON, the fields of its kind, base64 and hashes'],
  ['anchor', 'Trust anchor', 'the channel and the genesis block are the anchor\'s'],
  ['config', 'Configuration chain', 'each config block well formed and signed as the one before requires'],
  ['blocks', 'Blocks', 'hash chain of data, orderer signatures under the configuration in force'],
  ['transaction', 'Transaction', 'the subject transaction: creator, certificates to the MSP roots, endorsements'],
  ['device', 'Device record', 'the device record in force and the endorsed transaction that wrote it'],
  ['subject', 'Subject', 'what the device signed: the reading\'s Merkle proof, the ack, or the record, and the device signature'],
];

// The verifier runs in a worker (static/js/receipt-worker.js) with its
// scripts loaded now, when the page opens: choosing and verifying a
// receipt needs nothing more from any server.
const form = document.getElementById('verify');
const out = document.getElementById('verify-result');
const button = form.querySelector('button[type=submit]');
const worker = new Worker('/static/js/receipt-worker.js');
let pending = null;
let nextID = 1;

function show(verdict, ...children) {
  out.dataset.verdict = verdict;
  out.replaceChildren(...children);
  out.focus();
}

worker.onmessage = (ev) => {
  const m = ev.data;
  if (m.type === 'ready') {
    button.disabled = false;
    form.dataset.ready = 'true';
  } else if (m.type === 'fault') {
    delete out.dataset.step;
    show('error', el('p', { class: 'error' }, 'The verifier could not start: ' + m.message));
  } else if (m.type === 'verdict' && pending && m.id === pending.id) {
    const done = pending.done;
    pending = null;
    done(m);
  }
};
worker.onerror = (ev) => show('error', el('p', { class: 'error' }, 'The verifier failed: ' + (ev.message || 'its script did not load')));

fetch('/static/receipt/fabric.proto')
  .then((res) => { if (!res.ok) throw new Error('HTTP ' + res.status); return res.text(); })
  .then((proto) => worker.postMessage({ type: 'init', proto }))
  .catch((e) => show('error', el('p', { class: 'error' }, 'The verifier could not load its protobuf definitions: ' + e.message)));

function verify(receipt, anchor) {
  return new Promise((done) => {
    pending = { id: nextID++, done };
    worker.postMessage({ type: 'verify', id: pending.id, receipt, anchor }, [receipt, anchor]);
  });
}

// checklist shows each check as passed, failed or not checked (the reason
// is said above it).
function checklist(failedStep) {
  const at = failedStep ? CHECKS.findIndex(([step]) => step === failedStep) : CHECKS.length;
  return el('ol', { class: 'checks' }, ...CHECKS.map(([step, name, what], k) => {
    let state = 'passed';
    if (k === at) state = 'failed';
    else if (k > at) state = 'not checked';
    const li = el('li', { 'data-check': step, 'data-state': state, class: 'check-' + state.replace(' ', '-') },
      el('strong', {}, `${name}: ${state}`), ` — ${what}`);
    return li;
  }));
}

function facts(pairs) {
  const dl2 = el('dl', { class: 'facts' });
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === '') continue;
    dl2.append(el('dt', {}, k), el('dd', {}, Array.isArray(v) ? v.join(', ') : String(v)));
  }
  return dl2;
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const f = new FormData(form);
  const receiptFile = f.get('receipt');
  const anchorFile = f.get('anchor');
  delete out.dataset.step;
  show('working', el('p', {}, 'Verifying…'));
  button.disabled = true;
  try {
    const m = await verify(await receiptFile.arrayBuffer(), await anchorFile.arrayBuffer());
    const a = m.anchor ? [['Channel', m.anchor.channel], ['Genesis block hash', m.anchor.genesis]] : [];
    if (m.result) {
      const r = m.result;
      show('valid',
        el('h3', { class: 'allowed' }, 'Valid: every check passed'),
        checklist(null),
        facts([['Kind', r.kind], ['Device', r.device], ['Transaction', r.txId], ['Block', r.block], ['Position in block', r.txIndex],
          ['Owner', r.owner], ['Record status', r.recordStatus ?? r.status], ['Key ID', r.keyId], ['Endorsing orgs', r.endorsers],
          ['Reading sequence', r.seq], ['Command', r.command], ['Ack status', r.ackStatus], ...a]));
    } else if (m.refusal) {
      const c = CHECKS.find(([step]) => step === m.refusal.step);
      out.dataset.step = m.refusal.step;
      show('invalid',
        el('h3', { class: 'denied' }, `Invalid: the ${c ? c[1].toLowerCase() : m.refusal.step} check failed`),
        el('p', { class: 'error' }, m.refusal.message),
        checklist(m.refusal.step),
        facts(a));
    } else if (m.anchorError !== undefined) {
      show('error', el('p', { class: 'error' }, 'The trust anchor is neither an anchor file nor a genesis block: ' + m.anchorError));
    } else {
      show('error', el('p', { class: 'error' }, 'The verifier failed (this is no verdict on the receipt): ' + m.fault));
    }
  } catch (e) {
    show('error', el('p', { class: 'error' }, 'The files could not be read: ' + e.message));
  } finally {
    button.disabled = false;
  }
});
