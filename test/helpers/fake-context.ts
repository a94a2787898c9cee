/**
 * The reconcilers' Context over one FakeCluster, for the state-machine specs:
 * the client and every cache read the same in-memory store, Events and
 * enqueued keys are recorded, and the clock is a value the spec moves.
 * Built here once, so no spec assembles (or casts) a Context of its own.
 */
import type acme from 'acme-client';
import { pino } from 'pino';
import { Resources } from '../../src/api/types.ts';
import { AccountRegistry, type IssuerKey } from '../../src/acme/accounts.ts';
import type { KubeClient } from '../../src/kube/client.ts';
import type { Caches, Context, ControllerConfig } from '../../src/controller/context.ts';
import { ownerLookup } from '../../src/controller/challenges.ts';
import { issuerHooks } from '../../src/controller/issuers.ts';
import { Metrics } from '../../src/metrics/metrics.ts';
import { SolverRegistry } from '../../src/solvers/registry.ts';
import type { ChallengeSolver, Readiness } from '../../src/solvers/solver.ts';
import { testConfig } from './builders.ts';
import { FakeCa } from './fake-acme.ts';
import { FakeCluster } from './fake-cluster.ts';

export interface Harness {
  ctx: Context;
  cluster: FakeCluster;
  /** The CA every issuer's ACME client talks to. */
  ca: FakeCa;
  /** The HTTP-01 solver: what its readiness check answers next, and what it was asked. */
  solver: FakeSolver;
  /** `Type Reason: message` of every Event, in order. */
  events: string[];
  /** `kind ns/name` of every key a reconciler enqueued for another. */
  enqueued: string[];
  /** The spec's clock: `ctx.clock()` reads it. */
  clock: { now: Date };
}

/** A solver whose readiness a spec sets; it records what it was asked. */
export class FakeSolver implements ChallengeSolver {
  readonly configKind = 'http01';
  readonly challengeType = 'http-01';
  readonly specType = 'HTTP-01';
  readonly wildcards = false;
  readiness: Readiness = { kind: 'ready' };
  readonly calls: string[] = [];
  async present(): Promise<void> {
    this.calls.push('present');
  }
  async check(): Promise<Readiness> {
    this.calls.push('check');
    return this.readiness;
  }
  async cleanUp(): Promise<void> {
    this.calls.push('cleanUp');
  }
}

/** The account registry with every issuer registered at the fake CA. */
class RegisteredAtFakeCa extends AccountRegistry {
  private readonly ca: FakeCa;
  constructor(ca: FakeCa, context: () => Context) {
    super(issuerHooks(context));
    this.ca = ca;
  }
  override client(_key: IssuerKey): acme.Client {
    // The fake has the steps the reconcilers take; acme-client's class also holds an HTTP stack.
    return this.ca as unknown as acme.Client;
  }
}

export function harness(options: { now?: Date; config?: Partial<ControllerConfig> } = {}): Harness {
  const clock = { now: options.now ?? new Date('2030-01-01T00:00:00Z') };
  const cluster = new FakeCluster(() => clock.now);
  const ca = new FakeCa();
  const solver = new FakeSolver();
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
    solvers: new SolverRegistry({ client, logger, clock: () => clock.now, config, owners: ownerLookup(caches) }, [{ configKind: 'http01', create: () => solver }]),
    accounts: new RegisteredAtFakeCa(ca, () => ctx),
  };
  return { ctx, cluster, ca, solver, events, enqueued, clock };
}
