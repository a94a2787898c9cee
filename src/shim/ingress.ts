/**
 * `networking.k8s.io/v1` Ingress as a route kind, as cert-manager's ingress-shim reads it: one
 * Certificate per `spec.tls[]` entry, named after its `secretName`, for its `hosts`. An entry
 * without hosts or without a Secret is skipped with a Warning and the others go on; two entries
 * naming one Secret block the Ingress (one Certificate per entry could not be made).
 *
 * As in cert-manager, `kubernetes.io/tls-acme: "true"` (the auto-certificate annotations) asks for
 * Certificates from the default issuer (`--default-issuer-name`, `-kind`, `-group`).
 *
 * Only Ingresses Traefik serves are considered: `spec.ingressClassName`, else the
 * `kubernetes.io/ingress.class` annotation, must be one of the configured classes. An Ingress
 * with neither is considered too, because Traefik serves it with its default configuration.
 */
import { isIP } from 'node:net';
import type { Ingress } from '../api/types.ts';
import { Resources } from '../api/types.ts';
import { dnsNameProblem } from '../pki/names.ts';
import { DuplicateSecretName, InvalidHost, NoTls, ShimAnnotations, SkippedTlsEntry, type Findings, type ShimDefaults } from './annotations.ts';
import type { RouteKind, TlsEntry } from './route-kind.ts';

/** Marks Certificates the Ingress shim owns, so it only ever deletes its own. */
export const INGRESS_LABEL = 'certroute.io/ingress';
export const INGRESS_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';
/** The IngressClass Traefik's Helm chart creates. */
export const DEFAULT_INGRESS_CLASSES: readonly string[] = ['traefik'];

/** The Ingress's class: `spec.ingressClassName`, which wins, else the legacy annotation. */
export function ingressClassOf(ingress: Ingress): string | undefined {
  return ingress.spec.ingressClassName ?? ingress.metadata.annotations?.[INGRESS_CLASS_ANNOTATION];
}

/** cert-manager's default for --auto-certificate-annotations. */
export const DEFAULT_AUTO_CERTIFICATE_ANNOTATIONS: readonly string[] = ['kubernetes.io/tls-acme'];

export function ingressKind(opts: { classes: readonly string[]; defaults?: ShimDefaults }): RouteKind<Ingress> {
  return {
    name: 'ingress-shim',
    defaults: opts.defaults ?? { autoAnnotations: DEFAULT_AUTO_CERTIFICATE_ANNOTATIONS },
    resource: Resources.ingresses,
    label: INGRESS_LABEL,
    notServed(ingress) {
      const cls = ingressClassOf(ingress);
      return cls === undefined || opts.classes.includes(cls) ? undefined : `class ${JSON.stringify(cls)} is not one of ${opts.classes.join(', ')}`;
    },
    tlsEntries: tlsEntries,
    secretNames: (ingress) => (ingress.spec.tls ?? []).flatMap((t) => (t.secretName ? [t.secretName] : [])),
    noHostsFix: `list the names the certificate must cover in its hosts, or in ${ShimAnnotations.altNames}`,
    tooManyHostsFix: 'split the hosts over several spec.tls entries, each with its own secretName',
  };
}

function tlsEntries(ingress: Ingress, findings: Findings): TlsEntry[] {
  const tls = ingress.spec.tls ?? [];
  if (tls.length === 0) {
    findings.add(NoTls, 'spec.tls is empty, so there is no Secret to issue a certificate into; add a spec.tls entry with the hosts and the secretName Traefik should serve');
    return [];
  }
  const firstUse = new Map<string, number>();
  tls.forEach((entry, i) => {
    if (!entry.secretName) return;
    const first = firstUse.get(entry.secretName);
    if (first === undefined) firstUse.set(entry.secretName, i);
    else findings.add(DuplicateSecretName, `spec.tls[${first}].secretName ${JSON.stringify(entry.secretName)} is also used in spec.tls[${i}]; certroute, like cert-manager, makes one Certificate per entry, so give each entry its own secretName or put their hosts in one entry`);
  });
  const entries: TlsEntry[] = [];
  tls.forEach((entry, i) => {
    const where = `spec.tls[${i}]`;
    if (!entry.secretName) {
      findings.add(SkippedTlsEntry, `${where} names no secretName, so it is skipped; set secretName to the Secret Traefik should serve for ${JSON.stringify(entry.hosts ?? [])}`);
      return;
    }
    if (!entry.hosts?.length) {
      findings.add(SkippedTlsEntry, `${where} (secretName ${entry.secretName}) lists no hosts, so it is skipped; list the names the certificate must cover in hosts`);
      return;
    }
    const hosts: string[] = [];
    for (const host of entry.hosts) {
      const why = isIP(host) === 0 ? dnsNameProblem(host) : undefined;
      if (why === undefined) hosts.push(host);
      else findings.add(InvalidHost, `${where}.hosts: ${JSON.stringify(host)} ${why}; it is left out of the certificate`);
    }
    entries.push({ secretName: entry.secretName, hosts, where });
  });
  return entries;
}
