/**
 * Names inside CSRs and certificates: subject alternative names and the
 * subject attributes of cert-manager's API.
 *
 * The comparisons here decide whether a certificate is re-issued, so they are
 * set comparisons (order never matters to a TLS client) and IP addresses are
 * compared in canonical form: "2001:DB8::1" and "2001:db8:0:0:0:0:0:1" are the
 * same address and must not cause a re-issue loop.
 */
import { isIP } from 'node:net';
import type { OtherName } from '../api/types.ts';
import { asn1X509, AsnConvert, x509 } from './x509.ts';
import { children, oidText, readTlv, stringText, Tag, tlv, whole, wellFormedString, type RawExtension, type Tlv } from './der.ts';

export interface SubjectAltNames {
  dnsNames: string[];
  ipAddresses: string[];
  uris: string[];
  emailAddresses: string[];
  /** UTF8String otherNames (UPN and the like); others are skipped. */
  otherNames: readonly OtherName[];
}

/** cert-manager's `subject` fields and the common name, as read from a subject. */
export interface SubjectFields {
  commonName: string;
  organizations: string[];
  organizationalUnits: string[];
  countries: string[];
  localities: string[];
  provinces: string[];
  streetAddresses: string[];
  postalCodes: string[];
  serialNumber: string;
}

/** Subject attribute OIDs, in the order Go's pkix.Name writes them (ToRDNSequence). */
const SUBJECT_OIDS = [
  ['countries', '2.5.4.6'],
  ['provinces', '2.5.4.8'],
  ['localities', '2.5.4.7'],
  ['streetAddresses', '2.5.4.9'],
  ['postalCodes', '2.5.4.17'],
  ['organizations', '2.5.4.10'],
  ['organizationalUnits', '2.5.4.11'],
] as const;
export const CN_OID = '2.5.4.3';
const SERIAL_OID = '2.5.4.5';

const NO_OTHER_NAMES: readonly OtherName[] = Object.freeze([]);
const SAN_OID = '2.5.29.17';

/**
 * Canonical text of an IP address; IPv4-mapped IPv6 becomes IPv4, as Go's
 * net.IP treats them as equal. Throws on anything that is not an address.
 */
export function normaliseIp(ip: string): string {
  const trimmed = ip.trim();
  const version = isIP(trimmed);
  if (version === 4) return trimmed;
  if (version !== 6) throw new Error(`${JSON.stringify(ip)} is not an IP address`);
  const canonical = new URL(`http://[${trimmed}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (!mapped) return canonical;
  const hi = parseInt(mapped[1] ?? '0', 16);
  const lo = parseInt(mapped[2] ?? '0', 16);
  return [hi >> 8, hi & 0xff, lo >> 8, lo & 0xff].join('.');
}

/** Canonical form when the text is an address, the text itself otherwise, so comparisons never throw. */
export function ipKey(ip: string): string {
  try {
    return normaliseIp(ip);
  } catch {
    return ip;
  }
}

/** Set equality of strings; duplicates and order do not matter. */
export function sameSet(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  const x = new Set(a ?? []);
  const y = new Set(b ?? []);
  return x.size === y.size && [...x].every((v) => y.has(v));
}

/** Set equality of IP addresses in canonical form. */
export function sameIps(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  return sameSet((a ?? []).map(ipKey), (b ?? []).map(ipKey));
}

/**
 * Reads the SAN extension. Names of kinds certroute does not issue (directory names, x400
 * addresses, EDI party names, registered IDs) are skipped; anything that is not a well-formed
 * GeneralName throws. Strict on purpose: a CA issuer copies a CSR's SAN extension into the
 * certificate byte for byte, so a name this reader skipped while OpenSSL reads it as a DNS name
 * (a constructed [2], say) would be issued without anyone having seen it.
 */
export function sansFromExtensions(extensions: readonly RawExtension[]): SubjectAltNames {
  const out: SubjectAltNames = { dnsNames: [], ipAddresses: [], uris: [], emailAddresses: [], otherNames: NO_OTHER_NAMES };
  const otherNames: OtherName[] = [];
  for (const ext of extensions) {
    if (ext.oid !== SAN_OID) continue;
    const der = ext.value;
    const list = whole(der, 'subjectAltName extension');
    if (list.tag !== Tag.SEQUENCE) throw new Error('the subjectAltName extension is not a SEQUENCE');
    // GeneralName: [1] rfc822Name, [2] dNSName, [6] URI, [7] iPAddress (IMPLICIT), [0] otherName.
    for (const name of children(der, list)) {
      if (name.tag === 0x82) out.dnsNames.push(ia5Text(der, name, 'dNSName'));
      else if (name.tag === 0x87) out.ipAddresses.push(ipFromOctets(der.subarray(name.start, name.end)));
      else if (name.tag === 0x86) out.uris.push(ia5Text(der, name, 'uniformResourceIdentifier'));
      else if (name.tag === 0x81) out.emailAddresses.push(ia5Text(der, name, 'rfc822Name'));
      else if (name.tag === 0xa0) {
        const other = otherNameIn(der, name);
        if (other) otherNames.push(other);
      }
      else if (!SKIPPED_GENERAL_NAMES.has(name.tag)) throw new Error(`the subjectAltName extension holds a GeneralName with tag 0x${name.tag.toString(16)}, which is not one X.509 defines`);
    }
  }
  if (otherNames.length) out.otherNames = otherNames;
  return out;
}

/** [3] x400Address, [4] directoryName, [5] ediPartyName (constructed), [8] registeredID. */
const SKIPPED_GENERAL_NAMES: ReadonlySet<number> = new Set([0xa3, 0xa4, 0xa5, 0x88]);

/** An IA5String name's text; throws on a byte outside ASCII, as Go's parser does. */
function ia5Text(der: Uint8Array, name: Tlv, kind: string): string {
  for (let i = name.start; i < name.end; i++) if ((der[i] ?? 0) > 0x7f) throw new Error(`the subjectAltName ${kind} at byte ${name.header} is not ASCII`);
  return stringText(der, name);
}

/**
 * otherName: type-id OID, then [0] EXPLICIT holding one value. certroute reads (and cert-manager
 * writes) UTF8String values; others (an SRVName's IA5String, an objectGUID's OCTET STRING) are
 * well-formed names of their own type that no reader takes for a DNS name, and are skipped.
 */
function otherNameIn(der: Uint8Array, name: Tlv): OtherName | undefined {
  const [typeId, wrapped, extra] = children(der, name);
  const value = wrapped?.tag === 0xa0 ? readTlv(der, wrapped.start, wrapped.end) : undefined;
  if (extra || typeId?.tag !== Tag.OID || !value || value.end !== wrapped?.end) throw new Error('the subjectAltName extension holds a malformed otherName');
  // A constructed universal string (0x2c: UTF8String in pieces) is one string to OpenSSL, which
  // matches an email by it, and nothing to a Go reader.
  if (value.tag >= 0x20 && value.tag < 0x40 && value.tag !== Tag.SEQUENCE && value.tag !== Tag.SET) throw new Error('the subjectAltName extension holds an otherName whose value is a constructed string');
  const oid = oidText(der, typeId);
  if (value.tag !== Tag.UTF8_STRING) return undefined;
  if (!wellFormedString(der, value)) throw new Error('the subjectAltName extension holds an otherName whose UTF8String is not valid UTF-8');
  return { oid, utf8Value: stringText(der, value) };
}

/** An address's octets (4 or 16) in canonical text form; throws on any other length. */
function ipFromOctets(octets: Uint8Array): string {
  return ipKey(ipText(octets));
}

/** An iPAddress's octets as text: dotted IPv4, or the eight groups of IPv6 (ipKey canonicalises them). */
function ipText(octets: Uint8Array): string {
  const bytes = Buffer.from(octets);
  if (bytes.length === 4) return [...bytes].join('.');
  if (bytes.length === 16) return Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2).toString(16)).join(':');
  throw new Error(`the subjectAltName holds an iPAddress of ${bytes.length} bytes; an address has 4 or 16`);
}

/**
 * The SAN extension for the given names, or undefined when there are none.
 * RFC 5280 §4.2.1.6 makes it critical when the subject is empty, because then
 * it carries the certificate's only identity. Order as Go writes it: DNS,
 * email, IP, URI, then otherNames.
 */
export function sanExtension(names: Partial<Omit<SubjectAltNames, 'otherNames'> & { otherNames: readonly OtherName[] }>, subjectIsEmpty: boolean): x509.Extension | undefined {
  const general: asn1X509.GeneralName[] = [
    ...(names.dnsNames ?? []).map((dNSName) => new asn1X509.GeneralName({ dNSName })),
    ...(names.emailAddresses ?? []).map((rfc822Name) => new asn1X509.GeneralName({ rfc822Name })),
    ...(names.ipAddresses ?? []).map((ip) => new asn1X509.GeneralName({ iPAddress: normaliseIp(ip) })),
    ...(names.uris ?? []).map((uniformResourceIdentifier) => new asn1X509.GeneralName({ uniformResourceIdentifier })),
    ...(names.otherNames ?? []).map((o) => new asn1X509.GeneralName({ otherName: new asn1X509.OtherName({ typeId: o.oid, value: utf8String(o.utf8Value) }) })),
  ];
  if (general.length === 0) return undefined;
  return new x509.Extension(SAN_OID, subjectIsEmpty, AsnConvert.serialize(new asn1X509.SubjectAlternativeName(general)));
}

/** DER of a UTF8String, the value cert-manager gives every otherName. */
function utf8String(text: string): ArrayBuffer {
  return Uint8Array.from(tlv(Tag.UTF8_STRING, Buffer.from(text, 'utf8'))).buffer;
}

/** Reads the subject fields of cert-manager's API. */
export function subjectFields(name: x509.Name): SubjectFields {
  return subjectFieldsBy((oid) => name.getField(oid));
}

/** The same, from a name's attributes in order (as der.ts reads them). */
export function subjectFieldsOf(attributes: ReadonlyArray<{ oid: string; value: string }>): SubjectFields {
  return subjectFieldsBy((oid) => attributes.filter((a) => a.oid === oid).map((a) => a.value));
}

function subjectFieldsBy(field: (oid: string) => string[]): SubjectFields {
  return {
    commonName: field(CN_OID)[0] ?? '',
    organizations: field('2.5.4.10'),
    organizationalUnits: field('2.5.4.11'),
    countries: field('2.5.4.6'),
    localities: field('2.5.4.7'),
    provinces: field('2.5.4.8'),
    streetAddresses: field('2.5.4.9'),
    postalCodes: field('2.5.4.17'),
    serialNumber: field(SERIAL_OID)[0] ?? '',
  };
}

/**
 * Builds a subject as Go's pkix.Name does (C, ST, L, STREET, POSTALCODE, O,
 * OU, CN, SERIALNUMBER), with repeated values of one attribute in a single
 * RDN, so a CSR made here has the shape of one cert-manager makes. Values are
 * PrintableString when they fit it and UTF8String otherwise, as Go encodes them.
 */
export function subjectName(fields: Partial<SubjectFields>): x509.Name {
  const name: x509.JsonAttributeAndObjectValue[] = [];
  for (const [field, oid] of SUBJECT_OIDS) {
    const values = fields[field];
    if (values?.length) name.push({ [oid]: values.map(directoryString) });
  }
  if (fields.commonName) name.push({ [CN_OID]: [directoryString(fields.commonName)] });
  if (fields.serialNumber) name.push({ [SERIAL_OID]: [directoryString(fields.serialNumber)] });
  return new x509.Name(name);
}

/** Whether a subject has no attribute at all (then the SANs must be critical). */
export function isEmptyName(name: x509.Name): boolean {
  return name.toJSON().length === 0;
}

/** Go's asn1 choice for a string: PrintableString when every character fits, else UTF8String. */
export function directoryString(value: string): x509.JsonAttributeObject {
  return /^[A-Za-z0-9 '()+,\-./:=?*]*$/.test(value) ? { printableString: value } : { utf8String: value };
}

/** Why `name` cannot go into a certificate's dnsNames, or undefined if it can (RFC 1123, ≤253). */
export function dnsNameProblem(name: string): string | undefined {
  if (name === '') return 'is empty';
  if (name.length > 253) return 'is longer than 253 characters';
  if (/[^\x00-\x7f]/.test(name)) return 'contains non-ASCII characters; write it in its punycode form (xn--…)';
  if (name.includes(':')) return 'contains ":"; write the name without a port';
  if (name.endsWith('.')) return 'ends with a dot; remove the trailing dot';
  const rest = name.startsWith('*.') ? name.slice(2) : name;
  if (rest.includes('*')) return 'has a wildcard that is not the whole leftmost label; only *.example.com is allowed';
  for (const label of rest.split('.')) {
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label)) {
      return `has the label "${label}", which is not a DNS label (1–63 letters, digits or "-", not starting or ending with "-")`;
    }
  }
  return undefined;
}
