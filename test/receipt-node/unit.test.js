// Unit tests of the pieces of verify.js that can be checked alone:
//   node --test test/receipt-node/
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const v = require('./verify.js');

const vectors = JSON.parse(fs.readFileSync(path.join(__dirname, 'testdata', 'fabric-vectors.json'), 'utf8'));
const hex = (h) => Buffer.from(h, 'hex');
const str = (b) => Buffer.from(b).toString('latin1');
const num = (x) => Number(x.toString());

// ---------------------------------------------------------------- fabric.proto field numbers

test('fabric.proto decodes what fabric-protos-go-apiv2 encodes', () => {
  const d = (type, name = type) => v.decode(type, hex(vectors[name]), name);

  const block = d('Block');
  assert.equal(num(block.header.number), 300);
  assert.equal(str(block.header.previous_hash), 'prev');
  assert.equal(str(block.header.data_hash), 'data');
  assert.deepEqual(block.data.data.map(str), ['e0', 'e1']);
  assert.deepEqual(block.metadata.metadata.map(str), ['sig', '', 'flt']);

  const md = d('Metadata');
  assert.equal(str(md.value), 'v');
  assert.equal(str(md.signatures[0].signature_header), 'sh');
  assert.equal(str(md.signatures[0].signature), 's');
  assert.equal(str(md.signatures[0].identifier_header), 'ih');

  const obm = d('OrdererBlockMetadata');
  assert.equal(num(obm.last_config.index), 7);
  assert.equal(str(obm.consenter_metadata), 'cm');

  const env = d('Envelope');
  assert.equal(str(env.payload), 'p');
  assert.equal(str(env.signature), 's');

  const pl = d('Payload');
  assert.equal(str(pl.header.channel_header), 'ch');
  assert.equal(str(pl.header.signature_header), 'sh');
  assert.equal(str(pl.data), 'd');

  const ch = d('ChannelHeader');
  assert.equal(ch.type, 3);
  assert.equal(ch.version, 1);
  assert.equal(num(ch.timestamp.seconds), 1767225600);
  assert.equal(ch.timestamp.nanos, 5);
  assert.equal(ch.channel_id, 'iot');
  assert.equal(ch.tx_id, 'tx');
  assert.equal(num(ch.epoch), 9);
  assert.equal(str(ch.extension), 'x');
  assert.equal(str(ch.tls_cert_hash), 't');

  const sh = d('SignatureHeader');
  assert.equal(str(sh.creator), 'c');
  assert.equal(str(sh.nonce), 'n');

  const ce = d('ConfigEnvelope');
  assert.equal(num(ce.config.sequence), 4);
  const g = ce.config.channel_group;
  assert.equal(num(g.version), 1);
  assert.equal(g.mod_policy, 'M');
  assert.equal(g.groups.Orderer.mod_policy, 'Admins');
  assert.equal(num(g.values.MSP.version), 2);
  assert.equal(str(g.values.MSP.value), 'mv');
  assert.equal(g.values.MSP.mod_policy, 'A');
  assert.equal(num(g.policies.Writers.version), 3);
  assert.equal(g.policies.Writers.policy.type, 3);
  assert.equal(str(g.policies.Writers.policy.value), 'pv');
  assert.equal(g.policies.Writers.mod_policy, 'B');
  assert.equal(str(ce.last_update.payload), 'lu');

  const imp = d('ImplicitMetaPolicy');
  assert.equal(imp.sub_policy, 'Writers');
  assert.equal(imp.rule, 2);

  const spe = d('SignaturePolicyEnvelope');
  assert.equal(spe.version, 0);
  assert.equal(spe.rule.Type, 'n_out_of');
  assert.equal(spe.rule.n_out_of.n, 2);
  assert.deepEqual(spe.rule.n_out_of.rules.map((r) => [r.Type, r.signed_by]), [['signed_by', 0], ['signed_by', 1]]);
  assert.deepEqual(spe.identities.map((p) => [p.principal_classification, str(p.principal)]), [[0, 'r'], [2, 'i']]);
  assert.deepEqual(v.compileRule(spe.rule, 2), { n: 2, rules: [{ signedBy: 0 }, { signedBy: 1 }] });

  const role = d('MSPRole');
  assert.equal(role.msp_identifier, 'Org1MSP');
  assert.equal(role.role, 3);

  const mc = d('MSPConfig');
  assert.equal(mc.type, 0);
  assert.equal(str(mc.config), 'fc');

  const fc = d('FabricMSPConfig');
  assert.equal(fc.name, 'Org1MSP');
  assert.deepEqual(fc.root_certs.map(str), ['root']);
  assert.deepEqual(fc.intermediate_certs.map(str), ['int']);
  assert.deepEqual(fc.admins.map(str), ['adm']);
  assert.deepEqual(fc.revocation_list.map(str), ['crl']);
  assert.equal(fc.fabric_node_ous.enable, true);
  assert.equal(str(fc.fabric_node_ous.client_ou_identifier.certificate), 'cc');
  assert.equal(fc.fabric_node_ous.client_ou_identifier.organizational_unit_identifier, 'client');
  assert.equal(fc.fabric_node_ous.peer_ou_identifier.organizational_unit_identifier, 'peer');
  assert.equal(fc.fabric_node_ous.admin_ou_identifier.organizational_unit_identifier, 'admin');
  assert.equal(fc.fabric_node_ous.orderer_ou_identifier.organizational_unit_identifier, 'orderer');

  const si = d('SerializedIdentity');
  assert.equal(si.mspid, 'Org1MSP');
  assert.equal(str(si.id_bytes), 'pem');

  const tx = d('Transaction');
  assert.equal(str(tx.actions[0].header), 'h');
  assert.equal(str(tx.actions[0].payload), 'p');

  const cap = d('ChaincodeActionPayload');
  assert.equal(str(cap.chaincode_proposal_payload), 'cpp');
  assert.equal(str(cap.action.proposal_response_payload), 'prp');
  assert.equal(str(cap.action.endorsements[0].endorser), 'e');
  assert.equal(str(cap.action.endorsements[0].signature), 's');

  const prp = d('ProposalResponsePayload');
  assert.equal(str(prp.proposal_hash), 'ph');
  assert.equal(str(prp.extension), 'ext');

  const ca = d('ChaincodeAction');
  assert.equal(str(ca.results), 'res');
  assert.equal(str(ca.events), 'ev');
  assert.equal(ca.response.status, 200);
  assert.equal(ca.response.message, 'ok');
  assert.equal(str(ca.response.payload), 'pl');
  assert.equal(ca.chaincode_id.path, 'p');
  assert.equal(ca.chaincode_id.name, 'iotledger');
  assert.equal(ca.chaincode_id.version, '1');

  const cpp = d('ChaincodeProposalPayload');
  assert.equal(str(cpp.input), 'in');
  assert.equal(str(cpp.TransientMap.k), 'v');

  const cis = d('ChaincodeInvocationSpec');
  assert.equal(cis.chaincode_spec.type, 1);
  assert.equal(cis.chaincode_spec.chaincode_id.name, 'iotledger');
  assert.deepEqual(cis.chaincode_spec.input.args.map(str), ['telemetry:SubmitBatch', 'arg']);
  assert.equal(cis.chaincode_spec.input.is_init, true);
  assert.equal(cis.chaincode_spec.timeout, 5);

  const rws = d('TxReadWriteSet');
  assert.equal(rws.data_model, 0);
  assert.equal(rws.ns_rwset[0].namespace, 'iotledger');
  assert.equal(str(rws.ns_rwset[0].rwset), 'kv');

  const kv = d('KVRWSet');
  assert.equal(kv.reads[0].key, '\u0000dev\u0000d\u0000');
  assert.equal(num(kv.reads[0].version.block_num), 12);
  assert.equal(num(kv.reads[0].version.tx_num), 3);
  assert.equal(kv.reads[1].key, 'new');
  assert.equal(kv.reads[1].version, null, 'a read of a key that did not exist has no version');
  assert.equal(kv.writes[0].key, 'w');
  assert.equal(kv.writes[0].is_delete, true);
  assert.equal(str(kv.writes[0].value), 'val');
  assert.equal(kv.metadata_writes[0].key, 'm');
  assert.equal(kv.metadata_writes[0].entries[0].name, 'VALIDATION_PARAMETER');
  assert.equal(str(kv.metadata_writes[0].entries[0].value), 'vp');
});

// ---------------------------------------------------------------- §4.1 header DER

test('§4.3: blocks as Go encodes them deterministically are canonical, and nothing else is', () => {
  for (const name of ['Block-canonical', 'Block-genesis', 'Block-empty']) {
    const raw = hex(vectors[name]);
    const b = v.parseBlock(raw, name);
    assert.ok(Buffer.from(v.encodeBlock(b)).equals(raw), name);
    assert.equal(b.metadata.length, 5);
  }
  const b = v.parseBlock(hex(vectors['Block-canonical']), 'b');
  assert.equal(b.number, 300n);
  assert.deepEqual(b.data.map(str), ['e0', '', 'e2']);
  assert.deepEqual(b.metadata.map(str), ['sig', '', '', '', '']);
  assert.equal(v.parseBlock(hex(vectors['Block-genesis']), 'g').number, 0n);
  assert.equal(v.parseBlock(hex(vectors['Block-genesis']), 'g').previousHash.length, 0);

  const bad = (h, re) => assert.throws(() => v.parseBlock(Buffer.from(h, 'hex'), 'x'), re, h);
  const g = vectors['Block-genesis'];
  const five = '1a0a0a000a000a000a000a00';
  bad(g + 'a2060100', /field 100/); // an unknown field of Block, as the Go test appends one
  bad(g.replace('0a061a0464617461', '0a0a1a0464617461a2060100'), /field 100/); // of BlockHeader
  bad('0a001204' + '0a026530' + '1a0e0a000a000a000a000a00a2060100', /field 100/); // of BlockMetadata
  bad('0a0012062a0401020304' + five, /field 5/); // of BlockData
  bad('0a00' + '1200' + '1a080a000a000a000a00', /4 metadata entries, not 5/);
  bad('0a00' + '1200' + '1a0c0a000a000a000a000a000a00', /6 metadata entries/);
  bad('0a001200', /a header, data and metadata/);
  bad('0a00' + five, /a header, data and metadata/);
  bad('0a020800' + '1200' + five, /not canonically encoded/); // number 0 written out
  bad('0a021200' + '1200' + five, /not canonically encoded/); // an empty previous_hash written out
  bad('0a03088100' + '1200' + five, /not canonically encoded/); // number 1 as a two-byte varint
  bad('1200' + '0a00' + five, /not canonically encoded/); // fields out of order
  bad('0a000a00' + '1200' + five, /2 times/); // the header twice
  bad('0a00' + '1200' + five + '1a00', /2 times/);
  bad('0a0012' + 'ff01' + five, /not a common.Block/); // truncated
  bad('0a021002' + '1200' + five, /field 2 \(wire type 0\)/); // previous_hash as a varint
  bad('', /a header, data and metadata/);
});

test('block header DER matches encoding/asn1 of Fabric\'s header struct', () => {
  const zero = Buffer.alloc(32);
  for (const n of ['0', '1', '127', '128', '255', '256', '300', '65535', '2147483648', '9223372036854775813']) {
    const got = Buffer.from(v.headerDER(BigInt(n), Buffer.from('prev'), zero));
    assert.equal(got.toString('hex'), vectors[`header-${n}`], `number ${n}`);
  }
  assert.equal(Buffer.from(v.headerDER(0n, [], Buffer.from([1, 2]))).toString('hex'), vectors['header-0-nilprev']);
});

// ---------------------------------------------------------------- §2 strict JSON

test('strict JSON: duplicates at any depth, trailing data, bad UTF-8 and lone surrogates are refused', () => {
  const ok = (s) => v.parseStrictJSON(Buffer.from(s));
  const bad = (s, re) => assert.throws(() => v.parseStrictJSON(typeof s === 'string' ? Buffer.from(s) : s), re, String(s));
  assert.equal(ok('{"a":"\\ud83d\\ude00"}').a, '\u{1f600}');
  assert.equal(ok(' {"a":[1,{"b":null}]} \n').a[1].b, null);
  assert.equal(ok('{"n":-1.5e+3}').n.raw, '-1.5e+3');
  assert.equal(ok('"\u00e9"'), '\u00e9');
  bad('{"a":1,"a":2}', /duplicate key "a"/);
  bad('{"x":{"a":1,"a":1}}', /duplicate key/);
  bad('[{"a":1,"a":1}]', /duplicate key/);
  bad('{"\\u0061":1,"a":2}', /duplicate key "a"/);
  bad('{"a":1} {"a":2}', /trailing data/);
  bad('{"a":1}x', /trailing data/);
  bad('{"a":"\\ud800"}', /lone surrogate/);
  bad('{"a":"\\udc00"}', /lone surrogate/);
  bad('{"a":"\\ud800\\u0041"}', /lone surrogate/);
  bad(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]), /invalid UTF-8/);
  bad(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{}')]), /invalid character/);
  bad('{"a":01}', /expected/);
  bad('{"a":"x\ny"}', /control character/);
  bad('{a:1}', /object key/);
  bad('{"a":1,}', /object key/);
  bad('', /end of JSON/);
  bad('{"a":NaN}', /invalid character/);
});

const b64 = (s) => Buffer.from(s).toString('base64');

function receipt(extra = {}, drop = []) {
  const r = {
    format: 'iotledger-receipt/1', kind: 'command-ack', channel: 'iot', chaincode: 'iotledger', device: 'd1',
    txId: 'ab'.repeat(32), config: [b64('genesis')], blocks: [b64('block')], command: 'cmd-1', ...extra,
  };
  for (const k of drop) delete r[k];
  return r;
}

test('format step: unknown, case-variant, missing and other-kind fields are refused', () => {
  const check = (obj) => v.checkFormat(Buffer.from(typeof obj === 'string' ? obj : JSON.stringify(obj)));
  const refused = (obj, re) => assert.throws(() => check(obj), (e) => e instanceof v.Refusal && e.step === 'format' && re.test(e.message), re.toString());
  assert.equal(check(receipt()).command, 'cmd-1');
  refused(receipt({ extra: 1 }), /unknown key "extra"/);
  refused(receipt({ TxId: 'x' }), /case-sensitive: the field is "txId"/);
  refused(receipt({}, ['chaincode']), /missing key "chaincode"/);
  refused(receipt({ format: 'iotledger-receipt/2' }), /format/);
  refused(receipt({ kind: 'reading' }), /field "command" is not one of kind reading/);
  refused(receipt({ kind: 'device-status' }), /field "command" is not one of kind device-status/);
  refused(receipt({}, ['command']), /missing key "command"/);
  refused(receipt({ config: ['Z2VuZXNpcw'] }), /padded base64/);
  refused(receipt({ config: ['Z2VuZXNpcw=x'] }), /padded base64/);
  refused(receipt({ config: ['Z2VuZXNpcx=='] }), /canonical/);
  refused(receipt({ blocks: ['YmxvY2s-'] }), /padded base64/);
  refused(receipt({ config: [] }), /genesis/);
  refused(receipt({ channel: 5 }), /channel must be a string/);
  refused(JSON.stringify(receipt()).replace('"device":"d1"', '"device":"d1","device":"d2"'), /duplicate key "device"/);
  refused(JSON.stringify(receipt()) + '{}', /trailing data/);
  // §2: base64 without line breaks or whitespace, hashes in lowercase hex, no null anywhere.
  refused(receipt({ config: ['Z2Vu\nZXNpcw=='] }), /padded base64/);
  refused(receipt({ config: ['Z2Vu ZXNpcw=='] }), /padded base64/);
  refused(receipt({ config: ['Z2VuZXNpcw==\r\n'] }), /padded base64/);
  refused(receipt({ txId: 'tx' }), /txId must be 64 lowercase hex/);
  refused(receipt({ txId: 'AB'.repeat(32) }), /txId must be 64 lowercase hex/);
  refused(receipt({ command: null }), /null at \/command/);
  refused(receipt({ kind: 'reading', command: null }), /null at \/command/);
  refused(receipt({ config: [b64('genesis'), null] }), /null at \/config\/1/);
  refused(receipt({ extra: null }), /unknown key "extra"/);

  const reading = { payload: b64('p'), signature: b64('s'), index: 0, size: 1, path: [] };
  const r = receipt({ kind: 'reading', reading }, ['command']);
  assert.equal(check(r).reading.size, 1n);
  refused({ ...r, reading: { ...reading, extra: true } }, /unknown key "extra" in reading/);
  refused({ ...r, reading: { ...reading, Index: 0 } }, /case-sensitive/);
  refused({ ...r, reading: { ...reading, index: 1.5 } }, /integer/);
  // A position outside the batch is the subject step's to refuse; the format asks for an integer.
  assert.equal(check({ ...r, reading: { ...reading, index: -1 } }).reading.index, -1n);
  refused({ ...r, reading: { ...reading, index: 2 ** 64 } }, /out of range/);
  refused({ ...r, reading: { ...reading, path: ['00'] } }, /64 lowercase hex/);
  refused({ ...r, reading: { ...reading, path: ['AB'.repeat(32)] } }, /64 lowercase hex/);
  assert.equal(Buffer.from(check({ ...r, reading: { ...reading, path: ['ab'.repeat(32)] } }).reading.path[0]).toString('hex'), 'ab'.repeat(32));
  refused({ ...r, reading: { ...reading, path: [null] } }, /null at \/reading\/path\/0/);
  refused({ ...r, reading: { ...reading, signature: null } }, /null at \/reading\/signature/);
  refused({ ...r, reading: { payload: b64('p'), signature: b64('s'), index: 0, size: 1 } }, /missing key "path"/);
  refused(JSON.stringify(r).replace('"index":0', '"index":0,"index":1'), /duplicate key "index"/);
});

// ---------------------------------------------------------------- §6 Merkle inclusion (RFC 9162)

// The reference definitions of RFC 9162 §2.1.1 (MTH) and §2.1.3.1 (PATH).
function largestPow2Below(n) { let k = 1; while (k * 2 < n) k *= 2; return k; }
async function mth(leaves) {
  if (leaves.length === 1) return leaves[0];
  const k = largestPow2Below(leaves.length);
  return v.nodeHash(await mth(leaves.slice(0, k)), await mth(leaves.slice(k)));
}
async function refPath(m, leaves) {
  if (leaves.length <= 1) return [];
  const k = largestPow2Below(leaves.length);
  if (m < k) return [...await refPath(m, leaves.slice(0, k)), await mth(leaves.slice(k))];
  return [...await refPath(m - k, leaves.slice(k)), await mth(leaves.slice(0, k))];
}

test('Merkle inclusion verifies every leaf of trees of 1..33 leaves and nothing else', async () => {
  for (let n = 1; n <= 33; n++) {
    const leaves = await Promise.all(Array.from({ length: n }, (_, i) => v.leafHash(Buffer.from(`payload ${i}`), Buffer.from(`sig ${i}`))));
    const root = await mth(leaves);
    for (let m = 0; m < n; m++) {
      const p = await refPath(m, leaves);
      assert.ok(await v.verifyInclusion(leaves[m], m, n, p, root), `leaf ${m} of ${n}`);
      if (n > 1) {
        assert.ok(!await v.verifyInclusion(leaves[m], (m + 1) % n, n, p, root), `wrong index ${m} of ${n}`);
        assert.ok(!await v.verifyInclusion(leaves[(m + 1) % n], m, n, p, root), `wrong leaf ${m} of ${n}`);
        assert.ok(!await v.verifyInclusion(leaves[m], m, n, p.slice(0, -1), root), `short path ${m} of ${n}`);
        const bent = p.map((h, i) => (i === 0 ? crypto.createHash('sha256').update(h).digest() : h));
        assert.ok(!await v.verifyInclusion(leaves[m], m, n, bent, root), `altered path ${m} of ${n}`);
      }
      assert.ok(!await v.verifyInclusion(leaves[m], m, n, [...p, root], root), `long path ${m} of ${n}`);
    }
    assert.ok(!await v.verifyInclusion(leaves[0], n, n, [], root), 'index out of range');
  }
});

test('the reading leaf of protocol.md §9', async () => {
  const payload = Buffer.from('{"device":"cold-0001","seq":1767225600000,"ts":1767225600000,"values":[{"n":"temperature","u":"Cel","v":4.2},{"n":"door_open","vb":false}]}');
  const sig = Buffer.from('MEQCIFVvDVVuVbpd4qDjoLunv3edEwaSeUKFrsCYJI9BzEY2AiA4TL793HdPoo2VQMVFlmmLsoNdwbTZeVrG3kYq3sW5qw==', 'base64');
  assert.equal(Buffer.from(await v.leafHash(payload, sig)).toString('hex'), '5c8c4be30b9fba1856ab0dd131577e6806b160c7ae79cba9ce131d5c385e744c');
});

// ---------------------------------------------------------------- §4.4 low S

function derSig(r, s) {
  const int = (x) => {
    let h = x.toString(16);
    if (h.length % 2) h = '0' + h;
    let b = Buffer.from(h, 'hex');
    if (b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
    return Buffer.concat([Buffer.from([0x02, b.length]), b]);
  };
  const body = Buffer.concat([int(r), int(s)]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
}

test('low-S: a signature and its high-S twin both verify in OpenSSL; only the low one passes the check', () => {
  for (const [curve, namedCurve] of [['prime256v1', 'P-256'], ['secp384r1', 'P-384']]) {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve });
    const n = v.CURVE_ORDER[curve];
    const data = Buffer.from('signed bytes');
    let sawHigh = false;
    for (let k = 0; k < 8; k++) {
      const sig = crypto.sign('sha256', data, { key: privateKey, dsaEncoding: 'der' });
      const { r, s } = v.parseDERSignature(sig);
      const twin = derSig(r, n - s);
      assert.ok(crypto.verify('sha256', data, { key: publicKey, dsaEncoding: 'der' }, twin));
      assert.equal(v.isLowS(s, curve), s <= n / 2n);
      assert.equal(v.isLowS(n - s, curve), !(s <= n / 2n) || n - s === s);
      if (!v.isLowS(s, curve) || !v.isLowS(n - s, curve)) sawHigh = true;
    }
    assert.ok(sawHigh);
    assert.ok(v.isLowS(n >> 1n, curve), 's = n/2 is low');
    assert.ok(!v.isLowS((n >> 1n) + 1n, curve), 's = n/2 + 1 is high');
  }
});

test('DER signatures are parsed strictly', () => {
  const good = derSig(5n, 0x80n);
  assert.deepEqual(v.parseDERSignature(good), { r: 5n, s: 0x80n });
  assert.throws(() => v.parseDERSignature(Buffer.concat([good, Buffer.from([0])])), /trailing/);
  assert.throws(() => v.parseDERSignature(Buffer.from('3006020100020101', 'hex')), /positive/);
  assert.throws(() => v.parseDERSignature(Buffer.from('300702020005020101', 'hex')), /non-minimal/);
  assert.throws(() => v.parseDERSignature(Buffer.from('3006020180020101', 'hex')), /negative/);
  assert.throws(() => v.parseDERSignature(Buffer.from('3106020105020101', 'hex')), /SEQUENCE/);
});

// ---------------------------------------------------------------- §4.4 policies

test('signature policies: a signer satisfies at most one leaf; n-out-of counts', () => {
  // principals: 0 = Org1 member, 1 = Org2 member; identities carry their org.
  const satisfies = (id, k) => id.org === ['Org1', 'Org2'][k];
  const run = (rule, ids) => v.evalRule(rule, ids, new Array(ids.length).fill(false), satisfies);
  const a1 = { org: 'Org1', name: 'a1' };
  const b1 = { org: 'Org1', name: 'b1' };
  const a2 = { org: 'Org2', name: 'a2' };
  const and = { n: 2, rules: [{ signedBy: 0 }, { signedBy: 1 }] };
  const or = { n: 1, rules: [{ signedBy: 0 }, { signedBy: 1 }] };
  const twoOfOrg1 = { n: 2, rules: [{ signedBy: 0 }, { signedBy: 0 }] };
  assert.equal(run(and, [a1, a2]), true);
  assert.equal(run(and, [a1]), false);
  assert.equal(run(and, [a1, b1]), false);
  assert.equal(run(or, [a2]), true);
  assert.equal(run(or, []), false);
  assert.equal(run(twoOfOrg1, [a1]), false, 'one signer cannot satisfy two leaves');
  assert.equal(run(twoOfOrg1, [a1, b1]), true);
  assert.equal(run(twoOfOrg1, [a1, a2]), false);
  // nested: OutOf(2, [AND(Org1, Org2), Org1]) needs a second Org1 signer.
  const nested = { n: 2, rules: [and, { signedBy: 0 }] };
  assert.equal(run(nested, [a1, a2]), false);
  assert.equal(run(nested, [a1, a2, b1]), true);
  // A failed sub-rule does not consume signers: OutOf(1, [AND(Org1, Org1), Org1]).
  const failedFirst = { n: 1, rules: [twoOfOrg1, { signedBy: 0 }] };
  assert.equal(run(failedFirst, [a1]), true);
  // n = 0 is always satisfied.
  assert.equal(run({ n: 0, rules: [{ signedBy: 1 }] }, []), true);
});

test('compileRule checks signed_by indexes', () => {
  assert.throws(() => v.compileRule({ Type: 'signed_by', signed_by: 2 }, 2), /out of range/);
  assert.throws(() => v.compileRule({ Type: undefined }, 2), /neither/);
  assert.throws(() => v.compileRule(null, 2), /no rule/);
});

test('implicit meta thresholds: ANY, ALL, MAJORITY, and no sub-groups', () => {
  const ANY = 0; const ALL = 1; const MAJORITY = 2;
  assert.equal(v.implicitThreshold(ANY, 3), 1);
  assert.equal(v.implicitThreshold(ALL, 3), 3);
  assert.deepEqual([1, 2, 3, 4, 5].map((n) => v.implicitThreshold(MAJORITY, n)), [1, 2, 2, 3, 3]);
  assert.equal(v.implicitThreshold(MAJORITY, 0), 0);
  assert.equal(v.implicitThreshold(ALL, 0), 0);
  assert.throws(() => v.implicitThreshold(7, 2), /unknown/);
});

// ---------------------------------------------------------------- device signatures and payloads (protocol.md)

const EXAMPLE_KEY = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAExJ/oriBV03W/dyVzn0la76jZxTIC
+QYOPBIabvr48SpkYA9bSldk/k2K92K6tw67BZl9Z1drOoJV+8uZjrJ7jQ==
-----END PUBLIC KEY-----
`;

function record(extra = {}) {
  return Buffer.from(JSON.stringify({
    id: 'cold-0001', owner: 'Org1MSP', publicKey: EXAMPLE_KEY,
    keyId: '00c4e4d9158f24b02c0db2af8221e2dcd234d2165747349997772e7a5dd6f713', keyVersion: 1, status: 'active', ...extra,
  }));
}

test('device records and the signatures of protocol.md §9', async () => {
  const rec = await v.parseDeviceRecord(record(), 'cold-0001');
  assert.equal(rec.key.alg, 'ecdsa-p256');
  const payload = Buffer.from('{"device":"cold-0001","seq":1767225600000,"ts":1767225600000,"values":[{"n":"temperature","u":"Cel","v":4.2},{"n":"door_open","vb":false}]}');
  const sig = Buffer.from('MEQCIFVvDVVuVbpd4qDjoLunv3edEwaSeUKFrsCYJI9BzEY2AiA4TL793HdPoo2VQMVFlmmLsoNdwbTZeVrG3kYq3sW5qw==', 'base64');
  const msg = Buffer.concat([Buffer.from('iotledger-reading-v1\n'), payload]);
  assert.ok(await v.verifyDeviceSignature(rec.key, msg, sig));
  assert.ok(!await v.verifyDeviceSignature(rec.key, Buffer.concat([Buffer.from('iotledger-ack-v1\n'), payload]), sig), 'domain separation');
  assert.deepEqual(v.parseReadingPayload(payload), { device: 'cold-0001', seq: 1767225600000n });

  const ackEnv = Buffer.from('{"p":"eyJkZXZpY2UiOiJjb2xkLTAwMDEiLCJjb21tYW5kIjoiY21kLTdmM2EiLCJzdGF0dXMiOiJhY2tlZCIsInJlc3VsdCI6InNldHBvaW50IDQuMCIsInRzIjoxNzY3MjI1NjYwMDAwfQ==","s":"MEQCIBPk92V7hDZJS7QN1Ei+50hMdLKSWnko5hNXWYICHFVrAiA4yIE7F5YW+sdJsHd7De8XmIz5h30BV3RTtWDdebDF+Q=="}');
  const env = v.parseDeviceEnvelope(ackEnv);
  assert.deepEqual(v.parseAck(env), { device: 'cold-0001', command: 'cmd-7f3a', status: 'acked', result: 'setpoint 4.0' });
  assert.ok(await v.verifyDeviceSignature(rec.key, Buffer.concat([Buffer.from('iotledger-ack-v1\n'), env.p]), env.s));

  await assert.rejects(() => v.parseDeviceRecord(record({ id: 'other' }), 'cold-0001'), /not "cold-0001"/);
  await assert.rejects(() => v.parseDeviceRecord(record({ keyId: '00'.repeat(32) }), 'cold-0001'), /fingerprint/);
  await assert.rejects(() => v.parseDeviceRecord(record({ Status: 'active' }), 'cold-0001'), /case-sensitive: the field is "status"/);
  await assert.rejects(() => v.parseDeviceRecord(record({ status: 'lost' }), 'cold-0001'), /status/);
  await assert.rejects(() => v.parseDeviceRecord(Buffer.from(record().toString().replace('"status":"active"', '"status":"active","status":"revoked"')), 'cold-0001'), /duplicate key/);
  // §5: only the listed keys, each of its type (null: absent).
  await assert.rejects(() => v.parseDeviceRecord(record({ firmware: '1.2', future: true }), 'cold-0001'), /unknown key "future"/);
  await assert.rejects(() => v.parseDeviceRecord(record({ keyVersion: '1' }), 'cold-0001'), /keyVersion is not a JSON integer/);
  await assert.rejects(() => v.parseDeviceRecord(record({ keyVersion: 1.5 }), 'cold-0001'), /keyVersion/);
  await assert.rejects(() => v.parseDeviceRecord(record({ groups: 'g' }), 'cold-0001'), /groups/);
  await assert.rejects(() => v.parseDeviceRecord(record({ attributes: { a: 1 } }), 'cold-0001'), /attributes/);
  await assert.rejects(() => v.parseDeviceRecord(record({ private: 'no' }), 'cold-0001'), /private/);
  await assert.rejects(() => v.parseDeviceRecord(record({ enrolledAt: 'yesterday' }), 'cold-0001'), /enrolledAt/);
  await assert.rejects(() => v.parseDeviceRecord(record({ owner: '' }), 'cold-0001'), /no owner/);
  const full = {
    type: 'fridge', groups: ['cold'], attributes: { site: 'A' }, keyAlg: 'ecdsa-p256', firmware: '1.2', statusNote: '',
    pendingTransferTo: 'Org2MSP', enrolledBy: 'x', enrolledAt: '2027-01-01T00:00:00Z', updatedAt: '2027-01-01T00:00:00.5+01:00',
    updatedByTx: 'tx', private: false, encryptionKey: b64('k'.repeat(32)),
  };
  assert.equal((await v.parseDeviceRecord(record(full), 'cold-0001')).status, 'active');
  assert.equal((await v.parseDeviceRecord(record({ status: 'provisioned' }), 'cold-0001')).status, 'provisioned');
  assert.equal((await v.parseDeviceRecord(record({ firmware: null, keyVersion: null }), 'cold-0001')).status, 'active');
});

test('Ed25519 device signatures are 64 raw bytes over the message itself', async () => {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const pem = publicKey.export({ type: 'spki', format: 'pem' });
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const rec = await v.parseDeviceRecord(record({ publicKey: pem, keyId: crypto.createHash('sha256').update(der).digest('hex') }), 'cold-0001');
  assert.equal(rec.key.alg, 'ed25519');
  const msg = Buffer.from('iotledger-reading-v1\n{}');
  const sig = crypto.sign(null, msg, privateKey);
  assert.equal(sig.length, 64);
  assert.ok(await v.verifyDeviceSignature(rec.key, msg, sig));
  assert.ok(!await v.verifyDeviceSignature(rec.key, Buffer.from('other'), sig));
});

test('reading payloads follow protocol.md §4', () => {
  const p = (o) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o));
  const base = { device: 'd1', seq: 1, ts: 1, values: [{ n: 't', v: 1 }] };
  assert.equal(v.parseReadingPayload(p(base)).seq, 1n);
  assert.equal(v.parseReadingPayload(p('{"device":"d1","seq":18446744073709551615,"ts":1,"values":[{"n":"t","vb":true}]}')).seq, 18446744073709551615n);
  assert.throws(() => v.parseReadingPayload(p({ ...base, VALUES: [] })), /case-sensitive: the field is "values"/);
  assert.throws(() => v.parseReadingPayload(p('{"device":"d1","seq":1,"ts":1,"values":[{"n":"temp","v":4.2}],"VALUES":[{"n":"temp","v":-40}]}')), /unknown key "VALUES"/);
  assert.throws(() => v.parseReadingPayload(p({ ...base, seq: 0 })), /seq/);
  assert.throws(() => v.parseReadingPayload(p({ ...base, seq: 1.5 })), /integer/);
  assert.throws(() => v.parseReadingPayload(p({ ...base, values: [{ n: 't', v: 1, vb: true }] })), /exactly one/);
  assert.throws(() => v.parseReadingPayload(p({ ...base, values: [{ n: 't', v: 1 }, { n: 't', v: 2 }] })), /duplicate name/);
  assert.throws(() => v.parseReadingPayload(p({ ...base, values: [] })), /1-64/);
  assert.throws(() => v.parseReadingPayload(p({ ...base, device: 'a b' })), /valid id/);
});

// ---------------------------------------------------------------- §4.4 certificates, read from their DER

test('certificate issuance and signatures agree with node\'s X509Certificate on every pair of the test PKI', async () => {
  const dir = path.join(__dirname, 'testdata', 'pki');
  const certs = fs.readdirSync(dir).filter((n) => n.endsWith('.pem')).map((n) => {
    const der = new crypto.X509Certificate(fs.readFileSync(path.join(dir, n))).raw;
    return { name: n, der, x509: new crypto.X509Certificate(der), mine: v.parseCertificate(new Uint8Array(der)) };
  });
  let issued = 0;
  for (const c of certs) {
    assert.equal(c.mine.ca, c.x509.ca, `${c.name}: CA basic constraint`);
    assert.equal(c.mine.notBefore, Date.parse(c.x509.validFrom), `${c.name}: notBefore`);
    assert.equal(c.mine.notAfter, Date.parse(c.x509.validTo), `${c.name}: notAfter`);
    for (const i of certs) {
      assert.equal(v.checkIssued(c.mine, i.mine), c.x509.checkIssued(i.x509), `${c.name} issued by ${i.name}`);
      const want = c.x509.verify(i.x509.publicKey);
      assert.equal(await v.verifyCertSignature(c.mine, i.mine), want, `${c.name} signed by ${i.name}'s key`);
      if (want) issued++;
    }
  }
  assert.ok(issued >= certs.length, `${issued} pairs verify`);
  // A rogue CA that copies Org1's CA name does not sign for it, and one changed byte breaks a signature.
  const by = (n) => certs.find((c) => c.name === n + '.pem').mine;
  assert.equal(await v.verifyCertSignature(by('rogue-peer'), by('org1-ca')), false);
  assert.equal(await v.verifyCertSignature(by('org1-peer0'), by('org1-ca')), true);
  const tampered = Buffer.from(by('org1-peer0').der);
  tampered[tampered.length - 5] ^= 1; // in the signature
  assert.equal(await v.verifyCertSignature(v.parseCertificate(new Uint8Array(tampered)), by('org1-ca')), false);
  const tbsTampered = Buffer.from(by('org1-peer0').der);
  tbsTampered[tbsTampered.indexOf(Buffer.from('peer0.org1.test')) + 1] ^= 1; // in the subject
  assert.equal(await v.verifyCertSignature(v.parseCertificate(new Uint8Array(tbsTampered)), by('org1-ca')), false);
  assert.throws(() => v.parseCertificate(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00])), /not SEQUENCE/);
  assert.throws(() => v.parseCertificate(new Uint8Array([...by('org1-ca').der, 0])), /trailing data/);
});
