/**
 * The little DER that the hot paths read and write themselves, next to Node's native X.509
 * parser and signer.
 *
 * Why not @peculiar/x509 here: it encodes and decodes ASN.1 in JavaScript through asn1js, and
 * on the bench's 500 CA certificates that was about a third of the controller's busy time
 * (decoding a leaf about 2.6 ms, building and signing one about 5 ms on the 2-core machine).
 * What these paths need is narrow: walk a certificate or CSR down to a few fields, and lay out
 * a TBSCertificate or a CertificationRequestInfo from parts that are already DER. Name
 * constraints are written and read here too, so that they mean to certroute what they mean to
 * Go (name-constraints.ts). Everything richer (names built from a spec, otherName SANs, CA
 * chains, keystores) stays with @peculiar/x509 (x509.ts).
 *
 * Only definite, minimal lengths and single-byte tags: DER allows nothing else for these
 * structures, and anything else reads as malformed. The readers are strict on purpose: what
 * certroute reads from a CSR is what it shows to approvers and checks against the spec, and
 * signing copies some of the CSR's bytes into the certificate, so a byte that one parser reads
 * one way and OpenSSL another must be refused, never skipped.
 */

/** One tag-length-value: its tag byte, where it begins, where its content starts and ends. */
export interface Tlv {
  tag: number;
  header: number;
  start: number;
  end: number;
}

export const Tag = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** The TLV at `at`, or undefined when the bytes there are not one that fits inside `limit`. */
export function readTlv(der: Uint8Array, at: number, limit = der.length): Tlv | undefined {
  const tag = der[at];
  const first = der[at + 1];
  if (tag === undefined || first === undefined || (tag & 0x1f) === 0x1f) return undefined;
  let length = first;
  let start = at + 2;
  if (first & 0x80) {
    const bytes = first & 0x7f;
    if (bytes === 0 || bytes > 3 || der[start] === 0) return undefined;
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + (der[start + i] ?? 0);
    start += bytes;
    // DER: the short form whenever it fits.
    if (length < 0x80) return undefined;
  }
  return start + length <= limit ? { tag, header: at, start, end: start + length } : undefined;
}

/** The TLVs inside a constructed one, in order; throws when they do not fill it exactly. */
export function children(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end;) {
    const tlv = readTlv(der, at, parent.end);
    if (!tlv) throw new Error(`malformed DER at byte ${at}`);
    out.push(tlv);
    at = tlv.end;
  }
  return out;
}

/** The TLV's whole encoding (tag and length included). */
export function encoding(der: Uint8Array, tlv: Tlv): Uint8Array {
  return der.subarray(tlv.header, tlv.end);
}

/** Dotted text of an OBJECT IDENTIFIER; throws on one that is not minimally encoded. */
export function oidText(der: Uint8Array, tlv: Tlv): string {
  if (tlv.tag !== Tag.OID || tlv.end <= tlv.start || (der[tlv.end - 1] ?? 0) & 0x80) throw new Error(`malformed OBJECT IDENTIFIER at byte ${tlv.header}`);
  const arcs: number[] = [];
  let value = 0;
  for (let i = tlv.start; i < tlv.end; i++) {
    const byte = der[i] ?? 0;
    // An arc begins with 0x80 only when padded, which DER forbids.
    if (byte === 0x80 && (i === tlv.start || !((der[i - 1] ?? 0) & 0x80))) throw new Error(`malformed OBJECT IDENTIFIER at byte ${tlv.header}`);
    value = value * 128 + (byte & 0x7f);
    if (byte & 0x80) continue;
    if (arcs.length === 0) arcs.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
    else arcs.push(value);
    value = 0;
  }
  return arcs.join('.');
}

/** The text of a directory string (UTF8, Printable, IA5, Teletex, BMP, Universal). */
export function stringText(der: Uint8Array, tlv: Tlv): string {
  const bytes = Buffer.from(der.buffer, der.byteOffset + tlv.start, tlv.end - tlv.start);
  switch (tlv.tag) {
    case Tag.BMP_STRING:
      return Buffer.from(bytes).swap16().toString('utf16le');
    case Tag.UNIVERSAL_STRING: {
      let out = '';
      for (let i = 0; i + 3 < bytes.length; i += 4) out += String.fromCodePoint(bytes.readUInt32BE(i));
      return out;
    }
    case Tag.T61_STRING:
      return bytes.toString('latin1');
    default:
      return bytes.toString('utf8');
  }
}

/** Reads a whole certificate down to its TBSCertificate's fields, by position. */
export function tbsFields(der: Uint8Array): { tbs: Tlv; fields: Tlv[] } {
  const outer = readTlv(der, 0);
  if (!outer || outer.tag !== Tag.SEQUENCE) throw new Error('not a DER SEQUENCE');
  const [tbs] = children(der, outer);
  if (!tbs || tbs.tag !== Tag.SEQUENCE) throw new Error('no TBS SEQUENCE');
  const fields = children(der, tbs);
  // [0] version is optional (v1 certificates and CSRs have none in this place).
  return { tbs, fields: fields[0]?.tag === 0xa0 ? fields.slice(1) : fields };
}

/**
 * A Name's RDNs in order (SEQUENCE OF SET OF {type, value}), each attribute as OID and text.
 * `strict` (a CSR's subject, which signing copies byte for byte) refuses what readers could
 * read differently: anything but SETs of {OID, string}, constructed or malformed strings.
 */
export function nameRdns(der: Uint8Array, name: Tlv, strict = false): Array<Array<{ oid: string; value: string }>> {
  if (strict && name.tag !== Tag.SEQUENCE) throw new Error('the subject is not a SEQUENCE');
  return children(der, name).map((rdn) => {
    const atvs = children(der, rdn);
    if (strict && (rdn.tag !== Tag.SET || atvs.length === 0)) throw new Error(`the subject holds a relative name that is not a SET of attributes at byte ${rdn.header}`);
    return atvs.flatMap((atv) => {
      const parts = children(der, atv);
      const [type, value] = parts;
      if (strict && (atv.tag !== Tag.SEQUENCE || parts.length !== 2 || type?.tag !== Tag.OID || !value || !wellFormedString(der, value))) {
        throw new Error(`the subject holds an attribute that is not an OID and a directory string at byte ${atv.header}`);
      }
      if (type?.tag !== Tag.OID || !value) return [];
      // A value of no string type is written as RFC 4514 writes it: '#' and the hex of its DER.
      const text = STRING_TAGS.has(value.tag) ? stringText(der, value) : `#${Buffer.from(encoding(der, value)).toString('hex')}`;
      return [{ oid: oidText(der, type), value: text }];
    });
  });
}

/**
 * A primitive directory string whose bytes are what its type allows and that every reader reads
 * alike: no NUL (Go drops a BMPString's last one), no UniversalString (Go reads none: a common
 * name of one is empty to a Go approver and a host name to OpenSSL), T61 only as ASCII (Go keeps
 * its bytes, certroute reads Latin-1).
 */
export function wellFormedString(der: Uint8Array, value: Tlv): boolean {
  return stringTypeAllows(der.subarray(value.start, value.end), value.tag) && !stringText(der, value).includes('\u0000');
}

function stringTypeAllows(bytes: Uint8Array, tag: number): boolean {
  switch (tag) {
    case Tag.UTF8_STRING:
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(bytes);
        return true;
      } catch {
        return false;
      }
    case Tag.PRINTABLE_STRING:
    case Tag.IA5_STRING:
    case Tag.T61_STRING:
      return bytes.every((b) => b < 0x80);
    case Tag.BMP_STRING:
      return bytes.length % 2 === 0;
    default:
      return false;
  }
}

const STRING_TAGS: ReadonlySet<number> = new Set([Tag.UTF8_STRING, Tag.PRINTABLE_STRING, Tag.T61_STRING, Tag.IA5_STRING, Tag.UNIVERSAL_STRING, Tag.BMP_STRING]);

/** Each attribute of a Name, in order. */
export function nameAttributes(der: Uint8Array, name: Tlv): Array<{ oid: string; value: string }> {
  return nameRdns(der, name).flat();
}

/** One X.509 extension as its readers take it: OID, criticality, the DER inside extnValue, and the whole. */
export interface RawExtension {
  oid: string;
  critical: boolean;
  value: Uint8Array;
  /** The whole Extension, to copy it into a certificate unchanged. */
  der: Uint8Array;
}

/** A BOOLEAN's value; throws unless it is one content byte, 0x00 or 0xff as DER has it (Go refuses others). */
export function booleanValue(der: Uint8Array, tlv: Tlv): boolean {
  const byte = der[tlv.start];
  if (tlv.tag !== Tag.BOOLEAN || tlv.end - tlv.start !== 1 || (byte !== 0 && byte !== 0xff)) throw new Error(`malformed BOOLEAN at byte ${tlv.header}`);
  return byte === 0xff;
}

/**
 * The Extensions of a SEQUENCE OF Extension, in order. Each is { extnID, critical BOOLEAN
 * DEFAULT FALSE, extnValue OCTET STRING } and nothing else, and no extension appears twice
 * (RFC 5280 §4.2): with two, readers disagree on which one counts.
 */
export function extensionsIn(der: Uint8Array, list: Tlv): RawExtension[] {
  if (list.tag !== Tag.SEQUENCE) throw new Error(`malformed extension list at byte ${list.header}`);
  const seen = new Set<string>();
  return children(der, list).map((ext) => {
    const parts = ext.tag === Tag.SEQUENCE ? children(der, ext) : [];
    const [id, flag, last] = parts;
    const value = parts.length === 3 ? last : flag;
    if ((parts.length !== 2 && parts.length !== 3) || id?.tag !== Tag.OID || value?.tag !== Tag.OCTET_STRING) throw new Error(`malformed extension at byte ${ext.header}`);
    const oid = oidText(der, id);
    if (seen.has(oid)) throw new Error(`extension ${oid} appears twice`);
    seen.add(oid);
    const critical = parts.length === 3 && flag ? booleanValue(der, flag) : false;
    return { oid, critical, value: der.subarray(value.start, value.end), der: encoding(der, ext) };
  });
}

/** One Extension { extnID, critical (written only when true, as DER's DEFAULT FALSE wants), extnValue }. */
export function extensionDer(extnId: string, critical: boolean, value: Uint8Array): Buffer {
  return sequence(oid(extnId), ...(critical ? [tlv(Tag.BOOLEAN, Buffer.from([0xff]))] : []), tlv(Tag.OCTET_STRING, value));
}

/** The single TLV that fills `der` exactly (an extension's value, say); throws otherwise. */
export function whole(der: Uint8Array, what: string): Tlv {
  const tlv = readTlv(der, 0);
  if (!tlv || tlv.end !== der.length) throw new Error(`the ${what} is not valid DER`);
  return tlv;
}

// --- writing ---

/** One TLV from its tag and content, with a definite length. */
export function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  const lengthBytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) lengthBytes.unshift(v & 0xff);
  const head = n < 0x80 ? [tag, n] : [tag, 0x80 | lengthBytes.length, ...lengthBytes];
  return Buffer.concat([Buffer.from(head), body]);
}

export const DER_NULL = Buffer.from([0x05, 0x00]);

/** A non-negative INTEGER from a number. */
export function integer(value: number): Buffer {
  const bytes: number[] = [];
  for (let v = value; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return unsignedInteger(Buffer.from(bytes.length ? bytes : [0]));
}

export const sequence = (...content: Uint8Array[]): Buffer => tlv(Tag.SEQUENCE, ...content);

/** A non-negative INTEGER from its big-endian bytes (a 0x00 is put first when the top bit is set). */
export function unsignedInteger(bytes: Uint8Array): Buffer {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  const trimmed = bytes.subarray(start);
  return tlv(Tag.INTEGER, (trimmed[0] ?? 0) & 0x80 ? Buffer.from([0]) : Buffer.alloc(0), trimmed);
}

export function oid(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  const bytes: number[] = [];
  const push = (value: number) => {
    const septets = [value & 0x7f];
    for (let v = Math.floor(value / 128); v > 0; v = Math.floor(v / 128)) septets.unshift((v & 0x7f) | 0x80);
    bytes.push(...septets);
  };
  push((arcs[0] ?? 0) * 40 + (arcs[1] ?? 0));
  for (const arc of arcs.slice(2)) push(arc);
  return tlv(Tag.OID, Buffer.from(bytes));
}

/** A BIT STRING with no unused bits. */
export const bitString = (bytes: Uint8Array): Buffer => tlv(Tag.BIT_STRING, Buffer.from([0]), bytes);

/** RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050, always in seconds and Z. */
export function time(date: Date): Buffer {
  const iso = date.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:T]/g, '');
  const year = date.getUTCFullYear();
  return year >= 1950 && year < 2050 ? tlv(Tag.UTC_TIME, Buffer.from(iso.slice(2), 'latin1')) : tlv(Tag.GENERALIZED_TIME, Buffer.from(iso, 'latin1'));
}

/** A context-specific constructed tag, [n] EXPLICIT. */
export const explicit = (n: number, ...content: Uint8Array[]): Buffer => tlv(0xa0 | n, ...content);
