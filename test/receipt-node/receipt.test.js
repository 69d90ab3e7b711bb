// verifyReceipt end to end on the synthetic channel of fixture.js: the three
// kinds verify, and each tampering is refused at the step docs/receipts.md §3
// gives it.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('path');
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const v = require('./verify.js');
const f = require('./fixture.js');

const anchorOf = (a) => ({ channel: a.channel, genesis: Buffer.from(a.genesis, 'hex') });
const run = (receipt, anchor) => v.verifyReceipt(Buffer.from(typeof receipt === 'string' ? receipt : JSON.stringify(receipt)), anchorOf(anchor));

function refused(receipt, anchor, step, re) {
  let result;
  try {
    result = run(receipt, anchor);
  } catch (e) {
    if (!(e instanceof v.Refusal)) throw e;
    assert.equal(e.step, step, `refused at ${e.step} (${e.message}), expected ${step}`);
    assert.match(e.message, re);
    return;
  }
  assert.fail(`verified, expected a refusal at ${step}: ${JSON.stringify(result)}`);
}

const base = f.build();

test('the three kinds verify and report what they proved', () => {
  const r = run(base.reading, base.anchor);
  assert.equal(r.kind, 'reading');
  assert.equal(r.block, 3);
  assert.equal(r.txIndex, 0);
  assert.equal(r.seq, 1767225600001);
  assert.equal(r.owner, 'Org1MSP');
  assert.equal(r.status, 'active');
  assert.deepEqual(r.endorsers, ['Org1MSP', 'Org2MSP']);
  const a = run(base.ack, base.anchor);
  assert.equal(a.command, 'cmd-7f3a');
  assert.equal(a.ackStatus, 'acked');
  assert.equal(a.txIndex, 1);
  const s = run(base.status, base.anchor);
  assert.equal(s.recordStatus, 'revoked');
  assert.equal(s.block, 4);
});

test('step 1, format', () => {
  refused(JSON.stringify(base.ack).replace('"kind":"command-ack"', '"kind":"command-ack","kind":"command-ack"'), base.anchor, 'format', /duplicate key "kind"/);
  refused({ ...base.ack, reading: base.reading.reading }, base.anchor, 'format', /not one of kind command-ack/);
  refused({ ...base.ack, Command: 'x' }, base.anchor, 'format', /case-sensitive/);
  refused({ ...base.ack, blocks: [] }, base.anchor, 'format', /blocks is empty/);
  refused({ ...base.ack, device: '' }, base.anchor, 'format', /device is empty/);
  refused({ ...base.ack, config: ['AAAA', ...base.ack.config.slice(1)] }, base.anchor, 'config', /config\[0\] is not a common.Block/);
});

test('step 2, anchor', () => {
  refused(base.ack, { ...base.anchor, channel: 'other' }, 'anchor', /anchor/);
  refused(base.ack, { ...base.anchor, genesis: '00'.repeat(32) }, 'anchor', /header hash/);
  refused({ ...base.ack, config: base.ack.config.slice(1) }, base.anchor, 'anchor', /not the genesis block 0/);
});

test('step 3, config chain', () => {
  refused(f.build({ config1: { sequence: 2 } }).ack, base.anchor, 'anchor', /header hash/); // another channel
  const x = f.build({ config1: { sequence: 2 } });
  refused(x.ack, x.anchor, 'config', /sequence 2, not 1/);
  const y = f.build({ config1Block: { signers: [f.ORG1_PEER] } });
  refused(y.ack, y.anchor, 'config', /not signed as config block 0 requires/);
  const z = f.build({ config1: { org1CRL: [Buffer.from('-----BEGIN X509 CRL-----\nMA==\n-----END X509 CRL-----\n')] } });
  refused(z.ack, z.anchor, 'config', /CRL/);
  const w = f.build({ config1Block: { lastConfig: 0 } });
  refused(w.ack, w.anchor, 'config', /last config, not itself/);
  refused({ ...base.ack, config: [base.ack.config[0], base.ack.config[0]] }, base.anchor, 'config', /not after config block 0/);
  const u = f.build({ config1Block: { txFilter: Buffer.from([0]) } });
  refused(u.ack, u.anchor, 'config', /TRANSACTIONS_FILTER is not empty/);
});

test('step 4, blocks', () => {
  const t = (tamper, re) => { const x = f.build(tamper); refused(x.ack, x.anchor, 'blocks', re); };
  t({ block3: { dataHash: Buffer.alloc(32) } }, /data_hash does not match/);
  t({ block3: { txFilter: Buffer.from([0, 0]) } }, /TRANSACTIONS_FILTER is not empty/);
  t({ block3: { signers: [f.signer('rogue-peer', 'OrdererMSP')] } }, /BlockValidation/);
  t({ block3: { signers: [f.signer('rogue-peer', 'Org1MSP')] } }, /does not chain to a root/);
  t({ block3: { signers: [f.ORG1_PEER] } }, /BlockValidation/);
  t({ block3: { highS: true } }, /high S/);
  t({ block3: { lastConfig: 0 } }, /newest config block in config at or before it is 1/);
  t({ block3: { signers: [] } }, /BlockValidation/);
  refused({ ...base.ack, blocks: [base.ack.blocks[1], base.ack.blocks[0]] }, base.anchor, 'blocks', /ascend/);
  refused({ ...base.ack, blocks: [base.ack.blocks[0], base.ack.blocks[0]] }, base.anchor, 'blocks', /ascend/);
  refused({ ...base.ack, config: [base.ack.config[0]] }, base.anchor, 'blocks', /not in config/);
});

test('step 5, the subject transaction', () => {
  const t = (tamper, re, which = 'ack') => { const x = f.build(tamper); refused(x[which], x.anchor, 'transaction', re); };
  refused({ ...base.ack, txId: 'nope' }, base.anchor, 'transaction', /0 envelopes/);
  t({ ack: { t: { badCreatorSig: true } } }, /envelope: signature of Org1MSP:hub1 does not verify/);
  t({ ack: { endorsers: [f.ORG1_PEER] } }, /Endorsement/);
  t({ ack: { endorsers: [f.ORG1_PEER, f.ORG1_PEER] } }, /Endorsement/);
  t({ ack: { endorsers: [f.ORG1_PEER, f.ORG2_CLIENT] } }, /Endorsement/);
  t({ ack: { t: { status: 500 } } }, /status 500/);
  t({ ack: { t: { proposalHash: Buffer.alloc(32) } } }, /proposal_hash/);
  t({ ack: { t: { invoked: 'other' } } }, /invokes chaincode "other"/);
  t({ ack: { t: { channel: 'other' } } }, /is for channel "other"/);
  t({ ack: { t: { type: 1 } } }, /type 1, not ENDORSER_TRANSACTION/);
  t({ ack: { creator: f.ORG1_PEER } }, /Writers/);
  t({ ack: { creator: f.signer('org1-twoous', 'Org1MSP') } }, /carries 2 of the client, peer, admin and orderer OUs/);
  t({ ack: { creator: f.signer('org1-noou', 'Org1MSP') } }, /carries 0 of/);
  t({ ack: { creator: f.signer('rogue-peer', 'Org1MSP') } }, /does not chain/);
  t({ ack: { creator: f.signer('org1-client', 'Org2MSP') } }, /does not chain/);
  t({ ack: { creator: f.signer('org1-client', 'Org3MSP') } }, /Org3MSP.*not in the configuration/);
  t({ ack: { timeMs: Date.UTC(2050, 0, 1) } }, /not valid at 2050-01-01/);
  t({ revoke: { endorsers: [f.ORG2_PEER] } }, /Endorsement/, 'status');
});

test('identities through an intermediate CA, and admins, are writers; any orderer-org member signs blocks', () => {
  const x = f.build({ ack: { creator: f.ORG2_CLIENT } });
  assert.equal(run(x.ack, x.anchor).ok, true);
  const y = f.build({ ack: { creator: f.ORG1_ADMIN } });
  assert.equal(run(y.ack, y.anchor).ok, true);
  // BlockValidation is ANY Writers, and the orderer org's Writers is OR('OrdererMSP.member').
  const z = f.build({ block3: { signers: [f.signer('orderer-client', 'OrdererMSP')] } });
  assert.equal(run(z.ack, z.anchor).ok, true);
  // Duplicate signatures of one identity count once; a bad one beside a good one does not hurt.
  const d = f.build({ block3: { signers: [f.ORG1_PEER, f.ORG1_PEER, f.ORDERER] } });
  assert.equal(run(d.ack, d.anchor).ok, true);
});

test('step 6, the device record in force', () => {
  const t = (tamper, re, which = 'ack') => { const x = f.build(tamper); refused(x[which], x.anchor, 'device', re); };
  t({ readVersion: { block_num: 1, tx_num: 0 } }, /block 1, which wrote the device record in force, is not in blocks/);
  t({ readVersion: { block_num: 2, tx_num: 5 } }, /no envelope 5/);
  t({ readVersion: { block_num: 3, tx_num: 1 } }, /does not write the device record/);
  t({ record: f.deviceRecord({ keyId: '00'.repeat(32) }) }, /not the fingerprint/);
  t({ record: f.deviceRecord({ id: 'cold-0002' }) }, /not "cold-0001"/);
  t({ record: f.deviceRecord({ Owner: 'Org2MSP' }) }, /case variant/);
  t({ record: f.deviceRecord().replace('"status":"active"', '"status":"active","status":"revoked"') }, /duplicate key "status"/);
  // One org rewrites, under its own key-level policy, the record of its device to name another owner.
  const mine = { enrolVP: f.peersOf('Org1MSP') };
  const byOrg1 = { endorsers: [f.ORG1_PEER] };
  t({ ...mine, rewrite: { record: f.deviceRecord({ owner: 'Org2MSP' }), tx: byOrg1 } }, /naming Org2MSP as owner, but is neither endorsed by a peer of Org2MSP nor/);
  t({ enrolEndorsers: [f.ORG1_PEER] }, /wrote the device record.*Endorsement/);
  t({ ack: { reads: [] } }, /does not read the device record/);
  t({ ack: { reads: [{ key: f.devKey(f.DEVICE) }] } }, /did not exist/);
  t({ revoke: { writes: [] } }, /does not write the device record/, 'status');
  t({ revoke: { writes: [{ key: f.devKey(f.DEVICE), is_delete: true }] } }, /deletes/, 'status');
});

test('step 7, the subject', () => {
  const t = (tamper, re, which) => { const x = f.build(tamper); refused(x[which], x.anchor, 'subject', re); };
  const x = f.build();
  refused({ ...x.reading, reading: { ...x.reading.reading, signature: x.reading.reading.payload } }, x.anchor, 'subject', /does not lead/);
  refused({ ...x.reading, reading: { ...x.reading.reading, index: 2 } }, x.anchor, 'subject', /does not lead/);
  refused({ ...x.reading, reading: { ...x.reading.reading, size: 4 } }, x.anchor, 'subject', /not the batch size 3/);
  refused({ ...x.reading, reading: { ...x.reading.reading, path: [] } }, x.anchor, 'subject', /does not lead/);
  refused({ ...x.reading, device: 'cold-0002' }, x.anchor, 'device', /does not read the device record/);
  t({ batchFn: 'telemetry:Submit' }, /not telemetry:SubmitBatch/, 'reading');
  t({ record: f.deviceRecord({ status: 'suspended' }) }, /status suspended, not active/, 'reading');
  t({ record: f.deviceRecord({ status: 'revoked' }) }, /status revoked/, 'ack');
  t({ cmdResult: 'other' }, /result is "other"/, 'ack');
  t({ ack: { args: ['command:Ack', '{"p":"e30=","s":"AA=="}'] } }, /not an ack envelope/, 'ack');
  // A suspended device's ack still verifies.
  const s = f.build({ record: f.deviceRecord({ status: 'suspended' }) });
  assert.equal(run(s.ack, s.anchor).status, 'suspended');
});

test('command line: exit codes and one line of JSON', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'receipt-node-'));
  const w = (name, obj) => { const p = path.join(dir, name); fs.writeFileSync(p, typeof obj === 'string' ? obj : JSON.stringify(obj)); return p; };
  const anchor = w('anchor.json', base.anchor);
  const cli = (...args) => {
    try {
      return { code: 0, out: execFileSync(process.execPath, [path.join(__dirname, 'verify.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] }).toString() };
    } catch (e) {
      return { code: e.status, out: e.stdout.toString() };
    }
  };
  let r = cli('--anchor', anchor, w('ack.json', base.ack));
  assert.equal(r.code, 0);
  assert.equal(r.out.split('\n').length, 2);
  assert.equal(JSON.parse(r.out).ok, true);
  r = cli('--anchor', anchor, w('bad.json', { ...base.ack, txId: 'nope' }));
  assert.equal(r.code, 1);
  assert.deepEqual(Object.keys(JSON.parse(r.out)), ['ok', 'step', 'error']);
  assert.equal(JSON.parse(r.out).step, 'transaction');
  assert.equal(cli(w('ack2.json', base.ack)).code, 2);
  assert.equal(cli('--anchor', path.join(dir, 'missing.json'), w('ack3.json', base.ack)).code, 2);
  assert.equal(cli('--anchor', anchor, path.join(dir, 'missing.json')).code, 2);
  assert.equal(cli('--anchor', anchor, '--bogus', w('ack4.json', base.ack)).code, 2);
  assert.equal(cli('--anchor', w('badanchor.json', '{"channel":"x"}'), w('ack5.json', base.ack)).code, 2);
  fs.rmSync(dir, { recursive: true });
});

test('§5: a record is its owner\'s word, or the consortium\'s', () => {
  const E12 = [f.ORG1_PEER, f.ORG2_PEER];
  const E123 = [f.ORG1_PEER, f.ORG2_PEER, f.ORG3_PEER];
  const org3 = (o = {}) => f.deviceRecord({ owner: 'Org3MSP', ...o });
  // The consortium (MAJORITY: two of three) may write a record naming Org3 as owner ...
  const consortium = f.build({ threeOrgs: true, record: org3(), enrolEndorsers: E12 });
  for (const k of ['reading', 'ack']) assert.equal(run(consortium[k], consortium.anchor).owner, 'Org3MSP');
  const all = f.build({ threeOrgs: true, record: org3(), enrolEndorsers: E123 });
  assert.equal(run(all.reading, all.anchor).owner, 'Org3MSP');
  // ... the owner may rewrite its own record under its key-level policy ...
  const own = f.build({ enrolVP: f.peersOf('Org1MSP'), rewrite: { record: f.deviceRecord({ keyVersion: 2 }), tx: { endorsers: [f.ORG1_PEER] } } });
  assert.equal(run(own.reading, own.anchor).ok, true);
  // ... but no single org may name another as owner.
  const other = f.build({ threeOrgs: true, enrolVP: f.peersOf('Org1MSP'), rewrite: { record: org3(), tx: { endorsers: [f.ORG1_PEER] } } });
  refused(other.reading, other.anchor, 'device', /naming Org3MSP as owner, but is neither endorsed by a peer of Org3MSP nor by the channel's endorsement policy/);
  const org3alone = f.build({ threeOrgs: true, record: org3(), enrolEndorsers: [f.ORG3_PEER] });
  refused(org3alone.ack, org3alone.anchor, 'device', /Endorsement/); // the enrolment itself needs MAJORITY
});

test('§4.6: key-level policies proven by the anchors in the receipt', () => {
  const dev = f.devKey(f.DEVICE);
  const readsEnrol = [{ key: dev, version: { block_num: 2, tx_num: 0 } }];
  const revokedRecord = f.deviceRecord({ status: 'revoked' });
  const revoke = (endorsers, reads = readsEnrol) => ({ endorsers, reads, writes: [{ key: dev, value: revokedRecord }] });
  const vp = f.peersOf('Org1MSP');

  // The owner revokes its device alone: its key-level policy, proven by the enrolment.
  const ok = f.build({ enrolVP: vp, revoke: revoke([f.ORG1_PEER]), statusWithAnchor: true });
  assert.equal(run(ok.status, ok.anchor).recordStatus, 'revoked');
  assert.deepEqual(run(ok.status, ok.anchor).endorsers, ['Org1MSP']);
  // Without the anchor the policy is not proven, and the channel's MAJORITY is not met.
  refused({ ...ok.status, blocks: [ok.status.blocks[1]] }, ok.anchor, 'transaction', /\/Channel\/Application\/Endorsement/);
  // Another org cannot revoke it alone, anchor or not.
  const other = f.build({ enrolVP: vp, revoke: revoke([f.ORG2_PEER]), statusWithAnchor: true });
  refused(other.status, other.anchor, 'transaction', /key-level policy of .*dev.*is not satisfied/);
  // An empty VALIDATION_PARAMETER is no policy: MAJORITY again.
  const none = f.build({ enrolVP: Buffer.alloc(0), revoke: revoke([f.ORG1_PEER]), statusWithAnchor: true });
  refused(none.status, none.anchor, 'transaction', /Endorsement/);
  // A key written without being read has no proven policy.
  const unread = f.build({ enrolVP: vp, revoke: revoke([f.ORG1_PEER], []), statusWithAnchor: true });
  refused(unread.status, unread.anchor, 'transaction', /Endorsement/);
  // Recursively: a value-only write keeps the policy in force before it.
  const chain = f.build({
    enrolVP: vp, rewrite: { record: f.deviceRecord({ keyVersion: 2 }), tx: { endorsers: [f.ORG1_PEER] } },
    revoke: revoke([f.ORG1_PEER], [{ key: dev, version: { block_num: 2, tx_num: 1 } }]), statusWithAnchor: true,
  });
  assert.equal(run(chain.status, chain.anchor).recordStatus, 'revoked');
  assert.equal(run(chain.reading, chain.anchor).ok, true);
  // A transaction that claims to have read its own write proves nothing.
  const cycle = f.build({ enrolVP: vp, revoke: revoke([f.ORG1_PEER], [{ key: dev, version: { block_num: 4, tx_num: 0 } }]) });
  refused(cycle.status, cycle.anchor, 'transaction', /Endorsement/);
  // The key-level policy is checked for the record's writer too (step device).
  const rot = f.build({ enrolVP: vp, rewrite: { record: f.deviceRecord({ keyVersion: 2 }), tx: { endorsers: [f.ORG2_PEER] } } });
  refused(rot.reading, rot.anchor, 'device', /key-level policy of .* is not satisfied/);
});
