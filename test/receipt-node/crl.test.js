// The CRL reader of verify.mjs against Go's, and CRLs in receipts: the
// revocation_list of an MSP is read as the Go verifier (receipt/trust) reads
// it, rule for rule.
//   node --test test/receipt-node/
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');
const v = require('./verify.js');
const f = require('./fixture.js');

const PKI = path.join(__dirname, 'testdata', 'pki');
const vectors = JSON.parse(fs.readFileSync(path.join(__dirname, 'testdata', 'crl-vectors.json'), 'utf8'));
const byName = Object.fromEntries(vectors.map((x) => [x.name, x]));
const CAS = ['org1-ca', 'org2-ca', 'org2-ica', 'org3-ca', 'orderer-ca', 'rogue-ca'];
const cert = (name) => v.parseCertificate(new crypto.X509Certificate(fs.readFileSync(path.join(PKI, name + '.pem'))).raw);
const crypto = require('crypto');

// pemCRL: a vector as Fabric CA writes a CRL, PEM "X509 CRL".
const pemCRL = (name) => Buffer.from(`-----BEGIN X509 CRL-----\n${byName[name].der.match(/.{1,64}/g).join('\n')}\n-----END X509 CRL-----\n`);

test('every CRL vector reads as Go reads it: parses or not, the same serials, signed by the same CAs', async () => {
  const cas = Object.fromEntries(CAS.map((n) => [n, cert(n)]));
  let parsed = 0;
  for (const vec of vectors) {
    const der = Buffer.from(vec.der, 'base64');
    let crl = null;
    try {
      crl = v.parseCRL(der);
    } catch (e) {
      if (!(e instanceof v.CRLError)) throw e;
      assert.equal(vec.ok, false, `${vec.name}: Go parses it, verify.mjs refuses it: ${e.message}`);
      continue;
    }
    assert.equal(vec.ok, true, `${vec.name}: Go refuses it (${vec.error}), verify.mjs parses it`);
    parsed++;
    assert.deepEqual(crl.serials.map(String), vec.serials || [], `${vec.name}: serials`);
    const signedBy = [];
    for (const n of CAS) if (await v.crlSignedBy(crl, cas[n])) signedBy.push(n);
    assert.deepEqual(signedBy, vec.signedBy || [], `${vec.name}: signed by`);
  }
  assert.ok(parsed > 10, 'some vectors parse');
  assert.ok(vectors.length - parsed > 100, 'some vectors are refused');
});

test('malformed CRLs are refused with a CRL error, not a crash', () => {
  const good = Buffer.from(byName['org1-ca revokes org1-client'].der, 'base64');
  const bad = {
    empty: Buffer.alloc(0),
    'not a SEQUENCE': Buffer.concat([Buffer.from([0x31]), good.subarray(1)]),
    'indefinite length': Buffer.from([0x30, 0x80, 0x00, 0x00]),
    'non-minimal length': Buffer.concat([Buffer.from([0x30, 0x82, 0x00, good[1] & 0x7f]), good.subarray(2, 2 + (good[1] & 0x7f))]),
    truncated: good.subarray(0, good.length - 1),
    'a certificate': new crypto.X509Certificate(fs.readFileSync(path.join(PKI, 'org1-ca.pem'))).raw,
  };
  for (const [name, der] of Object.entries(bad)) {
    assert.throws(() => v.parseCRL(der), v.CRLError, name);
  }
  // Bytes after the CRL are not read, as Go's parser does not read them.
  assert.deepEqual(v.parseCRL(Buffer.concat([good, Buffer.from('junk')])).serials, v.parseCRL(good).serials);
});

test('signedBigInt reads serials as two\'s-complement integers', () => {
  assert.equal(v.signedBigInt(Buffer.from([0x00, 0x80])), 128n);
  assert.equal(v.signedBigInt(Buffer.from([0xfb])), -5n);
  assert.equal(v.signedBigInt(Buffer.from([0x01, 0x00])), 256n);
  assert.equal(cert('org1-client').serial.toString(), new crypto.X509Certificate(fs.readFileSync(path.join(PKI, 'org1-client.pem'))).serialNumber
    .replace(/^/, '0x').replace(/.*/, (h) => BigInt(h).toString()));
});

// ---------------------------------------------------------------- CRLs in receipts

const anchorOf = (a) => ({ channel: a.channel, genesis: Buffer.from(a.genesis, 'hex') });
const run = (receipt, anchor) => v.verifyReceipt(Buffer.from(JSON.stringify(receipt)), anchorOf(anchor));

async function refused(receipt, anchor, step, re) {
  try {
    const r = await run(receipt, anchor);
    assert.fail(`verified, expected a refusal at ${step}: ${JSON.stringify(r)}`);
  } catch (e) {
    if (!(e instanceof v.Refusal)) throw e;
    assert.equal(e.step, step, `refused at ${e.step} (${e.message}), expected ${step}`);
    assert.match(e.message, re);
  }
}

async function verifies(b) {
  for (const kind of ['reading', 'ack', 'status']) await run(b[kind], b.anchor);
}

test('a CRL of the MSP\'s CA that revokes none of the signers changes no verdict', async () => {
  await verifies(f.build({ config1: { org1CRL: [pemCRL('org1-ca revokes an unknown serial')] } }));
  await verifies(f.build({ config1: { org1CRL: [pemCRL('org1-ca revokes nothing')] } }));
  // A CRL in a later configuration does not reach back to blocks before it.
  await verifies(f.build({ laterConfig: true, config1: {} }));
});

test('a signer revoked by a CRL of its issuing CA is refused, at the step the signature belongs to', async () => {
  // The creator of the batch and the ack (Org1's hub): their transactions.
  for (const crl of ['org1-ca revokes org1-client', 'org1-ca hand-made, revokes org1-client',
    'org1-ca SHA-1, GeneralizedTime, no nextUpdate, negative serial, reason code']) {
    const b = f.build({ config1: { org1CRL: [pemCRL(crl)] } });
    await refused(b.reading, b.anchor, 'transaction', /creator is not valid: identity Org1MSP:hub1: certificate "hub1" \(serial \d+\) is revoked by a CRL of "ca\.org1\.test"/);
    await refused(b.ack, b.anchor, 'transaction', /revoked by a CRL/);
    // The device-status receipt's creator is Org1's admin, which no CRL names.
    await run(b.status, b.anchor);
  }
  // Its dates do not matter, as in Go: a CRL whose nextUpdate is long past,
  // or whose thisUpdate is to come, revokes all the same.
  for (const crl of ['raw: expired long ago', 'raw: issued in the future']) {
    const b = f.build({ config1: { org1CRL: [pemCRL(crl)] } });
    await refused(b.reading, b.anchor, 'transaction', /"hub1" \(serial \d+\) is revoked by a CRL/);
  }
  // CRLs in DER, not PEM, count as well (the Go verifier reads both).
  const der = f.build({ config1: { org1CRL: [Buffer.from(byName['org1-ca revokes org1-client'].der, 'base64')] } });
  await refused(der.reading, der.anchor, 'transaction', /revoked by a CRL/);
  // Org1's peer, an endorser: MAJORITY of two orgs is no longer met by the
  // subject transaction of every kind.
  const peer = f.build({ config1: { org1CRL: [pemCRL('org1-ca revokes org1-peer0')] } });
  for (const kind of ['reading', 'ack', 'status']) {
    await refused(peer[kind], peer.anchor, 'transaction', /MAJORITY.*"peer0\.org1\.test" \(serial \d+\) is revoked by a CRL/s);
  }
  // The CRL in the genesis configuration instead: the same.
  const early = f.build({ genesis: { org1CRL: [pemCRL('org1-ca revokes org1-client')] }, config1: { org1CRL: [pemCRL('org1-ca revokes org1-client')] } });
  await refused(early.reading, early.anchor, 'transaction', /revoked by a CRL/);
});

test('a revoked intermediate CA revokes what it issued; a CRL of an intermediate revokes its certificates', async () => {
  const ica = f.build({ config1: { msp: { Org2MSP: { crl: [pemCRL('org2-ca revokes org2-ica')] } } } });
  await refused(ica.reading, ica.anchor, 'transaction', /"ica\.org2\.test" \(serial \d+\) is revoked by a CRL of "ca\.org2\.test"/);
  const peer = f.build({ config1: { msp: { Org2MSP: { crl: [pemCRL('org2-ica revokes org2-peer0')] } } } });
  await refused(peer.reading, peer.anchor, 'transaction', /"peer0\.org2\.test" \(serial \d+\) is revoked by a CRL of "ica\.org2\.test"/);
});

test('a CRL no CA of the MSP signed revokes nothing, even one that names the CA as its issuer', async () => {
  // rogue-ca has Org1's CA's subject and another key.
  await verifies(f.build({ config1: { org1CRL: [pemCRL('rogue-ca revokes org1-client')] } }));
  // Org2's CA revoking Org1's serials in Org1's MSP: not its CA.
  const other = Buffer.from(byName['org2-ica revokes org2-peer0'].der, 'base64');
  await verifies(f.build({ config1: { org1CRL: [other] } }));
  // A signature that verifies under no key, whatever it names.
  const flipped = vectors.find((x) => x.ok && !x.signedBy && /^byte \d+ xor/.test(x.name) && x.serials && x.serials.length === 1);
  assert.ok(flipped, 'a parsing CRL with a broken signature');
  await verifies(f.build({ config1: { org1CRL: [Buffer.from(flipped.der, 'base64')] } }));
});

test('a CRL that does not parse refuses the configuration, as the Go verifier does', async () => {
  for (const vec of vectors.filter((x) => !x.ok).slice(0, 5)) {
    const b = f.build({ config1: { org1CRL: [Buffer.from(vec.der, 'base64').length ? Buffer.from(vec.der, 'base64') : Buffer.from('-')] } });
    await refused(b.reading, b.anchor, 'config', /MSP Org1MSP revocation_list\[0\] is not a CRL/);
  }
  // One bad CRL among good ones refuses all the same.
  const b = f.build({ config1: { org1CRL: [pemCRL('org1-ca revokes nothing'), Buffer.from('-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n')] } });
  await refused(b.ack, b.anchor, 'config', /revocation_list\[1\] is not a CRL/);
});
