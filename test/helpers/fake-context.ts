/**
 * The reconcilers' Context over one FakeCluster, for the state-machine specs:
 * the client and every cache read the same in-memory store, Events and
 * enqueued keys are recorded, and the clock is a value the spec moves.
 * Built here once, so no spec assembles (or casts) a Context of its own.
 */
import { pino } from 'pino';
import { AccountRegistry } from '../../src/acme/accounts.ts';
import { Resources } from '../../src/api/types.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import type { Caches, Context, ControllerConfig } from '../../src/controller/context.ts';
import { issuerHooks } from '../../src/controller/issuers.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import { SolverRegistry } from '../../src/solvers/registry.ts';
import { testConfig } from './builders.ts';
import { FakeCluster } from './fake-cluster.ts';

export interface Harness {
  ctx: Context;
  cluster: FakeCluster;
  /** `Type Reason: message` of every Event, in order. */
  events: string[];
  /** `kind ns/name` of every key a reconciler enqueued for another. */
  enqueued: string[];
  /** The spec's clock: `ctx.clock()` reads it. */
  clock: { now: Date };
}

export function harness(options: { now?: Date; config?: Partial<ControllerConfig> } = {}): Harness {
  const clock = { now: options.now ?? new Date('2030-01-01T00:00:00Z') };
  const cluster = new FakeCluster(() => clock.now);
  const events: string[] = [];
  const enqueued: string[] = [];
  // The fakes have the methods the reconcilers call; the real classes also hold sockets and
  // watches, which is why their types are widened here, once, and nowhere else.
  const caches = {
    certificates: cluster.cache(Resources.certificates),
    certificaterequests: cluster.cache(Resources.certificaterequests),
    issuers: cluster.cache(Resources.issuers),
    clusterissuers: cluster.cache(Resources.clusterissuers),
    orders: cluster.cache(Resources.orders),
    challenges: cluster.cache(Resources.challenges),
    secrets: cluster.cache(Resources.secrets),
  } as unknown as Caches;
  const client = cluster.client as unknown as KubeClient;
  const logger = pino({ level: 'silent' });
  const config = { ...testConfig, ...options.config };
  const ctx: Context = {
    client,
    caches,
    events: { event: (_o, _def, type, reason, message) => void events.push(`${type} ${reason}: ${message}`) },
    logger,
    clock: () => clock.now,
    config,
    enqueue: {
      certificate: (ns, name) => void enqueued.push(`Certificate ${ns}/${name}`),
      certificateRequest: (ns, name) => void enqueued.push(`CertificateRequest ${ns}/${name}`),
      order: (ns, name) => void enqueued.push(`Order ${ns}/${name}`),
      challenge: (ns, name) => void enqueued.push(`Challenge ${ns}/${name}`),
      issuer: (ns, name, kind) => void enqueued.push(`${kind} ${ns ?? ''}/${name}`),
    },
    metrics: new Metrics({ defaultMetrics: false }),
    solvers: new SolverRegistry({ client, logger, clock: () => clock.now, config }),
    accounts: new AccountRegistry(issuerHooks(() => ctx)),
  };
  return { ctx, cluster, events, enqueued, clock };
}
