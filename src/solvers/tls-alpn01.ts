/**
 * TLS-ALPN-01 (RFC 8737) through Traefik, configured as `certroute: {tlsAlpn01: {}}` on a solver
 * entry (cert-manager's schema has no key for it). The responder's TLS listener answers on every
 * replica from its index; presenting puts one IngressRouteTCP per Challenge in front of it:
 * `HostSNI(name) && !ALPN(h2) && !ALPN(http/1.1)`, TLS passthrough. Traefik refuses
 * `ALPN(acme-tls/1)` in a rule, so the route matches the validator by what it does not offer,
 * and clients that offer h2 or http/1.1 keep reaching the name's own routes.
 *
 * Traefik gives an HTTP router for the name (IngressRoute, Ingress, HTTPRoute with TLS on the
 * entry point) precedence over every TCP router and then answers `acme-tls/1` itself, from a
 * store only its own ACME resolver fills (docs/ARCHITECTURE.md, "TLS-ALPN-01 through Traefik").
 * The self-check sees that, and the Challenge says so instead of sending the CA to a dead end.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { Resources, type Challenge, type IngressRouteTcp, type KubeObject } from '../api/types.ts';
import { sameContent } from '../base/objects.ts';
import { challengeOwnerProblem } from '../responder/challenge-owner.ts';
import { TlsAlpnIndex, tlsAlpnSelfCheck } from '../responder/tls-alpn.ts';
import { DEFAULT_PRIORITY } from '../traefik/challenge-route.ts';
import type { ChallengeSolver, Readiness, SolverDeps, SolverRegistration, WatchesChallenges } from './solver.ts';

/** Where the route lives and what it names, so that a restart or another replica cleans up the same object. */
export function challengeRouteName(ch: Challenge): string {
  const digest = createHash('sha256').update(`${ch.metadata.namespace}/${ch.metadata.name}`).digest('hex').slice(0, 16);
  return `certroute-tls-alpn-${digest}`;
}

/** The rule: the name's handshakes that offer neither web protocol, which is what a validator sends. */
export function challengeRule(name: string): string {
  return `HostSNI(\`${name}\`) && !ALPN(\`h2\`) && !ALPN(\`http/1.1\`)`;
}

const HINT = 'Traefik did not hand the acme-tls/1 handshake to certroute. If an HTTP router serves this name with TLS on that entry point ' +
  '(an IngressRoute, Ingress or HTTPRoute), Traefik answers acme-tls/1 for it itself and no TCP route can take it: solve this name with http01 or dns01';

export class TlsAlpn01Solver {
  readonly configKind = 'tlsAlpn01';
  readonly challengeType = 'tls-alpn-01';
  readonly specType = 'TLS-ALPN-01';
  readonly wildcards = false;
  readonly index = new TlsAlpnIndex((ch) => challengeOwnerProblem(ch, this.deps.owners) === undefined);
  private readonly deps: SolverDeps;

  constructor(deps: SolverDeps) {
    this.deps = deps;
  }

  desiredRoute(ch: Challenge): IngressRouteTcp {
    const responder = this.deps.config.tlsAlpnResponder;
    if (!responder) throw new Error(`Challenge ${ch.metadata.namespace}/${ch.metadata.name}: TLS-ALPN-01 needs the responder's TLS listener; start the controller with --tls-alpn-port`);
    if (isIP(ch.spec.dnsName) !== 0) throw new Error(`Challenge ${ch.metadata.namespace}/${ch.metadata.name}: certroute answers TLS-ALPN-01 for DNS names only; validate ${ch.spec.dnsName} with an http01 solver`);
    return {
      metadata: {
        name: challengeRouteName(ch),
        namespace: responder.namespace,
        labels: { 'app.kubernetes.io/managed-by': 'certroute', 'app.kubernetes.io/name': 'certroute' },
        annotations: { 'certroute.io/challenge': `${ch.metadata.namespace}/${ch.metadata.name}` },
      },
      spec: {
        entryPoints: [...(ch.spec.solver.certroute?.tlsAlpn01?.entryPoints ?? ['websecure'])],
        routes: [{ match: challengeRule(ch.spec.dnsName), priority: DEFAULT_PRIORITY, services: [{ name: responder.service, port: responder.port }] }],
        tls: { passthrough: true },
      },
    };
  }

  /** Creates or restores the Challenge's route; safe to repeat. */
  async present(ch: Challenge): Promise<void> {
    const want = this.desiredRoute(ch);
    const { namespace = '', name } = want.metadata;
    const have = await this.deps.client.find<IngressRouteTcp>(Resources.ingressroutetcps, namespace, name);
    if (!have) await this.deps.client.create<KubeObject>(Resources.ingressroutetcps, want);
    else if (!sameContent(have.spec, want.spec)) await this.deps.client.replace<KubeObject>(Resources.ingressroutetcps, { ...have, spec: want.spec } as IngressRouteTcp);
  }

  async check(ch: Challenge): Promise<Readiness> {
    const result = await tlsAlpnSelfCheck({ address: this.websecure(), name: ch.spec.dnsName, keyAuthorization: ch.spec.key });
    return result.ok ? { kind: 'ready' } : { kind: 'notReady', message: `self-check ${result.requested}: ${result.got}. ${HINT}` };
  }

  async cleanUp(ch: Challenge): Promise<void> {
    const namespace = this.deps.config.tlsAlpnResponder?.namespace;
    if (namespace) await this.deps.client.delete(Resources.ingressroutetcps, namespace, challengeRouteName(ch));
  }

  onChallenge(ch: Challenge, event: 'add' | 'update' | 'delete'): void {
    if (event === 'delete') this.index.remove(ch);
    else this.index.upsert(ch);
  }

  /** Traefik's websecure entry point: as configured, else the web address's host on 443. */
  private websecure(): URL {
    const { selfCheckWebsecureAddress, selfCheckWebAddress } = this.deps.config;
    if (selfCheckWebsecureAddress) return new URL(selfCheckWebsecureAddress);
    const url = new URL(selfCheckWebAddress);
    return new URL(`https://${url.host.replace(/:\d+$/, '')}:443`);
  }
}

export const tlsAlpn01 = {
  configKind: 'tlsAlpn01',
  create: (deps: SolverDeps) => new TlsAlpn01Solver(deps) satisfies ChallengeSolver & WatchesChallenges,
} satisfies SolverRegistration;
