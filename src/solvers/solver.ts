/**
 * The contract every ACME challenge solver keeps, in the spirit of lego's
 * `challenge.Provider`: `present` makes the answer available, `check` says
 * whether the CA may be told to validate now, `cleanUp` takes the answer
 * away (a solver whose answer goes with the Challenge has none). The Challenge reconciler drives these three and knows nothing of
 * HTTP-01 or DNS-01; a new challenge type is one new file in this folder and
 * one line in `registry.ts`.
 *
 * Optional capabilities are separate interfaces (below), declared on an
 * implementation with `satisfies` and tested at run time with their guard.
 */
import type { AcmeSolver, Challenge, ChallengeSpec, PresentedRecord } from '../api/types.ts';
import type { OwnerLookup } from '../responder/challenge-owner.ts';
import type { KubeClient } from '../kube/client.ts';
import type { Logger } from '../log.ts';

/**
 * The key of a solver's configuration in an issuer's `spec.acme.solvers[]` entry: cert-manager's
 * own at the top, certroute's extensions under `certroute` (cert-manager's schema has no key for them).
 */
export type SolverConfigKind = 'http01' | 'dns01' | 'tlsAlpn01';

/** Whether a solver entry configures `kind`. */
export function configures(config: AcmeSolver, kind: SolverConfigKind): boolean {
  return kind === 'tlsAlpn01' ? config.certroute?.tlsAlpn01 !== undefined : config[kind] !== undefined;
}

/** The path a user writes for `kind` in a solver entry. */
export function configPath(kind: SolverConfigKind): string {
  return kind === 'tlsAlpn01' ? 'certroute.tlsAlpn01' : kind;
}

/** What the reconciler does next after `check`. */
export type Readiness =
  /** Tell the CA to validate. */
  | { kind: 'ready' }
  /** A known wait (a configured delay): look again after `ms`, nothing is wrong. */
  | { kind: 'wait'; ms: number }
  /**
   * The answer is not reachable yet. `message` lands on the Challenge's status and in a
   * Warning event, so it must hold no timestamps or request IDs (status would churn) and
   * must say what to check; the reconciler retries with a growing delay.
   */
  | { kind: 'notReady'; message: string; retryMs?: number };

export interface ChallengeSolver {
  readonly configKind: SolverConfigKind;
  /** The ACME challenge type (RFC 8555 §8): `http-01`, `dns-01`, `tls-alpn-01`. */
  readonly challengeType: string;
  /** The same type as a Challenge's `spec.type` spells it (cert-manager's enum). */
  readonly specType: ChallengeSpec['type'];
  /** Whether this type can validate a wildcard name (only DNS-01 can). */
  readonly wildcards: boolean;
  /**
   * Makes the answer available. Runs again after a crash or a lost status write: it must be safe
   * to repeat. What it returns is recorded in the Challenge's status, so that `cleanUp` (here or
   * on the next leader) takes away exactly what was made.
   */
  present(ch: Challenge): Promise<PresentedRecord | void>;
  /** Whether the answer can be seen the way the CA will look for it. Never throws for what the network does. */
  check(ch: Challenge): Promise<Readiness>;
  /**
   * Takes the answer away; runs when the Challenge is deleted, and may run more than once. Absent
   * when nothing outside the Challenge holds the answer (HTTP-01's responder index follows the
   * informer): such a Challenge is made without cert-manager's finalizer, which would cost a patch
   * at every deletion and guard nothing.
   */
  cleanUp?(ch: Challenge): Promise<void>;
}

/**
 * Capability: the solver keeps its own view of the Challenges, fed by the informer on every
 * replica (leader or not), as HTTP-01's responder index is. The informer sends an `add` for
 * every object it lists and a `delete` for every object a relist no longer finds, so these
 * events alone keep the view whole.
 */
export interface WatchesChallenges {
  onChallenge(ch: Challenge, event: 'add' | 'update' | 'delete'): void;
}

export function watchesChallenges(s: ChallengeSolver): s is ChallengeSolver & WatchesChallenges {
  return typeof (s as Partial<WatchesChallenges>).onChallenge === 'function';
}

/** The controller's settings a solver may read. The controller's own config extends this. */
export interface SolverConfig {
  /** Namespace whose Secrets back ClusterIssuers (cert-manager's --cluster-resource-namespace). */
  clusterResourceNamespace: string;
  /** Traefik's web entrypoint as seen from the controller, for the self-check. */
  selfCheckWebAddress: string;
  selfCheckWebsecureAddress?: string;
  /** DNS-01: where SOA, NS, CNAME and A lookups go (host:port); the system's resolvers when empty. */
  dns01RecursiveNameservers: string[];
  /** DNS-01: check propagation through the recursive nameservers only, not each authoritative one. */
  dns01RecursiveNameserversOnly: boolean;
  /** DNS-01: how long to wait between propagation checks. */
  dns01CheckRetryMs: number;
  /** DNS-01: the port authoritative nameservers are asked on (53; another only on test beds). */
  dns01AuthoritativePort: number;
  /** DNS-01: Cloudflare's v4 API base URL. */
  cloudflareApiUrl: string;
  /**
   * TLS-ALPN-01: where Traefik reaches the responder's TLS listener (a Service in certroute's
   * namespace); unset, the solver refuses to present and names the flag to set.
   */
  tlsAlpnResponder?: { namespace: string; service: string; port: number };
}

/** What a solver gets injected when the registry builds it. */
export interface SolverDeps {
  client: KubeClient;
  logger: Logger;
  clock: () => Date;
  config: SolverConfig;
  /** Orders and CertificateRequests, to tell certroute's own Challenges from hand-made ones. */
  owners: OwnerLookup;
}

/** One line in the registry: the configuration key it answers to, and how to build it. */
export interface SolverRegistration {
  configKind: SolverConfigKind;
  create(deps: SolverDeps): ChallengeSolver;
}
