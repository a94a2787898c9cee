/**
 * What every reconciler gets injected: the API client, the informer caches,
 * the Event sink, the clock and the tunables. Nothing here is global, so a
 * test can hand in a fake clock or short back-offs.
 */
import type {
  Certificate,
  CertificateRequest,
  Challenge,
  Issuer,
  IssuerRef,
  Order,
  Secret,
} from '../api/types.ts';
import { normalizeIssuerRef } from '../api/issuer-ref.ts';
import { CERT_MANAGER_GROUP } from '../api/types.ts';
import type { AccountRegistry, IssuerKey } from '../acme/accounts.ts';
import type { ControllerDeps } from '../kube/controller.ts';
import type { Informer } from '../kube/informer.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { SolverRegistry } from '../solvers/registry.ts';
import type { SolverConfig } from '../solvers/solver.ts';

export interface Caches {
  certificates: Informer<Certificate>;
  certificaterequests: Informer<CertificateRequest>;
  issuers: Informer<Issuer>;
  clusterissuers: Informer<Issuer>;
  orders: Informer<Order>;
  challenges: Informer<Challenge>;
  /** Only Secrets labelled controller.cert-manager.io/fao are cached. */
  secrets: Informer<Secret>;
}

export interface ControllerConfig extends SolverConfig {
  /** First failure back-off; cert-manager uses 1h, doubling to 32h. */
  minBackoffMs: number;
  maxBackoffMs: number;
  /** How often a pending ACME object is polled at most, and at least. */
  pollMinMs: number;
  pollMaxMs: number;
  selfCheckRetryMs: number;
  /** Approve every CertificateRequest, as cert-manager's default approver; false leaves it to an external approver. */
  autoApprove: boolean;
  /** ACME Renewal Information (RFC 9773): fetch it, and send `replaces` in renewals. */
  ari: boolean;
  /** The longest wait between two renewalInfo requests for a certificate (a CA's Retry-After is capped by it). */
  ariPollMaxMs: number;
  /** The most ACME orders open at the CA at once (created, not yet valid or failed). */
  maxConcurrentOrders: number;
}

export interface Enqueue {
  certificate(namespace: string, name: string): void;
  certificateRequest(namespace: string, name: string): void;
  order(namespace: string, name: string): void;
  challenge(namespace: string, name: string): void;
  issuer(namespace: string | undefined, name: string, kind: string): void;
}

export interface Context extends ControllerDeps {
  caches: Caches;
  config: ControllerConfig;
  enqueue: Enqueue;
  metrics: Metrics;
  /** The challenge solvers, by the kind of their configuration and by challenge type. */
  solvers: SolverRegistry;
  /** ACME accounts and their clients, one per issuer; the issuer reconciler registers them. */
  accounts: AccountRegistry;
}

/** The issuer an object names, as accounts are keyed: ClusterIssuers have no namespace. */
export function issuerKey(ref: IssuerRef, namespace: string | undefined): IssuerKey {
  const r = normalizeIssuerRef(ref);
  return r.kind === 'ClusterIssuer' ? { kind: 'ClusterIssuer', name: r.name } : { kind: 'Issuer', namespace, name: r.name };
}

/** Resolves an issuerRef from the caches; undefined means not (yet) there. */
export function findIssuer(ctx: Context, ref: IssuerRef, namespace: string | undefined): Issuer | undefined {
  const r = normalizeIssuerRef(ref);
  if (r.group !== CERT_MANAGER_GROUP) return undefined;
  return r.kind === 'ClusterIssuer' ? ctx.caches.clusterissuers.get(undefined, r.name) : ctx.caches.issuers.get(namespace, r.name);
}

/** Namespace holding an issuer's Secrets (account key, CA). */
export function issuerSecretNamespace(ctx: Context, ref: IssuerRef, namespace: string | undefined): string {
  return normalizeIssuerRef(ref).kind === 'ClusterIssuer' ? ctx.config.clusterResourceNamespace : (namespace ?? 'default');
}
