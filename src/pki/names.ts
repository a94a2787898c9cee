/**
 * Names inside CSRs and certificates: subject alternative names and the few
 * subject attributes cert-manager's API exposes.
 *
 * The comparisons here decide whether a certificate is re-issued, so they are
 * set comparisons (order never matters to a TLS client) and IP addresses are
 * compared in canonical form: "2001:DB8::1" and "2001:db8:0:0:0:0:0:1" are the
 * same address and must not cause a re-issue loop.
 */
import { isIP } from 'node:net';
import { x509 } from './x509.ts';

export interface SubjectAltNames {
  dnsNames: string[];
  ipAddresses: string[];
  uris: string[];
  emailAddresses: string[];
}

/** The subject fields certroute's API has: cert-manager's `subject` minus the rarely used ones. */
export interface SubjectFields {
  commonName: string;
  organizations: string[];
  organizationalUnits: string[];
  countries: string[];
}

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
function ipKey(ip: string): string {
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

/** Reads the SAN extension; names of kinds certroute does not issue (directory names, …) are skipped. */
export function sansFromExtensions(extensions: readonly x509.Extension[]): SubjectAltNames {
  const out: SubjectAltNames = { dnsNames: [], ipAddresses: [], uris: [], emailAddresses: [] };
  for (const ext of extensions) {
    if (ext.type !== SAN_OID) continue;
    for (const name of new x509.SubjectAlternativeNameExtension(ext.rawData).names.items) {
      if (name.type === 'dns') out.dnsNames.push(name.value);
      else if (name.type === 'ip') out.ipAddresses.push(ipKey(name.value));
      else if (name.type === 'url') out.uris.push(name.value);
      else if (name.type === 'email') out.emailAddresses.push(name.value);
    }
  }
  return out;
}

/**
 * The SAN extension for the given names, or undefined when there are none.
 * RFC 5280 §4.2.1.6 makes it critical when the subject is empty, because then
 * it carries the certificate's only identity.
 */
export function sanExtension(
  names: Partial<Pick<SubjectAltNames, 'dnsNames' | 'ipAddresses' | 'uris'>>,
  subjectIsEmpty: boolean,
): x509.SubjectAlternativeNameExtension | undefined {
  const general: x509.JsonGeneralName[] = [
    ...(names.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(names.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value: normaliseIp(value) })),
    ...(names.uris ?? []).map((value) => ({ type: 'url' as const, value })),
  ];
  if (general.length === 0) return undefined;
  return new x509.SubjectAlternativeNameExtension(general, subjectIsEmpty);
}

/** Reads the subject fields certroute cares about. */
export function subjectFields(name: x509.Name): SubjectFields {
  return {
    commonName: name.getField('CN')[0] ?? '',
    organizations: name.getField('O'),
    organizationalUnits: name.getField('OU'),
    countries: name.getField('C'),
  };
}

/**
 * Builds a subject in the attribute order Go's pkix.Name uses (C, O, OU, CN),
 * with repeated values of one attribute in a single RDN, so a CSR made here
 * has the same shape as one cert-manager makes.
 */
export function subjectName(fields: Partial<SubjectFields>): x509.JsonName {
  const name: x509.JsonName = [];
  if (fields.countries?.length) name.push({ C: [...fields.countries] });
  if (fields.organizations?.length) name.push({ O: [...fields.organizations] });
  if (fields.organizationalUnits?.length) name.push({ OU: [...fields.organizationalUnits] });
  if (fields.commonName) name.push({ CN: [fields.commonName] });
  return name;
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
