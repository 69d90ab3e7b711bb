// A synthetic channel for the unit tests: config blocks, endorser
// transactions and signed blocks built with protobufjs and node's crypto from
// the test PKI in testdata/pki (testdata/make-certs.sh), so that
// verifyReceipt can be run end to end, on valid and tampered receipts,
// without a Fabric network. Every hook in `t` (tamper) lets a test change one
// thing and keep everything else well signed.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { pbRoot, CURVE_ORDER, parseDERSignature, headerDER } = require('./verify.js');

const PKI = path.join(__dirname, 'testdata', 'pki');
const enc = (type, obj) => Buffer.from(pbRoot.lookupType('receipt.' + type).encode(obj).finish());
const sha256 = (...p) => { const h = crypto.createHash('sha256'); p.forEach((x) => h.update(x)); return h.digest(); };
const pem = (name) => fs.readFileSync(path.join(PKI, name + '.pem'));

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

// A Fabric signer: DER ECDSA over SHA-256, low S (or high S when asked).
function signer(name, mspid) {
  const key = crypto.createPrivateKey(fs.readFileSync(path.join(PKI, name + '.key')));
  const curve = key.asymmetricKeyDetails.namedCurve;
  const sid = enc('SerializedIdentity', { mspid, id_bytes: pem(name) });
  return {
    name, mspid, sid,
    sign(data, { highS = false } = {}) {
      const sig = crypto.sign('sha256', data, { key, dsaEncoding: 'der' });
      const { r, s } = parseDERSignature(sig);
      const n = CURVE_ORDER[curve];
      const low = s > n >> 1n ? n - s : s;
      return derSig(r, highS ? n - low : low);
    },
  };
}

const ROLE = { member: 0, admin: 1, client: 2, peer: 3, orderer: 4 };

// orOf: OR('<msp>.<role>', ...) as a SignaturePolicyEnvelope.
function orOf(...principals) {
  return {
    type: 1,
    value: enc('SignaturePolicyEnvelope', {
      version: 0,
      rule: { n_out_of: { n: 1, rules: principals.map((_, k) => ({ signed_by: k })) } },
      identities: principals.map((p) => {
        const [msp, role] = p.split('.');
        return { principal_classification: 0, principal: enc('MSPRole', { msp_identifier: msp, role: ROLE[role] }) };
      }),
    }),
  };
}

// peersOf: the key-level policy the chaincode sets, "a peer of each of these orgs".
const peersOf = (...msps) => {
  const p = orOf(...msps.map((m) => `${m}.peer`));
  const env = pbRoot.lookupType('receipt.SignaturePolicyEnvelope').decode(p.value);
  env.rule.n_out_of.n = msps.length;
  return enc('SignaturePolicyEnvelope', env);
};

const implicit = (rule, sub) => ({ type: 3, value: enc('ImplicitMetaPolicy', { sub_policy: sub, rule: { ANY: 0, ALL: 1, MAJORITY: 2 }[rule] }) });
const pols = (o) => Object.fromEntries(Object.entries(o).map(([k, p]) => [k, { policy: p, mod_policy: 'Admins' }]));

// mspValue: an MSP with NodeOUs; `pin` names the CA certificate the OU
// identifiers name (Fabric's cryptogen names the root), none when absent.
function mspValue(name, { roots, intermediates = [], crl = [], pin }) {
  const ou = (id) => ({ organizational_unit_identifier: id, ...(pin ? { certificate: pem(pin) } : {}) });
  return enc('MSPConfig', {
    type: 0,
    config: enc('FabricMSPConfig', {
      name,
      root_certs: roots.map(pem),
      intermediate_certs: intermediates.map(pem),
      revocation_list: crl,
      fabric_node_ous: { enable: true, client_ou_identifier: ou('client'), peer_ou_identifier: ou('peer'), admin_ou_identifier: ou('admin'), orderer_ou_identifier: ou('orderer') },
    }),
  });
}

function channelGroup(t = {}) {
  const org = (msp, opts) => ({
    values: { MSP: { value: mspValue(msp, opts) } },
    policies: pols({
      Readers: orOf(`${msp}.admin`, `${msp}.peer`, `${msp}.client`),
      Writers: orOf(`${msp}.admin`, `${msp}.client`),
      Admins: orOf(`${msp}.admin`),
      Endorsement: orOf(`${msp}.peer`),
    }),
  });
  const group = {
    groups: {
      Orderer: {
        groups: {
          OrdererOrg: {
            values: { MSP: { value: mspValue('OrdererMSP', { roots: ['orderer-ca'] }) } },
            policies: pols({ Readers: orOf('OrdererMSP.member'), Writers: orOf('OrdererMSP.member'), Admins: orOf('OrdererMSP.admin') }),
          },
        },
        policies: pols({ BlockValidation: implicit('ANY', 'Writers'), Writers: implicit('ANY', 'Writers'), Admins: implicit('MAJORITY', 'Admins') }),
      },
      Application: {
        groups: {
          Org1: org('Org1MSP', { roots: ['org1-ca'], crl: t.org1CRL || [], ...((t.msp || {}).Org1MSP || {}) }),
          Org2: org('Org2MSP', { roots: ['org2-ca'], intermediates: ['org2-ica'], ...((t.msp || {}).Org2MSP || {}) }),
          ...(t.threeOrgs ? { Org3: org('Org3MSP', { roots: ['org3-ca'] }) } : {}),
        },
        policies: pols({ Writers: implicit('ANY', 'Writers'), Endorsement: implicit('MAJORITY', 'Endorsement'), Admins: implicit('MAJORITY', 'Admins') }),
      },
    },
    policies: pols({ Writers: implicit('ANY', 'Writers'), Admins: implicit('MAJORITY', 'Admins') }),
  };
  if (t.group) t.group(group);
  return group;
}

const CHANNEL = 'iotledger';
const CHAINCODE = 'iotledger';
const T0 = Date.UTC(2027, 0, 1, 0, 0, 0); // within every test certificate's validity
const ts = (ms) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });

const ORDERER = signer('orderer0', 'OrdererMSP');
const ORG1_PEER = signer('org1-peer0', 'Org1MSP');
const ORG2_PEER = signer('org2-peer0', 'Org2MSP');
const ORG1_CLIENT = signer('org1-client', 'Org1MSP');
const ORG1_ADMIN = signer('org1-admin', 'Org1MSP');
const ORG2_CLIENT = signer('org2-client', 'Org2MSP');
const ORG3_PEER = signer('org3-peer0', 'Org3MSP');

function configEnvelope(sequence, timeMs, t = {}) {
  const chdr = enc('ChannelHeader', { type: 1, channel_id: CHANNEL, timestamp: ts(timeMs) });
  const shdr = enc('SignatureHeader', { creator: ORDERER.sid, nonce: crypto.randomBytes(24) });
  const data = enc('ConfigEnvelope', { config: { sequence: t.sequence !== undefined ? t.sequence : sequence, channel_group: channelGroup(t) } });
  const payload = enc('Payload', { header: { channel_header: chdr, signature_header: shdr }, data });
  return enc('Envelope', { payload, signature: ORDERER.sign(payload) });
}

// endorserTx builds an endorsed chaincode transaction.
function endorserTx({
  nonce = crypto.randomBytes(24), creator = ORG1_CLIENT, args, reads = [], writes = [], metadataWrites = [],
  endorsers = [ORG1_PEER, ORG2_PEER], timeMs = T0, t = {},
}) {
  const txId = sha256(nonce, creator.sid).toString('hex');
  const chdr = enc('ChannelHeader', { type: t.type || 3, channel_id: t.channel || CHANNEL, timestamp: ts(timeMs), tx_id: t.txId || txId });
  const shdr = enc('SignatureHeader', { creator: creator.sid, nonce });
  const cis = enc('ChaincodeInvocationSpec', {
    chaincode_spec: { type: 1, chaincode_id: { name: t.invoked || CHAINCODE }, input: { args: args.map((a) => Buffer.from(a)) } },
  });
  const ccpp = enc('ChaincodeProposalPayload', { input: cis });
  const kv = enc('KVRWSet', {
    reads,
    writes: writes.map((w) => ({ key: w.key, is_delete: !!w.is_delete, value: Buffer.from(w.value || '') })),
    metadata_writes: metadataWrites,
  });
  const results = enc('TxReadWriteSet', { data_model: 0, ns_rwset: [{ namespace: CHAINCODE, rwset: kv }] });
  const cca = enc('ChaincodeAction', { results, events: t.events, response: { status: t.status || 200 }, chaincode_id: { name: CHAINCODE, version: '1' } });
  const prp = enc('ProposalResponsePayload', { proposal_hash: t.proposalHash || sha256(chdr, shdr, ccpp), extension: cca });
  const endorsements = endorsers.map((e) => ({ endorser: e.sid, signature: e.sign(Buffer.concat([prp, e.sid])) }));
  const cap = enc('ChaincodeActionPayload', { chaincode_proposal_payload: ccpp, action: { proposal_response_payload: prp, endorsements } });
  const tx = enc('Transaction', { actions: [{ header: t.actionHeader || shdr, payload: cap }] });
  const payload = enc('Payload', { header: { channel_header: chdr, signature_header: shdr }, data: tx });
  const signature = t.badCreatorSig ? creator.sign(Buffer.from('something else')) : creator.sign(payload);
  return { txId, env: enc('Envelope', { payload, signature }) };
}

// blockBytes encodes a common.Block by hand, as Fabric's deterministic
// marshalling does (receipts.md §4.3): fields in number order, a header number
// of 0 and empty hashes left out, every data and metadata element written.
function varint(n) {
  const out = [];
  let v = BigInt(n);
  do { let b = Number(v & 0x7fn); v >>= 7n; if (v > 0n) b |= 0x80; out.push(b); } while (v > 0n);
  return Buffer.from(out);
}
const field = (tag, bytes) => Buffer.concat([Buffer.from([tag]), varint(bytes.length), bytes]);
function blockBytes({ number, previousHash, dataHash, data, metadata }) {
  const header = Buffer.concat([
    number ? Buffer.concat([Buffer.from([0x08]), varint(number)]) : Buffer.alloc(0),
    previousHash.length ? field(0x12, previousHash) : Buffer.alloc(0),
    dataHash.length ? field(0x1a, dataHash) : Buffer.alloc(0),
  ]);
  return Buffer.concat([
    field(0x0a, header),
    field(0x12, Buffer.concat(data.map((d) => field(0x0a, d)))),
    field(0x1a, Buffer.concat(metadata.map((m) => field(0x0a, m)))),
  ]);
}

// block builds a signed block; `lastConfig` is the config block in force.
// Block 0 is a genesis block as Fabric makes one: no previous hash, and
// nothing in its metadata (it is trusted through the anchor, nobody signs it).
// t.metadata edits the five metadata entries after signing.
function block(number, envs, lastConfig, t = {}) {
  const dataHash = t.dataHash || sha256(...envs);
  const previousHash = number === 0 ? Buffer.alloc(0) : sha256(Buffer.from(`block ${number - 1}`));
  const der = headerDER(BigInt(number), previousHash, dataHash);
  let metadata = [Buffer.alloc(0), Buffer.alloc(0), t.txFilter || Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0)];
  if (number !== 0 || t.signers) {
    const value = enc('OrdererBlockMetadata', { last_config: { index: t.lastConfig !== undefined ? t.lastConfig : lastConfig } });
    const signers = t.signers || [ORDERER];
    const signatures = signers.map((s) => {
      const sh = enc('SignatureHeader', { creator: s.sid, nonce: crypto.randomBytes(24) });
      return { signature_header: sh, signature: s.sign(Buffer.concat([value, sh, der]), { highS: !!t.highS }) };
    });
    metadata[0] = enc('Metadata', { value, signatures });
  }
  if (t.metadata) metadata = t.metadata(metadata);
  return blockBytes({ number, previousHash, dataHash, data: envs, metadata });
}

// The device of protocol.md §9.
const DEVICE = 'cold-0001';
const DEVICE_KEY = crypto.createPrivateKey(`-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgtIdFazqcdQlaFF0k
g6IIzt5ZEzn++g+OruWHq+fOa1ShRANCAATEn+iuIFXTdb93JXOfSVrvqNnFMgL5
Bg48Ehpu+vjxKmRgD1tKV2T+TYr3Yrq3DrsFmX1nV2s6glX7y5mOsnuN
-----END PRIVATE KEY-----
`);
const DEVICE_PUB = crypto.createPublicKey(DEVICE_KEY);
const devKey = (d) => `\u0000dev\u0000${d}\u0000`;

function deviceRecord(over = {}, pub = DEVICE_PUB) {
  const der = pub.export({ type: 'spki', format: 'der' });
  return JSON.stringify({
    id: DEVICE, owner: 'Org1MSP', type: 'fridge', publicKey: pub.export({ type: 'spki', format: 'pem' }),
    keyAlg: pub.asymmetricKeyType === 'ed25519' ? 'ed25519' : 'ecdsa-p256',
    keyId: sha256(der).toString('hex'), keyVersion: 1, status: 'active', enrolledBy: 'x', enrolledAt: '2027-01-01T00:00:00Z',
    updatedAt: '2027-01-01T00:00:00Z', updatedByTx: 'tx', ...over,
  });
}

// deviceSign signs as protocol.md §1 says: ECDSA P-256 (DER, over SHA-256;
// highS gives the other valid S, which devices need not avoid) or Ed25519.
function deviceSign(domain, payload, key = DEVICE_KEY, highS = false) {
  const msg = Buffer.concat([Buffer.from(domain), payload]);
  if (key.asymmetricKeyType === 'ed25519') return crypto.sign(null, msg, key);
  const sig = crypto.sign('sha256', msg, { key, dsaEncoding: 'der' });
  if (!highS) return sig;
  const { r, s } = parseDERSignature(sig);
  const n = CURVE_ORDER.prime256v1;
  return derSig(r, s > n >> 1n ? s : n - s);
}

function leafHash(p, s) { const n = Buffer.alloc(4); n.writeUInt32BE(p.length); return sha256(Buffer.from([0]), n, p, s); }
const node = (l, r) => sha256(Buffer.from([1]), l, r);
function lp2(n) { let k = 1; while (k * 2 < n) k *= 2; return k; }
function mth(ls) { if (ls.length === 1) return ls[0]; const k = lp2(ls.length); return node(mth(ls.slice(0, k)), mth(ls.slice(k))); }
function auditPath(m, ls) {
  if (ls.length <= 1) return [];
  const k = lp2(ls.length);
  return m < k ? [...auditPath(m, ls.slice(0, k)), mth(ls.slice(k))] : [...auditPath(m - k, ls.slice(k)), mth(ls.slice(0, k))];
}

// build makes a channel (config blocks 0 and 1; block 2 enrols the device;
// block 3 holds a reading batch and an ack; block 4 revokes the device) and
// returns the anchor and the three receipts. `t` tampers with one part;
// t.threeOrgs adds Org3 to the channel, so that MAJORITY is two of three.
function build(t = {}) {
  const threeOrgs = { threeOrgs: !!t.threeOrgs };
  const genesisEnvs = [configEnvelope(0, T0 - 3600e3, { ...threeOrgs, ...(t.genesis || {}) })];
  const genesis = block(0, genesisEnvs, 0, t.genesisBlock || {});
  const config1 = block(1, [configEnvelope(1, T0 - 1800e3, { ...threeOrgs, ...(t.config1 || {}) })], 1, t.config1Block || {});

  // Block 2: the enrolment, with the key-level policy t.enrolVP on the record
  // (the chaincode's is "a peer of the owner org"); t.rewrite adds envelope 1,
  // a second write of the record that reads the first.
  const devPub = t.deviceKey ? crypto.createPublicKey(t.deviceKey) : DEVICE_PUB;
  const enrol = endorserTx({
    args: ['device:Enroll', '{}'], writes: [{ key: devKey(DEVICE), value: t.record || deviceRecord({}, devPub) }], timeMs: T0,
    metadataWrites: t.enrolVP !== undefined ? [{ key: devKey(DEVICE), entries: [{ name: 'VALIDATION_PARAMETER', value: t.enrolVP }] }] : [],
    endorsers: t.enrolEndorsers, ...(t.enrol || {}),
  });
  const b2txs = [enrol.env];
  if (t.rewrite) {
    b2txs.push(endorserTx({
      args: ['device:Transfer', DEVICE], reads: [{ key: devKey(DEVICE), version: { block_num: 2, tx_num: 0 } }],
      writes: [{ key: devKey(DEVICE), value: t.rewrite.record }], timeMs: T0 + 1e3, ...t.rewrite.tx,
    }).env);
  }
  const b2 = block(2, b2txs, 1, t.block2 || {});

  const readings = [0, 1, 2].map((k) => {
    const payload = Buffer.from(JSON.stringify({ device: DEVICE, seq: 1767225600000 + k, ts: 1767225600000 + k, values: [{ n: 'temperature', u: 'Cel', v: 4.2 + k }] }));
    return { payload, signature: deviceSign('iotledger-reading-v1\n', payload, t.deviceKey, t.deviceHighS) };
  });
  const leaves = readings.map((r) => leafHash(r.payload, r.signature));
  const readVersion = t.readVersion || { block_num: 2, tx_num: t.rewrite ? 1 : 0 };
  // The batch record names its own transaction ID, which the nonce and creator decide.
  const batchCreator = t.batchCreator || ORG1_CLIENT;
  const batchNonce = crypto.randomBytes(24);
  const batchTxId = sha256(batchNonce, batchCreator.sid).toString('hex');
  const batchRecord = JSON.stringify({
    id: batchTxId, root: mth(leaves).toString('hex'), size: t.batchSize || 3, leaves: leaves.map((l) => l.toString('hex')),
    submitter: 'hub1', mspId: 'Org1MSP', timestamp: '2027-01-01T00:01:00Z',
  });
  const batch = endorserTx({
    nonce: batchNonce,
    creator: batchCreator,
    args: [t.batchFn || 'telemetry:SubmitBatch', '{"readings":[]}'],
    reads: [{ key: devKey(DEVICE), version: readVersion }],
    writes: [{ key: `\u0000batch\u0000${batchTxId}\u0000`, value: batchRecord }],
    timeMs: T0 + 60e3,
    endorsers: t.batchEndorsers,
    ...(t.batch || {}),
  });

  const ackPayload = Buffer.from(JSON.stringify({ device: DEVICE, command: 'cmd-7f3a', status: 'acked', result: 'setpoint 4.0', ts: 1767225660000 }));
  const ackEnv = JSON.stringify({ p: ackPayload.toString('base64'), s: deviceSign('iotledger-ack-v1\n', ackPayload, t.deviceKey, t.deviceHighS).toString('base64') });
  const cmdRecord = JSON.stringify({
    id: 'cmd-7f3a', device: DEVICE, owner: 'Org1MSP', name: 'set-setpoint', status: 'acked', issuedBy: 'rule:x',
    issuedAt: '2027-01-01T00:00:30Z', expiresAt: '2027-01-01T01:00:30Z', result: t.cmdResult !== undefined ? t.cmdResult : 'setpoint 4.0',
  });
  const ack = endorserTx({
    args: ['command:Ack', ackEnv], reads: [{ key: devKey(DEVICE), version: readVersion }],
    writes: [{ key: `\u0000cmd\u0000${DEVICE}\u0000cmd-7f3a\u0000`, value: cmdRecord }], timeMs: T0 + 61e3,
    ...(t.ack || {}),
  });
  const b3 = block(3, [batch.env, ack.env], 1, t.block3 || {});

  const revoke = endorserTx({
    creator: ORG1_ADMIN, args: ['device:Revoke', DEVICE, 'stolen'],
    writes: [{ key: devKey(DEVICE), value: deviceRecord({ status: 'revoked', statusNote: 'stolen', keyVersion: 1 }) }], timeMs: T0 + 120e3,
    ...(t.revoke || {}),
  });
  const b4 = block(4, [revoke.env], 1, t.block4 || {});

  const b64 = (b) => b.toString('base64');
  const config = [genesis, config1, ...(t.laterConfig ? [block(5, [configEnvelope(2, T0 + 300e3, threeOrgs)], 5)] : [])].map(b64);
  const genesisHash = (t.genesisBlock && t.genesisBlock.dataHash) || sha256(...genesisEnvs);
  const anchor = { channel: CHANNEL, genesis: sha256(headerDER(0n, Buffer.alloc(0), genesisHash)).toString('hex') };
  const common = { format: 'iotledger-receipt/1', channel: CHANNEL, chaincode: CHAINCODE, device: DEVICE };
  const idx = t.readingIndex !== undefined ? t.readingIndex : 1;
  return {
    anchor,
    reading: {
      ...common, kind: 'reading', txId: batch.txId, config, blocks: [b2, b3].map(b64),
      reading: {
        payload: b64(readings[idx].payload), signature: b64(t.readingSig || readings[idx].signature), index: idx, size: 3,
        path: auditPath(idx, leaves).map((h) => h.toString('hex')),
      },
    },
    ack: { ...common, kind: 'command-ack', txId: ack.txId, config, blocks: [b2, b3].map(b64), command: 'cmd-7f3a' },
    status: { ...common, kind: 'device-status', txId: revoke.txId, config, blocks: (t.statusWithAnchor ? [b2, b4] : [b4]).map(b64) },
    parts: { genesis, config1, b2, b3, b4, enrol, batch, ack, revoke },
  };
}

module.exports = {
  build, block, blockBytes, varint, endorserTx, peersOf, configEnvelope, signer, deviceRecord, enc, sha256, T0,
  ORDERER, ORG1_PEER, ORG2_PEER, ORG3_PEER, ORG1_CLIENT, ORG1_ADMIN, ORG2_CLIENT, DEVICE, devKey,
};
