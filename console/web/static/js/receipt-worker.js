// The receipt verifier's worker. It runs receipt/verifyjs/verify.mjs — the
// same module as the node verifier — over WebCrypto and protobufjs, on the
// bytes the receipts page posts, and answers with the verdict.
//
// It is served with its own Content-Security-Policy (console/pages.go):
// protobufjs compiles its decoders with Function(), which the pages'
// policy forbids, so only this worker may evaluate code; and it may fetch
// nothing (connect-src falls back to default-src 'none'), so verification
// cannot reach the network even by mistake. The scripts below are loaded
// when the page opens, before any receipt is chosen.
/* global protobuf */
importScripts('/static/vendor/long.js', '/static/vendor/protobuf.min.js');

const core = import('/static/receipt/verify.mjs');
let verifier = null;

self.onmessage = async (ev) => {
  const msg = ev.data;
  const m = await core;
  if (msg.type === 'init') {
    try {
      verifier = m.receiptVerifier(protobuf, msg.proto);
      self.postMessage({ type: 'ready' });
    } catch (e) {
      self.postMessage({ type: 'fault', message: 'the verifier did not start: ' + e.message });
    }
    return;
  }
  if (msg.type !== 'verify') return;
  const reply = (r) => self.postMessage({ type: 'verdict', id: msg.id, ...r });
  if (verifier === null) {
    reply({ fault: 'the verifier has not started' });
    return;
  }
  let anchor;
  try {
    anchor = await verifier.readAnchor(new Uint8Array(msg.anchor));
  } catch (e) {
    reply({ anchorError: e.message });
    return;
  }
  try {
    const result = await verifier.verifyReceipt(new Uint8Array(msg.receipt), anchor);
    reply({ result, anchor: { channel: anchor.channel, genesis: m.toHex(anchor.genesis) } });
  } catch (e) {
    if (e instanceof m.Refusal) {
      reply({ refusal: { step: e.step, message: e.message }, anchor: { channel: anchor.channel, genesis: m.toHex(anchor.genesis) } });
    } else {
      reply({ fault: `${e.name}: ${e.message}` });
    }
  }
};
