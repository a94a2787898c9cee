/**
 * Traefik's IngressRoute as a route kind: the hosts are Traefik's own `spec.tls.domains` (main and
 * sans, wildcards included) when the route lists any, else every ``Host(`…`)`` in its rules; the one
 * Secret is `spec.tls.secretName`, and when that is empty certroute names `<name>-tls` and may
 * write it there (its only write to IngressRoutes; off, a Warning asks the user to).
 */
import { isIP } from 'node:net';
import type { IngressRoute } from '../api/types.ts';
import { Resources } from '../api/types.ts';
import { dnsNameProblem } from '../pki/names.ts';
import { extractHosts, type RuleProblemKind } from '../traefik/rules.ts';
import {
  CertResolverSet, InvalidHost, InvalidRule, NegatedHost, ShimAnnotations, TooManyHosts, UnknownMatcher, UnsupportedMatcher,
  type Findings, type ShimReason,
} from './annotations.ts';
import type { RouteKind } from './route-kind.ts';

/** Marks Certificates the IngressRoute shim owns, so it only ever deletes its own. */
export const INGRESSROUTE_LABEL = 'certroute.io/ingressroute';

const PROBLEM_REASONS: Record<RuleProblemKind, ShimReason> = {
  'syntax': InvalidRule,
  'unsupported': UnsupportedMatcher,
  'negated': NegatedHost,
  'invalid-host': InvalidHost,
  'unknown-matcher': UnknownMatcher,
  'too-many-hosts': TooManyHosts,
};

const secretNameOf = (route: IngressRoute): string => route.spec.tls?.secretName || `${route.metadata.name}-tls`;

/** Every name of `spec.tls.domains`, main then sans; one that is not a name is left out and reported. */
function domainNames(route: IngressRoute, findings: Findings): string[] {
  const hosts: string[] = [];
  (route.spec.tls?.domains ?? []).forEach((domain, i) => {
    [domain.main ?? '', ...(domain.sans ?? [])].forEach((given, j) => {
      const field = j === 0 ? `spec.tls.domains[${i}].main` : `spec.tls.domains[${i}].sans[${j - 1}]`;
      const name = given.trim().toLowerCase();
      const why = isIP(name) === 0 ? dnsNameProblem(name) : undefined;
      if (why === undefined) hosts.push(name);
      else findings.add(InvalidHost, `${field}: ${JSON.stringify(given)} is not added to the certificate: it ${why}`);
    });
  });
  return hosts;
}

/** The hosts of every rule's Host matchers; what cannot be read is reported, naming the route. */
function ruleHosts(route: IngressRoute, findings: Findings): { hosts: string[]; parsed: boolean } {
  const hosts: string[] = [];
  let parsed = true;
  const where = `IngressRoute ${route.metadata.namespace ?? 'default'}/${route.metadata.name}`;
  route.spec.routes.forEach((r, i) => {
    const found = extractHosts(r.match ?? '');
    for (const p of found.problems) {
      findings.add(PROBLEM_REASONS[p.kind], `${where} spec.routes[${i}].match: ${p.message}`);
      if (p.kind === 'syntax') parsed = false;
    }
    hosts.push(...found.hosts);
  });
  return { hosts, parsed };
}

export const ingressRouteKind: RouteKind<IngressRoute> = {
  name: 'ingressroute-shim',
  resource: Resources.ingressroutes,
  label: INGRESSROUTE_LABEL,
  tlsEntries(route, findings) {
    const fromDomains = (route.spec.tls?.domains ?? []).length > 0;
    const { hosts, parsed } = fromDomains ? { hosts: domainNames(route, findings), parsed: true } : ruleHosts(route, findings);
    if (route.spec.tls?.certResolver) {
      findings.add(CertResolverSet, `spec.tls.certResolver (${route.spec.tls.certResolver}) is set too, so Traefik's own ACME resolver also requests certificates for these hosts; remove certResolver to let certroute alone manage them`);
    }
    return [{ secretName: secretNameOf(route), hosts, where: fromDomains ? 'spec.tls.domains' : 'spec.routes', hostsUnreadable: !parsed }];
  },
  secretNames: (route) => [secretNameOf(route)],
  noHostsFix: `no route has a Host(\`…\`) matcher, so there is no name to put in a certificate; add one to a route's match, e.g. Host(\`app.example.com\`) && PathPrefix(\`/\`), or list the names in spec.tls.domains or in ${ShimAnnotations.altNames}`,
  tooManyHostsFix: 'split them over several IngressRoutes, each with its own spec.tls.secretName',
  secretNameToWrite: (route) => (route.spec.tls?.secretName ? undefined : secretNameOf(route)),
  async writeSecretName(client, route, secretName) {
    await client.mergePatch(Resources.ingressroutes, route.metadata.namespace ?? '', route.metadata.name, {
      metadata: { resourceVersion: route.metadata.resourceVersion },
      spec: { tls: { secretName } },
    });
  },
};
