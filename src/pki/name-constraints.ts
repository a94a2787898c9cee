/**
 * cert-manager's `spec.nameConstraints` (RFC 5280 §4.2.1.10), for CA
 * certificates: the names every certificate below the CA must (permitted) or
 * must not (excluded) fall under. The CSR carries the extension and the
 * SelfSigned and CA signers write it anew from its strict reading, so the CSR
 * is also what the re-issue policy compares, by meaning rather than by bytes.
 */
import type { NameConstraintItems, NameConstraints } from '../api/types.ts';
import { children, Tag, whole, type RawExtension } from './der.ts';
import { ipFromOctets } from './names.ts';
import { asn1X509, AsnConvert, rawExtension, x509 } from './x509.ts';

export const NAME_CONSTRAINTS_OID = '2.5.29.30';

function subtrees(items: NameConstraintItems | undefined): asn1X509.GeneralSubtrees | undefined {
  const names = [
    ...(items?.dnsDomains ?? []).map((dNSName) => new asn1X509.GeneralName({ dNSName })),
    ...(items?.ipRanges ?? []).map((iPAddress) => new asn1X509.GeneralName({ iPAddress })),
    ...(items?.emailAddresses ?? []).map((rfc822Name) => new asn1X509.GeneralName({ rfc822Name })),
    ...(items?.uriDomains ?? []).map((uniformResourceIdentifier) => new asn1X509.GeneralName({ uniformResourceIdentifier })),
  ];
  return names.length ? new asn1X509.GeneralSubtrees(names.map((base) => new asn1X509.GeneralSubtree({ base }))) : undefined;
}

/**
 * The extension for a spec, or undefined when it constrains nothing. Throws,
 * naming the field, for an IP range that is not CIDR (the CRD checks it too).
 */
export function nameConstraintsExtension(spec: NameConstraints | undefined): x509.Extension | undefined {
  if (!spec) return undefined;
  for (const range of [...(spec.permitted?.ipRanges ?? []), ...(spec.excluded?.ipRanges ?? [])]) {
    if (!/^[0-9a-fA-F.:]+\/\d{1,3}$/.test(range)) throw new Error(`spec.nameConstraints ipRanges entry ${JSON.stringify(range)} is not a CIDR range such as 10.0.0.0/8`);
  }
  const permittedSubtrees = subtrees(spec.permitted);
  const excludedSubtrees = subtrees(spec.excluded);
  if (!permittedSubtrees && !excludedSubtrees) return undefined;
  const value = new asn1X509.NameConstraints({ ...(permittedSubtrees ? { permittedSubtrees } : {}), ...(excludedSubtrees ? { excludedSubtrees } : {}) });
  return new x509.Extension(NAME_CONSTRAINTS_OID, spec.critical ?? false, AsnConvert.serialize(value));
}

/**
 * A name constraints extension read strictly with der.ts, as the spec's fields: { [0] permitted,
 * [1] excluded } of subtrees with only a base, each a DNS, email or URI name (ASCII) or an IP
 * range of address and contiguous mask. Throws on anything else (other name kinds, a mask with
 * holes, BER, trailing bytes): the signer writes the extension anew from this reading, so what it
 * issues is what Go reads (cert-manager's approvers) and what the re-issue policy compares.
 */
export function nameConstraintsOf(ext: RawExtension): NameConstraints {
  const der = ext.value;
  const outer = whole(der, 'name constraints extension');
  const parts = outer.tag === Tag.SEQUENCE ? children(der, outer) : [];
  const [first, second] = parts;
  const ordered = parts.length >= 1 && parts.length <= 2 && (parts.length === 1 ? first!.tag === 0xa0 || first!.tag === 0xa1 : first!.tag === 0xa0 && second?.tag === 0xa1);
  if (!ordered) throw new Error('the name constraints extension is not { [0] permitted, [1] excluded }');
  const out: NameConstraints = { critical: ext.critical };
  for (const part of parts) {
    const items: Required<NameConstraintItems> = { dnsDomains: [], ipRanges: [], emailAddresses: [], uriDomains: [] };
    const trees = children(der, part);
    if (trees.length === 0) throw new Error('the name constraints extension holds an empty list of subtrees');
    for (const tree of trees) {
      const [base, ...bounds] = tree.tag === Tag.SEQUENCE ? children(der, tree) : [];
      if (!base || bounds.length) throw new Error(`the name constraints extension holds a subtree that is not one name at byte ${tree.header}`);
      const bytes = der.subarray(base.start, base.end);
      const text = (kind: string) => {
        if (!bytes.every((b) => b < 0x80 && b !== 0)) throw new Error(`the name constraints ${kind} at byte ${base.header} is not ASCII`);
        return Buffer.from(bytes).toString('latin1');
      };
      if (base.tag === 0x82) items.dnsDomains.push(text('dNSName'));
      else if (base.tag === 0x81) items.emailAddresses.push(text('rfc822Name'));
      else if (base.tag === 0x86) items.uriDomains.push(text('uniformResourceIdentifier'));
      else if (base.tag === 0x87) items.ipRanges.push(ipRange(bytes));
      else throw new Error(`the name constraints extension holds a name of tag 0x${base.tag.toString(16)}; cert-manager's spec.nameConstraints has DNS, IP, email and URI names only`);
    }
    out[part.tag === 0xa0 ? 'permitted' : 'excluded'] = Object.fromEntries(Object.entries(items).filter(([, v]) => v.length)) as NameConstraintItems;
  }
  return out;
}

/** An iPAddress constraint: the address, then a mask of leading ones, as CIDR text. */
function ipRange(octets: Uint8Array): string {
  if (octets.length !== 8 && octets.length !== 32) throw new Error(`the name constraints hold an IP range of ${octets.length} bytes; one has 8 (IPv4) or 32 (IPv6)`);
  const half = octets.length / 2;
  const mask = [...octets.subarray(half)].map((b) => b.toString(2).padStart(8, '0')).join('');
  if (!/^1*0*$/.test(mask)) throw new Error('the name constraints hold an IP range whose mask is not contiguous');
  return `${ipFromOctets(octets.subarray(0, half))}/${mask.indexOf('0') === -1 ? mask.length : mask.indexOf('0')}`;
}

/** What a name constraints extension says, as comparable text; '' when there is none. */
export function nameConstraintsKey(extensions: readonly RawExtension[]): string {
  const ext = extensions.find((e) => e.oid === NAME_CONSTRAINTS_OID);
  if (!ext) return '';
  const parsed = nameConstraintsOf(ext);
  const side = (items: NameConstraintItems | undefined): string[] => [
    ...(items?.dnsDomains ?? []).map((v) => `dns:${v}`),
    ...(items?.ipRanges ?? []).map((v) => `ip:${v}`),
    ...(items?.emailAddresses ?? []).map((v) => `email:${v}`),
    ...(items?.uriDomains ?? []).map((v) => `uri:${v}`),
  ].sort();
  return JSON.stringify({ critical: ext.critical, permitted: side(parsed.permitted), excluded: side(parsed.excluded) });
}

/** The same text for a spec. */
export function nameConstraintsSpecKey(spec: NameConstraints | undefined): string {
  const ext = nameConstraintsExtension(spec);
  return ext ? nameConstraintsKey([rawExtension(ext)]) : '';
}
