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

async function refused(receipt, anchor, step, re) {
  let result;
  try {
    result = await run(receipt, anchor);
  } catch (e) {
    if (!(e instanceof v.Refusal)) throw e;
    assert.equal(e.step, step, `refused at ${e.step} (${e.message}), expected ${step}`);
    assert.match(e.message, re);
    return;
  }
  assert.fail(`verified, expected a refusal at ${step}: ${JSON.stringify(result)}`);
}

const base = f.build();

test('the three kinds verify and report what they proved', async () => {
  const r = (await run(base.reading, base.anchor));
  assert.equal(r.kind, 'reading');
  assert.equal(r.block, 3);
  assert.equal(r.txIndex, 0);
  assert.equal(r.seq, 1767225600001);
  assert.equal(r.owner, 'Org1MSP');
  assert.equal(r.status, 'active');
  assert.deepEqual(r.endorsers, ['Org1MSP', 'Org2MSP']);
  const a = (await run(base.ack, base.anchor));
  assert.equal(a.command, 'cmd-7f3a');
  assert.equal(a.ackStatus, 'acked');
  assert.equal(a.txIndex, 1);
  const s = (await run(base.status, base.anchor));
  assert.equal(s.recordStatus, 'revoked');
  assert.equal(s.block, 4);
});

test('step 1, format', async () => {
  await refused(JSON.stringify(base.ack).replace('"kind":"command-ack"', '"kind":"command-ack","kind":"command-ack"'), base.anchor, 'format', /duplicate key "kind"/);
  await refused({ ...base.ack, reading: base.reading.reading }, base.anchor, 'format', /not one of kind command-ack/);
  await refused({ ...base.ack, Command: 'x' }, base.anchor, 'format', /case-sensitive/);
  await refused({ ...base.ack, blocks: [] }, base.anchor, 'format', /blocks is empty/);
  await refused({ ...base.ack, device: '' }, base.anchor, 'format', /device is empty/);
  await refused({ ...base.ack, config: ['AAAA', ...base.ack.config.slice(1)] }, base.anchor, 'config', /config\[0\] is not a common.Block/);
  // §2: no null, canonical base64 without whitespace, hashes in lowercase hex.
  await refused({ ...base.ack, reading: null }, base.anchor, 'format', /null at \/reading/);
  await refused({ ...base.ack, txId: base.ack.txId.toUpperCase() }, base.anchor, 'format', /txId must be 64 lowercase hex/);
  const wrapped = base.ack.blocks[0].replace(/(.{76})/g, '$1\n');
  await refused({ ...base.ack, blocks: [wrapped, base.ack.blocks[1]] }, base.anchor, 'format', /padded base64/);
  await refused({ ...base.reading, reading: { ...base.reading.reading, path: base.reading.reading.path.map((h) => h.toUpperCase()) } }, base.anchor, 'format', /lowercase/);
});

test('step 2, anchor', async () => {
  await refused(base.ack, { ...base.anchor, channel: 'other' }, 'anchor', /anchor/);
  await refused(base.ack, { ...base.anchor, genesis: '00'.repeat(32) }, 'anchor', /header hash/);
  await refused({ ...base.ack, config: base.ack.config.slice(1) }, base.anchor, 'anchor', /not the genesis block 0/);
});

test('step 3, config chain', async () => {
  await refused(f.build({ config1: { sequence: 2 } }).ack, base.anchor, 'anchor', /header hash/); // another channel
  const x = f.build({ config1: { sequence: 2 } });
  await refused(x.ack, x.anchor, 'config', /sequence 2, not 1/);
  const y = f.build({ config1Block: { signers: [f.ORG1_PEER] } });
  await refused(y.ack, y.anchor, 'config', /not signed as config block 0 requires/);
  const z = f.build({ config1: { org1CRL: [Buffer.from('-----BEGIN X509 CRL-----\nMA==\n-----END X509 CRL-----\n')] } });
  // A CRL that does not parse refuses the configuration (crl.test.js has the rest).
  await refused(z.ack, z.anchor, 'config', /revocation_list\[0\] is not a CRL: malformed CRL/);
  const w = f.build({ config1Block: { lastConfig: 0 } });
  await refused(w.ack, w.anchor, 'config', /last config, not itself/);
  await refused({ ...base.ack, config: [base.ack.config[0], base.ack.config[0]] }, base.anchor, 'config', /not after config block 0/);
  const u = f.build({ config1Block: { txFilter: Buffer.from([0]) } });
  await refused(u.ack, u.anchor, 'config', /TRANSACTIONS_FILTER is not empty/);
  // §4.3: all five metadata entries of the genesis block are empty.
  const signed = f.build({ genesisBlock: { signers: [f.ORDERER] } });
  await refused(signed.ack, signed.anchor, 'config', /genesis block\): metadata SIGNATURES holds/);
  const g5 = f.build({ genesisBlock: { metadata: (m) => [m[0], m[1], m[2], m[3], Buffer.from('commit')] } });
  await refused(g5.ack, g5.anchor, 'config', /metadata COMMIT_HASH holds 6 bytes/);
  // §4.3: config blocks are canonically encoded; config[0] is checked for it before the anchor.
  const raw0 = Buffer.from(base.ack.config[0], 'base64');
  const extra = (raw) => Buffer.concat([raw, Buffer.from([0xa2, 0x06, 0x01, 0x00])]).toString('base64');
  await refused({ ...base.ack, config: [extra(raw0), base.ack.config[1]] }, base.anchor, 'config', /field 100/);
  await refused({ ...base.ack, config: [extra(raw0), base.ack.config[1]] }, { ...base.anchor, genesis: '00'.repeat(32) }, 'config', /field 100/);
  await refused({ ...base.ack, config: [base.ack.config[0], extra(Buffer.from(base.ack.config[1], 'base64'))] }, base.anchor, 'config', /field 100/);
  const fourMd = f.build({ config1Block: { metadata: (m) => m.slice(0, 4) } });
  await refused(fourMd.ack, fourMd.anchor, 'config', /4 metadata entries, not 5/);
  // The genesis sequence is 0.
  const seq = f.build({ genesis: { sequence: 3 }, config1: { sequence: 4 } });
  await refused(seq.ack, seq.anchor, 'config', /genesis block has configuration sequence 3/);
});

test('step 4, blocks', async () => {
  const t = async (tamper, re) => { const x = f.build(tamper); await refused(x.ack, x.anchor, 'blocks', re); };
  await t({ block3: { dataHash: Buffer.alloc(32) } }, /data_hash does not match/);
  await t({ block3: { txFilter: Buffer.from([0, 0]) } }, /TRANSACTIONS_FILTER is not empty/);
  await t({ block3: { signers: [f.signer('rogue-peer', 'OrdererMSP')] } }, /BlockValidation/);
  await t({ block3: { signers: [f.signer('rogue-peer', 'Org1MSP')] } }, /does not chain to a root/);
  await t({ block3: { signers: [f.ORG1_PEER] } }, /BlockValidation/);
  await t({ block3: { highS: true } }, /high S/);
  await t({ block3: { lastConfig: 0 } }, /newest config block in config at or before it is 1/);
  await t({ block3: { signers: [] } }, /BlockValidation/);
  await refused({ ...base.ack, blocks: [base.ack.blocks[1], base.ack.blocks[0]] }, base.anchor, 'blocks', /ascend/);
  await refused({ ...base.ack, blocks: [base.ack.blocks[0], base.ack.blocks[0]] }, base.anchor, 'blocks', /ascend/);
  await refused({ ...base.ack, config: [base.ack.config[0]] }, base.anchor, 'blocks', /not in config/);
  // §4.3: one encoding per block. An unknown field, a metadata entry too many
  // or too few, and framing encoded otherwise than deterministically are refused.
  const raw = Buffer.from(base.ack.blocks[1], 'base64');
  const withBlock = (b) => ({ ...base.ack, blocks: [base.ack.blocks[0], b.toString('base64')] });
  await refused(withBlock(Buffer.concat([raw, Buffer.from([0xa2, 0x06, 0x01, 0x00])])), base.anchor, 'blocks', /field 100/);
  await t({ block3: { metadata: (m) => [...m, Buffer.alloc(0)] } }, /6 metadata entries, not 5/);
  await t({ block3: { metadata: (m) => m.slice(0, 1) } }, /1 metadata entries, not 5/);
  // The same block with its header's tag and length written as a padded varint.
  const hl = raw[1];
  assert.ok(hl < 0x80);
  await refused(withBlock(Buffer.concat([Buffer.from([0x0a, hl | 0x80, 0x00]), raw.subarray(2)])), base.anchor, 'blocks', /not canonically encoded/);
});

test('step 5, the subject transaction', async () => {
  const t = async (tamper, re, which = 'ack') => { const x = f.build(tamper); await refused(x[which], x.anchor, 'transaction', re); };
  await refused({ ...base.ack, txId: '00'.repeat(32) }, base.anchor, 'transaction', /0 envelopes/);
  // §4.5: the action's header is the transaction's, and the proposal hash is taken over it.
  const otherHeader = f.enc('SignatureHeader', { creator: f.ORG1_CLIENT.sid, nonce: Buffer.from('another nonce') });
  await t({ ack: { t: { actionHeader: otherHeader } } }, /action's signature header is not the payload's/);
  await t({ ack: { args: [] } }, /names no function/);
  await t({ ack: { t: { events: Buffer.from([0xff]) } } }, /chaincode event/);
  await t({ ack: { t: { badCreatorSig: true } } }, /envelope: signature of Org1MSP:hub1 does not verify/);
  await t({ ack: { endorsers: [f.ORG1_PEER] } }, /Endorsement/);
  await t({ ack: { endorsers: [f.ORG1_PEER, f.ORG1_PEER] } }, /Endorsement/);
  await t({ ack: { endorsers: [f.ORG1_PEER, f.ORG2_CLIENT] } }, /Endorsement/);
  await t({ ack: { t: { status: 500 } } }, /status 500/);
  await t({ ack: { t: { proposalHash: Buffer.alloc(32) } } }, /proposal_hash/);
  await t({ ack: { t: { invoked: 'other' } } }, /invokes chaincode "other"/);
  await t({ ack: { t: { channel: 'other' } } }, /is for channel "other"/);
  await t({ ack: { t: { type: 1 } } }, /type 1, not ENDORSER_TRANSACTION/);
  await t({ ack: { creator: f.ORG1_PEER } }, /Writers/);
  await t({ ack: { creator: f.signer('org1-twoous', 'Org1MSP') } }, /carries 2 of the client, peer, admin and orderer OUs/);
  await t({ ack: { creator: f.signer('org1-noou', 'Org1MSP') } }, /carries 0 of/);
  await t({ ack: { creator: f.signer('rogue-peer', 'Org1MSP') } }, /does not chain/);
  await t({ ack: { creator: f.signer('org1-client', 'Org2MSP') } }, /does not chain/);
  await t({ ack: { creator: f.signer('org1-client', 'Org3MSP') } }, /Org3MSP.*not in the configuration/);
  await t({ ack: { timeMs: Date.UTC(2050, 0, 1) } }, /not valid at 2050-01-01/);
  await t({ revoke: { endorsers: [f.ORG2_PEER] } }, /Endorsement/, 'status');
});

test('identities through an intermediate CA, and admins, are writers; any orderer-org member signs blocks', async () => {
  const x = f.build({ ack: { creator: f.ORG2_CLIENT } });
  assert.equal((await run(x.ack, x.anchor)).ok, true);
  const y = f.build({ ack: { creator: f.ORG1_ADMIN } });
  assert.equal((await run(y.ack, y.anchor)).ok, true);
  // BlockValidation is ANY Writers, and the orderer org's Writers is OR('OrdererMSP.member').
  const z = f.build({ block3: { signers: [f.signer('orderer-client', 'OrdererMSP')] } });
  assert.equal((await run(z.ack, z.anchor)).ok, true);
  // Duplicate signatures of one identity count once; a bad one beside a good one does not hurt.
  const d = f.build({ block3: { signers: [f.ORG1_PEER, f.ORG1_PEER, f.ORDERER] } });
  assert.equal((await run(d.ack, d.anchor)).ok, true);
});

test('§4.4: CA certificates are CAs, and an OU identifier that names a CA admits only what it issued', async () => {
  // Both configurations name the CAs as Fabric's cryptogen does: every OU identifier names the issuing CA.
  const pinned = { msp: { Org1MSP: { pin: 'org1-ca' }, Org2MSP: { pin: 'org2-ica' } } };
  const ok = f.build({ genesis: pinned, config1: pinned, ack: { creator: f.ORG2_CLIENT } });
  for (const k of ['reading', 'ack', 'status']) assert.equal((await run(ok[k], ok.anchor)).ok, true, k);
  // Org2's identities are issued by its intermediate, not by the root its OU identifiers name.
  const root = { msp: { Org2MSP: { pin: 'org2-ca' } } };
  const off = f.build({ genesis: root, config1: root });
  await refused(off.ack, off.anchor, 'transaction', /carries the peer OU, which MSP Org2MSP accepts only from/);
  // An OU identifier naming a certificate that is not one of the MSP's CAs is a configuration fault.
  const foreign = { msp: { Org1MSP: { pin: 'org3-ca' } } };
  const fx = f.build({ config1: foreign });
  await refused(fx.ack, fx.anchor, 'config', /OU identifier names certificate .*not one of its CAs/);
  // An intermediate without the CA basic constraint is refused with the configuration.
  const notca = { msp: { Org1MSP: { intermediates: ['org1-notca'] } } };
  const nx = f.build({ config1: notca });
  await refused(nx.ack, nx.anchor, 'config', /lacks the CA basic constraint/);
});

test('step 6, the device record in force', async () => {
  const t = async (tamper, re, which = 'ack') => { const x = f.build(tamper); await refused(x[which], x.anchor, 'device', re); };
  await t({ readVersion: { block_num: 1, tx_num: 0 } }, /block 1, which wrote the device record in force, is not in blocks/);
  await t({ readVersion: { block_num: 2, tx_num: 5 } }, /no envelope 5/);
  await t({ readVersion: { block_num: 3, tx_num: 1 } }, /does not write the device record/);
  await t({ record: f.deviceRecord({ keyId: '00'.repeat(32) }) }, /not the fingerprint/);
  await t({ record: f.deviceRecord({ id: 'cold-0002' }) }, /not "cold-0001"/);
  await t({ record: f.deviceRecord({ Owner: 'Org2MSP' }) }, /case-sensitive: the field is "owner"/);
  await t({ record: f.deviceRecord({ nickname: 'fridge 7' }) }, /unknown key "nickname"/);
  await t({ record: f.deviceRecord({ keyVersion: '2' }) }, /keyVersion is not a JSON integer/);
  await t({ record: f.deviceRecord().replace('"status":"active"', '"status":"active","status":"revoked"') }, /duplicate key "status"/);
  // One org rewrites, under its own key-level policy, the record of its device to name another owner.
  const mine = { enrolVP: f.peersOf('Org1MSP') };
  const byOrg1 = { endorsers: [f.ORG1_PEER] };
  await t({ ...mine, rewrite: { record: f.deviceRecord({ owner: 'Org2MSP' }), tx: byOrg1 } }, /naming Org2MSP as owner, but is neither endorsed by a peer of Org2MSP nor/);
  await t({ enrolEndorsers: [f.ORG1_PEER] }, /wrote the device record.*Endorsement/);
  await t({ ack: { reads: [] } }, /does not read the device record/);
  await t({ ack: { reads: [{ key: f.devKey(f.DEVICE) }] } }, /did not exist/);
});

test('step 7, the subject', async () => {
  const t = async (tamper, re, which) => { const x = f.build(tamper); await refused(x[which], x.anchor, 'subject', re); };
  const x = f.build();
  await refused({ ...x.reading, reading: { ...x.reading.reading, signature: x.reading.reading.payload } }, x.anchor, 'subject', /does not lead/);
  await refused({ ...x.reading, reading: { ...x.reading.reading, index: 2 } }, x.anchor, 'subject', /does not lead/);
  await refused({ ...x.reading, reading: { ...x.reading.reading, size: 4 } }, x.anchor, 'subject', /not the batch size 3/);
  await refused({ ...x.reading, reading: { ...x.reading.reading, path: [] } }, x.anchor, 'subject', /does not lead/);
  await refused({ ...x.reading, device: 'cold-0002' }, x.anchor, 'device', /does not read the device record/);
  await t({ batchFn: 'telemetry:Seen' }, /not telemetry:SubmitBatch or telemetry:Submit/, 'reading');
  const one = f.build({ batchFn: 'telemetry:Submit' }); // a batch of one
  assert.equal((await run(one.reading, one.anchor)).ok, true);
  await t({ record: f.deviceRecord({ status: 'suspended' }) }, /status suspended, not active/, 'reading');
  await t({ record: f.deviceRecord({ status: 'revoked' }) }, /status revoked/, 'ack');
  await t({ cmdResult: 'other' }, /result is "other"/, 'ack');
  await t({ ack: { args: ['command:Ack', '{"p":"e30=","s":"AA=="}'] } }, /not an ack envelope/, 'ack');
  await t({ ack: { args: ['command:Ack', '{}', 'more'] } }, /with 2 arguments/, 'ack');
  // §3: the kind's function is checked after the record in force, at step 7.
  const wrongKind = f.build();
  await refused({ ...wrongKind.ack, kind: 'reading', command: undefined, reading: wrongKind.reading.reading }, wrongKind.anchor, 'subject', /not telemetry:SubmitBatch/);
  await refused({ ...wrongKind.reading, kind: 'command-ack', reading: undefined, command: 'cmd-7f3a' }, wrongKind.anchor, 'subject', /not command:Ack/);
  await refused({ ...wrongKind.reading, txId: wrongKind.status.txId, blocks: [wrongKind.reading.blocks[0], wrongKind.status.blocks[0]] }, wrongKind.anchor, 'device', /does not read the device record/);
  // §6: a device-status receipt of a transaction that does not write the record
  // is refused at step subject, and so is every fault of the record it wrote.
  await refused({ ...wrongKind.reading, kind: 'device-status', reading: undefined }, wrongKind.anchor, 'subject', /does not write the device record/);
  await t({ revoke: { writes: [] } }, /does not write the device record/, 'status');
  await t({ revoke: { writes: [{ key: f.devKey(f.DEVICE), is_delete: true }] } }, /deletes/, 'status');
  await t({ revoke: { writes: [{ key: f.devKey(f.DEVICE), value: f.deviceRecord({ status: 'revoked', keyId: '00'.repeat(32) }) }] } }, /not the fingerprint/, 'status');
  await t({ revoke: { writes: [{ key: f.devKey(f.DEVICE), value: f.deviceRecord({ status: 'revoked', extra: 1 }) }] } }, /unknown key "extra"/, 'status');
  // Org2 alone, under a key-level policy naming Org2, rewrites a record that names Org1 as owner.
  const readsEnrol = [{ key: f.devKey(f.DEVICE), version: { block_num: 2, tx_num: 0 } }];
  await t({ enrolVP: f.peersOf('Org2MSP'), statusWithAnchor: true, revoke: { endorsers: [f.ORG2_PEER], reads: readsEnrol } }, /naming Org1MSP as owner, but is neither/, 'status');
  // A suspended device's ack still verifies.
  const s = f.build({ record: f.deviceRecord({ status: 'suspended' }) });
  assert.equal((await run(s.ack, s.anchor)).status, 'suspended');
});

test('command line: exit codes and one line of JSON', async () => {
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
  r = cli('--anchor', anchor, w('bad.json', { ...base.ack, txId: '00'.repeat(32) }));
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

test('§5: a record is its owner\'s word, or the consortium\'s', async () => {
  const E12 = [f.ORG1_PEER, f.ORG2_PEER];
  const E123 = [f.ORG1_PEER, f.ORG2_PEER, f.ORG3_PEER];
  const org3 = (o = {}) => f.deviceRecord({ owner: 'Org3MSP', ...o });
  // The consortium (MAJORITY: two of three) may write a record naming Org3 as owner ...
  const consortium = f.build({ threeOrgs: true, record: org3(), enrolEndorsers: E12 });
  for (const k of ['reading', 'ack']) assert.equal((await run(consortium[k], consortium.anchor)).owner, 'Org3MSP');
  const all = f.build({ threeOrgs: true, record: org3(), enrolEndorsers: E123 });
  assert.equal((await run(all.reading, all.anchor)).owner, 'Org3MSP');
  // ... the owner may rewrite its own record under its key-level policy ...
  const own = f.build({ enrolVP: f.peersOf('Org1MSP'), rewrite: { record: f.deviceRecord({ keyVersion: 2 }), tx: { endorsers: [f.ORG1_PEER] } } });
  assert.equal((await run(own.reading, own.anchor)).ok, true);
  // ... but no single org may name another as owner.
  const other = f.build({ threeOrgs: true, enrolVP: f.peersOf('Org1MSP'), rewrite: { record: org3(), tx: { endorsers: [f.ORG1_PEER] } } });
  await refused(other.reading, other.anchor, 'device', /naming Org3MSP as owner, but is neither endorsed by a peer of Org3MSP nor by the channel's endorsement policy/);
  const org3alone = f.build({ threeOrgs: true, record: org3(), enrolEndorsers: [f.ORG3_PEER] });
  await refused(org3alone.ack, org3alone.anchor, 'device', /Endorsement/); // the enrolment itself needs MAJORITY
});

test('§4.6: key-level policies proven by the anchors in the receipt', async () => {
  const dev = f.devKey(f.DEVICE);
  const readsEnrol = [{ key: dev, version: { block_num: 2, tx_num: 0 } }];
  const revokedRecord = f.deviceRecord({ status: 'revoked' });
  const revoke = (endorsers, reads = readsEnrol) => ({ endorsers, reads, writes: [{ key: dev, value: revokedRecord }] });
  const vp = f.peersOf('Org1MSP');

  // The owner revokes its device alone: its key-level policy, proven by the enrolment.
  const ok = f.build({ enrolVP: vp, revoke: revoke([f.ORG1_PEER]), statusWithAnchor: true });
  assert.equal((await run(ok.status, ok.anchor)).recordStatus, 'revoked');
  assert.deepEqual((await run(ok.status, ok.anchor)).endorsers, ['Org1MSP']);
  // Without the anchor the policy is not proven, and the channel's MAJORITY is not met.
  await refused({ ...ok.status, blocks: [ok.status.blocks[1]] }, ok.anchor, 'transaction', /\/Channel\/Application\/Endorsement/);
  // Another org cannot revoke it alone, anchor or not.
  const other = f.build({ enrolVP: vp, revoke: revoke([f.ORG2_PEER]), statusWithAnchor: true });
  await refused(other.status, other.anchor, 'transaction', /key-level policy of .*dev.*is not satisfied/);
  // An empty VALIDATION_PARAMETER is no policy: MAJORITY again.
  const none = f.build({ enrolVP: Buffer.alloc(0), revoke: revoke([f.ORG1_PEER]), statusWithAnchor: true });
  await refused(none.status, none.anchor, 'transaction', /Endorsement/);
  // A key written without being read has no proven policy.
  const unread = f.build({ enrolVP: vp, revoke: revoke([f.ORG1_PEER], []), statusWithAnchor: true });
  await refused(unread.status, unread.anchor, 'transaction', /Endorsement/);
  // Recursively: a value-only write keeps the policy in force before it.
  const chain = f.build({
    enrolVP: vp, rewrite: { record: f.deviceRecord({ keyVersion: 2 }), tx: { endorsers: [f.ORG1_PEER] } },
    revoke: revoke([f.ORG1_PEER], [{ key: dev, version: { block_num: 2, tx_num: 1 } }]), statusWithAnchor: true,
  });
  assert.equal((await run(chain.status, chain.anchor)).recordStatus, 'revoked');
  assert.equal((await run(chain.reading, chain.anchor)).ok, true);
  // A transaction that claims to have read its own write is refused.
  const cycle = f.build({ enrolVP: vp, revoke: revoke([f.ORG1_PEER], [{ key: dev, version: { block_num: 4, tx_num: 0 } }]) });
  await refused(cycle.status, cycle.anchor, 'transaction', /depends on itself/);
  // The key-level policy is checked for the record's writer too (step device).
  const rot = f.build({ enrolVP: vp, rewrite: { record: f.deviceRecord({ keyVersion: 2 }), tx: { endorsers: [f.ORG2_PEER] } } });
  await refused(rot.reading, rot.anchor, 'device', /key-level policy of .* is not satisfied/);
});

test('§4.6: an anchor in the receipt that is not valid, or not endorsed, refuses the receipt', async () => {
  const dev = f.devKey(f.DEVICE);
  const readsEnrol = [{ key: dev, version: { block_num: 2, tx_num: 0 } }];
  const revoke = (endorsers, reads = readsEnrol) => ({ endorsers, reads, writes: [{ key: dev, value: f.deviceRecord({ status: 'revoked' }) }] });
  const E12 = [f.ORG1_PEER, f.ORG2_PEER];
  // The subject itself satisfies the channel's policy; its anchor, in the receipt, is no endorser
  // transaction that verifies: that refuses the receipt (step transaction), it does not fall back.
  const bad500 = f.build({ enrol: { t: { status: 500 } }, revoke: revoke(E12), statusWithAnchor: true });
  await refused(bad500.status, bad500.anchor, 'transaction', /block 2, envelope 0.*status 500/);
  const lone = f.build({ enrolEndorsers: [f.ORG1_PEER], revoke: revoke(E12), statusWithAnchor: true });
  await refused(lone.status, lone.anchor, 'transaction', /block 2, envelope 0.*Endorsement/);
  // Left out of the receipt, the same anchor proves nothing and refuses nothing.
  assert.equal((await run({ ...lone.status, blocks: [lone.status.blocks[1]] }, lone.anchor)).recordStatus, 'revoked');
  // An anchor whose block is in the receipt but that has no such envelope is refused too.
  const none = f.build({ revoke: revoke(E12, [{ key: dev, version: { block_num: 2, tx_num: 7 } }]), statusWithAnchor: true });
  await refused(none.status, none.anchor, 'transaction', /block 2 has no envelope 7/);
  // The record writer's anchors refuse at step device.
  const rewrite = { record: f.deviceRecord({ keyVersion: 2 }), tx: { endorsers: E12 } };
  const badRec = f.build({ enrolEndorsers: [f.ORG1_PEER], rewrite });
  await refused(badRec.reading, badRec.anchor, 'device', /block 2, envelope 0.*Endorsement/);
});

test('§4.6: a metadata write without VALIDATION_PARAMETER leaves the key without a policy', async () => {
  const dev = f.devKey(f.DEVICE);
  const vp = f.peersOf('Org1MSP');
  const revokeOf = (reads) => ({ endorsers: [f.ORG1_PEER], reads, writes: [{ key: dev, value: f.deviceRecord({ status: 'revoked' }) }] });
  // The enrolment writes other metadata only: no policy, so the owner alone cannot revoke.
  const other = f.build({
    enrol: { metadataWrites: [{ key: dev, entries: [{ name: 'OTHER', value: vp }] }] },
    revoke: revokeOf([{ key: dev, version: { block_num: 2, tx_num: 0 } }]), statusWithAnchor: true,
  });
  await refused(other.status, other.anchor, 'transaction', /Endorsement/);
  // The enrolment sets the owner's policy; a later metadata write without one removes it.
  const removed = f.build({
    enrolVP: vp,
    rewrite: {
      record: f.deviceRecord({ keyVersion: 2 }),
      tx: { endorsers: [f.ORG1_PEER], metadataWrites: [{ key: dev, entries: [{ name: 'OTHER', value: Buffer.from('x') }] }] },
    },
    revoke: revokeOf([{ key: dev, version: { block_num: 2, tx_num: 1 } }]), statusWithAnchor: true,
  });
  await refused(removed.status, removed.anchor, 'transaction', /Endorsement/);
  // With the parameter kept, the same revocation verifies.
  const kept = f.build({
    enrolVP: vp,
    rewrite: {
      record: f.deviceRecord({ keyVersion: 2 }),
      tx: { endorsers: [f.ORG1_PEER], metadataWrites: [{ key: dev, entries: [{ name: 'OTHER', value: Buffer.from('x') }, { name: 'VALIDATION_PARAMETER', value: vp }] }] },
    },
    revoke: revokeOf([{ key: dev, version: { block_num: 2, tx_num: 1 } }]), statusWithAnchor: true,
  });
  assert.equal((await run(kept.status, kept.anchor)).recordStatus, 'revoked');
});

// chainReceipt: a device-status receipt whose subject (block 4) reads the
// record at the last of n transactions of block 2, each of which rewrote the
// record after reading the one before; the first enrolled it with the owner's
// key-level policy. Verifying it follows n + 1 transactions.
function chainReceipt(n) {
  const dev = f.devKey(f.DEVICE);
  const envs = [];
  for (let k = 0; k < n; k++) {
    envs.push(f.endorserTx({
      args: [k === 0 ? 'device:Enroll' : 'device:Update', '{}'],
      reads: k === 0 ? [] : [{ key: dev, version: { block_num: 2, tx_num: k - 1 } }],
      writes: [{ key: dev, value: f.deviceRecord({ keyVersion: k + 1 }) }],
      metadataWrites: k === 0 ? [{ key: dev, entries: [{ name: 'VALIDATION_PARAMETER', value: f.peersOf('Org1MSP') }] }] : [],
      endorsers: k === 0 ? [f.ORG1_PEER, f.ORG2_PEER] : [f.ORG1_PEER],
      timeMs: f.T0 + k,
    }).env);
  }
  const revoke = f.endorserTx({
    args: ['device:Revoke', f.DEVICE], reads: [{ key: dev, version: { block_num: 2, tx_num: n - 1 } }],
    writes: [{ key: dev, value: f.deviceRecord({ status: 'revoked' }) }], endorsers: [f.ORG1_PEER], timeMs: f.T0 + 120e3,
  });
  const b64 = (b) => b.toString('base64');
  return { ...base.status, txId: revoke.txId, blocks: [f.block(2, envs, 1), f.block(4, [revoke.env], 1)].map(b64) };
}

test('§4.6: a receipt that makes the verifier follow more than 32 transactions is refused', async () => {
  assert.equal((await run(chainReceipt(31), base.anchor)).recordStatus, 'revoked'); // 32 transactions in all
  await refused(chainReceipt(32), base.anchor, 'transaction', /more than 32 transactions/);
});
