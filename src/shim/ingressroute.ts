/**
 * Traefik's IngressRoute as a route kind: the hosts are every ``Host(`…`)`` in its rules, the one
 * Secret is `spec.tls.secretName`, and when that is empty certroute names `<name>-tls` and may
 * write it there (its only write to IngressRoutes; off, a Warning asks the user to).
 */
import type { IngressRoute } from '../api/types.ts';
import { Resources } from '../api/types.ts';
import { extractHosts, type RuleProblemKind } from '../traefik/rules.ts';
import {
  CertResolverSet, InvalidHost, InvalidRule, NegatedHost, ShimAnnotations, TooManyHosts, UnknownMatcher, UnsupportedMatcher,
  type ShimReason,
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

export const ingressRouteKind: RouteKind<IngressRoute> = {
  name: 'ingressroute-shim',
  resource: Resources.ingressroutes,
  label: INGRESSROUTE_LABEL,
  tlsEntries(route, findings) {
    const hosts: string[] = [];
    let parsed = true;
    route.spec.routes.forEach((r, i) => {
      const found = extractHosts(r.match ?? '');
      for (const p of found.problems) {
        findings.add(PROBLEM_REASONS[p.kind], `spec.routes[${i}].match: ${p.message}`);
        if (p.kind === 'syntax') parsed = false;
      }
      hosts.push(...found.hosts);
    });
    if (route.spec.tls?.certResolver) {
      findings.add(CertResolverSet, `spec.tls.certResolver (${route.spec.tls.certResolver}) is set too, so Traefik's own ACME resolver also requests certificates for these hosts; remove certResolver to let certroute alone manage them`);
    }
    return [{ secretName: secretNameOf(route), hosts, where: 'spec.routes', hostsUnreadable: !parsed }];
  },
  secretNames: (route) => [secretNameOf(route)],
  noHostsFix: `no route has a Host(\`…\`) matcher, so there is no name to put in a certificate; add one to a route's match, e.g. Host(\`app.example.com\`) && PathPrefix(\`/\`), or list the names in ${ShimAnnotations.altNames}`,
  tooManyHostsFix: 'split them over several IngressRoutes, each with its own spec.tls.secretName',
  secretNameToWrite: (route) => (route.spec.tls?.secretName ? undefined : secretNameOf(route)),
  async writeSecretName(client, route, secretName) {
    await client.mergePatch(Resources.ingressroutes, route.metadata.namespace ?? '', route.metadata.name, {
      metadata: { resourceVersion: route.metadata.resourceVersion },
      spec: { tls: { secretName } },
    });
  },
};
