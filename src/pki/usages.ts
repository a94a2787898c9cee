/**
 * cert-manager's usage strings ("digital signature", "server auth", …) and the
 * X.509 key usage bits and extended key usage OIDs they stand for.
 *
 * Usages are compared as bits and OIDs, not as strings, because cert-manager
 * has aliases ("signing" is "digital signature", "s/mime" is "email
 * protection") and an empty list means the defaults: a spec that spells the
 * defaults out must not look changed and trigger a re-issue.
 */
import { children, oidText, Tag, whole, type RawExtension } from './der.ts';
import { x509 } from './x509.ts';

const KU = x509.KeyUsageFlags;
export const KEY_USAGE_OID = '2.5.29.15';
export const EXT_KEY_USAGE_OID = '2.5.29.37';
/** digitalSignature (bit 0, flag 1) to decipherOnly (bit 8, flag 256). */
const KEY_USAGE_BITS = 9;

/** Key usage strings, canonical name first where there is an alias. */
const KEY_USAGES: ReadonlyArray<readonly [string, number]> = [
  ['digital signature', KU.digitalSignature],
  ['signing', KU.digitalSignature],
  ['content commitment', KU.nonRepudiation],
  ['key encipherment', KU.keyEncipherment],
  ['key agreement', KU.keyAgreement],
  ['data encipherment', KU.dataEncipherment],
  ['cert sign', KU.keyCertSign],
  ['crl sign', KU.cRLSign],
  ['encipher only', KU.encipherOnly],
  ['decipher only', KU.decipherOnly],
];

/** Extended key usage strings, canonical name first where there is an alias. */
const EXT_KEY_USAGES: ReadonlyArray<readonly [string, string]> = [
  ['any', '2.5.29.37.0'],
  ['server auth', '1.3.6.1.5.5.7.3.1'],
  ['client auth', '1.3.6.1.5.5.7.3.2'],
  ['code signing', '1.3.6.1.5.5.7.3.3'],
  ['email protection', '1.3.6.1.5.5.7.3.4'],
  ['s/mime', '1.3.6.1.5.5.7.3.4'],
  ['ipsec end system', '1.3.6.1.5.5.7.3.5'],
  ['ipsec tunnel', '1.3.6.1.5.5.7.3.6'],
  ['ipsec user', '1.3.6.1.5.5.7.3.7'],
  ['timestamping', '1.3.6.1.5.5.7.3.8'],
  ['ocsp signing', '1.3.6.1.5.5.7.3.9'],
  ['microsoft sgc', '1.3.6.1.4.1.311.10.3.3'],
  ['netscape sgc', '2.16.840.1.113730.4.1'],
];

/** Every usage string cert-manager accepts (its CRD's enum), aliases included. */
export const USAGE_NAMES: ReadonlySet<string> = new Set([...KEY_USAGES, ...EXT_KEY_USAGES].map(([name]) => name));

/**
 * cert-manager's `DefaultKeyUsages()`. It deliberately omits "server auth":
 * adding it to a CA certificate breaks many clients, and ACME CAs add it anyway.
 */
export const DEFAULT_USAGES: readonly string[] = ['digital signature', 'key encipherment'];

/** Usages as they go into a certificate: a key usage bit set and EKU OIDs. */
export interface UsageBits {
  keyUsage: number;
  extKeyUsages: string[];
}

/**
 * Translates usage strings (defaults when empty) to bits and OIDs. "cert sign"
 * is added for a CA, as cert-manager does. Unknown strings throw: the CRD enum
 * should have stopped them, and silently dropping one would issue a certificate
 * that does less than asked.
 */
export function usageBits(usages: readonly string[] | undefined, isCA = false): UsageBits {
  const list = usages && usages.length > 0 ? usages : DEFAULT_USAGES;
  let keyUsage = isCA ? KU.keyCertSign : 0;
  const extKeyUsages: string[] = [];
  const unknown: string[] = [];
  for (const usage of list) {
    const ku = KEY_USAGES.find(([name]) => name === usage);
    const eku = EXT_KEY_USAGES.find(([name]) => name === usage);
    if (ku) keyUsage |= ku[1];
    else if (eku) {
      if (!extKeyUsages.includes(eku[1])) extKeyUsages.push(eku[1]);
    } else unknown.push(usage);
  }
  if (unknown.length > 0) throw new Error(`unknown usages ${JSON.stringify(unknown)} in spec.usages`);
  return { keyUsage, extKeyUsages };
}

/** Turns bits and OIDs back into canonical cert-manager strings; unknown OIDs are kept as OIDs. */
export function usageStrings(bits: UsageBits): string[] {
  const out: string[] = [];
  let seen = 0;
  for (const [name, flag] of KEY_USAGES) {
    if (bits.keyUsage & flag & ~seen) out.push(name);
    seen |= flag;
  }
  for (const oid of bits.extKeyUsages) {
    out.push(EXT_KEY_USAGES.find(([, o]) => o === oid)?.[0] ?? oid);
  }
  return out;
}

/**
 * Whether two usage lists ask for the same certificate, honouring aliases and
 * defaults. For a CA, `cert sign` is implied on both sides, as a CA's CSR
 * carries it whether or not spec.usages lists it.
 */
export function usagesEqual(a: readonly string[] | undefined, b: readonly string[] | undefined, isCA = false): boolean {
  let x: UsageBits;
  let y: UsageBits;
  try {
    x = usageBits(a, isCA);
    y = usageBits(b, isCA);
  } catch {
    return sameSet(a ?? [], b ?? []);
  }
  return x.keyUsage === y.keyUsage && sameSet(x.extKeyUsages, y.extKeyUsages);
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const x = new Set(a);
  const y = new Set(b);
  return x.size === y.size && [...x].every((v) => y.has(v));
}

/** Key usage and EKU extensions for a CSR or certificate; key usage is critical as Go's x509 writes it. */
export function usageExtensions(bits: UsageBits): x509.Extension[] {
  const out: x509.Extension[] = [];
  if (bits.keyUsage !== 0) out.push(new x509.KeyUsagesExtension(bits.keyUsage, true));
  if (bits.extKeyUsages.length > 0) out.push(new x509.ExtendedKeyUsageExtension(bits.extKeyUsages, false));
  return out;
}

/** Reads usage bits back from a CSR's or certificate's extensions. */
export function usageBitsFromExtensions(extensions: readonly RawExtension[]): UsageBits {
  let keyUsage = 0;
  const extKeyUsages: string[] = [];
  for (const ext of extensions) {
    const der = ext.value;
    if (ext.oid === KEY_USAGE_OID) {
      // A BIT STRING: its first byte counts the unused bits; bit i (from the top) is flag 1 << i.
      // RFC 5280 names nine bits; any beyond them mean nothing and are not read.
      const bits = whole(der, 'key usage extension');
      const unused = der[bits.start] ?? 8;
      if (bits.tag !== Tag.BIT_STRING || bits.end <= bits.start || unused > 7) throw new Error('the key usage extension is not a BIT STRING');
      const count = Math.min(KEY_USAGE_BITS, (bits.end - bits.start - 1) * 8 - unused);
      for (let i = 0; i < count; i++) if ((der[bits.start + 1 + (i >> 3)] ?? 0) & (0x80 >> (i & 7))) keyUsage |= 1 << i;
    }
    if (ext.oid === EXT_KEY_USAGE_OID) {
      const list = whole(der, 'extended key usage extension');
      if (list.tag !== Tag.SEQUENCE) throw new Error('the extended key usage extension is not a SEQUENCE');
      for (const id of children(der, list)) extKeyUsages.push(oidText(der, id));
    }
  }
  return { keyUsage, extKeyUsages };
}
