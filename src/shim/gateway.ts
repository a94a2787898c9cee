/**
 * `gateway.networking.k8s.io/v1` Gateway as a route kind, as cert-manager's gateway-shim reads
 * it: one Certificate per Secret in an HTTPS or TLS listener's `tls.certificateRefs`, for the
 * listener's `hostname`; listeners that share a Secret share its Certificate. Passthrough
 * listeners and other protocols are not for certificates. A listener that cannot be used (no
 * hostname, a reference to something other than a Secret in the Gateway's namespace) is skipped
 * with a Warning and the others go on.
 *
 * Only Gateways of a class Traefik serves (`spec.gatewayClassName` in the configured list) are
 * considered.
 */
import type { Gateway, GatewayListener } from '../api/types.ts';
import { Resources } from '../api/types.ts';
import { NoTls, ShimAnnotations, SkippedTlsEntry, type Findings } from './annotations.ts';
import type { RouteKind, TlsEntry } from './route-kind.ts';

/** Marks Certificates the Gateway shim owns, so it only ever deletes its own. */
export const GATEWAY_LABEL = 'certroute.io/gateway';
/** The GatewayClass Traefik's Helm chart creates. */
export const DEFAULT_GATEWAY_CLASSES: readonly string[] = ['traefik'];

const TLS_PROTOCOLS = new Set(['HTTPS', 'TLS']);

const isTerminatingTls = (l: GatewayListener): boolean => TLS_PROTOCOLS.has(l.protocol) && (l.tls?.mode ?? 'Terminate') !== 'Passthrough';

export function gatewayKind(opts: { classes: readonly string[] }): RouteKind<Gateway> {
  return {
    name: 'gateway-shim',
    resource: Resources.gateways,
    label: GATEWAY_LABEL,
    notServed: (gateway) => (opts.classes.includes(gateway.spec.gatewayClassName) ? undefined : `class ${JSON.stringify(gateway.spec.gatewayClassName)} is not one of ${opts.classes.join(', ')}`),
    tlsEntries,
    secretNames: (gateway) => gateway.spec.listeners.flatMap((l) => (l.tls?.certificateRefs ?? []).map((r) => r.name)),
    noHostsFix: `set the listener's hostname, or list the names in ${ShimAnnotations.altNames}`,
    tooManyHostsFix: 'give the listeners of more than 100 hostnames Secrets of their own',
  };
}

function tlsEntries(gateway: Gateway, findings: Findings): TlsEntry[] {
  const bySecret = new Map<string, TlsEntry>();
  let anyTls = false;
  gateway.spec.listeners.forEach((l, i) => {
    if (!isTerminatingTls(l)) return;
    anyTls = true;
    const where = `spec.listeners[${i}] (${JSON.stringify(l.name)})`;
    const problem = listenerProblem(l, gateway.metadata.namespace ?? '');
    if (problem !== undefined) {
      findings.add(SkippedTlsEntry, `${where} is skipped: ${problem}`);
      return;
    }
    for (const ref of l.tls?.certificateRefs ?? []) {
      const entry = bySecret.get(ref.name) ?? { secretName: ref.name, hosts: [], where };
      if (!bySecret.has(ref.name)) bySecret.set(ref.name, entry);
      else entry.where = `${entry.where} and ${where}`;
      if (l.hostname && !entry.hosts.includes(l.hostname)) entry.hosts.push(l.hostname);
    }
  });
  if (!anyTls) findings.add(NoTls, 'no HTTPS or TLS listener terminates TLS, so there is no Secret to issue a certificate into; add a listener with protocol HTTPS, a hostname and tls.certificateRefs naming the Secret');
  return [...bySecret.values()];
}

/** Why a TLS listener cannot become a Certificate (cert-manager's checks), or undefined. */
function listenerProblem(l: GatewayListener, namespace: string): string | undefined {
  if (!l.hostname) return 'it has no hostname, so there is no name for the certificate; set hostname, e.g. app.example.com';
  const refs = l.tls?.certificateRefs ?? [];
  if (refs.length === 0) return 'tls.certificateRefs is empty; name the Secret Traefik should serve';
  for (const [j, ref] of refs.entries()) {
    if ((ref.group ?? '') !== '' && ref.group !== 'core') return `tls.certificateRefs[${j}] has group ${JSON.stringify(ref.group)}; only Secrets (group "" or core) hold certificates certroute issues`;
    if ((ref.kind ?? 'Secret') !== 'Secret') return `tls.certificateRefs[${j}] has kind ${JSON.stringify(ref.kind)}; only a Secret can hold the certificate`;
    if (ref.namespace !== undefined && ref.namespace !== namespace) return `tls.certificateRefs[${j}] is in namespace ${JSON.stringify(ref.namespace)}; a Certificate lives beside its Gateway, so name a Secret in namespace ${namespace}`;
  }
  return undefined;
}
