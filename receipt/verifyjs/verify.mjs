// The verifier of iotledger receipts (format iotledger-receipt/1) in
// JavaScript, written from docs/receipts.md, with docs/protocol.md §1, §4
// and §5 for what a device signs. One ES module for node (the command line
// verifier in test/receipt-node) and for browsers (the console's receipts
// page, which runs it in a worker): every hash and signature is WebCrypto's
// (crypto.subtle), certificates are read here from their DER, and Fabric's
// messages are decoded by protobufjs (fabric.proto beside this file), which
// the caller passes in. It makes no network request and reads no file.
//
//   const v = receiptVerifier(protobuf, fabricProtoText);
//   await v.verifyReceipt(receiptBytes, v.parseAnchor(anchorBytes));
//
// verifyReceipt resolves to {ok: true, ...} or rejects with a Refusal (its
// step and message); any other rejection is a fault of the verifier, never
// a verdict. Section numbers (§) are those of docs/receipts.md unless
// another document is named.

// ---------------------------------------------------------------- bytes

const EMPTY = new Uint8Array(0);

// B returns a bytes value as a Uint8Array (protobufjs leaves absent bytes
// as [], node's protobufjs gives Buffers, which are Uint8Arrays).
export function B(x) {
  if (x instanceof Uint8Array) return x;
  return new Uint8Array(x || []);
}

export function concat(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) { out.set(p, off); off += p.length; }
  return out;
}

export function equal(a, b) {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

export function toHex(b) {
  let s = '';
  for (const x of b) s += (x < 16 ? '0' : '') + x.toString(16);
  return s;
}

export function fromHex(s) {
  const out = new Uint8Array(s.length >> 1);
  for (let k = 0; k < out.length; k++) out[k] = parseInt(s.slice(2 * k, 2 * k + 2), 16);
  return out;
}

export function toBase64(b) {
  let s = '';
  for (let k = 0; k < b.length; k += 0x8000) s += String.fromCharCode(...b.subarray(k, k + 0x8000));
  return btoa(s);
}

// fromBase64 decodes base64 that has been checked (or, for PEM bodies,
// leniently, as node's Buffer does: characters outside the alphabet are
// skipped, padding is optional).
export function fromBase64(s) {
  let t = s.replace(/=.*$/s, '').replace(/[^A-Za-z0-9+/]/g, '');
  if (t.length % 4 === 1) t = t.slice(0, -1);
  while (t.length % 4) t += '=';
  const bin = atob(t);
  const out = new Uint8Array(bin.length);
  for (let k = 0; k < bin.length; k++) out[k] = bin.charCodeAt(k);
  return out;
}

export const utf8 = (s) => new TextEncoder().encode(s);
const textOf = (b) => new TextDecoder('utf-8').decode(b);
const latin1 = (b) => { let s = ''; for (const x of b) s += String.fromCharCode(x); return s; };
const utf8Len = (s) => utf8(s).length;

function subtleOf() {
  const s = globalThis.crypto && globalThis.crypto.subtle;
  if (!s) throw new Error('WebCrypto (crypto.subtle) is not available here');
  return s;
}

export async function sha256(...parts) {
  return new Uint8Array(await subtleOf().digest('SHA-256', concat(...parts)));
}

function hasKey(obj, k) {
  return obj !== null && obj !== undefined && Object.prototype.hasOwnProperty.call(obj, k);
}

// U64 returns a (u)int64 field as a BigInt.
function U64(x) {
  if (x === null || x === undefined) return 0n;
  if (typeof x === 'number') return BigInt(x);
  return BigInt(x.toString());
}

// ---------------------------------------------------------------- refusals

// The numbered steps of §3.
export const STEP = {
  format: 'format',
  anchor: 'anchor',
  config: 'config',
  blocks: 'blocks',
  transaction: 'transaction',
  device: 'device',
  subject: 'subject',
};

export class Refusal extends Error {
  constructor(step, message) {
    super(message);
    this.step = step;
  }
}

function refuse(step, message) {
  throw new Refusal(step, message);
}

// ---------------------------------------------------------------- strict JSON (§2)

// A JSON number, kept as its literal so that integers of any size survive.
export class JNum {
  constructor(raw) { this.raw = raw; }
}

// parseStrictJSON parses one JSON text (RFC 8259) from bytes and refuses what
// JSON.parse lets through: invalid UTF-8, escapes of lone surrogates,
// duplicate object keys (at any depth) and anything but whitespace after the
// value. Objects come back with a null prototype, numbers as JNum.
export function parseStrictJSON(input) {
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
export function checkKeys(obj, allowed, required, where) {
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
export function base64Strict(s, where) {
  if (typeof s !== 'string') throw new Error(`${where} must be a base64 string`);
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s)) {
    throw new Error(`${where} is not standard padded base64 (RFC 4648 §4)`);
  }
  const b = fromBase64(s);
  if (toBase64(b) !== s) throw new Error(`${where} is not canonical base64 (non-zero padding bits)`);
  return b;
}

// hexHash: a hash of the receipt (§2), 64 lowercase hex characters.
function hexHash(s, where) {
  if (typeof s !== 'string' || !/^[0-9a-f]{64}$/.test(s)) throw new Error(`${where} must be 64 lowercase hex characters`);
  return fromHex(s);
}

// findNull returns the JSON pointer of the first null in a parsed value, or
// null when there is none (§2: null is not a value).
function findNull(v, at = '') {
  if (v === null) return at || '/';
  if (Array.isArray(v)) {
    for (let k = 0; k < v.length; k++) {
      const p = findNull(v[k], `${at}/${k}`);
      if (p !== null) return p;
    }
  } else if (isObject(v)) {
    for (const k of Object.keys(v)) {
      const p = findNull(v[k], `${at}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`);
      if (p !== null) return p;
    }
  }
  return null;
}

// ---------------------------------------------------------------- DER

function derLength(n) {
  if (n < 0x80) return Uint8Array.of(n);
  const bytes = [];
  while (n > 0) { bytes.unshift(n & 0xff); n = Math.floor(n / 256); }
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

function derTLV(tag, content) {
  return concat(Uint8Array.of(tag), derLength(content.length), content);
}

// derUint encodes a non-negative BigInt as a minimal DER INTEGER.
export function derUint(n) {
  let hex = n.toString(16);
  if (hex.length % 2) hex = '0' + hex;
  let b = fromHex(hex);
  if (b[0] & 0x80) b = concat(Uint8Array.of(0), b);
  return derTLV(0x02, b);
}

// §4.1: the bytes Fabric hashes for a block header.
export function headerDER(number, previousHash, dataHash) {
  return derTLV(0x30, concat(derUint(number), derTLV(0x04, B(previousHash)), derTLV(0x04, B(dataHash))));
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
  return { tag, start, end, off, content: buf.subarray(start, end), raw: buf.subarray(off, end) };
}

function derChildren(buf, start, end, strict = false) {
  const out = [];
  let off = start;
  while (off < end) {
    const t = derRead(buf, off, strict);
    if (t.end > end) throw new Error('DER overrun');
    out.push(t);
    off = t.end;
  }
  if (off !== end) throw new Error('DER overrun');
  return out;
}

// parseDERSignature parses an ASN.1 DER ECDSA signature SEQUENCE { r, s } as
// strictly as Go's encoding/asn1: minimal positive integers, nothing after.
export function parseDERSignature(sig) {
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
    return BigInt('0x' + toHex(c));
  });
  if (r === 0n || s === 0n) throw new Error('r and s must be positive');
  return { r, s };
}

// Curve orders, for the low-S rule of §4.4, and field sizes, for the
// IEEE P1363 form (r ‖ s) WebCrypto verifies.
export const CURVE_ORDER = {
  prime256v1: BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'),
  secp384r1: BigInt('0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973'),
};
const CURVE = {
  prime256v1: { webcrypto: 'P-256', size: 32 },
  secp384r1: { webcrypto: 'P-384', size: 48 },
  secp521r1: { webcrypto: 'P-521', size: 66 },
};

export function isLowS(s, curve) {
  const n = CURVE_ORDER[curve];
  if (n === undefined) throw new Error(`unknown curve ${curve}`);
  return s <= n >> 1n;
}

// p1363 turns DER (r, s) into r ‖ s of the curve's size, or null when
// either does not fit (then the signature cannot verify).
export function p1363(rs, size) {
  const out = new Uint8Array(2 * size);
  for (const [k, v] of [[0, rs.r], [1, rs.s]]) {
    let hex = v.toString(16);
    if (hex.length > 2 * size) return null;
    hex = hex.padStart(2 * size, '0');
    out.set(fromHex(hex), k * size);
  }
  return out;
}

// ---------------------------------------------------------------- certificates

const OID = {
  ou: '2.5.4.11', cn: '2.5.4.3',
  ecPublicKey: '1.2.840.10045.2.1', rsaEncryption: '1.2.840.113549.1.1.1', ed25519: '1.3.101.112',
  basicConstraints: '2.5.29.19', keyUsage: '2.5.29.15', subjectKeyId: '2.5.29.14', authorityKeyId: '2.5.29.35',
};
const CURVE_OF_OID = { '1.2.840.10045.3.1.7': 'prime256v1', '1.3.132.0.34': 'secp384r1', '1.3.132.0.35': 'secp521r1' };
// The key types node names (KeyObject.asymmetricKeyType), for messages.
const KEY_TYPE_OF_OID = {
  [OID.ecPublicKey]: 'ec', [OID.rsaEncryption]: 'rsa', [OID.ed25519]: 'ed25519', '1.3.101.113': 'ed448',
  '1.3.101.110': 'x25519', '1.3.101.111': 'x448', '1.2.840.113549.1.1.10': 'rsa-pss', '1.2.840.10040.4.1': 'dsa',
  '1.2.840.10046.2.1': 'dh',
};
// Certificate signature algorithms WebCrypto verifies.
const SIG_ALG = {
  '1.2.840.10045.4.3.2': { key: 'ec', hash: 'SHA-256' },
  '1.2.840.10045.4.3.3': { key: 'ec', hash: 'SHA-384' },
  '1.2.840.10045.4.3.4': { key: 'ec', hash: 'SHA-512' },
  '1.2.840.113549.1.1.11': { key: 'rsa', hash: 'SHA-256' },
  '1.2.840.113549.1.1.12': { key: 'rsa', hash: 'SHA-384' },
  '1.2.840.113549.1.1.13': { key: 'rsa', hash: 'SHA-512' },
  '1.3.101.112': { key: 'ed25519' },
};

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
  const s = latin1(t.content);
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

// parseSPKI reads a SubjectPublicKeyInfo's algorithm: the key type as node
// names it and, for EC keys, the curve.
function parseSPKI(der) {
  const top = derRead(der, 0, false);
  if (top.tag !== 0x30 || top.end !== der.length) throw new Error('not a SubjectPublicKeyInfo');
  const [alg, key] = derChildren(der, top.start, top.end);
  if (!alg || alg.tag !== 0x30 || !key || key.tag !== 0x03) throw new Error('not a SubjectPublicKeyInfo');
  const ids = derChildren(der, alg.start, alg.end);
  if (ids.length === 0 || ids[0].tag !== 0x06) throw new Error('public key algorithm is not an OID');
  const oid = oidString(ids[0].content);
  let curve = null;
  if (oid === OID.ecPublicKey) {
    if (ids.length < 2 || ids[1].tag !== 0x06) throw new Error('EC public key without a named curve');
    const c = oidString(ids[1].content);
    curve = CURVE_OF_OID[c] || c;
  }
  return { der, type: KEY_TYPE_OF_OID[oid] || oid, curve, keys: new Map() };
}

// importSPKI imports a public key for one WebCrypto algorithm, once.
function importSPKI(pub, alg) {
  const cacheKey = JSON.stringify(alg);
  if (!pub.keys.has(cacheKey)) pub.keys.set(cacheKey, subtleOf().importKey('spki', pub.der, alg, false, ['verify']));
  return pub.keys.get(cacheKey);
}

function ecdsaImport(pub) {
  return importSPKI(pub, { name: 'ECDSA', namedCurve: CURVE[pub.curve].webcrypto });
}

// parseName reads a Name's attributes (every OU, in order, and the CN).
function parseName(der, name) {
  const attrs = [];
  for (const set of derChildren(der, name.start, name.end)) {
    for (const atv of derChildren(der, set.start, set.end)) {
      const [oid, val] = derChildren(der, atv.start, atv.end);
      let text;
      if (val.tag === 0x1e) { // BMPString
        text = '';
        for (let j = 0; j + 1 < val.content.length; j += 2) text += String.fromCharCode((val.content[j] << 8) | val.content[j + 1]);
      } else {
        text = val.tag === 0x0c ? textOf(val.content) : latin1(val.content);
      }
      attrs.push({ oid: oidString(oid.content), value: text });
    }
  }
  return attrs;
}

// parseCertificate reads an X.509 certificate (RFC 5280 §4.1) from its DER:
// what the chain check needs (names, key, extensions, signature), the
// validity instants and the subject's attributes.
export function parseCertificate(der) {
  const cert = derRead(der, 0, false);
  if (cert.tag !== 0x30) throw new Error('not a DER SEQUENCE');
  if (cert.end !== der.length) throw new Error('trailing data after the certificate');
  const top = derChildren(der, cert.start, cert.end);
  if (top.length !== 3 || top[0].tag !== 0x30 || top[1].tag !== 0x30 || top[2].tag !== 0x03) {
    throw new Error('not SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }');
  }
  const tbs = derChildren(der, top[0].start, top[0].end);
  let k = 0;
  if (tbs[0] && tbs[0].tag === 0xa0) k++; // [0] version
  const need = [0x02, 0x30, 0x30, 0x30, 0x30, 0x30];
  for (let j = 0; j < need.length; j++) {
    if (!tbs[k + j] || tbs[k + j].tag !== need[j]) throw new Error('malformed tbsCertificate');
  }
  const [serialT, innerAlg, issuer, validityT, subject, spkiT] = tbs.slice(k, k + 6);
  const validity = derChildren(der, validityT.start, validityT.end);
  if (validity.length !== 2) throw new Error('malformed validity');
  const algOf = (t) => {
    const c = derChildren(der, t.start, t.end);
    if (c.length === 0 || c[0].tag !== 0x06) throw new Error('malformed algorithm identifier');
    return oidString(c[0].content);
  };
  const sigBits = top[2].content;
  if (sigBits.length === 0 || sigBits[0] !== 0) throw new Error('malformed signature BIT STRING');
  const out = {
    der,
    tbs: top[0].raw,
    sigAlg: algOf(top[1]),
    sigAlgRaw: top[1].raw,
    innerSigAlgRaw: innerAlg.raw,
    signature: sigBits.subarray(1),
    // The serial as a signed integer, which a CRL of its issuer names (§4.4).
    serial: serialT.content.length ? signedBigInt(serialT.content) : 0n,
    issuerRaw: issuer.raw,
    subjectRaw: subject.raw,
    publicKey: parseSPKI(spkiT.raw),
    notBefore: derTime(validity[0]),
    notAfter: derTime(validity[1]),
    ca: false,
    keyUsage: null, // null: no key usage extension; else the bits, bit 0 first
    skid: null,
    akid: null,
  };
  const attrs = parseName(der, subject);
  out.ous = attrs.filter((a) => a.oid === OID.ou).map((a) => a.value);
  out.cn = (attrs.find((a) => a.oid === OID.cn) || {}).value || '';
  const ext = tbs.slice(k + 6).find((t) => t.tag === 0xa3);
  if (ext) {
    const [seq] = derChildren(der, ext.start, ext.end);
    if (!seq || seq.tag !== 0x30) throw new Error('malformed extensions');
    for (const e of derChildren(der, seq.start, seq.end)) {
      const parts = derChildren(der, e.start, e.end);
      if (parts.length < 2 || parts[0].tag !== 0x06 || parts[parts.length - 1].tag !== 0x04) throw new Error('malformed extension');
      const oid = oidString(parts[0].content);
      const v = parts[parts.length - 1].content;
      if (oid === OID.basicConstraints) {
        const bc = derRead(v, 0, false);
        const items = derChildren(v, bc.start, bc.end);
        out.ca = items.length > 0 && items[0].tag === 0x01 && items[0].content.length === 1 && items[0].content[0] !== 0;
      } else if (oid === OID.keyUsage) {
        const bs = derRead(v, 0, false);
        if (bs.tag !== 0x03 || bs.content.length === 0) throw new Error('malformed key usage');
        const bits = [];
        for (let j = 1; j < bs.content.length; j++) for (let b = 7; b >= 0; b--) bits.push(((bs.content[j] >> b) & 1) === 1);
        out.keyUsage = bits;
      } else if (oid === OID.subjectKeyId) {
        const s = derRead(v, 0, false);
        if (s.tag !== 0x04) throw new Error('malformed subject key identifier');
        out.skid = s.content;
      } else if (oid === OID.authorityKeyId) {
        const a = derRead(v, 0, false);
        const id = derChildren(v, a.start, a.end).find((t) => t.tag === 0x80);
        out.akid = id ? id.content : null;
      }
    }
  }
  return out;
}

// checkIssued: could `issuer` have issued `cert`? As OpenSSL's
// X509_check_issued: the issuer's subject is the certificate's issuer (here
// byte for byte, as Go's chain building matches names), the authority key
// identifier, when both are given, is the issuer's subject key identifier,
// and an issuer with a key usage extension may sign certificates.
export function checkIssued(cert, issuer) {
  if (!equal(cert.issuerRaw, issuer.subjectRaw)) return false;
  if (cert.akid && issuer.skid && !equal(cert.akid, issuer.skid)) return false;
  if (issuer.keyUsage !== null && !issuer.keyUsage[5]) return false; // keyCertSign
  return true;
}

// verifyCertSignature: does `issuer`'s key verify `cert`'s signature over
// its tbsCertificate? (Both algorithm identifiers must agree, RFC 5280 §4.1.1.2.)
export async function verifyCertSignature(cert, issuer) {
  const alg = SIG_ALG[cert.sigAlg];
  const pub = issuer.publicKey;
  if (!alg || alg.key !== pub.type || !equal(cert.sigAlgRaw, cert.innerSigAlgRaw)) return false;
  try {
    if (alg.key === 'ec') {
      if (!CURVE[pub.curve]) return false;
      const sig = p1363(parseDERSignature(cert.signature), CURVE[pub.curve].size);
      if (sig === null) return false;
      return await subtleOf().verify({ name: 'ECDSA', hash: alg.hash }, await ecdsaImport(pub), sig, cert.tbs) === true;
    }
    if (alg.key === 'rsa') {
      const key = await importSPKI(pub, { name: 'RSASSA-PKCS1-v1_5', hash: alg.hash });
      return await subtleOf().verify({ name: 'RSASSA-PKCS1-v1_5' }, key, cert.signature, cert.tbs) === true;
    }
    const key = await importSPKI(pub, { name: 'Ed25519' });
    return await subtleOf().verify({ name: 'Ed25519' }, key, cert.signature, cert.tbs) === true;
  } catch (e) {
    return false;
  }
}

// ---------------------------------------------------------------- CRLs (§4.4)

// A CRL of an MSP's revocation_list is read as the Go verifier reads it
// (receipt/trust, over Go's x509.ParseRevocationList): a CRL that does not
// parse refuses the configuration; a CRL counts for each CA of the MSP whose
// key verifies its signature, and for no other (one no CA of the MSP signed
// revokes nothing); it revokes the serials it lists, whatever its dates and
// the revocation dates. Parsing follows Go's parser rule for rule, strict
// DER where Go is (tags, minimal lengths and integers, OIDs, times, name
// strings, the two algorithm identifiers equal) and as lenient where Go is
// (bytes after the CRL, after its signature, and after the last field of
// its tbsCertList or of an entry are not read), so that both verifiers
// accept and refuse the same CRLs.

export class CRLError extends Error {}

function crlFail(what) {
  throw new CRLError(what);
}

// signedBigInt reads a two's-complement big-endian integer.
export function signedBigInt(b) {
  let v = BigInt('0x' + (toHex(b) || '0'));
  if (b.length > 0 && (b[0] & 0x80)) v -= 1n << BigInt(8 * b.length);
  return v;
}

// DERReader reads TLVs from buf[off, end) as Go's cryptobyte does: a
// one-byte tag (no high tag numbers), a definite length in the fewest
// bytes (at most four), contents within the input.
class DERReader {
  constructor(buf, off = 0, end = buf.length) {
    this.buf = buf;
    this.off = off;
    this.end = end;
  }

  empty() { return this.off >= this.end; }

  peek(tag) { return this.off < this.end && this.buf[this.off] === tag; }

  // element reads one TLV, of `tag` unless tag is null; `what` names it in the error.
  element(tag, what) {
    const b = this.buf;
    const o = this.off;
    if (this.end - o < 2) crlFail(what);
    const t = b[o];
    if ((t & 0x1f) === 0x1f || (tag !== null && t !== tag)) crlFail(what);
    let len = b[o + 1];
    let hdr = 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4 || this.end - o < 2 + n) crlFail(what);
      len = 0;
      for (let k = 0; k < n; k++) len = len * 256 + b[o + 2 + k];
      if (len < 0x80 || b[o + 2] === 0) crlFail(what);
      hdr += n;
    }
    if (len > this.end - o - hdr) crlFail(what);
    this.off = o + hdr + len;
    return { tag: t, raw: b.subarray(o, this.off), content: b.subarray(o + hdr, this.off), reader: new DERReader(b, o + hdr, this.off) };
  }
}

// integerOf: an INTEGER's contents, minimally encoded, as a BigInt.
function integerOf(c, what) {
  if (c.length === 0) crlFail(what);
  if (c.length > 1 && ((c[0] === 0 && !(c[1] & 0x80)) || (c[0] === 0xff && (c[1] & 0x80)))) crlFail(what);
  return signedBigInt(c);
}

function readInteger(r, what, tag = 0x02) {
  return integerOf(r.element(tag, what).content, what);
}

// readOID reads an OBJECT IDENTIFIER as cryptobyte does: each arc in at most
// five bytes, minimally encoded, under 2^31.
function readOID(r, what) {
  const c = r.element(0x06, what).content;
  if (c.length === 0) crlFail(what);
  const arcs = [];
  let k = 0;
  while (k < c.length) {
    let v = 0;
    let done = false;
    for (let i = 0; k < c.length; i++) {
      if (i === 5 || v >= 1 << 24) crlFail(what);
      const b = c[k++];
      if (i === 0 && b === 0x80) crlFail(what);
      v = v * 128 + (b & 0x7f);
      if (!(b & 0x80)) { done = true; break; }
    }
    if (!done) crlFail(what);
    if (arcs.length === 0) {
      if (v < 80) arcs.push(Math.floor(v / 40), v % 40);
      else arcs.push(2, v - 80);
    } else {
      arcs.push(v);
    }
  }
  return arcs.join('.');
}

const daysIn = (y, m) => [31, (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][m - 1];

// validTime: does Go's cryptobyte read this UTCTime (YYMMDDhhmm[ss] and a
// zone) or GeneralizedTime (YYYYMMDDhhmmss and a zone; no fraction, which
// does not format back) — Go's time.Parse of its layout, and the value
// formatted again is the same text?
function validTime(tag, s) {
  const m = tag === 0x17
    ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(Z|[+-]\d{4})$/.exec(s)
    : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(Z|[+-]\d{4})$/.exec(s);
  if (!m) return false;
  let year = Number(m[1]);
  if (tag === 0x17) year += year >= 69 ? 1900 : 2000;
  const [mo, d, h, mi] = m.slice(2, 6).map(Number);
  const se = m[6] === undefined ? 0 : Number(m[6]);
  if (mo < 1 || mo > 12 || d < 1 || d > daysIn(year, mo) || h > 23 || mi > 59 || se > 59) return false;
  const z = m[7];
  if (z === 'Z') return true;
  const zh = Number(z.slice(1, 3));
  const zm = Number(z.slice(3, 5));
  return zh <= 24 && zm <= 59 && (zh !== 0 || zm !== 0); // ±0000 formats as Z
}

function readTime(r, what) {
  if (!r.peek(0x17) && !r.peek(0x18)) crlFail(`${what}: unsupported time format`);
  const t = r.element(null, what);
  if (!validTime(t.tag, latin1(t.content))) crlFail(`malformed ${t.tag === 0x17 ? 'UTCTime' : 'GeneralizedTime'} ${what}`);
}

// checkNameString: the attribute value string types Go's x509 reads, each
// with its own rules.
function checkNameString(tag, v) {
  const printable = (b) => (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39) ||
    (b >= 0x27 && b <= 0x29) || (b >= 0x2b && b <= 0x2f) || b === 0x20 || b === 0x3a || b === 0x3d || b === 0x3f ||
    b === 0x2a || b === 0x26;
  switch (tag) {
    case 0x14: return true; // T61String, read as Latin-1
    case 0x13: return v.every(printable);
    case 0x0c:
      try { new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(v); return true; } catch (e) { return false; }
    case 0x1e: {
      if (v.length % 2 !== 0) return false;
      let n = v.length;
      if (n >= 2 && v[n - 1] === 0 && v[n - 2] === 0) n -= 2;
      for (let j = 0; j < n; j += 2) {
        const p = (v[j] << 8) | v[j + 1];
        if (p === 0xfffe || p === 0xffff || (p >= 0xfdd0 && p <= 0xfdef) || (p >= 0xd800 && p <= 0xdfff)) return false;
      }
      return true;
    }
    case 0x16: return v.every((b) => b < 0x80);
    case 0x12: return v.every((b) => (b >= 0x30 && b <= 0x39) || b === 0x20);
    default: return false;
  }
}

function checkName(t) {
  const rdns = t.reader;
  while (!rdns.empty()) {
    const set = rdns.element(0x31, 'invalid issuer RDNSequence').reader;
    while (!set.empty()) {
      const atv = set.element(0x30, 'invalid issuer attribute').reader;
      readOID(atv, 'invalid issuer attribute type');
      const v = atv.element(null, 'invalid issuer attribute value');
      if (!checkNameString(v.tag, v.content)) crlFail(`invalid issuer attribute value: string type 0x${v.tag.toString(16)}`);
    }
  }
}

// readExtension: SEQUENCE { extnID OID, critical BOOLEAN OPTIONAL, extnValue OCTET STRING }.
function readExtension(r) {
  const oid = readOID(r, 'malformed extension OID field');
  let critical = false;
  if (r.peek(0x01)) {
    const b = r.element(0x01, 'malformed extension critical field').content;
    if (b.length !== 1 || (b[0] !== 0 && b[0] !== 0xff)) crlFail('malformed extension critical field');
    critical = b[0] === 0xff;
  }
  const value = r.element(0x04, 'malformed extension value field').content;
  return { oid, critical, value };
}

const CRL_EXT = { reasonCode: '2.5.29.21', authorityKeyId: '2.5.29.35', crlNumber: '2.5.29.20' };

// parseCRL reads a CertificateList (RFC 5280 §5.1) from its DER: the bytes
// signed, the signature algorithm, the signature and the serials it revokes.
export function parseCRL(der) {
  const list = new DERReader(der).element(0x30, 'malformed CRL').reader;
  const tbsT = list.element(0x30, 'malformed tbsCertList');
  const tbs = tbsT.reader;
  if (!tbs.peek(0x02)) crlFail('unsupported CRL version (a v2 CRL has a version field)');
  const version = readInteger(tbs, 'malformed CRL version');
  if (version !== 1n) crlFail(`unsupported CRL version ${version}`);
  const inner = tbs.element(0x30, 'malformed signature algorithm identifier');
  const outer = list.element(0x30, 'malformed algorithm identifier');
  if (!equal(inner.content, outer.content)) crlFail("inner and outer signature algorithm identifiers don't match");
  const ai = inner.reader;
  const sigAlg = readOID(ai, 'malformed signature algorithm OID');
  const sigAlgParams = ai.empty() ? EMPTY : ai.element(null, 'malformed signature algorithm parameters').raw;
  const bits = list.element(0x03, 'malformed signature').content;
  const pad = bits.length > 0 ? bits[0] : 0;
  if (bits.length === 0 || pad > 7 || (bits.length === 1 && pad !== 0) || (bits.length > 1 && (bits[bits.length - 1] & ((1 << pad) - 1)) !== 0)) {
    crlFail('malformed signature');
  }
  // The signature's bits, right-aligned as Go's BitString.RightAlign.
  let signature = bits.subarray(1);
  if (pad !== 0) {
    const a = new Uint8Array(signature.length);
    a[0] = signature[0] >> pad;
    for (let j = 1; j < signature.length; j++) a[j] = ((signature[j - 1] << (8 - pad)) & 0xff) | (signature[j] >> pad);
    signature = a;
  }
  checkName(tbs.element(0x30, 'malformed issuer'));
  readTime(tbs, 'thisUpdate');
  if (tbs.peek(0x17) || tbs.peek(0x18)) readTime(tbs, 'nextUpdate');
  const serials = [];
  if (tbs.peek(0x30)) {
    const revoked = tbs.element(0x30, 'malformed revokedCertificates').reader;
    while (!revoked.empty()) {
      const entry = revoked.element(0x30, 'malformed revoked certificate entry').reader;
      serials.push(readInteger(entry, 'malformed serial number'));
      readTime(entry, 'revocationDate');
      if (entry.peek(0x30)) {
        const exts = entry.element(0x30, 'malformed entry extensions').reader;
        while (!exts.empty()) {
          const e = readExtension(exts.element(0x30, 'malformed entry extension').reader);
          if (e.oid === CRL_EXT.reasonCode) {
            const n = readInteger(new DERReader(e.value), 'malformed reasonCode extension', 0x0a);
            if (n < -(2n ** 63n) || n >= 2n ** 63n) crlFail('malformed reasonCode extension');
          }
        }
      }
    }
  }
  if (tbs.peek(0xa0)) {
    const exts = tbs.element(0xa0, 'malformed extensions').reader.element(0x30, 'malformed extensions').reader;
    while (!exts.empty()) {
      const e = readExtension(exts.element(0x30, 'malformed extension').reader);
      if (e.oid === CRL_EXT.authorityKeyId) {
        if (e.critical) crlFail('authority key identifier incorrectly marked critical');
        const akid = new DERReader(e.value).element(0x30, 'invalid authority key identifier').reader;
        if (akid.peek(0x80)) akid.element(0x80, 'invalid authority key identifier');
      } else if (e.oid === CRL_EXT.crlNumber) {
        readInteger(new DERReader(e.value), 'malformed crl number');
      }
    }
  }
  return { tbs: tbsT.raw, sigAlg, sigAlgParams, signature, serials };
}

// The signature algorithms Go checks a CRL's signature with, as WebCrypto
// names them: a certificate's, and SHA-1 (allowed for CRLs). Any other
// algorithm, MD5 with RSA and DSA among them, verifies with no key: the CRL
// revokes nothing.
const CRL_SIG_ALG = {
  ...SIG_ALG,
  '1.2.840.10045.4.1': { key: 'ec', hash: 'SHA-1' },
  '1.2.840.113549.1.1.5': { key: 'rsa', hash: 'SHA-1' },
  '1.3.14.3.2.29': { key: 'rsa', hash: 'SHA-1' },
};
const RSA_PSS = '1.2.840.113549.1.1.10';

// crlSignedBy: does the CA's key verify the CRL's signature, as Go's
// Certificate.CheckSignature decides it? Throws where Go could decide and
// WebCrypto cannot (RSA-PSS, an EC curve WebCrypto lacks), so that such a
// CRL refuses the configuration rather than revoke nothing here.
export async function crlSignedBy(crl, ca) {
  const pub = ca.publicKey;
  if (crl.sigAlg === RSA_PSS) {
    if (pub.type === 'rsa') throw new CRLError('it is signed with RSA-PSS, which this verifier does not check');
    return false;
  }
  const alg = CRL_SIG_ALG[crl.sigAlg];
  if (!alg || alg.key !== pub.type) return false;
  if (alg.key === 'ed25519' && crl.sigAlgParams.length !== 0) return false; // RFC 8410: no parameters
  try {
    if (alg.key === 'ec') {
      if (!CURVE[pub.curve]) throw new CRLError(`its CA ${JSON.stringify(ca.cn)} has a key on curve ${pub.curve}, which this verifier does not check`);
      let rs;
      try { rs = parseDERSignature(crl.signature); } catch (e) { return false; }
      const raw = p1363(rs, CURVE[pub.curve].size);
      return raw !== null && await subtleOf().verify({ name: 'ECDSA', hash: alg.hash }, await ecdsaImport(pub), raw, crl.tbs) === true;
    }
    if (alg.key === 'rsa') {
      const key = await importSPKI(pub, { name: 'RSASSA-PKCS1-v1_5', hash: alg.hash });
      return await subtleOf().verify({ name: 'RSASSA-PKCS1-v1_5' }, key, crl.signature, crl.tbs) === true;
    }
    const key = await importSPKI(pub, { name: 'Ed25519' });
    return await subtleOf().verify({ name: 'Ed25519' }, key, crl.signature, crl.tbs) === true;
  } catch (e) {
    if (e instanceof CRLError) throw e;
    return false;
  }
}

// crlDER: a revocation_list entry is PEM (its first block, whatever its
// type, as Go's pem.Decode finds it) or else DER.
function crlDER(bytes) {
  const text = latin1(bytes);
  const m = /-----BEGIN ([^\r\n-]*)-----\r?\n([\s\S]*?)-----END \1-----/.exec(text);
  if (m && /^[A-Za-z0-9+/=\s]*$/.test(m[2])) return fromBase64(m[2]);
  return bytes;
}

// revocations reads an MSP's CRLs: CA (hex DER) → the serials (decimal) a
// CRL that CA signed revokes.
async function revocations(list, cas, mspName) {
  const revoked = new Map();
  for (let k = 0; k < list.length; k++) {
    const what = `MSP ${mspName} revocation_list[${k}]`;
    let crl;
    try {
      crl = parseCRL(crlDER(B(list[k])));
    } catch (e) {
      if (e instanceof CRLError) throw new Error(`${what} is not a CRL: ${e.message}`);
      throw e;
    }
    for (const ca of cas) {
      let signed;
      try {
        signed = await crlSignedBy(crl, ca);
      } catch (e) {
        if (e instanceof CRLError) throw new Error(`${what}: ${e.message}`);
        throw e;
      }
      if (!signed) continue;
      const key = toHex(ca.der);
      if (!revoked.has(key)) revoked.set(key, new Set());
      for (const s of crl.serials) revoked.get(key).add(s.toString());
    }
  }
  return revoked;
}

// revokedLink: the first certificate of a chain (cert first, root last)
// whose serial a CRL of its issuer revokes, as a reason, or null.
function revokedLink(msp, chain) {
  for (let k = 0; k + 1 < chain.length; k++) {
    const set = msp.revoked.get(toHex(chain[k + 1].der));
    if (set && set.has(chain[k].serial.toString())) {
      return `certificate ${JSON.stringify(chain[k].cn)} (serial ${chain[k].serial}) is revoked by a CRL of ${JSON.stringify(chain[k + 1].cn)}`;
    }
  }
  return null;
}

// pemBlocks returns the DER of each PEM block of a type.
function pemBlocks(bytes, type) {
  const text = latin1(B(bytes));
  const re = /-----BEGIN ([A-Z0-9 ]+)-----([^-]*)-----END \1-----/g;
  const out = [];
  let m;
  while ((m = re.exec(text)) !== null) {
    if (type === undefined || m[1] === type) out.push({ type: m[1], der: fromBase64(m[2].replace(/\s+/g, '')) });
  }
  return out;
}

// loadCert parses the first PEM block of bytes as a certificate, as Fabric's
// MSP does (pem.Decode takes the first block). An EC key is imported here,
// where a key that is not a point of its curve is a refusal.
async function loadCert(bytes, what) {
  const blocks = pemBlocks(bytes);
  if (blocks.length === 0) throw new Error(`${what} is not PEM`);
  if (blocks[0].type !== 'CERTIFICATE') throw new Error(`${what} is a PEM ${blocks[0].type}, not a CERTIFICATE`);
  let cert;
  try {
    cert = parseCertificate(blocks[0].der);
  } catch (e) {
    throw new Error(`${what} is not an X.509 certificate: ${e.message}`);
  }
  if (cert.publicKey.type === 'ec' && CURVE[cert.publicKey.curve]) {
    try {
      await ecdsaImport(cert.publicKey);
    } catch (e) {
      throw new Error(`${what} is not an X.509 certificate: its public key: ${e.message}`);
    }
  }
  return cert;
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

// ---------------------------------------------------------------- policies, blocks, records, payloads: the parts without crypto

// compileRule turns a SignaturePolicy into {signedBy: k} / {n, rules}.
export function compileRule(rule, nIdentities) {
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
export function evalRule(rule, idents, used, satisfies) {
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


// implicitThreshold: ANY (1), ALL (every), MAJORITY (more than half); no
// sub-groups at all is satisfied, as in Fabric.
export function implicitThreshold(rule, count) {
  if (count === 0) return 0;
  switch (rule) {
    case 0: return 1;
    case 1: return count;
    case 2: return Math.floor(count / 2) + 1;
    default: throw new Error(`unknown implicit meta rule ${rule}`);
  }
}


// §4.3, one encoding per block. The four framing messages (fields by
// number: Block {1 header, 2 data, 3 metadata}, BlockHeader {1 number varint,
// 2 previous_hash, 3 data_hash}, BlockData {1 repeated data}, BlockMetadata
// {1 repeated metadata}) are read and written again here by hand, without
// protobufjs, so that "canonical" means exactly what §4.3 says.

// wireVarint reads a base-128 varint of at most 64 bits at off.
function wireVarint(buf, off) {
  let v = 0n;
  for (let k = 0; k < 10; k++) {
    if (off >= buf.length) throw new Error('truncated varint');
    const b = buf[off++];
    if (k === 9 && b > 1) throw new Error('varint overflows 64 bits');
    v |= BigInt(b & 0x7f) << BigInt(7 * k);
    if (!(b & 0x80)) return { v, off };
  }
  throw new Error('varint longer than 10 bytes');
}

function encVarint(n) {
  const out = [];
  let v = BigInt(n);
  while (v >= 0x80n) { out.push(Number(v & 0x7fn) | 0x80); v >>= 7n; }
  out.push(Number(v));
  return Uint8Array.from(out);
}

const encLen = (tag, bytes) => concat(Uint8Array.of(tag), encVarint(bytes.length), bytes);

// wireFields reads a message as a list of fields, allowing only the given
// field numbers, each with its wire type (0 varint, 2 length-delimited).
// A field of another number or wire type is not one §4.3 names.
function wireFields(buf, allowed, where) {
  const out = [];
  let off = 0;
  while (off < buf.length) {
    const t = wireVarint(buf, off);
    off = t.off;
    const num = t.v >> 3n;
    const wt = Number(t.v & 7n);
    if (num === 0n) throw new Error(`${where} has a field numbered 0`);
    const want = allowed[Number(num)];
    if (num > 536870911n || want === undefined || want !== wt) {
      throw new Error(`${where} holds field ${num} (wire type ${wt}), which Fabric does not define there: the block is not canonical`);
    }
    if (wt === 0) {
      const x = wireVarint(buf, off);
      off = x.off;
      out.push({ num: Number(num), v: x.v });
    } else {
      const l = wireVarint(buf, off);
      if (l.v > BigInt(buf.length - l.off)) throw new Error(`${where}: truncated field ${num}`);
      const end = l.off + Number(l.v);
      out.push({ num: Number(num), bytes: buf.subarray(l.off, end) });
      off = end;
    }
  }
  return out;
}

// encodeBlock is the deterministic encoding of §4.3: fields in field-number
// order, each once; a header number of 0 and empty hashes omitted; every
// data and metadata element present, even when empty.
export function encodeBlock(b) {
  const header = concat(
    b.number !== 0n ? concat(Uint8Array.of(0x08), encVarint(b.number)) : EMPTY,
    b.previousHash.length ? encLen(0x12, b.previousHash) : EMPTY,
    b.dataHash.length ? encLen(0x1a, b.dataHash) : EMPTY,
  );
  const data = concat(...b.data.map((d) => encLen(0x0a, d)));
  const metadata = concat(...b.metadata.map((m) => encLen(0x0a, m)));
  return concat(encLen(0x0a, header), encLen(0x12, data), encLen(0x1a, metadata));
}

// parseBlock decodes a common.Block and refuses it unless it is canonically
// encoded (§4.3). Throws a plain Error; the caller names the step.
export function parseBlock(raw, what) {
  let top;
  try {
    top = wireFields(raw, { 1: 2, 2: 2, 3: 2 }, what);
  } catch (e) {
    throw new Error(e.message.includes('not canonical') ? e.message : `${what} is not a common.Block: ${e.message}`);
  }
  const once = (fields, num, where) => {
    const f = fields.filter((x) => x.num === num);
    if (f.length > 1) throw new Error(`${where} holds field ${num} ${f.length} times: the block is not canonical`);
    return f.length ? f[0] : null;
  };
  const h = once(top, 1, what);
  const d = once(top, 2, what);
  const m = once(top, 3, what);
  if (!h || !d || !m) throw new Error(`${what}: a block has a header, data and metadata`);
  const hf = wireFields(h.bytes, { 1: 0, 2: 2, 3: 2 }, `${what} header`);
  const num = once(hf, 1, `${what} header`);
  const prev = once(hf, 2, `${what} header`);
  const dh = once(hf, 3, `${what} header`);
  const b = {
    number: num ? num.v : 0n,
    previousHash: prev ? prev.bytes.slice() : EMPTY,
    dataHash: dh ? dh.bytes.slice() : EMPTY,
    data: wireFields(d.bytes, { 1: 2 }, `${what} data`).map((x) => x.bytes.slice()),
    metadata: wireFields(m.bytes, { 1: 2 }, `${what} metadata`).map((x) => x.bytes.slice()),
  };
  if (b.metadata.length !== 5) throw new Error(`${what} (block ${b.number}) has ${b.metadata.length} metadata entries, not 5`);
  if (!equal(encodeBlock(b), raw)) {
    throw new Error(`${what} (block ${b.number}) is not canonically encoded (§4.3: encoding it again gives other bytes)`);
  }
  return b;
}


// RFC 3339 date-times (the chaincode's JSON of Go time.Time values).
function isDateTime(s) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|([+-])(\d{2}):(\d{2}))$/.exec(s);
  if (!m) return false;
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number);
  const days = [31, (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (mo < 1 || mo > 12 || d < 1 || d > days[mo - 1] || h > 23 || mi > 59 || se > 59) return false;
  return m[8] === 'Z' || (Number(m[10]) <= 23 && Number(m[11]) <= 59);
}

// A JSON value's type, for the strict decoding of the chaincode's records:
// each field has one, and null stands for the field's zero value.
const FIELD_TYPES = {
  string: (v) => typeof v === 'string',
  int: (v) => { try { intOf(v, '', INT64); return true; } catch (e) { return false; } },
  bool: (v) => typeof v === 'boolean',
  time: (v) => typeof v === 'string' && isDateTime(v),
  strings: (v) => Array.isArray(v) && v.every((x) => x === null || typeof x === 'string'),
  stringMap: (v) => isObject(v) && Object.values(v).every((x) => x === null || typeof x === 'string'),
  bytes: (v) => (typeof v === 'string' && /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(v.replace(/[\r\n]/g, ''))) ||
    (Array.isArray(v) && v.every((x) => { try { intOf(x, '', { min: 0n, max: 255n }); return true; } catch (e) { return false; } })),
  hash: (v) => typeof v === 'string' && /^[0-9a-fA-F]{64}$/.test(v),
  hashes: (v) => Array.isArray(v) && v.every((x) => typeof x === 'string' && /^[0-9a-fA-F]{64}$/.test(x)),
  any: () => true,
};

// decodeRecord parses a record the chaincode wrote: strict JSON, only the
// given keys, each of its type (null: absent). Returns the object.
export function decodeRecord(bytes, fields, what) {
  const rec = parseStrictJSON(bytes);
  if (!isObject(rec)) throw new Error(`${what} is not a JSON object`);
  checkKeys(rec, Object.keys(fields), [], what);
  for (const [k, type] of Object.entries(fields)) {
    if (!hasKey(rec, k) || rec[k] === null) continue;
    if (!FIELD_TYPES[type](rec[k])) throw new Error(`${what}: ${k} is not a ${type === 'int' ? 'JSON integer' : type}`);
  }
  return rec;
}

const DEVICE_RECORD = {
  id: 'string', owner: 'string', type: 'string', groups: 'strings', attributes: 'stringMap', publicKey: 'string',
  keyAlg: 'string', keyId: 'string', keyVersion: 'int', firmware: 'string', status: 'string', statusNote: 'string',
  pendingTransferTo: 'string', enrolledBy: 'string', enrolledAt: 'time', updatedAt: 'time', updatedByTx: 'string',
  private: 'bool', encryptionKey: 'bytes',
};
// The batch and command records of §6 (chaincode/api BatchRecord, Command).
const BATCH_RECORD = { id: 'string', root: 'hash', size: 'int', leaves: 'hashes', submitter: 'string', mspId: 'string', timestamp: 'time' };
const COMMAND_RECORD = {
  id: 'string', device: 'string', owner: 'string', name: 'string', params: 'any', status: 'string', issuedBy: 'string',
  issuedAt: 'time', expiresAt: 'time', deliveredBy: 'string', deliveredAt: 'time', result: 'string', completedAt: 'time',
  completedByTx: 'string', private: 'bool',
};
const str0 = (rec, k) => (hasKey(rec, k) && rec[k] !== null ? rec[k] : '');


const ID_RE = /^[A-Za-z0-9._:@-]{1,128}$/;
const printable = (s) => ![...s].some((ch) => { const c = ch.codePointAt(0); return c < 0x20 || c === 0x7f || c === 0xfffd; });

// parseReadingPayload: protocol.md §4 (null counts as absent, as in Go's decoder).
export function parseReadingPayload(bytes) {
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
export function parseDeviceEnvelope(bytes) {
  const e = parseStrictJSON(bytes);
  if (!isObject(e)) throw new Error('the envelope is not a JSON object');
  checkKeys(e, ['p', 's'], ['p', 's'], 'the envelope');
  return { p: base64Strict(e.p, 'envelope p'), s: base64Strict(e.s, 'envelope s') };
}

// parseAck: protocol.md §5.
export function parseAck(env) {
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


const TOP_KEYS = ['format', 'kind', 'channel', 'chaincode', 'device', 'txId', 'config', 'blocks', 'reading', 'command'];
const KIND_KEYS = { reading: ['reading'], 'command-ack': ['command'], 'device-status': [] };
const READING_KEYS = ['payload', 'signature', 'index', 'size', 'path'];

// Step 1, format (§2): strict JSON, the kind's fields and no others, no
// null, and every base64 and hex value decoded.
const INT64 = { min: -(2n ** 63n), max: 2n ** 63n - 1n };

export function checkFormat(bytes) {
  let r;
  try {
    r = parseStrictJSON(bytes);
  } catch (e) {
    refuse(STEP.format, `the receipt is not strict JSON: ${e.message}`);
  }
  try {
    if (!isObject(r)) throw new Error('the receipt is not a JSON object');
    checkKeys(r, TOP_KEYS, ['format', 'kind'], 'the receipt');
    const nullAt = findNull(r);
    if (nullAt !== null) throw new Error(`null at ${nullAt}: a field is given a value, or left out`);
    if (r.format !== 'iotledger-receipt/1') throw new Error(`format ${JSON.stringify(r.format)} is not "iotledger-receipt/1"`);
    const kind = strOf(r.kind, 'kind');
    if (!hasKey(KIND_KEYS, kind)) throw new Error(`kind ${JSON.stringify(kind)} is not reading, command-ack or device-status`);
    const wanted = ['format', 'kind', 'channel', 'chaincode', 'device', 'txId', 'config', 'blocks', ...KIND_KEYS[kind]];
    for (const k of TOP_KEYS) {
      if (!wanted.includes(k) && hasKey(r, k)) throw new Error(`field ${JSON.stringify(k)} is not one of kind ${kind}`);
    }
    checkKeys(r, wanted, wanted, 'the receipt');
    const out = { kind };
    for (const k of ['channel', 'chaincode', 'device']) {
      out[k] = strOf(r[k], k);
      if (out[k] === '') throw new Error(`${k} is empty`);
    }
    // The transaction ID is a hash (hex SHA-256 of nonce and creator, §4.5).
    hexHash(r.txId, 'txId');
    out.txId = r.txId;
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
        // Integers; whether the position is in the batch is step subject's.
        index: intOf(rd.index, 'reading.index', INT64),
        size: intOf(rd.size, 'reading.size', INT64),
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


// ---------------------------------------------------------------- identities (§4.4)

function validAt(cert, tNs) {
  return msToNs(cert.notBefore) <= tNs && tNs <= msToNs(cert.notAfter);
}

// chainOf looks for a chain from cert to one of the MSP's roots through its
// intermediates, every certificate valid at t and every issuer a CA (§4.4).
// Resolves to {chain} (cert first, the root last) or {reason}.
async function chainOf(msp, cert, tNs, depth, used) {
  if (!validAt(cert, tNs)) {
    return { reason: `certificate ${JSON.stringify(cert.cn)} is not valid at ${isoOfNs(tNs)} ` +
      `(valid ${new Date(cert.notBefore).toISOString()} to ${new Date(cert.notAfter).toISOString()})` };
  }
  if (msp.roots.some((r) => equal(r.der, cert.der))) return { chain: [cert] };
  if (depth > 8) return { reason: 'certificate chain too long' };
  let reason = `certificate ${JSON.stringify(cert.cn)} does not chain to a root certificate of MSP ${msp.name}`;
  for (const cand of [...msp.roots, ...msp.intermediates]) {
    const candKey = toHex(cand.der);
    if (used.has(candKey) || !cand.ca) continue;
    if (!checkIssued(cert, cand)) continue;
    if (await verifyCertSignature(cert, cand) !== true) continue;
    const next = new Set(used);
    next.add(candKey);
    const r = await chainOf(msp, cand, tNs, depth + 1, next);
    if (r.chain) return { chain: [cert, ...r.chain] };
    reason = r.reason;
  }
  return { reason };
}

// nodeOURoles lists the NodeOU roles (client, peer, admin, orderer) of the
// certificate's OUs, one per OU that is a role's (as Fabric's MSP reads them:
// where two roles share an OU name, the later of client, peer, admin, orderer).
function nodeOURoles(id) {
  const n = id.msp.nodeOUs;
  const roles = [];
  if (!n) return roles;
  for (const ou of id.cert.ous) {
    let role = null;
    for (const r of ['client', 'peer', 'admin', 'orderer']) if (n[r] && n[r].ou === ou) role = r;
    if (role !== null) roles.push(role);
  }
  return roles;
}

function keyName(pub) {
  return pub.type + (pub.curve ? ' ' + pub.curve : '');
}

// validateIdentity: §4.4 "Identities". Resolves to null or a reason.
async function validateIdentity(id, tNs) {
  const cacheKey = 'valid:' + tNs.toString();
  id.validity = id.validity || new Map();
  if (id.validity.has(cacheKey)) return id.validity.get(cacheKey);
  let reason = null;
  const pub = id.cert.publicKey;
  const curve = pub.type === 'ec' ? pub.curve : null;
  if (curve !== 'prime256v1' && curve !== 'secp384r1') {
    reason = `identity ${id.name} has a ${keyName(pub)} key, not ECDSA P-256 or P-384`;
  } else if (id.cert.ca) {
    // Fabric's MSP refuses a CA certificate as an identity.
    reason = `identity ${id.name} is a CA certificate`;
  } else {
    const r = await chainOf(id.msp, id.cert, tNs, 0, new Set());
    if (r.reason !== undefined) {
      reason = `identity ${id.name}: ${r.reason}`;
    } else if (r.chain.length < 2) {
      reason = `identity ${id.name} is itself a root certificate of MSP ${id.msp.name}`;
    } else if (revokedLink(id.msp, r.chain) !== null) {
      reason = `identity ${id.name}: ${revokedLink(id.msp, r.chain)}`;
    } else if (id.msp.nodeOUs) {
      const roles = nodeOURoles(id);
      // §4.4: where the role's OU identifier names a certificate, the identity is issued by that CA.
      const off = roles.find((role) => id.msp.nodeOUs[role].pinned && !equal(id.msp.nodeOUs[role].pinned, r.chain[1].der));
      if (off) {
        reason = `identity ${id.name} carries the ${off} OU, which MSP ${id.msp.name} accepts only from certificates its ${off} OU identifier's CA issued`;
      } else if (roles.length !== 1) {
        reason = `identity ${id.name} carries ${roles.length} of the client, peer, admin and orderer OUs (NodeOUs need exactly one)`;
      }
    }
  }
  id.validity.set(cacheKey, reason);
  return reason;
}

// verifyFabricSignature: ASN.1 DER ECDSA over SHA-256 with low S (§4.4),
// verified by WebCrypto in its IEEE P1363 form. Resolves to null or a reason.
async function verifyFabricSignature(id, data, sig) {
  const pub = id.cert.publicKey;
  const curve = pub.type === 'ec' ? pub.curve : null;
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
    const raw = p1363(rs, CURVE[curve].size);
    ok = raw !== null && await subtleOf().verify({ name: 'ECDSA', hash: 'SHA-256' }, await ecdsaImport(pub), raw, B(data)) === true;
  } catch (e) {
    ok = false;
  }
  return ok ? null : `signature of ${id.name} does not verify`;
}

// ---------------------------------------------------------------- policies (§4.4)

const ROLE = { MEMBER: 0, ADMIN: 1, CLIENT: 2, PEER: 3, ORDERER: 4 };
const CLASSIFICATION = { ROLE: 0, ORGANIZATION_UNIT: 1, IDENTITY: 2 };

// satisfiesPrincipal: does a (deserialized, signature-checked) identity
// satisfy an MSPPrincipal at time t? As Fabric v2.5's MSP does: the identity
// must be valid; ROLE MEMBER is any valid identity of the MSP, ADMIN one in
// the admins list or with the admin OU, CLIENT/PEER/ORDERER need NodeOUs and
// the OU; IDENTITY is the same certificate.
async function satisfiesPrincipal(id, principal, tNs) {
  if (principal.kind === 'role') {
    if (principal.mspid !== id.mspid) return false;
    if (await validateIdentity(id, tNs) !== null) return false;
    switch (principal.role) {
      case ROLE.MEMBER: return true;
      case ROLE.ADMIN:
        if (id.msp.admins.some((a) => equal(a, id.cert.der))) return true;
        return nodeOURoles(id).includes('admin');
      case ROLE.CLIENT: return nodeOURoles(id).includes('client');
      case ROLE.PEER: return nodeOURoles(id).includes('peer');
      case ROLE.ORDERER: return nodeOURoles(id).includes('orderer');
      default: return false;
    }
  }
  if (principal.kind === 'identity') {
    if (principal.mspid !== id.mspid || !equal(principal.der, id.cert.der)) return false;
    return await validateIdentity(id, tNs) === null;
  }
  return false;
}

// ---------------------------------------------------------------- Merkle inclusion (§6, RFC 9162 §2.1.3.2)

export function nodeHash(left, right) {
  return sha256(Uint8Array.of(0x01), left, right);
}

export function leafHash(payload, signature) {
  const n = payload.length;
  return sha256(Uint8Array.of(0x00), Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff), payload, signature);
}

// verifyInclusion: RFC 9162 §2.1.3.2. Resolves to true when `leaf` at
// `index` in a tree of `size` leaves leads with `path` to `root`.
export async function verifyInclusion(leaf, index, size, path, root) {
  if (!(index >= 0 && index < size)) return false;
  let fn = BigInt(index);
  let sn = BigInt(size) - 1n;
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n && equal(r, root);
}

// ---------------------------------------------------------------- device records (§5)

const DEVICE_STATUSES = ['provisioned', 'active', 'suspended', 'revoked', 'decommissioned'];

// parseDeviceKey reads a PEM PUBLIC KEY (PKIX), ECDSA P-256 or Ed25519
// (protocol.md §1), and resolves to the key and its DER.
async function parseDeviceKey(pemText) {
  const text = pemText.trim();
  const m = /^-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]*)-----END \1-----$/.exec(text);
  if (!m) throw new Error('publicKey is not one PEM block');
  if (m[1] !== 'PUBLIC KEY') throw new Error(`publicKey is a PEM ${m[1]}, not a PUBLIC KEY`);
  const der = fromBase64(m[2].replace(/[\r\n]/g, ''));
  let pub;
  try {
    pub = parseSPKI(der);
  } catch (e) {
    throw new Error('publicKey is not a PKIX public key: ' + e.message);
  }
  let alg;
  let webAlg;
  if (pub.type === 'ec' && pub.curve === 'prime256v1') { alg = 'ecdsa-p256'; webAlg = { name: 'ECDSA', namedCurve: 'P-256' }; }
  else if (pub.type === 'ed25519') { alg = 'ed25519'; webAlg = { name: 'Ed25519' }; }
  else throw new Error(`publicKey is ${pub.type}, not ECDSA P-256 or Ed25519`);
  let key;
  try {
    key = await importSPKI(pub, webAlg);
  } catch (e) {
    throw new Error('publicKey is not a PKIX public key: ' + e.message);
  }
  return { key, der, alg };
}

// parseDeviceRecord: §5, decoded strictly (no duplicate, case-variant or
// unknown keys). The record must be of the device, name an owner, and carry
// a key whose fingerprint is its keyId; a status is one of §5's.
export async function parseDeviceRecord(bytes, device) {
  const rec = decodeRecord(bytes, DEVICE_RECORD, 'the device record');
  const id = str0(rec, 'id');
  const owner = str0(rec, 'owner');
  const keyId = str0(rec, 'keyId');
  const status = str0(rec, 'status');
  if (id !== device) throw new Error(`the device record is of ${JSON.stringify(id)}, not ${JSON.stringify(device)}`);
  if (status !== '' && !DEVICE_STATUSES.includes(status)) throw new Error(`the device record has status ${JSON.stringify(status)}, which §5 does not list`);
  const key = await parseDeviceKey(str0(rec, 'publicKey'));
  const fp = toHex(await sha256(key.der));
  if (keyId !== fp) throw new Error(`the device record's keyId ${JSON.stringify(keyId)} is not the fingerprint of its publicKey (${fp})`);
  if (owner === '') throw new Error('the device record has no owner');
  return { id, owner, keyId, status, key, note: str0(rec, 'statusNote') };
}

// verifyDeviceSignature: protocol.md §1. ECDSA P-256: ASN.1 DER over
// SHA-256(message), low S not required; Ed25519: 64 raw bytes over message.
// Resolves to true or false.
export async function verifyDeviceSignature(key, message, sig) {
  if (sig.length === 0 || sig.length > 128) return false;
  try {
    if (key.alg === 'ed25519') return sig.length === 64 && await subtleOf().verify({ name: 'Ed25519' }, key.key, sig, message) === true;
    const raw = p1363(parseDERSignature(sig), 32);
    return raw !== null && await subtleOf().verify({ name: 'ECDSA', hash: 'SHA-256' }, key.key, raw, message) === true;
  } catch (e) {
    return false;
  }
}

// ---------------------------------------------------------------- blocks (§4.1–4.3)

const METADATA_NAMES = ['SIGNATURES', 'LAST_CONFIG', 'TRANSACTIONS_FILTER', 'ORDERER', 'COMMIT_HASH'];

// readBlock decodes a block and checks what every block of a receipt must
// satisfy on its own: canonical encoding and unsigned metadata empty (§4.3),
// data hash (§4.1).
export async function readBlock(bytes, what) {
  const b = parseBlock(bytes, what);
  const { number, data, metadata } = b;
  const dataHash = await sha256(...data);
  if (!equal(dataHash, b.dataHash)) {
    throw new Error(`${what} (block ${number}): header data_hash does not match its data`);
  }
  for (let k = 1; k < metadata.length; k++) {
    if (metadata[k].length !== 0) {
      throw new Error(`${what} (block ${number}): unsigned metadata ${METADATA_NAMES[k]} is not empty`);
    }
  }
  const der = headerDER(number, b.previousHash, b.dataHash);
  return { number, data, metadata, der, hash: await sha256(der), what };
}

const printableKey = (k) => JSON.stringify(k);

// parseAnchor: §1. A malformed anchor is a usage error, not a refusal.
export function parseAnchor(bytes) {
  const a = parseStrictJSON(bytes);
  if (!isObject(a)) throw new Error('the anchor is not a JSON object');
  checkKeys(a, ['channel', 'genesis'], ['channel', 'genesis'], 'the anchor');
  const channel = strOf(a.channel, 'anchor channel');
  if (channel === '') throw new Error('the anchor names no channel');
  return { channel, genesis: hexHash(a.genesis, 'anchor genesis') };
}

// ---------------------------------------------------------------- what needs protobuf

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
  ChaincodeEvent: 'peer.ChaincodeEvent',
  TxReadWriteSet: 'rwset.TxReadWriteSet', KVRWSet: 'kvrwset.KVRWSet',
};

// receiptVerifier builds the verifier over protobufjs (the module node's
// require('protobufjs') gives, or the browser's global protobuf, both 8.8.1
// as pinned) and the text of fabric.proto.
export function receiptVerifier(protobuf, fabricProto) {
  const pbRoot = protobuf.parse(fabricProto, { keepCase: true }).root;
  pbRoot.resolveAll();

  // decode returns the decoded message, or throws a plain Error naming what failed.
  function decode(type, bytes, what) {
    try {
      return pbRoot.lookupType('receipt.' + type).decode(bytes);
    } catch (e) {
      throw new Error(`${what} is not a ${FABRIC_NAME[type] || type}: ${e.message}`);
    }
  }

  // parseMSP reads a group's MSP value.
  async function parseMSP(value, where) {
    const mc = decode('MSPConfig', B(value), `${where} MSP value`);
    if (mc.type !== 0) throw new Error(`${where}: MSP type ${mc.type} is not FABRIC (0)`);
    const fc = decode('FabricMSPConfig', B(mc.config), `${where} MSP config`);
    if (!fc.name) throw new Error(`${where}: MSP has no name`);
    const certs = async (list, kind) => {
      const out = [];
      for (let k = 0; k < list.length; k++) out.push(await loadCert(list[k], `MSP ${fc.name} ${kind}[${k}]`));
      return out;
    };
    const roots = await certs(fc.root_certs, 'root_certs');
    const intermediates = await certs(fc.intermediate_certs, 'intermediate_certs');
    if (roots.length === 0) throw new Error(`MSP ${fc.name} has no root certificates`);
    // §4.4: CA certificates carry the CA basic constraint.
    for (const c of [...roots, ...intermediates]) {
      if (!c.ca) throw new Error(`MSP ${fc.name}: CA certificate ${JSON.stringify(c.cn)} lacks the CA basic constraint`);
    }
    // §4.4: the CRLs, each counting for the CAs whose key signed it.
    const revoked = await revocations(fc.revocation_list, [...roots, ...intermediates], fc.name);
    // NodeOUs: each role's OU and, when the identifier names a certificate (one
    // of the MSP's CAs), the CA that must have issued the role's identities.
    const ous = fc.fabric_node_ous;
    const nodeOU = {};
    for (const role of ['client', 'peer', 'admin', 'orderer']) {
      const id = ous ? ous[`${role}_ou_identifier`] : null;
      if (!id) continue;
      let pinned = null;
      if (B(id.certificate).length > 0) {
        const c = await loadCert(id.certificate, `MSP ${fc.name} ${role} OU identifier certificate`);
        const ca = [...roots, ...intermediates].find((x) => equal(x.der, c.der));
        if (!ca) throw new Error(`MSP ${fc.name}: the ${role} OU identifier names certificate ${JSON.stringify(c.cn)}, which is not one of its CAs`);
        pinned = ca.der;
      }
      nodeOU[role] = { ou: id.organizational_unit_identifier, pinned };
    }
    return {
      name: fc.name,
      raw: B(mc.config),
      roots,
      intermediates,
      admins: (await certs(fc.admins, 'admins')).map((c) => c.der),
      revoked,
      nodeOUs: ous && ous.enable && Object.keys(nodeOU).length > 0 ? nodeOU : null,
    };
  }

  // parseConfig reads the MSPs of Channel/Orderer/<org> and
  // Channel/Application/<org>, and keeps the group tree for the policies.
  async function parseConfig(config, where) {
    const group = config.channel_group;
    if (!group) throw new Error(`${where}: config has no channel group`);
    const msps = new Map();
    for (const section of ['Orderer', 'Application']) {
      if (!hasKey(group.groups, section)) continue;
      const sec = group.groups[section];
      for (const org of Object.keys(sec.groups).sort()) {
        const g = sec.groups[org];
        if (!hasKey(g.values, 'MSP')) throw new Error(`${where}: group Channel/${section}/${org} has no MSP value`);
        const msp = await parseMSP(g.values.MSP.value, `${where} Channel/${section}/${org}`);
        const prev = msps.get(msp.name);
        if (prev && !equal(prev.raw, msp.raw)) throw new Error(`${where}: MSP ${msp.name} is defined twice, differently`);
        msps.set(msp.name, msp);
      }
    }
    return { sequence: U64(config.sequence), group, msps, idCache: new Map() };
  }


  // deserialize turns SerializedIdentity bytes into an identity of the
  // configuration, or throws. Nothing is validated yet.
  async function deserialize(cfg, bytes) {
    const key = toHex(B(bytes));
    if (cfg.idCache.has(key)) {
      const c = cfg.idCache.get(key);
      if (c instanceof Error) throw c;
      return c;
    }
    try {
      const si = decode('SerializedIdentity', B(bytes), 'identity');
      const msp = cfg.msps.get(si.mspid);
      if (!msp) throw new Error(`MSP ${JSON.stringify(si.mspid)} is not in the configuration`);
      const cert = await loadCert(si.id_bytes, `identity of ${si.mspid}`);
      const id = {
        mspid: si.mspid, msp, cert,
        key: si.mspid + '\u0000' + toHex(await sha256(cert.der)),
        name: `${si.mspid}:${cert.cn}`,
      };
      cfg.idCache.set(key, id);
      return id;
    } catch (e) {
      cfg.idCache.set(key, e);
      throw e;
    }
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
      return { kind: 'identity', mspid: si.mspid, der: blocks.length ? blocks[0].der : EMPTY };
    }
    return { kind: 'unsupported', classification: p.principal_classification };
  }


  // validSigners: signatures deduplicated by identity (the first valid one
  // counts), an invalid signature counts for nothing.
  async function validSigners(cfg, sds) {
    const seen = new Set();
    const out = [];
    for (const sd of sds) {
      let id;
      try { id = await deserialize(cfg, sd.identity); } catch (e) { continue; }
      if (seen.has(id.key)) continue;
      if (await verifyFabricSignature(id, sd.data, sd.signature) !== null) continue;
      seen.add(id.key);
      out.push(id);
    }
    return out;
  }


  // evalSignaturePolicy evaluates a SignaturePolicyEnvelope (a SIGNATURE
  // policy of the configuration, or a key-level endorsement policy, §4.6) over
  // signed data. Returns null or a reason.
  async function evalSignaturePolicy(cfg, bytes, sds, tNs, where) {
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
    const idents = await validSigners(cfg, sds);
    // Which signer satisfies which principal, worked out before the rule is
    // evaluated (evalRule is synchronous; the identity checks are not).
    const sat = new Map();
    for (const id of idents) {
      const row = [];
      for (const p of principals) row.push(await satisfiesPrincipal(id, p, tNs) === true);
      sat.set(id, row);
    }
    const used = new Array(idents.length).fill(false);
    const ok = evalRule(rule, idents, used, (id, k) => sat.get(id)[k]);
    if (ok) return null;
    return `${where} is not satisfied by the valid signatures of ` +
      (idents.length ? idents.map((i) => i.name).join(', ') : 'nobody') + await describeInvalid(cfg, sds, tNs);
  }

  // evalPolicy evaluates the policy `name` of the group at `groupPath` (a list
  // of group names below Channel) over signed data. Returns null or a reason.
  async function evalPolicy(cfg, groupPath, name, sds, tNs) {
    let group = cfg.group;
    for (const g of groupPath) {
      if (!hasKey(group.groups, g)) return `group /Channel/${groupPath.join('/')} is not in the configuration`;
      group = group.groups[g];
    }
    const where = '/Channel/' + [...groupPath, name].join('/');
    if (!hasKey(group.policies, name) || !group.policies[name].policy) return `policy ${where} is not in the configuration`;
    const policy = group.policies[name].policy;
    if (policy.type === 1) return await evalSignaturePolicy(cfg, B(policy.value), sds, tNs, `policy ${where}`); // SIGNATURE
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
        const r = await evalPolicy(cfg, [...groupPath, sub], imp.sub_policy, sds, tNs);
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
  async function describeInvalid(cfg, sds, tNs) {
    const notes = [];
    for (const sd of sds) {
      let id;
      try { id = await deserialize(cfg, sd.identity); } catch (e) { notes.push(e.message); continue; }
      const s = await verifyFabricSignature(id, sd.data, sd.signature);
      if (s !== null) { notes.push(s); continue; }
      const v = await validateIdentity(id, tNs);
      if (v !== null) notes.push(v);
    }
    return notes.length ? ` (${[...new Set(notes)].join('; ')})` : '';
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
      return { data: concat(value, shBytes, rb.der), identity: B(sh.creator), signature: B(s.signature) };
    });
    return { lastConfig: U64(obm.last_config.index), sds };
  }


  // checkEndorserTx checks an envelope as §4.5 requires (and its creator's
  // signature and the channel's Writers policy) in the configuration in force at
  // its block. Refuses at `step`. Returns what the receipt needs of it; its
  // endorsements are checked by endorse (§4.6).
  async function checkEndorserTx(rb, n, ctx, step, what) {
    if (n < 0n || n >= BigInt(rb.data.length)) refuse(step, `block ${rb.number} has no envelope ${n} (it holds ${rb.data.length})`);
    const cfg = rb.cfg;
    let h;
    try {
      h = envelopeHeader(rb.data[Number(n)], what);
    } catch (e) {
      refuse(step, e.message);
    }
    const { env, payload, ch, sh, chBytes, shBytes } = h;
    if (ch.type !== 3) refuse(step, `${what} has channel header type ${ch.type}, not ENDORSER_TRANSACTION (3)`);
    if (ch.channel_id !== ctx.channel) refuse(step, `${what} is for channel ${JSON.stringify(ch.channel_id)}, not ${JSON.stringify(ctx.channel)}`);
    const wantTx = toHex(await sha256(B(sh.nonce), B(sh.creator)));
    if (ch.tx_id !== wantTx) refuse(step, `${what}: tx_id ${JSON.stringify(ch.tx_id)} is not hex(SHA-256(nonce ‖ creator)) = ${wantTx}`);
    if (h.tNs === null) refuse(step, `${what} has no timestamp`);
    const tNs = h.tNs;

    // The creator's signature over the payload bytes, and /Channel/Application/Writers.
    let creator;
    try {
      creator = await deserialize(cfg, B(sh.creator));
    } catch (e) {
      refuse(step, `${what} creator: ${e.message}`);
    }
    const v = await validateIdentity(creator, tNs);
    if (v !== null) refuse(step, `${what} creator is not valid: ${v}`);
    const s = await verifyFabricSignature(creator, B(env.payload), B(env.signature));
    if (s !== null) refuse(step, `${what} envelope: ${s}`);
    const w = await evalPolicy(cfg, ['Application'], 'Writers', [{ data: B(env.payload), identity: B(sh.creator), signature: B(env.signature) }], tNs);
    if (w !== null) refuse(step, `${what} creator ${creator.name}: ${w}`);

    // One action: a chaincode invocation of `chaincode`, with the response the endorsers signed.
    let tx; let action; let cap; let cpp; let cis; let prp; let cca; let rws;
    try {
      tx = decode('Transaction', B(payload.data), `${what} data`);
      if (tx.actions.length !== 1) throw new Error(`${what} has ${tx.actions.length} actions, not exactly one`);
      action = tx.actions[0];
      cap = decode('ChaincodeActionPayload', B(action.payload), `${what} action payload`);
      cpp = decode('ChaincodeProposalPayload', B(cap.chaincode_proposal_payload), `${what} chaincode proposal payload`);
      cis = decode('ChaincodeInvocationSpec', B(cpp.input), `${what} proposal input`);
      if (!cap.action) throw new Error(`${what} has no endorsed action`);
      prp = decode('ProposalResponsePayload', B(cap.action.proposal_response_payload), `${what} proposal response payload`);
    } catch (e) {
      refuse(step, e.message);
    }
    const spec = cis.chaincode_spec;
    const invoked = spec && spec.chaincode_id ? spec.chaincode_id.name : '';
    if (invoked !== ctx.chaincode) refuse(step, `${what} invokes chaincode ${JSON.stringify(invoked)}, not ${JSON.stringify(ctx.chaincode)}`);
    const args = spec && spec.input ? spec.input.args.map(B) : [];
    // §4.5: args[0] is the function; a transaction without one is not an invocation.
    if (args.length === 0) refuse(step, `${what} names no function (it has no arguments)`);
    // §4.5: Fabric hashes the proposal with the action's header, which must be
    // the transaction's own signature header.
    if (!equal(B(action.header), shBytes)) refuse(step, `${what}: the action's signature header is not the payload's`);
    const wantHash = await sha256(chBytes, B(action.header), B(cap.chaincode_proposal_payload));
    if (!equal(wantHash, B(prp.proposal_hash))) refuse(step, `${what}: proposal_hash does not match SHA-256(channel_header ‖ action header ‖ chaincode_proposal_payload)`);
    try {
      cca = decode('ChaincodeAction', B(prp.extension), `${what} proposal response extension`);
    } catch (e) {
      refuse(step, e.message);
    }
    const acted = cca.chaincode_id ? cca.chaincode_id.name : '';
    if (acted !== ctx.chaincode) refuse(step, `${what}: the endorsed action is of chaincode ${JSON.stringify(acted)}, not ${JSON.stringify(ctx.chaincode)}`);
    const status = cca.response ? cca.response.status : 0;
    if (status !== 200) refuse(step, `${what}: response status ${status}, not 200`);
    try {
      // The endorsed chaincode event, when there is one, is a ChaincodeEvent.
      if (B(cca.events).length > 0) decode('ChaincodeEvent', B(cca.events), `${what} chaincode event`);
      rws = decode('TxReadWriteSet', B(cca.results), `${what} results`);
    } catch (e) {
      refuse(step, e.message);
    }
    // The rwset of the chaincode's namespace, as Fabric applies it: entries in
    // order, a later write, read or metadata write of a key replacing an
    // earlier one. `written` lists the keys written, value or metadata (§4.6).
    const writes = new Map();
    const reads = new Map();
    const metadataWrites = new Map(); // key → its VALIDATION_PARAMETER value, or null: none
    const written = [];
    for (const ns of rws.ns_rwset) {
      if (ns.namespace !== ctx.chaincode) continue;
      let kv;
      try {
        kv = decode('KVRWSet', B(ns.rwset), `${what} read-write set of ${ctx.chaincode}`);
      } catch (e) {
        refuse(step, e.message);
      }
      for (const x of kv.writes) {
        writes.set(x.key, x);
        written.push(x.key);
      }
      for (const m of kv.metadata_writes) {
        if (!writes.has(m.key)) written.push(m.key);
        // A metadata write replaces all of the key's metadata: without a
        // VALIDATION_PARAMETER entry the key has no key-level policy after it.
        let vp = null;
        for (const e of m.entries) if (e.name === 'VALIDATION_PARAMETER') vp = B(e.value);
        metadataWrites.set(m.key, vp);
      }
      for (const x of kv.reads) reads.set(x.key, x);
    }

    // §4.6: each endorsement signs proposal_response_payload ‖ endorser.
    const prpBytes = B(cap.action.proposal_response_payload);
    const sds = cap.action.endorsements.map((e) => ({
      data: concat(prpBytes, B(e.endorser)), identity: B(e.endorser), signature: B(e.signature),
    }));
    const endorsers = [];
    for (const id of await validSigners(cfg, sds)) if (await validateIdentity(id, tNs) === null) endorsers.push(id);

    return {
      at: `${rb.number}:${n}`, block: rb.number, txId: ch.tx_id, tNs, creator, args, reads, writes, metadataWrites, written,
      sds, endorsers, cfg, what,
    };
  }

  // §4.6, key by key. The keys a transaction writes are those of its writes and
  // metadata_writes in the chaincode's namespace; each key whose key-level
  // policy the receipt proves needs that policy, every other key (and a
  // transaction that writes nothing) the channel's Endorsement policy.
  //
  // `proofs` is the receipt-wide state: the blocks, the context, the step that
  // refuses (transaction while the subject's anchors are followed, device for
  // the record's), and the transactions whose endorsements were checked, by
  // position: at most 32 in all, the subject and the record's writer included.
  const MAX_TXS = 32;
  const IN_PROGRESS = Symbol('in progress');

  // endorse checks a transaction's endorsements, and those of the anchor
  // transactions it leads to, once per transaction. Refuses at proofs.step.
  async function endorse(tx, proofs) {
    if (proofs.memo.has(tx.at)) {
      if (proofs.memo.get(tx.at) === IN_PROGRESS) {
        refuse(proofs.step, `${tx.what}: its endorsement policy depends on itself (it read a version it wrote)`);
      }
      return;
    }
    if (proofs.memo.size >= MAX_TXS) {
      refuse(proofs.step, `the receipt makes the verifier follow more than ${MAX_TXS} transactions (§4.6)`);
    }
    proofs.memo.set(tx.at, IN_PROGRESS);
    let needChannelPolicy = tx.written.length === 0;
    for (const key of tx.written) {
      const vp = await keyPolicy(key, tx, proofs);
      if (vp === null) {
        needChannelPolicy = true;
        continue;
      }
      const r = await evalSignaturePolicy(tx.cfg, vp.policy, tx.sds, tx.tNs, `the key-level policy of ${printableKey(key)} (set by ${vp.by})`);
      if (r !== null) refuse(proofs.step, `${tx.what} endorsements: ${r}`);
    }
    if (needChannelPolicy) {
      const r = await evalPolicy(tx.cfg, ['Application'], 'Endorsement', tx.sds, tx.tNs);
      if (r !== null) refuse(proofs.step, `${tx.what} endorsements: ${r}`);
    }
    proofs.memo.set(tx.at, tx);
  }

  // keyPolicy: the key-level policy of `key` in force before `tx`, when the
  // receipt proves one (§4.6): `tx` read the key at {b, n} and block b is in the
  // receipt; envelope n of block b must then be a valid endorser transaction of
  // the chaincode, endorsed as §4.6 requires, or the receipt is refused. It set
  // the policy (a metadata write: its VALIDATION_PARAMETER, none without one or
  // when empty), or deleted the key (none), or else the policy is the one in
  // force before it, recursively. Returns {policy, by} or null (none, or not
  // proven).
  async function keyPolicy(key, tx, proofs) {
    const read = tx.reads.get(key);
    if (!read || !read.version) return null;
    const b = U64(read.version.block_num);
    const n = U64(read.version.tx_num);
    const rb = proofs.blocks.find((x) => x.number === b);
    if (!rb) return null; // not in the receipt: the policy is not proven
    const anchor = await checkEndorserTx(rb, n, proofs.ctx, proofs.step,
      `the transaction of block ${b}, envelope ${n} (which wrote ${printableKey(key)} before ${tx.what})`);
    await endorse(anchor, proofs);
    if (anchor.metadataWrites.has(key)) {
      const vp = anchor.metadataWrites.get(key);
      return vp !== null && vp.length > 0 ? { policy: vp, by: anchor.what } : null;
    }
    const w = anchor.writes.get(key);
    if (w && w.is_delete) return null; // a delete takes the key's policy with it
    return await keyPolicy(key, anchor, proofs);
  }

  // ownerOrConsortium: §5, a record relied on is its owner's word (a valid
  // endorsement by a peer of the owner it names) or the consortium's (the
  // channel's Endorsement policy).
  async function ownerOrConsortium(tx, owner) {
    const peerOfOwner = { kind: 'role', mspid: owner, role: ROLE.PEER };
    for (const id of await validSigners(tx.cfg, tx.sds)) if (await satisfiesPrincipal(id, peerOfOwner, tx.tNs) === true) return null;
    const r = await evalPolicy(tx.cfg, ['Application'], 'Endorsement', tx.sds, tx.tNs);
    if (r === null) return null;
    return `${tx.what} wrote a device record naming ${owner} as owner, but is neither endorsed by a peer of ${owner} ` +
      `nor by the channel's endorsement policy: ${r}`;
  }


  async function verifyReceipt(receiptBytes, anchor) {
    // 1. format
    const r = checkFormat(receiptBytes);
    const ctx = { channel: r.channel, chaincode: r.chaincode };

    // 2. anchor (§1). A config[0] that is not a canonically encoded block is
    // not "well formed", which is step 3's: it is refused there, not here.
    if (r.channel !== anchor.channel) refuse(STEP.anchor, `channel ${JSON.stringify(r.channel)} is not the anchor's ${JSON.stringify(anchor.channel)}`);
    let genesis;
    try {
      genesis = parseBlock(r.config[0], 'config[0]');
    } catch (e) {
      refuse(STEP.config, e.message);
    }
    if (genesis.number !== 0n) refuse(STEP.anchor, `config[0] is block ${genesis.number}, not the genesis block 0`);
    const gh = await sha256(headerDER(0n, genesis.previousHash, genesis.dataHash));
    if (!equal(gh, B(anchor.genesis))) refuse(STEP.anchor, `the genesis block's header hash ${toHex(gh)} is not the anchor's ${toHex(B(anchor.genesis))}`);
    // §4.3: the genesis block is trusted through the anchor alone, and nothing
    // signs its metadata: all five entries are empty.
    genesis.metadata.forEach((m, k) => {
      if (m.length !== 0) refuse(STEP.config, `config[0] (the genesis block): metadata ${METADATA_NAMES[k]} holds ${m.length} bytes, and a genesis block's metadata is empty`);
    });

    // 3. config chain (§4.4)
    const configs = [];
    for (let k = 0; k < r.config.length; k++) {
      const bytes = r.config[k];
      const what = `config[${k}]`;
      let rb; let h; let ce; let cfg;
      try {
        rb = await readBlock(bytes, what);
        if (rb.data.length !== 1) throw new Error(`${what} (block ${rb.number}) holds ${rb.data.length} envelopes, not one`);
        h = envelopeHeader(rb.data[0], `${what} envelope`);
        if (h.ch.type !== 1) throw new Error(`${what} envelope has channel header type ${h.ch.type}, not CONFIG (1)`);
        if (h.ch.channel_id !== r.channel) throw new Error(`${what} is for channel ${JSON.stringify(h.ch.channel_id)}`);
        ce = decode('ConfigEnvelope', B(h.payload.data), `${what} data`);
        if (!ce.config) throw new Error(`${what} config envelope has no config`);
        cfg = await parseConfig(ce.config, what);
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
        const p = await evalPolicy(prev, ['Orderer'], 'BlockValidation', os.sds, t);
        if (p !== null) refuse(STEP.config, `${what} (block ${rb.number}) is not signed as config block ${prev.number} requires: ${p}`);
      } else if (cfg.sequence !== 0n) {
        refuse(STEP.config, `the genesis block has configuration sequence ${cfg.sequence}, not 0`);
      }
      configs.push(cfg);
    }

    // 4. blocks (§4.1–4.3)
    const blocks = [];
    for (let k = 0; k < r.blocks.length; k++) {
      const bytes = r.blocks[k];
      const what = `blocks[${k}]`;
      let rb; let os; let t;
      try {
        rb = await readBlock(bytes, what);
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
      const p = await evalPolicy(named, ['Orderer'], 'BlockValidation', os.sds, t);
      if (p !== null) refuse(STEP.blocks, `${what} (block ${rb.number}) orderer signatures: ${p}`);
      rb.cfg = named;
      blocks.push(rb);
    }

    // 5. subject transaction (§4.5, §4.6)
    const found = [];
    for (const rb of blocks) {
      rb.data.forEach((env, n) => {
        let h;
        try { h = envelopeHeader(env, 'envelope'); } catch (e) { return; }
        if (h.ch.tx_id === r.txId) found.push({ rb, n });
      });
    }
    if (found.length !== 1) refuse(STEP.transaction, `${found.length} envelopes in blocks have tx_id ${JSON.stringify(r.txId)}, not exactly one`);
    const subjectAt = found[0];
    const proofs = { blocks, ctx, memo: new Map(), step: STEP.transaction };
    const subject = await checkEndorserTx(subjectAt.rb, BigInt(subjectAt.n), ctx, STEP.transaction,
      `the subject transaction (block ${subjectAt.rb.number}, envelope ${subjectAt.n})`);
    await endorse(subject, proofs);

    // 6. device record in force (§5), for readings and acks: the subject read
    // it, and the transaction that wrote it is in the receipt. A device-status
    // receipt's record is the one its subject wrote, checked at step 7 (§6).
    const devKey = `\u0000dev\u0000${r.device}\u0000`;
    // writtenRecord: the record a transaction wrote, and that it is its owner's
    // word or the consortium's (§5). Refuses at `step`.
    const writtenRecord = async (tx, step) => {
      const w = tx.writes.get(devKey);
      if (!w) refuse(step, `${tx.what} does not write the device record ${printableKey(devKey)}`);
      if (w.is_delete) refuse(step, `${tx.what} deletes the device record`);
      let rec;
      try { rec = await parseDeviceRecord(B(w.value), r.device); } catch (e) { refuse(step, e.message); }
      proofs.step = step;
      await endorse(tx, proofs);
      const oc = await ownerOrConsortium(tx, rec.owner);
      if (oc !== null) refuse(step, oc);
      return rec;
    };
    let record;
    if (r.kind !== 'device-status') {
      const read = subject.reads.get(devKey);
      if (!read) refuse(STEP.device, `the subject transaction does not read the device record ${printableKey(devKey)}`);
      if (!read.version) refuse(STEP.device, 'the subject transaction read the device record when it did not exist (no version)');
      const b = U64(read.version.block_num);
      const n = U64(read.version.tx_num);
      const rb = blocks.find((x) => x.number === b);
      if (!rb) refuse(STEP.device, `block ${b}, which wrote the device record in force, is not in blocks`);
      const writer = await checkEndorserTx(rb, n, ctx, STEP.device, `the transaction that wrote the device record (block ${b}, envelope ${n})`);
      record = await writtenRecord(writer, STEP.device);
    }

    // 7. subject (§6)
    if (r.kind === 'device-status') record = await writtenRecord(subject, STEP.subject);
    const fn = textOf(subject.args[0]);
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
    const recordWrite = (key, fields, what) => {
      const w = subject.writes.get(key);
      if (!w) sub(`the subject transaction does not write ${what} ${printableKey(key)}`);
      if (w.is_delete) sub(`the subject transaction deletes ${what}`);
      try {
        return decodeRecord(B(w.value), fields, what);
      } catch (e) {
        sub(`${what}: ${e.message}`);
      }
    };

    if (r.kind === 'reading') {
      if (fn !== 'telemetry:SubmitBatch' && fn !== 'telemetry:Submit') sub(`the subject transaction calls ${JSON.stringify(fn)}, not telemetry:SubmitBatch or telemetry:Submit`);
      // The batch record, decoded as strictly as the device record.
      const batch = recordWrite(`\u0000batch\u0000${r.txId}\u0000`, BATCH_RECORD, 'the batch record');
      if (str0(batch, 'id') !== r.txId) sub(`the batch record names batch ${JSON.stringify(str0(batch, 'id'))}, not ${r.txId}`);
      if (!hasKey(batch, 'root') || batch.root === null) sub('the batch record has no root');
      const root = fromHex(batch.root);
      const size = hasKey(batch, 'size') && batch.size !== null ? intOf(batch.size, 'the batch size', INT64) : 0n;
      const rd = r.reading;
      if (rd.size !== size) sub(`reading.size ${rd.size} is not the batch size ${size}`);
      const leaf = await leafHash(rd.payload, rd.signature);
      if (await verifyInclusion(leaf, rd.index, rd.size, rd.path, root) !== true) {
        sub(`the reading's leaf does not lead with reading.path to the batch root at index ${rd.index} of ${rd.size}`);
      }
      let p;
      try { p = parseReadingPayload(rd.payload); } catch (e) { sub(`the payload is not a reading (protocol.md §4): ${e.message}`); }
      if (p.device !== r.device) sub(`the reading is of device ${JSON.stringify(p.device)}, not ${JSON.stringify(r.device)}`);
      if (record.status !== 'active') sub(`the device record in force has status ${record.status}, not active`);
      if (await verifyDeviceSignature(record.key, concat(utf8('iotledger-reading-v1\n'), rd.payload), rd.signature) !== true) {
        sub('the reading signature does not verify with the key of the device record in force');
      }
      out.seq = p.seq <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(p.seq) : p.seq;
    } else if (r.kind === 'command-ack') {
      if (fn !== 'command:Ack') sub(`the subject transaction calls ${JSON.stringify(fn)}, not command:Ack`);
      if (subject.args.length !== 2) sub(`the subject transaction calls command:Ack with ${subject.args.length - 1} arguments, not the ack alone`);
      let env; let ack;
      try {
        env = parseDeviceEnvelope(subject.args[1]);
        ack = parseAck(env);
      } catch (e) {
        sub(`args[1] is not an ack envelope (protocol.md §5): ${e.message}`);
      }
      if (ack.device !== r.device) sub(`the ack is of device ${JSON.stringify(ack.device)}, not ${JSON.stringify(r.device)}`);
      if (ack.command !== r.command) sub(`the ack is of command ${JSON.stringify(ack.command)}, not ${JSON.stringify(r.command)}`);
      if (await verifyDeviceSignature(record.key, concat(utf8('iotledger-ack-v1\n'), env.p), env.s) !== true) {
        sub('the ack signature does not verify with the key of the device record in force');
      }
      if (record.status === 'revoked' || record.status === 'decommissioned') sub(`the device record in force has status ${record.status}`);
      const cmd = recordWrite(`\u0000cmd\u0000${r.device}\u0000${r.command}\u0000`, COMMAND_RECORD, 'the command record');
      const f = (k) => str0(cmd, k);
      if (f('id') !== r.command) sub(`the command record's id is ${JSON.stringify(f('id'))}, not ${JSON.stringify(r.command)}`);
      if (f('device') !== r.device) sub(`the command record's device is ${JSON.stringify(f('device'))}, not ${JSON.stringify(r.device)}`);
      if (f('status') !== ack.status) sub(`the command record's status is ${JSON.stringify(f('status'))}, not the ack's ${JSON.stringify(ack.status)}`);
      if (f('result') !== ack.result) sub(`the command record's result is ${JSON.stringify(f('result'))}, not the ack's ${JSON.stringify(ack.result)}`);
      out.command = r.command;
      out.ackStatus = ack.status;
    } else {
      out.recordStatus = record.status;
    }
    return out;
  }


  // anchorFromGenesisBlock computes the trust anchor from the channel's
  // genesis block file (common.Block bytes, as the channel was created
  // from), as `iotledger network trust-anchor` does: block 0, its channel
  // from its config envelope, the hash of its header (§1, §4.1).
  async function anchorFromGenesisBlock(bytes) {
    let b;
    try {
      b = parseBlock(B(bytes), 'the genesis block');
    } catch (e) {
      // A genesis block file as written by configtxgen holds metadata; only
      // the header is hashed, so read it without the receipt's §4.3 rules.
      const top = wireFields(B(bytes), { 1: 2, 2: 2, 3: 2 }, 'the genesis block');
      const h = top.find((f) => f.num === 1);
      const d = top.find((f) => f.num === 2);
      if (!h || !d) throw new Error('the genesis block file is not a common.Block: ' + e.message);
      const hf = wireFields(h.bytes, { 1: 0, 2: 2, 3: 2 }, 'the genesis block header');
      const get = (n) => hf.find((f) => f.num === n);
      b = {
        number: get(1) ? get(1).v : 0n,
        previousHash: get(2) ? get(2).bytes : EMPTY,
        dataHash: get(3) ? get(3).bytes : EMPTY,
        data: wireFields(d.bytes, { 1: 2 }, 'the genesis block data').map((x) => x.bytes),
      };
    }
    if (b.number !== 0n) throw new Error(`the block is block ${b.number}, not the genesis block 0`);
    if (b.data.length !== 1) throw new Error(`the genesis block holds ${b.data.length} envelopes, not one`);
    const h = envelopeHeader(b.data[0], 'the genesis block envelope');
    if (h.ch.type !== 1) throw new Error(`the genesis block envelope has channel header type ${h.ch.type}, not CONFIG (1)`);
    if (!h.ch.channel_id) throw new Error('the genesis block names no channel');
    const dataHash = await sha256(...b.data);
    if (!equal(dataHash, b.dataHash)) throw new Error('the genesis block header data_hash does not match its data');
    return { channel: h.ch.channel_id, genesis: await sha256(headerDER(0n, b.previousHash, b.dataHash)) };
  }

  // readAnchor takes either trust anchor form: the anchor's JSON (§1), or
  // the genesis block file itself.
  async function readAnchor(bytes) {
    const b = B(bytes);
    let i = 0;
    while (i < b.length && (b[i] === 0x20 || b[i] === 0x09 || b[i] === 0x0a || b[i] === 0x0d)) i++;
    if (b[i] === 0x7b) return parseAnchor(b); // '{'
    return anchorFromGenesisBlock(b);
  }

  return {
    pbRoot, decode, verifyReceipt, parseAnchor, anchorFromGenesisBlock, readAnchor, parseConfig, evalPolicy,
    ordererSignatures, deserialize, validateIdentity, blockTime, envelopeHeader,
  };
}
