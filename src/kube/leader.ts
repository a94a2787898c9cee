/**
 * Leader election on a coordination.k8s.io Lease, as client-go does it: the
 * holder renews every `retryPeriod`; a candidate takes over once
 * `renewTime + leaseDuration` has passed. Every write carries the
 * resourceVersion it read, so two candidates can never both win.
 */
import type { KubeObject } from '../api/types.ts';
import { Resources } from '../api/types.ts';
import { isConflict, isNotFound, type KubeClient } from './client.ts';
import type { Logger } from '../log.ts';

interface Lease extends KubeObject {
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationMs: number;
  retryPeriodMs: number;
  logger: Logger;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  clock?: () => Date;
}

const microTime = (d: Date): string => d.toISOString().replace(/Z$/, '000Z');

export class LeaderElector {
  private readonly client: KubeClient;
  private readonly opts: LeaderOptions;
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private lastRenew = 0;

  constructor(client: KubeClient, opts: LeaderOptions) {
    this.client = client;
    this.opts = opts;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.stopped = false;
    void this.tick();
  }

  /** Releases the lease so a successor need not wait out its duration. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.leading) return;
    this.setLeading(false);
    try {
      const lease = await this.client.get<Lease>(Resources.leases, this.opts.namespace, this.opts.name);
      if (lease.spec.holderIdentity === this.opts.identity) {
        await this.client.replace(Resources.leases, { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 } });
      }
    } catch (err) {
      this.opts.logger.debug({ err: String(err) }, 'could not release lease');
    }
  }

  private now(): Date {
    return (this.opts.clock ?? (() => new Date()))();
  }

  private async tick(): Promise<void> {
    const started = Date.now();
    try {
      await this.tryAcquireOrRenew();
    } catch (err) {
      this.opts.logger.warn({ err: String(err), lease: `${this.opts.namespace}/${this.opts.name}` }, 'leader election attempt failed');
    }
    // Step down if we could not renew within the lease duration: another
    // replica may already be leading.
    if (this.leading && Date.now() - this.lastRenew > this.opts.leaseDurationMs) this.setLeading(false);
    // Fixed rate, not fixed delay: a candidate looks every retryPeriod however
    // long the API took, so takeover stays within leaseDuration + retryPeriod.
    if (!this.stopped) {
      this.timer = setTimeout(() => void this.tick(), Math.max(0, this.opts.retryPeriodMs - (Date.now() - started)));
    }
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const { namespace, name, identity } = this.opts;
    const now = this.now();
    const durationSeconds = Math.max(1, Math.round(this.opts.leaseDurationMs / 1000));
    let lease: Lease;
    try {
      lease = await this.client.get<Lease>(Resources.leases, namespace, name);
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.client.create<Lease>(Resources.leases, {
        metadata: { name, namespace },
        spec: { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
      });
      this.renewed();
      return;
    }
    const holder = lease.spec.holderIdentity ?? '';
    const renewTime = lease.spec.renewTime ? Date.parse(lease.spec.renewTime) : 0;
    const expired = renewTime + (lease.spec.leaseDurationSeconds ?? durationSeconds) * 1000 < now.getTime();
    if (holder !== identity && holder !== '' && !expired) {
      if (this.leading) this.setLeading(false);
      return;
    }
    const spec = holder === identity
      ? { ...lease.spec, renewTime: microTime(now), leaseDurationSeconds: durationSeconds }
      : { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: (lease.spec.leaseTransitions ?? 0) + 1 };
    try {
      await this.client.replace<Lease>(Resources.leases, { ...lease, spec });
      this.renewed();
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
  }

  private renewed(): void {
    this.lastRenew = Date.now();
    if (!this.leading) this.setLeading(true);
  }

  private setLeading(leading: boolean): void {
    if (this.leading === leading) return;
    this.leading = leading;
    this.opts.logger.info({ identity: this.opts.identity, leading }, leading ? 'became leader' : 'stopped leading');
    if (leading) this.opts.onStartedLeading();
    else this.opts.onStoppedLeading();
  }
}
