/**
 * Wires informers, queues and reconcilers together. Every replica runs the
 * informers and the responder (so every replica answers challenges); only
 * the Lease holder runs the work queues.
 */
import { hostname } from 'node:os';
import type { Certificate, CertificateRequest, Challenge, IngressRoute, Issuer, KubeObject, Order, ResourceDef, Secret } from '../api/types.ts';
import { normalizeIssuerRef } from '../api/issuer-ref.ts';
import { MANAGED_LABEL, Resources, SecretAnnotations } from '../api/types.ts';
import { controllerOf, objectKey } from '../base/objects.ts';
import { observeRequests } from '../acme/client.ts';
import type { KubeClient } from '../kube/client.ts';
import { EventRecorder } from '../kube/events.ts';
import { Informer } from '../kube/informer.ts';
import { LeaderElector, type LeaderTiming } from '../kube/leader.ts';
import { LostLeadershipError } from '../kube/fence.ts';
import { WorkQueue, type Outcome } from '../kube/queue.ts';
import type { Logger } from '../log.ts';
import { Metrics } from '../metrics/metrics.ts';
import { trimSecret } from '../kube/secret-cache.ts';
import { SolverRegistry } from '../solvers/registry.ts';
import { certificateRequestReconciler } from './certificaterequests.ts';
import { certificateReconciler } from './certificates.ts';
import { challengeReconciler } from './challenges.ts';
import { type Caches, type Context, type ControllerConfig, type Enqueue } from './context.ts';
import { issuerReconciler } from './issuers.ts';
import { orderReconciler } from './orders.ts';

export interface ManagerOptions {
  client: KubeClient;
  logger: Logger;
  config: ControllerConfig;
  metrics?: Metrics;
  leaderElection: { enabled: boolean; namespace: string; name: string; identity?: string } & LeaderTiming;
  workers?: number;
  clock?: () => Date;
  /** Only the IngressRoute shim runs; cert-manager owns the rest. */
  shimOnly?: boolean;
}

type QueueName = 'certificates' | 'certificaterequests' | 'orders' | 'challenges' | 'issuers' | 'clusterissuers';

export class Manager {
  readonly caches: Caches;
  /** Watched by the shim and the challenge route; Traefik's CRDs must be installed. */
  readonly ingressRoutes: Informer<IngressRoute>;
  readonly metrics: Metrics;
  readonly ctx: Context;
  private readonly opts: ManagerOptions;
  private readonly queues: Record<QueueName, WorkQueue>;
  private readonly extraQueues: WorkQueue[] = [];
  private readonly extraInformers: Informer<KubeObject>[] = [];
  private readonly elector: LeaderElector | undefined;
  private leading = false;
  /** Counts terms of leadership, so a run from an earlier term cannot act in a later one. */
  private term = 0;
  private readonly leadingHooks: Array<() => void> = [];

  constructor(opts: ManagerOptions) {
    this.opts = opts;
    const { client, logger } = opts;
    this.metrics = opts.metrics ?? new Metrics({ kubeRequests: () => opts.client.requestCounts });
    const inf = <T extends KubeObject>(def: ResourceDef, labelSelector?: string, trim?: (o: object) => void) => new Informer<T>(client, def, { logger, labelSelector, trim });
    this.caches = {
      certificates: inf<Certificate>(Resources.certificates),
      certificaterequests: inf<CertificateRequest>(Resources.certificaterequests),
      issuers: inf<Issuer>(Resources.issuers),
      clusterissuers: inf<Issuer>(Resources.clusterissuers),
      orders: inf<Order>(Resources.orders),
      challenges: inf<Challenge>(Resources.challenges),
      secrets: inf<Secret>(Resources.secrets, `${MANAGED_LABEL}=true`, trimSecret),
    };
    this.ingressRoutes = inf<IngressRoute>(Resources.ingressroutes);
    const enqueue: Enqueue = {
      certificate: (ns, name) => this.queues.certificates.add(`${ns}/${name}`),
      certificateRequest: (ns, name) => this.queues.certificaterequests.add(`${ns}/${name}`),
      order: (ns, name) => this.queues.orders.add(`${ns}/${name}`),
      challenge: (ns, name) => this.queues.challenges.add(`${ns}/${name}`),
      issuer: (ns, name, kind) => (kind === 'ClusterIssuer' ? this.queues.clusterissuers.add(`/${name}`) : this.queues.issuers.add(`${ns ?? ''}/${name}`)),
    };
    const clock = opts.clock ?? (() => new Date());
    this.ctx = {
      client,
      caches: this.caches,
      events: new EventRecorder(client, logger),
      logger,
      clock,
      config: opts.config,
      enqueue,
      metrics: this.metrics,
      solvers: new SolverRegistry({ client, logger, clock, config: opts.config }),
      accounts: new Map(),
    };
    observeRequests((r) => {
      const labels = { scheme: r.scheme, host: r.host, action: r.action, method: r.method, status: r.status };
      this.metrics.acmeRequests.inc(labels);
      this.metrics.acmeDuration.observe(labels, r.seconds);
    });
    const workers = opts.workers ?? 8;
    const q = (name: QueueName, fn: (key: string) => Promise<Outcome>, n = workers) => this.newQueue(name, fn, n);
    this.queues = {
      certificates: q('certificates', certificateReconciler(this.ctx)),
      certificaterequests: q('certificaterequests', certificateRequestReconciler(this.ctx)),
      orders: q('orders', orderReconciler(this.ctx)),
      challenges: q('challenges', challengeReconciler(this.ctx)),
      issuers: q('issuers', issuerReconciler(this.ctx, 'Issuer'), 2),
      clusterissuers: q('clusterissuers', issuerReconciler(this.ctx, 'ClusterIssuer'), 2),
    };
    this.wire();
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

  /** Another controller (the IngressRoute shim) shares leadership and metrics through this. */
  makeQueue(name: string, fn: (key: string) => Promise<Outcome>, workers: number): WorkQueue {
    const queue = this.newQueue(name, fn, workers);
    this.extraQueues.push(queue);
    if (this.leading) queue.start();
    return queue;
  }

  private newQueue(name: string, fn: (key: string) => Promise<Outcome>, workers: number): WorkQueue {
    const logger = this.opts.logger;
    const queue = new WorkQueue(fn, {
      name,
      workers,
      fence: () => this.fence(),
      onSync: (key, ok, outcome) => {
        this.metrics.syncCount.inc({ controller: name });
        if (!ok) this.metrics.syncErrors.inc({ controller: name });
        // One line per reconcile, keyed, so a replica's log shows what it worked on.
        if (outcome) logger.debug({ controller: name, key, outcome: outcome.kind, ...(outcome.kind === 'requeueAfter' ? { requeueAfterMs: outcome.ms } : {}) }, 'reconciled');
      },
      onError: (key, err, retryInMs) => logger.warn({ controller: name, key, err: err instanceof Error ? err.message : String(err), retryInMs }, 'reconcile failed; will retry'),
    });
    return queue;
  }

  private wire(): void {
    const { caches, queues } = this;
    caches.certificates.on((c, ev) => {
      if (ev === 'delete') this.metrics.forgetCertificate(c);
      queues.certificates.add(objectKey(c));
    });
    caches.certificaterequests.on((cr) => {
      queues.certificaterequests.add(objectKey(cr));
      const owner = controllerOf(cr, 'Certificate');
      if (owner) queues.certificates.add(`${cr.metadata.namespace}/${owner}`);
      for (const o of caches.orders.list(cr.metadata.namespace)) {
        if (controllerOf(o, 'CertificateRequest') === cr.metadata.name) queues.orders.add(objectKey(o));
      }
    });
    caches.orders.on((o) => {
      queues.orders.add(objectKey(o));
      const owner = controllerOf(o, 'CertificateRequest');
      if (owner) queues.certificaterequests.add(`${o.metadata.namespace}/${owner}`);
    });
    const watchers = this.ctx.solvers.watchers();
    caches.challenges.on((ch, ev) => {
      for (const w of watchers) w.onChallenge(ch, ev);
      if (ev === 'delete') this.metrics.forgetChallenge(ch);
      queues.challenges.add(objectKey(ch));
      const owner = controllerOf(ch, 'Order');
      if (owner) queues.orders.add(`${ch.metadata.namespace}/${owner}`);
    });
    caches.secrets.on((s) => {
      const cert = s.metadata.annotations?.[SecretAnnotations.certificateName] ?? controllerOf(s, 'Certificate');
      if (cert) queues.certificates.add(`${s.metadata.namespace}/${cert}`);
      for (const c of caches.certificates.list(s.metadata.namespace)) {
        if (c.spec.secretName === s.metadata.name) queues.certificates.add(objectKey(c));
      }
      // A CA issuer whose Secret certroute just issued (bootstrapping a CA) is
      // ready now, not at its next periodic recheck a minute later.
      for (const i of caches.issuers.list(s.metadata.namespace)) {
        if (i.spec.ca?.secretName === s.metadata.name) queues.issuers.add(objectKey(i));
      }
      if (s.metadata.namespace === this.opts.config.clusterResourceNamespace) {
        for (const i of caches.clusterissuers.list()) {
          if (i.spec.ca?.secretName === s.metadata.name) queues.clusterissuers.add(objectKey(i));
        }
      }
    });
    const issuerChanged = (kind: 'Issuer' | 'ClusterIssuer') => (i: Issuer, ev: 'add' | 'update' | 'delete') => {
      if (ev === 'delete') this.metrics.forgetIssuer(kind, i.metadata.namespace, i.metadata.name);
      (kind === 'Issuer' ? queues.issuers : queues.clusterissuers).add(objectKey(i));
      // Requests waiting on this issuer move on as soon as it is Ready.
      for (const cr of caches.certificaterequests.list(kind === 'Issuer' ? i.metadata.namespace : undefined)) {
        const ref = normalizeIssuerRef(cr.spec.issuerRef);
        if (ref.kind === kind && ref.name === i.metadata.name) queues.certificaterequests.add(objectKey(cr));
      }
    };
    caches.issuers.on(issuerChanged('Issuer'));
    caches.clusterissuers.on(issuerChanged('ClusterIssuer'));
  }

  /** Another controller's informers (the CA injector's), started, stopped and awaited for readiness with these; call before start(). */
  addInformers(informers: ReadonlyArray<Informer<KubeObject>>): void {
    this.extraInformers.push(...informers);
  }

  onIngressRoute(fn: (r: IngressRoute) => void): void {
    this.ingressRoutes.on(fn);
  }

  /** Runs now if leading, else when leadership is won. */
  onLeading(fn: () => void): void {
    this.leadingHooks.push(fn);
    if (this.leading) fn();
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

  private get informers(): Informer<KubeObject>[] {
    return [...(Object.values(this.caches) as Informer<KubeObject>[]), this.ingressRoutes as unknown as Informer<KubeObject>, ...this.extraInformers];
  }

  get hasSynced(): boolean {
    return this.informers.every((c) => c.hasSynced);
  }

  async start(): Promise<void> {
    await Promise.all(this.informers.map((c) => c.start()));
    if (this.elector) this.elector.start();
    else this.startLeading();
  }

  /**
   * Stops taking work, lets the runs in flight finish (they stay fenced: one that outlives the
   * renew deadline fails its next write), and only then releases the Lease, so the successor
   * never overlaps them.
   */
  async stop(): Promise<void> {
    const queues = this.activeQueues;
    for (const q of queues) q.stop();
    await Promise.all(queues.map((q) => q.drain()));
    this.stopLeading();
    await this.elector?.stop();
    await Promise.all(this.informers.map((c) => c.stop()));
  }

  /** Resolves when every queue is empty (tests and benchmarks). */
  async idle(): Promise<void> {
    await Promise.all(this.activeQueues.map((q) => q.idle()));
  }

  private get activeQueues(): WorkQueue[] {
    return this.opts.shimOnly ? this.extraQueues : [...Object.values(this.queues), ...this.extraQueues];
  }

  private startLeading(): void {
    this.term++;
    this.leading = true;
    for (const q of this.activeQueues) q.start();
    // Level-based: on taking over, look at everything once.
    for (const [name, cache] of Object.entries(this.caches) as Array<[string, Informer<KubeObject>]>) {
      if (name === 'secrets') continue;
      for (const o of cache.list()) this.queues[name as QueueName].add(objectKey(o));
    }
    for (const hook of this.leadingHooks) hook();
  }

  private stopLeading(): void {
    if (!this.leading) return;
    this.leading = false;
    this.term++;
    for (const q of this.activeQueues) q.stop();
  }
}
