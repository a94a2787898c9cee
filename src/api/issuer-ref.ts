/**
 * cert-manager's defaults for an issuer reference, in one place: an omitted
 * kind is `Issuer`, an omitted group is `cert-manager.io`. Comparing, keying
 * or printing a reference without them would tell `{name: ca}` and
 * `{name: ca, kind: Issuer}` apart, and re-issue a certificate for nothing.
 */
import { CERT_MANAGER_GROUP, type IssuerRef } from './types.ts';

/** The reference with its defaults filled in. */
export function normalizeIssuerRef(ref: IssuerRef): Required<IssuerRef> {
  return { name: ref.name, kind: ref.kind || 'Issuer', group: ref.group || CERT_MANAGER_GROUP };
}

/** Whether two references name the same issuer, defaults applied. */
export function issuerRefsEqual(a: IssuerRef, b: IssuerRef): boolean {
  const x = normalizeIssuerRef(a);
  const y = normalizeIssuerRef(b);
  return x.name === y.name && x.kind === y.kind && x.group === y.group;
}

/** `Kind.group/name`, as cert-manager's messages print a reference. */
export function formatIssuerRef(ref: IssuerRef): string {
  const r = normalizeIssuerRef(ref);
  return `${r.kind}.${r.group}/${r.name}`;
}
