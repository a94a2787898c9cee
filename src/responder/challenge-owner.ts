/**
 * Whether a Challenge is one certroute's own ACME flow made, and still needs answering.
 *
 * The responder proves control of a host to whichever CA asks, so a Challenge someone wrote by
 * hand (the token and key authorization from an ACME client of their own) would get them a
 * certificate for any host behind this Traefik. The admission policy in crds/ keeps namespace
 * users from creating Challenges; this is the second wall, for clusters without it: a Challenge
 * is presented and served only when its controlling Order exists with the uid it names, that
 * Order is controlled by an existing CertificateRequest, it lists this token among the ones the
 * CA gave it and the Challenge's name among its identifiers, and neither is finished.
 */
import type { CertificateRequest, Challenge, Order } from '../api/types.ts';

export interface OwnerLookup {
  order(namespace: string | undefined, name: string): Order | undefined;
  certificateRequest(namespace: string | undefined, name: string): CertificateRequest | undefined;
}

const FINAL = new Set(['valid', 'invalid', 'errored', 'expired']);

function controllerRef(o: Challenge | Order, kind: string): { name: string; uid: string } | undefined {
  return o.metadata.ownerReferences?.find((r) => r.controller === true && r.kind === kind);
}

/** Why the Challenge must not be presented or served, or undefined when it may be. */
export function challengeOwnerProblem(ch: Challenge, lookup: OwnerLookup): string | undefined {
  const ns = ch.metadata.namespace;
  if (FINAL.has(ch.status?.state ?? '')) return `the challenge is ${ch.status?.state}`;
  const ref = controllerRef(ch, 'Order');
  if (!ref) return 'no Order controls this Challenge';
  const order = lookup.order(ns, ref.name);
  if (!order || order.metadata.uid !== ref.uid) return `its Order ${ref.name} does not exist (or is another object of that name)`;
  if (FINAL.has(order.status?.state ?? '')) return `its Order ${ref.name} is ${order.status?.state}`;
  const crRef = controllerRef(order, 'CertificateRequest');
  const cr = crRef ? lookup.certificateRequest(ns, crRef.name) : undefined;
  if (!crRef || !cr || cr.metadata.uid !== crRef.uid) return `its Order ${ref.name} was not made for an existing CertificateRequest`;
  const names = [...(order.spec.dnsNames ?? []), ...(order.spec.ipAddresses ?? [])].map((n) => n.toLowerCase());
  // A wildcard authorization's identifier is the name without "*." (RFC 8555 §7.1.3).
  const asked = `${ch.spec.wildcard ? '*.' : ''}${ch.spec.dnsName.toLowerCase()}`;
  if (!names.includes(asked)) return `its Order ${ref.name} does not ask for ${asked}`;
  const fromCa = order.status?.authorizations?.some((a) => (a.challenges ?? []).some((c) => c.token === ch.spec.token && c.url === ch.spec.url));
  if (!fromCa) return `its Order ${ref.name} got no such challenge from the CA`;
  return undefined;
}
