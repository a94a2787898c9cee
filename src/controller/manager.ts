/**
 * Runs a list of controllers (see `src/kube/controller.ts`): registers each,
 * starts the informers they asked for, and gives each its own work queue.
 * Every replica runs the informers (so every replica's responder answers
 * challenges); only the Lease holder runs the queues.
 */
import { hostname } from 'node:os';
import type { Certificate, CertificateRequest, Challenge, Issuer, Order, Secret } from '../api/types.ts';
import { MANAGED_LABEL, Resources } from '../api/types.ts';
import { AccountRegistry } from '../acme/accounts.ts';
import { observeRequests } from '../acme/client.ts';
import { compactHeap } from '../base/heap.ts';
import { isConflict, type KubeClient } from '../kube/client.ts';
import { Informers, type ControllerRegistration, type Reconciler } from '../kube/controller.ts';
import { EventRecorder } from '../kube/events.ts';
import { LostLeadershipError } from '../kube/fence.ts';
import { LeaderElector, type LeaderTiming } from '../kube/leader.ts';
import { WorkQueue, type Outcome } from '../kube/queue.ts';
import type { Logger } from '../log.ts';
import { Metrics } from '../metrics/metrics.ts';
import { SolverRegistry } from '../solvers/registry.ts';
import type { Caches, Context, ControllerConfig, Enqueue } from './context.ts';
import { cachedSecret } from './certificates.ts';
import { ownerLookup } from './challenges.ts';
import { issuerHooks } from './issuers.ts';

export interface ManagerOptions {
  client: KubeClient;
  logger: Logger;
  config: ControllerConfig;
  metrics?: Metrics;
  leaderElection: { enabled: boolean; namespace: string; name: string; identity?: string } & LeaderTiming;
  /** Default workers of a controller that names none. */
  workers?: number;
  clock?: () => Date;
  /** The controllers to run, each declared next to its reconciler. */
  controllers: readonly ControllerRegistration<Context>[];
  /**
   * Registered, so their informers run and every cache (and the responder) is warm, but never
   * reconciling: cert-manager's controllers in shim-only mode, where cert-manager does that.
   */
  watchOnly?: readonly ControllerRegistration<Context>[];
}

interface Running {
  queue: WorkQueue;
  reconciler: Reconciler;
}

export class Manager {
  readonly informers: Informers;
  readonly caches: Caches;
  readonly metrics: Metrics;
  readonly ctx: Context;
  private readonly opts: ManagerOptions;
  /** By controller name; the ones that reconcile. */
  private readonly running = new Map<string, Running>();
  private readonly queues = new Map<string, WorkQueue>();
  private readonly elector: LeaderElector | undefined;
  private leading = false;
  /** Counts terms of leadership, so a run from an earlier term cannot act in a later one. */
  private term = 0;

  constructor(opts: ManagerOptions) {
    this.opts = opts;
    const { client, logger } = opts;
    // Only the leader exports the Certificates' series, as before they came from the cache: a
    // follower reconciles nothing, and with every replica exporting them, `count(...)` over the pods
    // would count each Certificate once per replica.
    this.metrics = opts.metrics ?? new Metrics({ kubeRequests: () => opts.client.requestCounts, kubeRequestsByResource: () => opts.client.requestCountsByResource, certificates: () => (this.leading ? this.caches.certificates.list() : []) });
    this.informers = new Informers(client, logger);
    const inf = this.informers;
    this.caches = {
      certificates: inf.for<Certificate>(Resources.certificates),
      certificaterequests: inf.for<CertificateRequest>(Resources.certificaterequests),
      issuers: inf.for<Issuer>(Resources.issuers),
      clusterissuers: inf.for<Issuer>(Resources.clusterissuers),
      orders: inf.for<Order>(Resources.orders),
      challenges: inf.for<Challenge>(Resources.challenges),
      secrets: inf.for<Secret>(Resources.secrets, { labelSelector: `${MANAGED_LABEL}=true`, trim: cachedSecret }),
    };
    const clock = opts.clock ?? (() => new Date());
    this.ctx = {
      client,
      caches: this.caches,
      events: new EventRecorder(client, logger),
      logger,
      clock,
      config: opts.config,
      enqueue: this.enqueue(),
      metrics: this.metrics,
      solvers: new SolverRegistry({ client, logger, clock, config: opts.config, owners: ownerLookup(this.caches) }),
      accounts: new AccountRegistry(issuerHooks(() => this.ctx)),
    };
    observeRequests((r) => {
      const labels = { scheme: r.scheme, host: r.host, action: r.action, method: r.method, status: r.status };
      this.metrics.acmeRequests.inc(labels);
      this.metrics.acmeDuration.observe(labels, r.seconds);
    });
    for (const c of opts.controllers) this.running.set(c.name, this.register(c));
    for (const c of opts.watchOnly ?? []) this.register(c);
    if (opts.leaderElection.enabled) {
      const le = opts.leaderElection;
      this.elector = new LeaderElector(client, {
        namespace: le.namespace,
        name: le.name,
        identity: le.identity ?? `${hostname()}_${process.pid}`,
        leaseDurationMs: le.leaseDurationMs,
        renewDeadlineMs: le.renewDeadlineMs,
        retryPeriodMs: le.retryPeriodMs,
        logger,
        onStartedLeading: () => this.startLeading(),
        onStoppedLeading: () => this.stopLeading(),
      });
    }
  }

  private register(c: ControllerRegistration<Context>): Running {
    if (this.queues.has(c.name)) throw new Error(`two controllers are named ${c.name}`);
    let queue: WorkQueue | undefined;
    const reconciler = c.register(this.ctx, { informers: this.informers, queue: { add: (key) => queue?.add(key) } });
    queue = this.newQueue(c.name, (key) => reconciler.reconcile(key), c.workers ?? this.opts.workers ?? 8);
    this.queues.set(c.name, queue);
    return { queue, reconciler };
  }

  /** How a reconciler pokes another controller's key (an Order waiting on its issuer, say). */
  private enqueue(): Enqueue {
    const add = (name: string, key: string) => this.queues.get(name)?.add(key);
    return {
      certificate: (ns, name) => add('certificates', `${ns}/${name}`),
      certificateRequest: (ns, name) => add('certificaterequests', `${ns}/${name}`),
      order: (ns, name) => add('orders', `${ns}/${name}`),
      challenge: (ns, name) => add('challenges', `${ns}/${name}`),
      issuer: (ns, name, kind) => (kind === 'ClusterIssuer' ? add('clusterissuers', `/${name}`) : add('issuers', `${ns ?? ''}/${name}`)),
    };
  }

  private newQueue(name: string, fn: (key: string) => Promise<Outcome>, workers: number): WorkQueue {
    const logger = this.opts.logger;
    return new WorkQueue(fn, {
      name,
      workers,
      fence: () => this.fence(),
      onSync: (key, ok, outcome) => {
        this.metrics.syncCount.inc({ controller: name });
        if (!ok) this.metrics.syncErrors.inc({ controller: name });
        // One line per reconcile, keyed, so a replica's log shows what it worked on.
        if (outcome) logger.debug({ controller: name, key, outcome: outcome.kind, ...(outcome.kind === 'requeueAfter' ? { requeueAfterMs: outcome.ms } : {}) }, 'reconciled');
      },
      onError: (key, err, retryInMs) => {
        const fields = { controller: name, key, err: err instanceof Error ? err.message : String(err), retryInMs };
        // A 409 is the optimistic lock doing its job: the cache had not yet seen a newer version
        // (often this controller's own last write). Nothing was written; the retry reads again.
        if (isConflict(err)) logger.info(fields, 'reconcile raced a newer version of the object; will retry');
        else logger.warn(fields, 'reconcile failed; will retry');
      },
    });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** The check every write and ACME request of a run started now goes through. */
  private fence(): () => void {
    const term = this.term;
    return () => {
      if (term !== this.term || !this.leading || (this.elector && !this.elector.holds())) throw new LostLeadershipError();
    };
  }

  get hasSynced(): boolean {
    return this.informers.all().every((c) => c.hasSynced);
  }

  async start(): Promise<void> {
    await Promise.all(this.informers.all().map((c) => c.start()));
    if (this.elector) {
      // Its start-up work so far is the lists; it may wait for the Lease a long time (the one
      // that gets it compacts again after its initial pass).
      this.compact('caches listed');
      this.elector.start();
    } else this.startLeading();
  }

  /** Gives the start-up work's garbage back to the system (base/heap.ts). */
  private compact(after: string): void {
    const done = compactHeap();
    if (done) this.opts.logger.info({ ...done, after }, 'heap compacted');
  }

  /**
   * Stops taking work, lets the runs in flight finish (they stay fenced: one that outlives the
   * renew deadline fails its next write), and only then releases the Lease, so the successor
   * never overlaps them.
   */
  async stop(): Promise<void> {
    const queues = [...this.running.values()].map((r) => r.queue);
    for (const q of queues) q.stop();
    await Promise.all(queues.map((q) => q.drain()));
    this.stopLeading();
    await this.elector?.stop();
    await Promise.all(this.informers.all().map((c) => c.stop()));
  }

  /** Resolves when every queue is empty (tests and benchmarks). */
  async idle(): Promise<void> {
    await Promise.all([...this.running.values()].map((r) => r.queue.idle()));
  }

  private startLeading(): void {
    this.term++;
    this.leading = true;
    for (const { queue } of this.running.values()) queue.start();
    // Level-based: on taking over, look at everything once, and say when each controller has.
    const term = this.term;
    const started = Date.now();
    for (const [name, { queue, reconciler }] of this.running) {
      let keys = 0;
      for (const key of reconciler.resync()) {
        queue.add(key);
        keys++;
      }
      void queue.idle().then(() => {
        if (this.term === term) this.opts.logger.info({ controller: name, keys, ms: Date.now() - started }, 'initial pass done');
      });
    }
    void Promise.all([...this.running.values()].map((r) => r.queue.idle())).then(() => {
      if (this.term === term) this.compact('initial pass');
    });
  }

  private stopLeading(): void {
    if (!this.leading) return;
    this.leading = false;
    this.term++;
    for (const { queue } of this.running.values()) queue.stop();
  }
}
