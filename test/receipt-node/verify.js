#!/usr/bin/env node
// An independent verifier of iotledger receipts (format iotledger-receipt/1),
// written from docs/receipts.md, with docs/protocol.md §1, §4 and §5 for what
// a device signs. It uses node's standard crypto for every hash, signature
// and certificate, and protobufjs (fabric.proto beside this file) to decode
// Fabric's messages.
//
//   node verify.js --anchor ANCHOR.json RECEIPT.json
//
// exit 0: {"ok":true,...} on stdout; exit 1: {"ok":false,"step":...,"error":...};
// exit 2: usage error. Section numbers (§) are those of docs/receipts.md unless
// another document is named.
'use strict';

const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const protobuf = require('protobufjs');

// ---------------------------------------------------------------- refusals

// The numbered steps of §3.
const STEP = {
  format: 'format',
  anchor: 'anchor',
  config: 'config',
  blocks: 'blocks',
  transaction: 'transaction',
  device: 'device',
  subject: 'subject',
};

class Refusal extends Error {
  constructor(step, message) {
    super(message);
    this.step = step;
  }
}

function refuse(step, message) {
  throw new Refusal(step, message);
}

// ---------------------------------------------------------------- protobuf

const pbRoot = new protobuf.Root();
pbRoot.loadSync(path.join(__dirname, 'fabric.proto'), { keepCase: true });
pbRoot.resolveAll();

const FABRIC_NAME = {
  Block: 'common.Block', Envelope: 'common.Envelope', Payload: 'common.Payload',
  ChannelHeader: 'common.ChannelHeader', SignatureHeader: 'common.SignatureHeader',
  Metadata: 'common.Metadata', OrdererBlockMetadata: 'common.OrdererBlockMetadata',
  ConfigEnvelope: 'common.ConfigEnvelope', ImplicitMetaPolicy: 'common.ImplicitMetaPolicy',
  SignaturePolicyEnvelope: 'common.SignaturePolicyEnvelope', MSPRole: 'common.MSPRole',
  MSPConfig: 'msp.MSPConfig', FabricMSPConfig: 'msp.FabricMSPConfig',
  SerializedIdentity: 'msp.SerializedIdentity', Transaction: 'peer.Transaction',
  ChaincodeActionPayload: 'peer.ChaincodeActionPayload',
  ChaincodeProposalPayload: 'peer.ChaincodeProposalPayload',
  ChaincodeInvocationSpec: 'peer.ChaincodeInvocationSpec',
  ProposalResponsePayload: 'peer.ProposalResponsePayload', ChaincodeAction: 'peer.ChaincodeAction',
  TxReadWriteSet: 'rwset.TxReadWriteSet', KVRWSet: 'kvrwset.KVRWSet',
};

// decode returns the decoded message, or throws a plain Error naming what failed.
function decode(type, bytes, what) {
  try {
    return pbRoot.lookupType('receipt.' + type).decode(bytes);
  } catch (e) {
    throw new Error(`${what} is not a ${FABRIC_NAME[type] || type}: ${e.message}`);
  }
}

// B returns a bytes field as a Buffer (protobufjs leaves absent bytes as []).
function B(x) {
  if (Buffer.isBuffer(x)) return x;
  return Buffer.from(x || []);
}

// U64 returns a (u)int64 field as a BigInt.
function U64(x) {
  if (x === null || x === undefined) return 0n;
  if (typeof x === 'number') return BigInt(x);
  return BigInt(x.toString());
}

function hasKey(obj, k) {
  return obj !== null && obj !== undefined && Object.prototype.hasOwnProperty.call(obj, k);
}

const sha256 = (...parts) => {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

// ---------------------------------------------------------------- strict JSON (§2)

// A JSON number, kept as its literal so that integers of any size survive.
class JNum {
  constructor(raw) { this.raw = raw; }
}

// parseStrictJSON parses one JSON text (RFC 8259) from bytes and refuses what
// JSON.parse lets through: invalid UTF-8, escapes of lone surrogates,
// duplicate object keys (at any depth) and anything but whitespace after the
// value. Objects come back with a null prototype, numbers as JNum.
function parseStrictJSON(input) {
  let text;
  if (typeof input === 'string') {
    text = input;
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(input);
    } catch (e) {
      throw new Error('invalid UTF-8');
    }
  }
  let i = 0;
  const fail = (msg) => { throw new Error(`${msg} at offset ${i}`); };
  const ws = () => {
    while (i < text.length) {
      const c = text[i];
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') i++;
      else break;
    }
  };
  const hex4 = () => {
    const h = text.slice(i, i + 4);
    if (!/^[0-9A-Fa-f]{4}$/.test(h)) fail('invalid \\u escape');
    i += 4;
    return parseInt(h, 16);
  };
  const str = () => {
    i++; // opening quote
    let out = '';
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text[i];
      const code = text.charCodeAt(i);
      if (c === '"') { i++; return out; }
      if (code < 0x20) fail('control character in a string');
      if (code >= 0xd800 && code <= 0xdfff) {
        // Only a well-formed pair can come from valid UTF-8 input.
        out += c + text[i + 1];
        i += 2;
        continue;
      }
      if (c !== '\\') { out += c; i++; continue; }
      i++;
      const e = text[i++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          const u = hex4();
          if (u >= 0xd800 && u <= 0xdbff) {
            if (text[i] !== '\\' || text[i + 1] !== 'u') fail('escape of a lone surrogate');
            i += 2;
            const lo = hex4();
            if (lo < 0xdc00 || lo > 0xdfff) fail('escape of a lone surrogate');
            out += String.fromCharCode(u, lo);
          } else if (u >= 0xdc00 && u <= 0xdfff) {
            fail('escape of a lone surrogate');
          } else {
            out += String.fromCharCode(u);
          }
          break;
        }
        default: i--; fail('invalid escape');
      }
    }
  };
  const num = () => {
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(text.slice(i));
    if (!m) fail('invalid number');
    i += m[0].length;
    return new JNum(m[0]);
  };
  const value = (depth) => {
    if (depth > 256) fail('nesting too deep');
    ws();
    if (i >= text.length) fail('unexpected end of JSON');
    const c = text[i];
    if (c === '{') {
      i++;
      const obj = Object.create(null);
      const seen = new Set();
      ws();
      if (text[i] === '}') { i++; return obj; }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected an object key');
        const at = i;
        const k = str();
        if (seen.has(k)) { i = at; fail(`duplicate key ${JSON.stringify(k)}`); }
        seen.add(k);
        ws();
        if (text[i] !== ':') fail('expected ":"');
        i++;
        obj[k] = value(depth + 1);
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === '}') { i++; return obj; }
        fail('expected "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const arr = [];
      ws();
      if (text[i] === ']') { i++; return arr; }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i] === ']') { i++; return arr; }
        fail('expected "," or "]"');
      }
    }
    if (c === '"') return str();
    if (c === '-' || (c >= '0' && c <= '9')) return num();
    for (const [lit, v] of [['true', true], ['false', false], ['null', null]]) {
      if (text.startsWith(lit, i)) { i += lit.length; return v; }
    }
    fail('invalid character');
  };
  const v = value(0);
  ws();
  if (i !== text.length) fail('trailing data after the JSON value');
  return v;
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof JNum);

// checkKeys refuses keys outside `allowed` (a case variant of a field name is
// just another unknown key) and missing `required` ones.
function checkKeys(obj, allowed, required, where) {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) {
      const variant = allowed.find((a) => a.toLowerCase() === k.toLowerCase());
      throw new Error(`unknown key ${JSON.stringify(k)} in ${where}` +
        (variant ? ` (keys are case-sensitive: the field is ${JSON.stringify(variant)})` : ''));
    }
  }
  for (const k of required) {
    if (!hasKey(obj, k)) throw new Error(`missing key ${JSON.stringify(k)} in ${where}`);
  }
}

// checkCaseVariants refuses keys that differ from a known field only by
// letter case (for documents that may hold fields this verifier does not know).
function checkCaseVariants(obj, known, where) {
  for (const k of Object.keys(obj)) {
    if (known.includes(k)) continue;
    const variant = known.find((a) => a.toLowerCase() === k.toLowerCase());
    if (variant) {
      throw new Error(`key ${JSON.stringify(k)} in ${where} is a case variant of ${JSON.stringify(variant)}`);
    }
  }
}

// intOf returns a JSON integer (digits only, as Go decodes into an integer
// type) as a BigInt, or throws.
function intOf(v, where, { min = null, max = null } = {}) {
  if (!(v instanceof JNum) || !/^-?(0|[1-9][0-9]*)$/.test(v.raw)) {
    throw new Error(`${where} must be an integer`);
  }
  const n = BigInt(v.raw);
  if (min !== null && n < min) throw new Error(`${where} must be at least ${min}`);
  if (max !== null && n > max) throw new Error(`${where} is out of range`);
  return n;
}

// strOf returns a JSON string, or throws.
function strOf(v, where) {
  if (typeof v !== 'string') throw new Error(`${where} must be a string`);
  return v;
}

// base64Strict decodes standard base64 with padding (RFC 4648 §4) and refuses
// anything else: other characters, missing padding, non-zero padding bits.
function base64Strict(s, where) {
  if (typeof s !== 'string') throw new Error(`${where} must be a base64 string`);
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) {
    throw new Error(`${where} is not standard padded base64 (RFC 4648 §4)`);
  }
  const b = Buffer.from(s, 'base64');
  if (b.toString('base64') !== s) throw new Error(`${where} is not canonical base64 (non-zero padding bits)`);
  return b;
}

function hexHash(s, where) {
  if (typeof s !== 'string' || !/^[0-9a-fA-F]{64}$/.test(s)) throw new Error(`${where} must be 64 hex digits`);
  return Buffer.from(s, 'hex');
}

// ---------------------------------------------------------------- DER

function derLength(n) {
  if (n < 0x80) return Buffer.from([n]);
  const bytes = [];
  while (n > 0) { bytes.unshift(n & 0xff); n = Math.floor(n / 256); }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function derTLV(tag, content) {
  return Buffer.concat([Buffer.from([tag]), derLength(content.length), content]);
}

// derUint encodes a non-negative BigInt as a minimal DER INTEGER.
function derUint(n) {
  let hex = n.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  let b = Buffer.from(hex, 'hex');
  if (b[0] & 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return derTLV(0x02, b);
}

// §4.1: the bytes Fabric hashes for a block header.
function headerDER(number, previousHash, dataHash) {
  return derTLV(0x30, Buffer.concat([derUint(number), derTLV(0x04, B(previousHash)), derTLV(0x04, B(dataHash))]));
}

// derRead reads one TLV at off. Lengths must be definite and, when strict,
// minimally encoded.
function derRead(buf, off, strict = true) {
  if (off + 2 > buf.length) throw new Error('truncated DER');
  const tag = buf[off];
  let len = buf[off + 1];
  let hdr = 2;
  if (len & 0x80) {
    const nb = len & 0x7f;
    if (nb === 0 || nb > 4) throw new Error('unsupported DER length');
    if (off + 2 + nb > buf.length) throw new Error('truncated DER');
    len = 0;
    for (let k = 0; k < nb; k++) len = len * 256 + buf[off + 2 + k];
    if (strict && (len < 0x80 || buf[off + 2] === 0)) throw new Error('non-minimal DER length');
    hdr += nb;
  }
  const start = off + hdr;
  const end = start + len;
  if (end > buf.length) throw new Error('truncated DER');
  return { tag, start, end, content: buf.subarray(start, end) };
}

function derChildren(buf, start, end, strict = false) {
  const out = [];
  let off = start;
  while (off < end) {
    const t = derRead(buf, off, strict);
    out.push(t);
    off = t.end;
  }
  if (off !== end) throw new Error('DER overrun');
  return out;
}

// parseDERSignature parses an ASN.1 DER ECDSA signature SEQUENCE { r, s } as
// strictly as Go's encoding/asn1: minimal positive integers, nothing after.
function parseDERSignature(sig) {
  const seq = derRead(sig, 0, true);
  if (seq.tag !== 0x30) throw new Error('not a DER SEQUENCE');
  if (seq.end !== sig.length) throw new Error('trailing data after the signature');
  const ints = derChildren(sig, seq.start, seq.end, true);
  if (ints.length !== 2 || ints[0].tag !== 0x02 || ints[1].tag !== 0x02) throw new Error('not SEQUENCE { r INTEGER, s INTEGER }');
  const [r, s] = ints.map((t) => {
    const c = t.content;
    if (c.length === 0) throw new Error('empty INTEGER');
    if (c[0] & 0x80) throw new Error('negative INTEGER');
    if (c.length > 1 && c[0] === 0 && !(c[1] & 0x80)) throw new Error('non-minimal INTEGER');
    return BigInt('0x' + c.toString('hex'));
  });
  if (r === 0n || s === 0n) throw new Error('r and s must be positive');
  return { r, s };
}

// Curve orders, for the low-S rule of §4.4.
const CURVE_ORDER = {
  prime256v1: BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'),
  secp384r1: BigInt('0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973'),
};

function isLowS(s, curve) {
  const n = CURVE_ORDER[curve];
  if (n === undefined) throw new Error(`unknown curve ${curve}`);
  return s <= n >> 1n;
}

// ---------------------------------------------------------------- certificates

const OID_OU = '2.5.4.11';
const OID_CN = '2.5.4.3';

function oidString(b) {
  const parts = [];
  let v = 0;
  for (let k = 0; k < b.length; k++) {
    v = v * 128 + (b[k] & 0x7f);
    if (!(b[k] & 0x80)) {
      if (parts.length === 0) {
        const first = v < 80 ? Math.floor(v / 40) : 2;
        parts.push(first, v - first * 40);
      } else {
        parts.push(v);
      }
      v = 0;
    }
  }
  return parts.join('.');
}

function derTime(t) {
  const s = t.content.toString('latin1');
  let m;
  if (t.tag === 0x17 && (m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    const yy = Number(m[1]);
    return Date.UTC(yy < 50 ? 2000 + yy : 1900 + yy, m[2] - 1, m[3], m[4], m[5], m[6]);
  }
  if (t.tag === 0x18 && (m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s))) {
    return Date.UTC(Number(m[1]), m[2] - 1, m[3], m[4], m[5], m[6]);
  }
  throw new Error('unsupported certificate time ' + JSON.stringify(s));
}

// certFields reads what X509Certificate does not give exactly: the validity
// instants and the subject's attributes (every OU, in order).
function certFields(der) {
  const cert = derRead(der, 0, false);
  const top = derChildren(der, cert.start, cert.end);
  const tbs = derChildren(der, top[0].start, top[0].end);
  let k = 0;
  if (tbs[0].tag === 0xa0) k++; // [0] version
  const validity = derChildren(der, tbs[k + 3].start, tbs[k + 3].end);
  const subject = tbs[k + 4];
  const attrs = [];
  for (const set of derChildren(der, subject.start, subject.end)) {
    for (const atv of derChildren(der, set.start, set.end)) {
      const [oid, val] = derChildren(der, atv.start, atv.end);
      let text;
      if (val.tag === 0x1e) { // BMPString
        text = '';
        for (let j = 0; j + 1 < val.content.length; j += 2) text += String.fromCharCode(val.content.readUInt16BE(j));
      } else {
        text = val.content.toString(val.tag === 0x0c ? 'utf8' : 'latin1');
      }
      attrs.push({ oid: oidString(oid.content), value: text });
    }
  }
  return {
    notBefore: derTime(validity[0]),
    notAfter: derTime(validity[1]),
    ous: attrs.filter((a) => a.oid === OID_OU).map((a) => a.value),
    cn: (attrs.find((a) => a.oid === OID_CN) || {}).value || '',
  };
}

// pemBlocks returns the DER of each PEM block of a type.
function pemBlocks(bytes, type) {
  const text = B(bytes).toString('latin1');
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([^-]*)-----END \1-----/g;
  const out = [];
  let m;
  while ((m = re.exec(text)) !== null) {
    if (type === undefined || m[1] === type) out.push({ type: m[1], der: Buffer.from(m[2].replace(/\s+/g, ''), 'base64') });
  }
  return out;
}

// loadCert parses the first PEM block of bytes as a certificate, as Fabric's
// MSP does (pem.Decode takes the first block).
function loadCert(bytes, what) {
  const blocks = pemBlocks(bytes);
  if (blocks.length === 0) throw new Error(`${what} is not PEM`);
  if (blocks[0].type !== 'CERTIFICATE') throw new Error(`${what} is a PEM ${blocks[0].type}, not a CERTIFICATE`);
  const der = blocks[0].der;
  let x509;
  let publicKey;
  try {
    x509 = new crypto.X509Certificate(der);
    publicKey = x509.publicKey; // decoded lazily by node: read it here, where a failure is a refusal
  } catch (e) {
    throw new Error(`${what} is not an X.509 certificate: ${e.message}`);
  }
  let fields;
  try {
    fields = certFields(der);
  } catch (e) {
    throw new Error(`${what}: cannot read the certificate: ${e.message}`);
  }
  return { der, x509, publicKey, ...fields };
}

// nsOf turns a google.protobuf.Timestamp into nanoseconds since the epoch.
function nsOf(ts) {
  if (!ts) return null;
  return U64(ts.seconds) * 1000000000n + BigInt(ts.nanos || 0);
}

function isoOfNs(ns) {
  const ms = Number(ns / 1000000n);
  return new Date(ms).toISOString();
}

const msToNs = (ms) => BigInt(ms) * 1000000n;

// ---------------------------------------------------------------- channel configuration (§4.4)

// parseMSP reads a group's MSP value.
function parseMSP(value, where) {
  const mc = decode('MSPConfig', B(value), `${where} MSP value`);
  if (mc.type !== 0) throw new Error(`${where}: MSP type ${mc.type} is not FABRIC (0)`);
  const fc = decode('FabricMSPConfig', B(mc.config), `${where} MSP config`);
  if (!fc.name) throw new Error(`${where}: MSP has no name`);
  if (fc.revocation_list.length > 0) {
    // node has no CRL parser: a CRL cannot be checked, so it is not ignored either.
    throw new Error(`MSP ${fc.name} has a revocation list (CRL): this verifier does not read CRLs`);
  }
  const certs = (list, kind) => list.map((pem, k) => loadCert(pem, `MSP ${fc.name} ${kind}[${k}]`));
  const ous = fc.fabric_node_ous;
  const ou = (id) => (id && id.organizational_unit_identifier ? id.organizational_unit_identifier : null);
  return {
    name: fc.name,
    raw: B(mc.config),
    roots: certs(fc.root_certs, 'root_certs'),
    intermediates: certs(fc.intermediate_certs, 'intermediate_certs'),
    admins: certs(fc.admins, 'admins').map((c) => c.der),
    nodeOUs: ous && ous.enable ? {
      client: ou(ous.client_ou_identifier),
      peer: ou(ous.peer_ou_identifier),
      admin: ou(ous.admin_ou_identifier),
      orderer: ou(ous.orderer_ou_identifier),
    } : null,
  };
}

// parseConfig reads the MSPs of Channel/Orderer/<org> and
// Channel/Application/<org>, and keeps the group tree for the policies.
function parseConfig(config, where) {
  const group = config.channel_group;
  if (!group) throw new Error(`${where}: config has no channel group`);
  const msps = new Map();
  for (const section of ['Orderer', 'Application']) {
    if (!hasKey(group.groups, section)) continue;
    const sec = group.groups[section];
    for (const org of Object.keys(sec.groups).sort()) {
      const g = sec.groups[org];
      if (!hasKey(g.values, 'MSP')) throw new Error(`${where}: group Channel/${section}/${org} has no MSP value`);
      const msp = parseMSP(g.values.MSP.value, `${where} Channel/${section}/${org}`);
      const prev = msps.get(msp.name);
      if (prev && !prev.raw.equals(msp.raw)) throw new Error(`${where}: MSP ${msp.name} is defined twice, differently`);
      msps.set(msp.name, msp);
    }
  }
  return { sequence: U64(config.sequence), group, msps, idCache: new Map() };
}

// ---------------------------------------------------------------- identities (§4.4)

// deserialize turns SerializedIdentity bytes into an identity of the
// configuration, or throws. Nothing is validated yet.
function deserialize(cfg, bytes) {
  const key = B(bytes).toString('base64');
  if (cfg.idCache.has(key)) {
    const c = cfg.idCache.get(key);
    if (c instanceof Error) throw c;
    return c;
  }
  try {
    const si = decode('SerializedIdentity', B(bytes), 'identity');
    const msp = cfg.msps.get(si.mspid);
    if (!msp) throw new Error(`MSP ${JSON.stringify(si.mspid)} is not in the configuration`);
    const cert = loadCert(si.id_bytes, `identity of ${si.mspid}`);
    const id = {
      mspid: si.mspid, msp, cert,
      key: si.mspid + '\u0000' + sha256(cert.der).toString('hex'),
      name: `${si.mspid}:${cert.cn}`,
    };
    cfg.idCache.set(key, id);
    return id;
  } catch (e) {
    cfg.idCache.set(key, e);
    throw e;
  }
}

function validAt(cert, tNs) {
  return msToNs(cert.notBefore) <= tNs && tNs <= msToNs(cert.notAfter);
}

// chainOf looks for a chain from cert to one of the MSP's roots through its
// intermediates, every certificate valid at t. Returns null or a reason.
function chainOf(msp, cert, tNs, depth, used) {
  if (!validAt(cert, tNs)) {
    return `certificate ${JSON.stringify(cert.cn)} is not valid at ${isoOfNs(tNs)} ` +
      `(valid ${new Date(cert.notBefore).toISOString()} to ${new Date(cert.notAfter).toISOString()})`;
  }
  if (msp.roots.some((r) => r.der.equals(cert.der))) return null;
  if (depth > 8) return 'certificate chain too long';
  let reason = `certificate ${JSON.stringify(cert.cn)} does not chain to a root certificate of MSP ${msp.name}`;
  for (const cand of [...msp.roots, ...msp.intermediates]) {
    if (used.has(cand.der.toString('base64'))) continue;
    let ok = false;
    try { ok = cert.x509.checkIssued(cand.x509) && cert.x509.verify(cand.publicKey); } catch (e) { ok = false; }
    if (!ok) continue;
    const next = new Set(used);
    next.add(cand.der.toString('base64'));
    const r = chainOf(msp, cand, tNs, depth + 1, next);
    if (r === null) return null;
    reason = r;
  }
  return reason;
}

// nodeOURoles lists the NodeOU roles (client, peer, admin, orderer) the
// certificate's OUs match, one entry per match.
function nodeOURoles(id) {
  const n = id.msp.nodeOUs;
  const roles = [];
  if (!n) return roles;
  for (const ou of id.cert.ous) {
    for (const role of ['client', 'peer', 'admin', 'orderer']) {
      if (n[role] !== null && n[role] === ou) roles.push(role);
    }
  }
  return roles;
}

// validateIdentity: §4.4 "Identities". Returns null or a reason.
function validateIdentity(id, tNs) {
  const cacheKey = 'valid:' + tNs.toString();
  id.validity = id.validity || new Map();
  if (id.validity.has(cacheKey)) return id.validity.get(cacheKey);
  let reason = null;
  const pub = id.cert.publicKey;
  const curve = pub.asymmetricKeyType === 'ec' ? pub.asymmetricKeyDetails.namedCurve : null;
  if (curve !== 'prime256v1' && curve !== 'secp384r1') {
    reason = `identity ${id.name} has a ${pub.asymmetricKeyType}${curve ? ' ' + curve : ''} key, not ECDSA P-256 or P-384`;
  } else if (id.cert.x509.ca) {
    // Fabric's MSP refuses a CA certificate as an identity.
    reason = `identity ${id.name} is a CA certificate`;
  } else {
    const r = chainOf(id.msp, id.cert, tNs, 0, new Set());
    if (r !== null) {
      reason = `identity ${id.name}: ${r}`;
    } else if (id.msp.nodeOUs) {
      const roles = nodeOURoles(id);
      if (roles.length !== 1) {
        reason = `identity ${id.name} carries ${roles.length} of the client, peer, admin and orderer OUs (NodeOUs need exactly one)`;
      }
    }
  }
  id.validity.set(cacheKey, reason);
  return reason;
}

// verifyFabricSignature: ASN.1 DER ECDSA over SHA-256 with low S (§4.4).
// Returns null or a reason.
function verifyFabricSignature(id, data, sig) {
  const pub = id.cert.publicKey;
  const curve = pub.asymmetricKeyType === 'ec' ? pub.asymmetricKeyDetails.namedCurve : null;
  if (!CURVE_ORDER[curve]) return `identity ${id.name} has no ECDSA P-256 or P-384 key`;
  let rs;
  try {
    rs = parseDERSignature(B(sig));
  } catch (e) {
    return `signature of ${id.name} is not ASN.1 DER ECDSA: ${e.message}`;
  }
  if (!isLowS(rs.s, curve)) return `signature of ${id.name} has a high S (s > n/2)`;
  let ok = false;
  try {
    ok = crypto.verify('sha256', B(data), { key: pub, dsaEncoding: 'der' }, B(sig));
  } catch (e) {
    ok = false;
  }
  return ok ? null : `signature of ${id.name} does not verify`;
}

// ---------------------------------------------------------------- policies (§4.4)

const ROLE = { MEMBER: 0, ADMIN: 1, CLIENT: 2, PEER: 3, ORDERER: 4 };
const ROLE_NAME = ['MEMBER', 'ADMIN', 'CLIENT', 'PEER', 'ORDERER'];
const CLASSIFICATION = { ROLE: 0, ORGANIZATION_UNIT: 1, IDENTITY: 2 };

// satisfiesPrincipal: does a (deserialized, signature-checked) identity
// satisfy an MSPPrincipal at time t? As Fabric v2.5's MSP does: the identity
// must be valid; ROLE MEMBER is any valid identity of the MSP, ADMIN one in
// the admins list or with the admin OU, CLIENT/PEER/ORDERER need NodeOUs and
// the OU; IDENTITY is the same certificate.
function satisfiesPrincipal(id, principal, tNs) {
  if (principal.kind === 'role') {
    if (principal.mspid !== id.mspid) return false;
    if (validateIdentity(id, tNs) !== null) return false;
    switch (principal.role) {
      case ROLE.MEMBER: return true;
      case ROLE.ADMIN:
        if (id.msp.admins.some((a) => a.equals(id.cert.der))) return true;
        return nodeOURoles(id).includes('admin');
      case ROLE.CLIENT: return nodeOURoles(id).includes('client');
      case ROLE.PEER: return nodeOURoles(id).includes('peer');
      case ROLE.ORDERER: return nodeOURoles(id).includes('orderer');
      default: return false;
    }
  }
  if (principal.kind === 'identity') {
    if (principal.mspid !== id.mspid || !principal.der.equals(id.cert.der)) return false;
    return validateIdentity(id, tNs) === null;
  }
  return false;
}

// compilePrincipal reads an MSPPrincipal (ROLE or IDENTITY; others never match).
function compilePrincipal(p) {
  if (p.principal_classification === CLASSIFICATION.ROLE) {
    const r = decode('MSPRole', B(p.principal), 'principal');
    return { kind: 'role', mspid: r.msp_identifier, role: r.role };
  }
  if (p.principal_classification === CLASSIFICATION.IDENTITY) {
    const si = decode('SerializedIdentity', B(p.principal), 'principal');
    const blocks = pemBlocks(si.id_bytes, 'CERTIFICATE');
    return { kind: 'identity', mspid: si.mspid, der: blocks.length ? blocks[0].der : Buffer.alloc(0) };
  }
  return { kind: 'unsupported', classification: p.principal_classification };
}

// compileRule turns a SignaturePolicy into {signedBy: k} / {n, rules}.
function compileRule(rule, nIdentities) {
  if (!rule) throw new Error('signature policy has no rule');
  if (rule.Type === 'signed_by') {
    if (rule.signed_by < 0 || rule.signed_by >= nIdentities) throw new Error(`signed_by ${rule.signed_by} is out of range`);
    return { signedBy: rule.signed_by };
  }
  if (rule.Type === 'n_out_of') {
    return { n: rule.n_out_of.n, rules: rule.n_out_of.rules.map((r) => compileRule(r, nIdentities)) };
  }
  throw new Error('signature policy rule is neither signed_by nor n_out_of');
}

// evalRule evaluates a compiled rule as Fabric's cauthdsl does: each
// signed_by takes the first unused identity that satisfies its principal
// (a signer satisfies at most one leaf), an n_out_of keeps the identities its
// satisfied sub-rules used.
function evalRule(rule, idents, used, satisfies) {
  if (rule.signedBy !== undefined) {
    for (let k = 0; k < idents.length; k++) {
      if (used[k]) continue;
      if (satisfies(idents[k], rule.signedBy)) {
        used[k] = true;
        return true;
      }
    }
    return false;
  }
  let verified = 0;
  const tmp = new Array(used.length);
  for (const sub of rule.rules) {
    for (let k = 0; k < used.length; k++) tmp[k] = used[k];
    if (evalRule(sub, idents, tmp, satisfies)) {
      verified++;
      for (let k = 0; k < used.length; k++) used[k] = tmp[k];
    }
  }
  return verified >= rule.n;
}

// validSigners: signatures deduplicated by identity (the first valid one
// counts), an invalid signature counts for nothing.
function validSigners(cfg, sds) {
  const seen = new Set();
  const out = [];
  for (const sd of sds) {
    let id;
    try { id = deserialize(cfg, sd.identity); } catch (e) { continue; }
    if (seen.has(id.key)) continue;
    if (verifyFabricSignature(id, sd.data, sd.signature) !== null) continue;
    seen.add(id.key);
    out.push(id);
  }
  return out;
}

// implicitThreshold: ANY (1), ALL (every), MAJORITY (more than half); no
// sub-groups at all is satisfied, as in Fabric.
function implicitThreshold(rule, count) {
  if (count === 0) return 0;
  switch (rule) {
    case 0: return 1;
    case 1: return count;
    case 2: return Math.floor(count / 2) + 1;
    default: throw new Error(`unknown implicit meta rule ${rule}`);
  }
}

// evalSignaturePolicy evaluates a SignaturePolicyEnvelope (a SIGNATURE
// policy of the configuration, or a key-level endorsement policy, §4.6) over
// signed data. Returns null or a reason.
function evalSignaturePolicy(cfg, bytes, sds, tNs, where) {
  let rule;
  let principals;
  try {
    const env = decode('SignaturePolicyEnvelope', bytes, where);
    if (env.version !== 0) throw new Error(`${where} has version ${env.version}, not 0`);
    principals = env.identities.map(compilePrincipal);
    rule = compileRule(env.rule, principals.length);
  } catch (e) {
    return e.message.startsWith(where) ? e.message : `${where}: ${e.message}`;
  }
  const idents = validSigners(cfg, sds);
  const used = new Array(idents.length).fill(false);
  const ok = evalRule(rule, idents, used, (id, k) => satisfiesPrincipal(id, principals[k], tNs));
  if (ok) return null;
  return `${where} is not satisfied by the valid signatures of ` +
    (idents.length ? idents.map((i) => i.name).join(', ') : 'nobody') + describeInvalid(cfg, sds, tNs);
}

// evalPolicy evaluates the policy `name` of the group at `groupPath` (a list
// of group names below Channel) over signed data. Returns null or a reason.
function evalPolicy(cfg, groupPath, name, sds, tNs) {
  let group = cfg.group;
  for (const g of groupPath) {
    if (!hasKey(group.groups, g)) return `group /Channel/${groupPath.join('/')} is not in the configuration`;
    group = group.groups[g];
  }
  const where = '/Channel/' + [...groupPath, name].join('/');
  if (!hasKey(group.policies, name) || !group.policies[name].policy) return `policy ${where} is not in the configuration`;
  const policy = group.policies[name].policy;
  if (policy.type === 1) return evalSignaturePolicy(cfg, B(policy.value), sds, tNs, `policy ${where}`); // SIGNATURE
  if (policy.type === 3) { // IMPLICIT_META
    let imp;
    try {
      imp = decode('ImplicitMetaPolicy', B(policy.value), `policy ${where}`);
    } catch (e) {
      return e.message;
    }
    const subs = Object.keys(group.groups).sort();
    let threshold;
    try { threshold = implicitThreshold(imp.rule, subs.length); } catch (e) { return `policy ${where}: ${e.message}`; }
    let satisfied = 0;
    const reasons = [];
    for (const sub of subs) {
      const r = evalPolicy(cfg, [...groupPath, sub], imp.sub_policy, sds, tNs);
      if (r === null) satisfied++;
      else reasons.push(r);
    }
    if (satisfied >= threshold) return null;
    const rule = ['ANY', 'ALL', 'MAJORITY'][imp.rule];
    return `policy ${where} (${rule} ${imp.sub_policy}) needs ${threshold} of ${subs.length} sub-groups, ${satisfied} satisfied: ${reasons.join('; ')}`;
  }
  return `policy ${where} has type ${policy.type}, which this verifier does not evaluate (SIGNATURE or IMPLICIT_META)`;
}

// describeInvalid explains, for an error message, why signatures did not count.
function describeInvalid(cfg, sds, tNs) {
  const notes = [];
  for (const sd of sds) {
    let id;
    try { id = deserialize(cfg, sd.identity); } catch (e) { notes.push(e.message); continue; }
    const s = verifyFabricSignature(id, sd.data, sd.signature);
    if (s !== null) { notes.push(s); continue; }
    const v = validateIdentity(id, tNs);
    if (v !== null) notes.push(v);
  }
  return notes.length ? ` (${[...new Set(notes)].join('; ')})` : '';
}

// ---------------------------------------------------------------- blocks (§4.1–4.3)

// readBlock decodes a block and checks what every block of a receipt must
// satisfy on its own: header, data hash (§4.1), unsigned metadata empty (§4.3).
function readBlock(bytes, what) {
  const block = decode('Block', bytes, what);
  if (!block.header) throw new Error(`${what} has no header`);
  const number = U64(block.header.number);
  const data = block.data ? block.data.data.map(B) : [];
  const dataHash = sha256(...data);
  if (!dataHash.equals(B(block.header.data_hash))) {
    throw new Error(`${what} (block ${number}): header data_hash does not match its data`);
  }
  const metadata = block.metadata ? block.metadata.metadata.map(B) : [];
  for (let k = 1; k < metadata.length; k++) {
    if (metadata[k].length !== 0) {
      const name = ['SIGNATURES', 'LAST_CONFIG', 'TRANSACTIONS_FILTER', 'ORDERER', 'COMMIT_HASH'][k] || `#${k}`;
      throw new Error(`${what} (block ${number}): unsigned metadata ${name} is not empty`);
    }
  }
  const der = headerDER(number, block.header.previous_hash, block.header.data_hash);
  return { block, number, data, metadata, der, hash: sha256(der), what };
}

// envelopeHeader decodes an envelope's payload and headers.
function envelopeHeader(envBytes, what) {
  const env = decode('Envelope', envBytes, what);
  const payload = decode('Payload', B(env.payload), `${what} payload`);
  if (!payload.header) throw new Error(`${what} payload has no header`);
  const chBytes = B(payload.header.channel_header);
  const shBytes = B(payload.header.signature_header);
  const ch = decode('ChannelHeader', chBytes, `${what} channel header`);
  const sh = decode('SignatureHeader', shBytes, `${what} signature header`);
  return { env, payload, ch, sh, chBytes, shBytes, tNs: nsOf(ch.timestamp) };
}

// blockTime: the time identities of a block's signatures are valid at, that
// of its first transaction's channel header (§4.4).
function blockTime(rb) {
  if (rb.data.length === 0) throw new Error(`${rb.what} (block ${rb.number}) has no transactions`);
  const h = envelopeHeader(rb.data[0], `${rb.what} (block ${rb.number}) envelope 0`);
  if (h.tNs === null) throw new Error(`${rb.what} (block ${rb.number}) envelope 0 has no timestamp`);
  return h.tNs;
}

// ordererSignatures reads SIGNATURES metadata (§4.2): the last_config index
// and the signed data of each signature.
function ordererSignatures(rb) {
  const w = `${rb.what} (block ${rb.number})`;
  if (rb.metadata.length === 0) throw new Error(`${w} has no SIGNATURES metadata`);
  const md = decode('Metadata', rb.metadata[0], `${w} SIGNATURES metadata`);
  const value = B(md.value);
  const obm = decode('OrdererBlockMetadata', value, `${w} SIGNATURES metadata value`);
  if (!obm.last_config) throw new Error(`${w} SIGNATURES metadata names no last config`);
  const sds = md.signatures.map((s, k) => {
    const shBytes = B(s.signature_header);
    const sh = decode('SignatureHeader', shBytes, `${w} signature ${k} header`);
    return { data: Buffer.concat([value, shBytes, rb.der]), identity: B(sh.creator), signature: B(s.signature) };
  });
  return { lastConfig: U64(obm.last_config.index), sds };
}

// ---------------------------------------------------------------- transactions (§4.5, §4.6)

const te = (s) => Buffer.from(s, 'utf8');

// checkEndorserTx checks an envelope as §4.5 requires, and the Endorsement
// policy of §4.6, in the configuration in force at its block. Refuses at
// `step`. Returns what the receipt needs of it.
function checkEndorserTx(envBytes, cfg, ctx, step, what) {
  let h;
  try {
    h = envelopeHeader(envBytes, what);
  } catch (e) {
    refuse(step, e.message);
  }
  const { env, payload, ch, sh, chBytes, shBytes } = h;
  if (ch.type !== 3) refuse(step, `${what} has channel header type ${ch.type}, not ENDORSER_TRANSACTION (3)`);
  if (ch.channel_id !== ctx.channel) refuse(step, `${what} is for channel ${JSON.stringify(ch.channel_id)}, not ${JSON.stringify(ctx.channel)}`);
  const wantTx = sha256(B(sh.nonce), B(sh.creator)).toString('hex');
  if (ch.tx_id !== wantTx) refuse(step, `${what}: tx_id ${JSON.stringify(ch.tx_id)} is not hex(SHA-256(nonce ‖ creator)) = ${wantTx}`);
  if (h.tNs === null) refuse(step, `${what} has no timestamp`);
  const tNs = h.tNs;

  // The creator's signature over the payload bytes, and /Channel/Application/Writers.
  let creator;
  try {
    creator = deserialize(cfg, B(sh.creator));
  } catch (e) {
    refuse(step, `${what} creator: ${e.message}`);
  }
  const v = validateIdentity(creator, tNs);
  if (v !== null) refuse(step, `${what} creator is not valid: ${v}`);
  const s = verifyFabricSignature(creator, B(env.payload), B(env.signature));
  if (s !== null) refuse(step, `${what} envelope: ${s}`);
  const w = evalPolicy(cfg, ['Application'], 'Writers', [{ data: B(env.payload), identity: B(sh.creator), signature: B(env.signature) }], tNs);
  if (w !== null) refuse(step, `${what} creator ${creator.name}: ${w}`);

  // One action: a chaincode invocation of `chaincode`, with the response the endorsers signed.
  let tx; let cap; let cpp; let cis; let prp; let cca; let rws;
  try {
    tx = decode('Transaction', B(payload.data), `${what} data`);
    if (tx.actions.length !== 1) throw new Error(`${what} has ${tx.actions.length} actions, not exactly one`);
    const action = tx.actions[0];
    if (!B(action.header).equals(shBytes)) {
      // Fabric computes the proposal hash with the action's signature header.
      throw new Error(`${what}: the action's signature header is not the payload's`);
    }
    cap = decode('ChaincodeActionPayload', B(action.payload), `${what} action payload`);
    cpp = decode('ChaincodeProposalPayload', B(cap.chaincode_proposal_payload), `${what} chaincode proposal payload`);
    cis = decode('ChaincodeInvocationSpec', B(cpp.input), `${what} proposal input`);
    if (!cap.action) throw new Error(`${what} has no endorsed action`);
    prp = decode('ProposalResponsePayload', B(cap.action.proposal_response_payload), `${what} proposal response payload`);
    cca = decode('ChaincodeAction', B(prp.extension), `${what} proposal response extension`);
  } catch (e) {
    refuse(step, e.message);
  }
  const spec = cis.chaincode_spec;
  const invoked = spec && spec.chaincode_id ? spec.chaincode_id.name : '';
  if (invoked !== ctx.chaincode) refuse(step, `${what} invokes chaincode ${JSON.stringify(invoked)}, not ${JSON.stringify(ctx.chaincode)}`);
  const wantHash = sha256(chBytes, shBytes, B(cap.chaincode_proposal_payload));
  if (!wantHash.equals(B(prp.proposal_hash))) refuse(step, `${what}: proposal_hash does not match SHA-256(channel_header ‖ signature_header ‖ chaincode_proposal_payload)`);
  const acted = cca.chaincode_id ? cca.chaincode_id.name : '';
  if (acted !== ctx.chaincode) refuse(step, `${what}: the endorsed action is of chaincode ${JSON.stringify(acted)}, not ${JSON.stringify(ctx.chaincode)}`);
  const status = cca.response ? cca.response.status : 0;
  if (status !== 200) refuse(step, `${what}: response status ${status}, not 200`);
  try {
    rws = decode('TxReadWriteSet', B(cca.results), `${what} results`);
  } catch (e) {
    refuse(step, e.message);
  }
  const nss = rws.ns_rwset.filter((n) => n.namespace === ctx.chaincode);
  if (nss.length > 1) refuse(step, `${what}: the read-write set has ${nss.length} entries for namespace ${ctx.chaincode}`);
  let kv = { reads: [], writes: [] };
  if (nss.length === 1) {
    try {
      kv = decode('KVRWSet', B(nss[0].rwset), `${what} read-write set of ${ctx.chaincode}`);
    } catch (e) {
      refuse(step, e.message);
    }
  }
  const args = spec && spec.input ? spec.input.args.map(B) : [];

  // §4.6: each endorsement signs proposal_response_payload ‖ endorser. The
  // endorsements are checked against the policies by checkEndorsements.
  const prpBytes = B(cap.action.proposal_response_payload);
  const sds = cap.action.endorsements.map((e) => ({
    data: Buffer.concat([prpBytes, B(e.endorser)]), identity: B(e.endorser), signature: B(e.signature),
  }));
  const endorsers = validSigners(cfg, sds).filter((id) => validateIdentity(id, tNs) === null);

  return {
    txId: ch.tx_id, tNs, creator, args, reads: kv.reads, writes: kv.writes, metadataWrites: kv.metadata_writes || [],
    sds, endorsers, cfg, what,
  };
}

// §4.6, key by key. The keys a transaction writes are those of its writes and
// metadata_writes in the chaincode's namespace; each key whose key-level
// policy the receipt proves needs that policy, every other key (and a
// transaction that writes nothing) the channel's Endorsement policy.
//
// `proofs` is the receipt-wide state of the recursion: the blocks, the
// context, a memo of the anchor transactions already checked and the budget
// of 32 transactions.
const MAX_ANCHOR_TXS = 32;

function checkEndorsements(tx, proofs) {
  const keys = [...new Set([...tx.writes.map((w) => w.key), ...tx.metadataWrites.map((m) => m.key)])];
  let needChannelPolicy = keys.length === 0;
  for (const key of keys) {
    const vp = keyPolicy(key, tx, proofs);
    if (vp === null) {
      needChannelPolicy = true;
      continue;
    }
    const r = evalSignaturePolicy(tx.cfg, vp.policy, tx.sds, tx.tNs, `the key-level policy of ${printableKey(key)} (set by ${vp.by})`);
    if (r !== null) return `${tx.what} endorsements: ${r}`;
  }
  if (needChannelPolicy) {
    const r = evalPolicy(tx.cfg, ['Application'], 'Endorsement', tx.sds, tx.tNs);
    if (r !== null) return `${tx.what} endorsements: ${r}`;
  }
  return null;
}

// keyPolicy: the key-level policy of `key` in force before `tx`, when the
// receipt proves one (§4.6): `tx` read the key at {b, n}, envelope n of block
// b is in the receipt, is a valid endorser transaction endorsed as §4.6
// requires, and set the policy (VALIDATION_PARAMETER; empty: none), or wrote
// the value only (then the policy in force before it, recursively), or
// deleted the key (none). Returns {policy, by} or null (none, or not proven).
function keyPolicy(key, tx, proofs) {
  const read = tx.reads.find((r) => r.key === key);
  if (!read || !read.version) return null;
  const anchor = anchorTx(U64(read.version.block_num), U64(read.version.tx_num), proofs);
  if (anchor === null) return null;
  const mw = anchor.metadataWrites.find((m) => m.key === key);
  const w = anchor.writes.find((x) => x.key === key);
  if (w && w.is_delete) return null;
  if (mw) {
    // A metadata write replaces the key's metadata: without a
    // VALIDATION_PARAMETER entry the key has no key-level policy.
    const e = mw.entries.find((x) => x.name === 'VALIDATION_PARAMETER');
    if (!e || B(e.value).length === 0) return null;
    return { policy: B(e.value), by: anchor.what };
  }
  if (w) return keyPolicy(key, anchor, proofs);
  return null;
}

// anchorTx returns envelope n of block b as a transaction checked by §4.5
// and §4.6, or null when it is not in the receipt, not valid, or beyond the
// budget.
function anchorTx(b, n, proofs) {
  const id = `${b}:${n}`;
  if (proofs.memo.has(id)) return proofs.memo.get(id); // null while it is being checked: a cycle proves nothing
  proofs.memo.set(id, null);
  const rb = proofs.blocks.find((x) => x.number === b);
  if (!rb || n >= BigInt(rb.data.length) || proofs.checked >= MAX_ANCHOR_TXS) return null;
  proofs.checked++;
  let tx;
  try {
    tx = checkEndorserTx(rb.data[Number(n)], rb.cfg, proofs.ctx, STEP.transaction, `the transaction of block ${b}, envelope ${n}`);
  } catch (e) {
    if (e instanceof Refusal) return null;
    throw e;
  }
  if (checkEndorsements(tx, proofs) !== null) return null;
  proofs.memo.set(id, tx);
  return tx;
}

// ownerOrConsortium: §5, a record relied on is its owner's word (a valid
// endorsement by a peer of the owner it names) or the consortium's (the
// channel's Endorsement policy).
function ownerOrConsortium(tx, owner) {
  const peerOfOwner = { kind: 'role', mspid: owner, role: ROLE.PEER };
  if (validSigners(tx.cfg, tx.sds).some((id) => satisfiesPrincipal(id, peerOfOwner, tx.tNs))) return null;
  const r = evalPolicy(tx.cfg, ['Application'], 'Endorsement', tx.sds, tx.tNs);
  if (r === null) return null;
  return `${tx.what} wrote a device record naming ${owner} as owner, but is neither endorsed by a peer of ${owner} ` +
    `nor by the channel's endorsement policy: ${r}`;
}

// writeOf finds the one write of a key in a transaction's write set.
function writeOf(tx, key) {
  const ws = tx.writes.filter((w) => w.key === key);
  if (ws.length > 1) throw new Error(`${tx.what} writes ${printableKey(key)} ${ws.length} times`);
  return ws.length ? ws[0] : null;
}

function printableKey(k) {
  return JSON.stringify(k);
}

// ---------------------------------------------------------------- device records (§5)

const DEVICE_STATUSES = ['active', 'suspended', 'revoked', 'decommissioned'];
const DEVICE_FIELDS = ['id', 'owner', 'type', 'groups', 'attributes', 'publicKey', 'keyAlg', 'keyId', 'keyVersion',
  'firmware', 'status', 'statusNote', 'pendingTransferTo', 'enrolledBy', 'enrolledAt', 'updatedAt', 'updatedByTx',
  'private', 'encryptionKey'];

// parseDeviceKey reads a PEM PUBLIC KEY (PKIX), ECDSA P-256 or Ed25519
// (protocol.md §1), and returns the key and its DER.
function parseDeviceKey(pemText) {
  const text = pemText.trim();
  const m = /^-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]*)-----END \1-----$/.exec(text);
  if (!m) throw new Error('publicKey is not one PEM block');
  if (m[1] !== 'PUBLIC KEY') throw new Error(`publicKey is a PEM ${m[1]}, not a PUBLIC KEY`);
  const der = Buffer.from(m[2].replace(/[\r\n]/g, ''), 'base64');
  let key;
  try {
    key = crypto.createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch (e) {
    throw new Error('publicKey is not a PKIX public key: ' + e.message);
  }
  let alg;
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails.namedCurve === 'prime256v1') alg = 'ecdsa-p256';
  else if (key.asymmetricKeyType === 'ed25519') alg = 'ed25519';
  else throw new Error(`publicKey is ${key.asymmetricKeyType}, not ECDSA P-256 or Ed25519`);
  return { key, der, alg };
}

// parseDeviceRecord: §5, decoded strictly (no duplicate or case-variant keys).
function parseDeviceRecord(bytes, device) {
  const rec = parseStrictJSON(bytes);
  if (!isObject(rec)) throw new Error('the device record is not a JSON object');
  checkCaseVariants(rec, DEVICE_FIELDS, 'the device record');
  for (const k of ['id', 'owner', 'publicKey', 'keyId', 'keyVersion', 'status']) {
    if (!hasKey(rec, k)) throw new Error(`the device record has no ${k}`);
  }
  const id = strOf(rec.id, 'device record id');
  const owner = strOf(rec.owner, 'device record owner');
  const publicKey = strOf(rec.publicKey, 'device record publicKey');
  const keyId = strOf(rec.keyId, 'device record keyId');
  intOf(rec.keyVersion, 'device record keyVersion');
  const status = strOf(rec.status, 'device record status');
  if (id !== device) throw new Error(`the device record is of ${JSON.stringify(id)}, not ${JSON.stringify(device)}`);
  if (!DEVICE_STATUSES.includes(status)) throw new Error(`the device record has status ${JSON.stringify(status)}`);
  if (owner === '') throw new Error('the device record has no owner');
  const key = parseDeviceKey(publicKey);
  const fp = sha256(key.der).toString('hex');
  if (keyId !== fp) throw new Error(`the device record's keyId ${keyId} is not the fingerprint of its publicKey (${fp})`);
  const note = hasKey(rec, 'statusNote') && typeof rec.statusNote === 'string' ? rec.statusNote : '';
  return { id, owner, keyId, status, key, note };
}

// verifyDeviceSignature: protocol.md §1. ECDSA P-256: ASN.1 DER over
// SHA-256(message), low S not required; Ed25519: 64 raw bytes over message.
function verifyDeviceSignature(key, message, sig) {
  if (sig.length === 0 || sig.length > 128) return false;
  try {
    if (key.alg === 'ed25519') return sig.length === 64 && crypto.verify(null, message, key.key, sig);
    parseDERSignature(sig);
    return crypto.verify('sha256', message, { key: key.key, dsaEncoding: 'der' }, sig);
  } catch (e) {
    return false;
  }
}

// ---------------------------------------------------------------- device payloads (protocol.md §4, §5)

const ID_RE = /^[A-Za-z0-9._:@-]{1,128}$/;
const utf8Len = (s) => Buffer.byteLength(s, 'utf8');
const printable = (s) => ![...s].some((ch) => { const c = ch.codePointAt(0); return c < 0x20 || c === 0x7f || c === 0xfffd; });

// parseReadingPayload: protocol.md §4 (null counts as absent, as in Go's decoder).
function parseReadingPayload(bytes) {
  if (bytes.length === 0 || bytes.length > 8192) throw new Error(`payload is ${bytes.length} bytes, the limit is 8192`);
  const p = parseStrictJSON(bytes);
  if (!isObject(p)) throw new Error('payload is not a JSON object');
  checkKeys(p, ['device', 'seq', 'ts', 'values'], [], 'the reading payload');
  const device = p.device === null || p.device === undefined ? '' : strOf(p.device, 'device');
  if (!ID_RE.test(device)) throw new Error(`device ${JSON.stringify(device)} is not a valid id`);
  const seq = p.seq === null || p.seq === undefined ? 0n : intOf(p.seq, 'seq', { min: 0n, max: 2n ** 64n - 1n });
  if (seq === 0n) throw new Error('seq must be a positive integer');
  const ts = p.ts === null || p.ts === undefined ? 0n : intOf(p.ts, 'ts', { min: -(2n ** 63n), max: 2n ** 63n - 1n });
  if (ts <= 0n) throw new Error('ts must be Unix milliseconds > 0');
  const values = p.values === null || p.values === undefined ? [] : p.values;
  if (!Array.isArray(values)) throw new Error('values must be an array');
  if (values.length === 0 || values.length > 64) throw new Error(`values has ${values.length} entries (1-64)`);
  const names = new Set();
  values.forEach((v, k) => {
    const f = `values[${k}]`;
    if (!isObject(v)) throw new Error(`${f} is not an object`);
    checkKeys(v, ['n', 'u', 'v', 'vs', 'vb'], [], f);
    const n = v.n === null || v.n === undefined ? '' : strOf(v.n, `${f}.n`);
    if (n === '' || utf8Len(n) > 64 || !printable(n)) throw new Error(`${f}.n must be 1-64 printable characters`);
    const u = v.u === null || v.u === undefined ? '' : strOf(v.u, `${f}.u`);
    if (utf8Len(u) > 16 || !printable(u)) throw new Error(`${f}.u must be at most 16 printable characters`);
    let count = 0;
    if (v.v !== null && v.v !== undefined) {
      if (!(v.v instanceof JNum) || !Number.isFinite(Number(v.v.raw))) throw new Error(`${f}.v must be a finite number`);
      count++;
    }
    if (v.vs !== null && v.vs !== undefined) {
      if (utf8Len(strOf(v.vs, `${f}.vs`)) > 256) throw new Error(`${f}.vs is over 256 bytes`);
      count++;
    }
    if (v.vb !== null && v.vb !== undefined) {
      if (typeof v.vb !== 'boolean') throw new Error(`${f}.vb must be a boolean`);
      count++;
    }
    if (count !== 1) throw new Error(`${f}: exactly one of v, vs, vb is required, got ${count}`);
    if (names.has(n)) throw new Error(`${f}: duplicate name ${JSON.stringify(n)}`);
    names.add(n);
  });
  return { device, seq };
}

// parseEnvelope: {"p": base64, "s": base64}, exactly these keys.
function parseDeviceEnvelope(bytes) {
  const e = parseStrictJSON(bytes);
  if (!isObject(e)) throw new Error('the envelope is not a JSON object');
  checkKeys(e, ['p', 's'], ['p', 's'], 'the envelope');
  return { p: base64Strict(e.p, 'envelope p'), s: base64Strict(e.s, 'envelope s') };
}

// parseAck: protocol.md §5.
function parseAck(env) {
  if (env.p.length === 0 || env.p.length > 8192) throw new Error(`ack payload is ${env.p.length} bytes (1..8192)`);
  if (env.s.length === 0 || env.s.length > 128) throw new Error(`ack signature is ${env.s.length} bytes (1..128)`);
  const a = parseStrictJSON(env.p);
  if (!isObject(a)) throw new Error('the ack payload is not a JSON object');
  checkKeys(a, ['device', 'command', 'status', 'result', 'ts'], [], 'the ack payload');
  const s = (k) => (a[k] === null || a[k] === undefined ? '' : strOf(a[k], `ack ${k}`));
  const device = s('device');
  const command = s('command');
  const status = s('status');
  const result = s('result');
  if (a.ts !== null && a.ts !== undefined) intOf(a.ts, 'ack ts', { min: -(2n ** 63n), max: 2n ** 63n - 1n });
  if (!ID_RE.test(device)) throw new Error(`ack device ${JSON.stringify(device)} is not a valid id`);
  if (!ID_RE.test(command)) throw new Error(`ack command ${JSON.stringify(command)} is not a valid id`);
  if (status !== 'acked' && status !== 'failed') throw new Error(`ack status ${JSON.stringify(status)} must be "acked" or "failed"`);
  if (utf8Len(result) > 1024) throw new Error('ack result is over 1024 bytes');
  return { device, command, status, result };
}

// ---------------------------------------------------------------- Merkle inclusion (§6, RFC 9162 §2.1.3.2)

function nodeHash(left, right) {
  return sha256(Buffer.from([0x01]), left, right);
}

function leafHash(payload, signature) {
  const n = Buffer.alloc(4);
  n.writeUInt32BE(payload.length);
  return sha256(Buffer.from([0x00]), n, payload, signature);
}

// verifyInclusion: RFC 9162 §2.1.3.2. Returns true when `leaf` at `index` in
// a tree of `size` leaves leads with `path` to `root`.
function verifyInclusion(leaf, index, size, path, root) {
  if (!(index >= 0 && index < size)) return false;
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && r.equals(root);
}

// ---------------------------------------------------------------- the receipt (§2, §3)

const TOP_KEYS = ['format', 'kind', 'channel', 'chaincode', 'device', 'txId', 'config', 'blocks', 'reading', 'command'];
const KIND_KEYS = { reading: ['reading'], 'command-ack': ['command'], 'device-status': [] };
const READING_KEYS = ['payload', 'signature', 'index', 'size', 'path'];

// Step 1, format (§2).
function checkFormat(bytes) {
  let r;
  try {
    r = parseStrictJSON(bytes);
  } catch (e) {
    refuse(STEP.format, `the receipt is not strict JSON: ${e.message}`);
  }
  try {
    if (!isObject(r)) throw new Error('the receipt is not a JSON object');
    checkKeys(r, TOP_KEYS, ['format', 'kind'], 'the receipt');
    if (r.format !== 'iotledger-receipt/1') throw new Error(`format ${JSON.stringify(r.format)} is not "iotledger-receipt/1"`);
    const kind = strOf(r.kind, 'kind');
    if (!hasKey(KIND_KEYS, kind)) throw new Error(`kind ${JSON.stringify(kind)} is not reading, command-ack or device-status`);
    const wanted = ['format', 'kind', 'channel', 'chaincode', 'device', 'txId', 'config', 'blocks', ...KIND_KEYS[kind]];
    for (const k of TOP_KEYS) {
      if (!wanted.includes(k) && hasKey(r, k)) throw new Error(`field ${JSON.stringify(k)} is not one of kind ${kind}`);
    }
    checkKeys(r, wanted, wanted, 'the receipt');
    const out = { kind };
    for (const k of ['channel', 'chaincode', 'device', 'txId']) {
      out[k] = strOf(r[k], k);
      if (out[k] === '') throw new Error(`${k} is empty`);
    }
    for (const k of ['config', 'blocks']) {
      if (!Array.isArray(r[k])) throw new Error(`${k} must be an array of base64 strings`);
      out[k] = r[k].map((s, n) => base64Strict(s, `${k}[${n}]`));
    }
    if (out.config.length === 0) throw new Error('config is empty: it starts with the genesis block');
    if (out.blocks.length === 0) throw new Error('blocks is empty: it holds the subject transaction');
    if (kind === 'command-ack') {
      out.command = strOf(r.command, 'command');
      if (out.command === '') throw new Error('command is empty');
    }
    if (kind === 'reading') {
      const rd = r.reading;
      if (!isObject(rd)) throw new Error('reading must be an object');
      checkKeys(rd, READING_KEYS, READING_KEYS, 'reading');
      out.reading = {
        payload: base64Strict(rd.payload, 'reading.payload'),
        signature: base64Strict(rd.signature, 'reading.signature'),
        index: intOf(rd.index, 'reading.index', { min: 0n, max: 2n ** 53n }),
        size: intOf(rd.size, 'reading.size', { min: 0n, max: 2n ** 53n }),
      };
      if (!Array.isArray(rd.path)) throw new Error('reading.path must be an array of 64-hex hashes');
      out.reading.path = rd.path.map((h, n) => hexHash(h, `reading.path[${n}]`));
    }
    return out;
  } catch (e) {
    if (e instanceof Refusal) throw e;
    refuse(STEP.format, e.message);
  }
}

// parseAnchor: §1. A malformed anchor is a usage error, not a refusal.
function parseAnchor(bytes) {
  const a = parseStrictJSON(bytes);
  if (!isObject(a)) throw new Error('the anchor is not a JSON object');
  checkKeys(a, ['channel', 'genesis'], ['channel', 'genesis'], 'the anchor');
  return { channel: strOf(a.channel, 'anchor channel'), genesis: hexHash(a.genesis, 'anchor genesis') };
}

function verifyReceipt(receiptBytes, anchor) {
  // 1. format
  const r = checkFormat(receiptBytes);
  const ctx = { channel: r.channel, chaincode: r.chaincode };

  // 2. anchor (§1). A config[0] that is not a block at all is not "well
  // formed", which is step 3's: it is refused there, not here.
  if (r.channel !== anchor.channel) refuse(STEP.anchor, `channel ${JSON.stringify(r.channel)} is not the anchor's ${JSON.stringify(anchor.channel)}`);
  let genesis;
  try {
    const b = decode('Block', r.config[0], 'config[0]');
    if (!b.header) throw new Error('config[0] has no header');
    genesis = b;
  } catch (e) {
    refuse(STEP.config, e.message);
  }
  if (U64(genesis.header.number) !== 0n) refuse(STEP.anchor, `config[0] is block ${U64(genesis.header.number)}, not the genesis block 0`);
  const gh = sha256(headerDER(0n, genesis.header.previous_hash, genesis.header.data_hash));
  if (!gh.equals(anchor.genesis)) refuse(STEP.anchor, `the genesis block's header hash ${gh.toString('hex')} is not the anchor's ${anchor.genesis.toString('hex')}`);

  // 3. config chain (§4.4)
  const configs = [];
  r.config.forEach((bytes, k) => {
    const what = `config[${k}]`;
    let rb; let h; let ce; let cfg;
    try {
      rb = readBlock(bytes, what);
      if (rb.data.length !== 1) throw new Error(`${what} (block ${rb.number}) holds ${rb.data.length} envelopes, not one`);
      h = envelopeHeader(rb.data[0], `${what} envelope`);
      if (h.ch.type !== 1) throw new Error(`${what} envelope has channel header type ${h.ch.type}, not CONFIG (1)`);
      if (h.ch.channel_id !== r.channel) throw new Error(`${what} is for channel ${JSON.stringify(h.ch.channel_id)}`);
      ce = decode('ConfigEnvelope', B(h.payload.data), `${what} data`);
      if (!ce.config) throw new Error(`${what} config envelope has no config`);
      cfg = parseConfig(ce.config, what);
    } catch (e) {
      refuse(STEP.config, e.message);
    }
    cfg.number = rb.number;
    cfg.what = what;
    if (k > 0) {
      const prev = configs[k - 1];
      if (rb.number <= prev.number) refuse(STEP.config, `${what} is block ${rb.number}, not after config block ${prev.number}`);
      if (cfg.sequence !== prev.sequence + 1n) refuse(STEP.config, `${what} (block ${rb.number}) has config sequence ${cfg.sequence}, not ${prev.sequence + 1n}`);
      let os; let t;
      try {
        os = ordererSignatures(rb);
        t = blockTime(rb);
      } catch (e) {
        refuse(STEP.config, e.message);
      }
      if (os.lastConfig !== rb.number) refuse(STEP.config, `${what} (block ${rb.number}) names config block ${os.lastConfig} as its last config, not itself`);
      const p = evalPolicy(prev, ['Orderer'], 'BlockValidation', os.sds, t);
      if (p !== null) refuse(STEP.config, `${what} (block ${rb.number}) is not signed as config block ${prev.number} requires: ${p}`);
    }
    configs.push(cfg);
  });

  // 4. blocks (§4.1–4.3)
  const blocks = [];
  r.blocks.forEach((bytes, k) => {
    const what = `blocks[${k}]`;
    let rb; let os; let t;
    try {
      rb = readBlock(bytes, what);
      os = ordererSignatures(rb);
      t = blockTime(rb);
    } catch (e) {
      refuse(STEP.blocks, e.message);
    }
    if (k > 0 && rb.number <= blocks[k - 1].number) refuse(STEP.blocks, `${what} is block ${rb.number}: blocks must ascend by number, each once`);
    const inForce = configs.filter((c) => c.number <= rb.number).pop();
    const named = configs.find((c) => c.number === os.lastConfig);
    if (!named) refuse(STEP.blocks, `${what} (block ${rb.number}) names config block ${os.lastConfig}, which is not in config`);
    if (named !== inForce) refuse(STEP.blocks, `${what} (block ${rb.number}) names config block ${os.lastConfig}, but the newest config block in config at or before it is ${inForce ? inForce.number : 'none'}`);
    const p = evalPolicy(named, ['Orderer'], 'BlockValidation', os.sds, t);
    if (p !== null) refuse(STEP.blocks, `${what} (block ${rb.number}) orderer signatures: ${p}`);
    rb.cfg = named;
    blocks.push(rb);
  });

  // 5. subject transaction (§4.5, §4.6)
  const found = [];
  for (const rb of blocks) {
    rb.data.forEach((env, n) => {
      let h;
      try { h = envelopeHeader(env, 'envelope'); } catch (e) { return; }
      if (h.ch.tx_id === r.txId) found.push({ rb, n, env });
    });
  }
  if (found.length !== 1) refuse(STEP.transaction, `${found.length} envelopes in blocks have tx_id ${JSON.stringify(r.txId)}, not exactly one`);
  const subjectAt = found[0];
  const proofs = { blocks, ctx, memo: new Map(), checked: 0 };
  const subject = checkEndorserTx(subjectAt.env, subjectAt.rb.cfg, ctx, STEP.transaction,
    `the subject transaction (block ${subjectAt.rb.number}, envelope ${subjectAt.n})`);
  const se = checkEndorsements(subject, proofs);
  if (se !== null) refuse(STEP.transaction, se);

  // 6. device record in force (§5)
  const devKey = `\u0000dev\u0000${r.device}\u0000`;
  let record;
  let writer;
  if (r.kind === 'device-status') {
    writer = subject;
  } else {
    const reads = subject.reads.filter((x) => x.key === devKey);
    if (reads.length === 0) refuse(STEP.device, `the subject transaction does not read the device record ${printableKey(devKey)}`);
    if (reads.length > 1) refuse(STEP.device, `the subject transaction reads the device record ${reads.length} times`);
    if (!reads[0].version) refuse(STEP.device, 'the subject transaction read the device record when it did not exist (no version)');
    const b = U64(reads[0].version.block_num);
    const n = U64(reads[0].version.tx_num);
    const rb = blocks.find((x) => x.number === b);
    if (!rb) refuse(STEP.device, `block ${b}, which wrote the device record in force, is not in blocks`);
    if (n >= BigInt(rb.data.length)) refuse(STEP.device, `block ${b} has no envelope ${n}`);
    writer = checkEndorserTx(rb.data[Number(n)], rb.cfg, ctx, STEP.device,
      `the transaction that wrote the device record (block ${b}, envelope ${n})`);
    const we = checkEndorsements(writer, proofs);
    if (we !== null) refuse(STEP.device, we);
  }
  let w;
  try { w = writeOf(writer, devKey); } catch (e) { refuse(STEP.device, e.message); }
  if (!w) refuse(STEP.device, `${writer.what} does not write the device record ${printableKey(devKey)}`);
  if (w.is_delete) refuse(STEP.device, `${writer.what} deletes the device record`);
  try { record = parseDeviceRecord(B(w.value), r.device); } catch (e) { refuse(STEP.device, e.message); }
  const oc = ownerOrConsortium(writer, record.owner);
  if (oc !== null) refuse(STEP.device, oc);

  // 7. subject (§6)
  const fn = subject.args.length ? subject.args[0].toString('utf8') : '';
  const out = {
    ok: true,
    kind: r.kind,
    channel: r.channel,
    device: r.device,
    txId: r.txId,
    block: Number(subjectAt.rb.number),
    txIndex: subjectAt.n,
    owner: record.owner,
    status: record.status,
    keyId: record.keyId,
    endorsers: [...new Set(subject.endorsers.map((id) => id.mspid))].sort(),
  };
  const sub = (msg) => refuse(STEP.subject, msg);
  const jsonWrite = (key, what) => {
    let w;
    try { w = writeOf(subject, key); } catch (e) { sub(e.message); }
    if (!w) sub(`the subject transaction does not write ${what} ${printableKey(key)}`);
    if (w.is_delete) sub(`the subject transaction deletes ${what}`);
    try {
      const v = parseStrictJSON(B(w.value));
      if (!isObject(v)) throw new Error('not a JSON object');
      return v;
    } catch (e) {
      sub(`${what} is not strict JSON: ${e.message}`);
    }
  };

  if (r.kind === 'reading') {
    if (fn !== 'telemetry:SubmitBatch') sub(`the subject transaction calls ${JSON.stringify(fn)}, not telemetry:SubmitBatch`);
    const batch = jsonWrite(`\u0000batch\u0000${r.txId}\u0000`, 'the batch record');
    let root; let size;
    try {
      checkCaseVariants(batch, ['id', 'root', 'size', 'leaves', 'submitter', 'mspId', 'timestamp'], 'the batch record');
      root = hexHash(batch.root, 'the batch root');
      size = intOf(batch.size, 'the batch size', { min: 1n, max: 2n ** 53n });
    } catch (e) {
      sub(e.message);
    }
    const rd = r.reading;
    if (rd.size !== size) sub(`reading.size ${rd.size} is not the batch size ${size}`);
    const leaf = leafHash(rd.payload, rd.signature);
    if (!verifyInclusion(leaf, Number(rd.index), Number(rd.size), rd.path, root)) {
      sub(`the reading's leaf does not lead with reading.path to the batch root at index ${rd.index} of ${rd.size}`);
    }
    let p;
    try { p = parseReadingPayload(rd.payload); } catch (e) { sub(`the payload is not a reading (protocol.md §4): ${e.message}`); }
    if (p.device !== r.device) sub(`the reading is of device ${JSON.stringify(p.device)}, not ${JSON.stringify(r.device)}`);
    if (record.status !== 'active') sub(`the device record in force has status ${record.status}, not active`);
    if (!verifyDeviceSignature(record.key, Buffer.concat([te('iotledger-reading-v1\n'), rd.payload]), rd.signature)) {
      sub('the reading signature does not verify with the key of the device record in force');
    }
    out.seq = p.seq <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(p.seq) : p.seq;
  } else if (r.kind === 'command-ack') {
    if (fn !== 'command:Ack') sub(`the subject transaction calls ${JSON.stringify(fn)}, not command:Ack`);
    if (subject.args.length < 2) sub('the subject transaction has no ack envelope argument');
    let env; let ack;
    try {
      env = parseDeviceEnvelope(subject.args[1]);
      ack = parseAck(env);
    } catch (e) {
      sub(`args[1] is not an ack envelope (protocol.md §5): ${e.message}`);
    }
    if (ack.device !== r.device) sub(`the ack is of device ${JSON.stringify(ack.device)}, not ${JSON.stringify(r.device)}`);
    if (ack.command !== r.command) sub(`the ack is of command ${JSON.stringify(ack.command)}, not ${JSON.stringify(r.command)}`);
    if (!verifyDeviceSignature(record.key, Buffer.concat([te('iotledger-ack-v1\n'), env.p]), env.s)) {
      sub('the ack signature does not verify with the key of the device record in force');
    }
    if (record.status === 'revoked' || record.status === 'decommissioned') sub(`the device record in force has status ${record.status}`);
    const cmd = jsonWrite(`\u0000cmd\u0000${r.device}\u0000${r.command}\u0000`, 'the command record');
    try {
      checkCaseVariants(cmd, ['id', 'device', 'owner', 'name', 'params', 'status', 'issuedBy', 'issuedAt', 'expiresAt',
        'deliveredBy', 'deliveredAt', 'result', 'completedAt', 'completedByTx', 'private'], 'the command record');
      if (cmd.id !== r.command) throw new Error(`the command record's id is ${JSON.stringify(cmd.id)}, not ${JSON.stringify(r.command)}`);
      if (cmd.device !== r.device) throw new Error(`the command record's device is ${JSON.stringify(cmd.device)}, not ${JSON.stringify(r.device)}`);
      if (cmd.status !== ack.status) throw new Error(`the command record's status is ${JSON.stringify(cmd.status)}, not the ack's ${JSON.stringify(ack.status)}`);
      const result = cmd.result === undefined || cmd.result === null ? '' : cmd.result;
      if (result !== ack.result) throw new Error(`the command record's result is ${JSON.stringify(result)}, not the ack's ${JSON.stringify(ack.result)}`);
    } catch (e) {
      sub(e.message);
    }
    out.command = r.command;
    out.ackStatus = ack.status;
  } else {
    out.recordStatus = record.status;
  }
  return out;
}

// ---------------------------------------------------------------- command line

function usage(msg) {
  process.stderr.write(`${msg}\nusage: node verify.js --anchor ANCHOR.json RECEIPT.json\n`);
  process.exit(2);
}

function main(argv) {
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
  try { anchor = parseAnchor(anchorBytes); } catch (e) { usage(`invalid anchor ${anchorPath}: ${e.message}`); }
  let result;
  try {
    result = verifyReceipt(receiptBytes, anchor);
  } catch (e) {
    if (!(e instanceof Refusal)) {
      // A fault of this verifier, not a verdict: say so, and refuse nothing silently.
      process.stderr.write(`internal error: ${e.stack}\n`);
      process.exit(3);
    }
    process.stdout.write(JSON.stringify({ ok: false, step: e.step, error: e.message }) + '\n');
    process.exit(1);
  }
  const text = JSON.stringify(result, (k, v) => (typeof v === 'bigint' ? `@@big:${v}` : v))
    .replace(/"@@big:(\d+)"/g, '$1');
  process.stdout.write(text + '\n');
  process.exit(0);
}

if (require.main === module) main(process.argv.slice(2));

module.exports = {
  Refusal, STEP, parseStrictJSON, JNum, checkKeys, base64Strict, headerDER, derUint, parseDERSignature, isLowS,
  CURVE_ORDER, compileRule, evalRule, implicitThreshold, leafHash, nodeHash, verifyInclusion, checkFormat,
  parseReadingPayload, parseAck, parseDeviceEnvelope, parseDeviceRecord, verifyDeviceSignature, verifyReceipt,
  parseAnchor, decode, pbRoot, readBlock, envelopeHeader, parseConfig, evalPolicy, ordererSignatures, deserialize,
  validateIdentity, blockTime,
};
