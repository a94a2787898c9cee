/**
 * cert-manager's `spec.nameConstraints` (RFC 5280 §4.2.1.10), for CA
 * certificates: the names every certificate below the CA must (permitted) or
 * must not (excluded) fall under. The CSR carries the extension and the
 * SelfSigned and CA signers copy it, so the CSR is also what the re-issue
 * policy compares, by meaning rather than by bytes.
 */
import type { NameConstraintItems, NameConstraints } from '../api/types.ts';
import type { RawExtension } from './der.ts';
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

/** What a name constraints extension says, as comparable text; '' when there is none. */
export function nameConstraintsKey(extensions: readonly RawExtension[]): string {
  const ext = extensions.find((e) => e.oid === NAME_CONSTRAINTS_OID);
  if (!ext) return '';
  const parsed = AsnConvert.parse(ext.value, asn1X509.NameConstraints);
  const side = (trees: asn1X509.GeneralSubtrees | undefined): string[] =>
    (trees ?? []).map(({ base }) => {
      if (base.dNSName !== undefined) return `dns:${base.dNSName}`;
      if (base.iPAddress !== undefined) return `ip:${base.iPAddress}`;
      if (base.rfc822Name !== undefined) return `email:${base.rfc822Name}`;
      if (base.uniformResourceIdentifier !== undefined) return `uri:${base.uniformResourceIdentifier}`;
      return `other:${Buffer.from(AsnConvert.serialize(base)).toString('hex')}`;
    }).sort();
  return JSON.stringify({ critical: ext.critical, permitted: side(parsed.permittedSubtrees), excluded: side(parsed.excludedSubtrees) });
}

/** The same text for a spec. */
export function nameConstraintsSpecKey(spec: NameConstraints | undefined): string {
  const ext = nameConstraintsExtension(spec);
  return ext ? nameConstraintsKey([rawExtension(ext)]) : '';
}
