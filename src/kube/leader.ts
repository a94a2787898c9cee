/**
 * Leader election on a coordination.k8s.io Lease, as client-go does it.
 *
 * - The holder renews every `retryPeriod`. If it has not renewed within
 *   `renewDeadline` (shorter than the lease duration) it stops leading at
 *   once, from a timer, whatever an API call in flight is doing; `holds()`
 *   says the same synchronously, for the fence that guards every write.
 * - A candidate judges expiry by its own clock: the Lease is expired once it
 *   has seen the same record, unchanged, for `leaseDuration`. The remote
 *   `renewTime` is never compared with the local clock, so clock skew between
 *   nodes cannot let a replica steal a healthy Lease.
 * - Every request carries a deadline, and every write the resourceVersion it
 *   read, so two candidates can never both win.
 *
 * With renewDeadline < leaseDuration the old leader has stopped acting before
 * any candidate can consider the Lease expired.
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

export interface LeaderTiming {
  leaseDurationMs: number;
  /** How long the leader keeps trying to renew before it gives up leading. Default ⅔ of the lease. */
  renewDeadlineMs?: number;
  retryPeriodMs: number;
}

export interface LeaderOptions extends LeaderTiming {
  namespace: string;
  name: string;
  identity: string;
  logger: Logger;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  /** The wall clock, for the times written into the Lease. */
  clock?: () => Date;
  /** A monotonic clock in ms, for every decision. */
  monotonic?: () => number;
}

const microTime = (d: Date): string => d.toISOString().replace(/Z$/, '000Z');

/** The renew deadline for `timing`, after checking retryPeriod < renewDeadline < leaseDuration. */
export function validateTiming(timing: LeaderTiming): number {
  const renewDeadlineMs = timing.renewDeadlineMs ?? Math.floor((timing.leaseDurationMs * 2) / 3);
  const problems: string[] = [];
  if (!(timing.retryPeriodMs > 0)) problems.push('the retry period must be more than 0');
  if (!(renewDeadlineMs < timing.leaseDurationMs)) problems.push(`the renew deadline (${renewDeadlineMs} ms) must be shorter than the lease duration (${timing.leaseDurationMs} ms), or a standby could take the Lease while the old leader still acts`);
  if (!(timing.retryPeriodMs < renewDeadlineMs)) problems.push(`the retry period (${timing.retryPeriodMs} ms) must be shorter than the renew deadline (${renewDeadlineMs} ms), or the leader gives up before its next renewal`);
  if (problems.length > 0) throw new Error(`leader election: ${problems.join('; ')}; the defaults are a 15s lease, a 10s renew deadline and a 2s retry period`);
  return renewDeadlineMs;
}

export class LeaderElector {
  private readonly client: KubeClient;
  private readonly opts: LeaderOptions;
  private readonly renewDeadlineMs: number;
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private stopped = false;
  /** When the last successful renewal was sent (monotonic ms). */
  private lastRenew = 0;
  /** The Lease record as last seen, and when (monotonic ms) it was first seen so. */
  private observed: { record: string; at: number } | undefined;

  constructor(client: KubeClient, opts: LeaderOptions) {
    this.client = client;
    this.opts = opts;
    this.renewDeadlineMs = validateTiming(opts);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Leading, and renewed within the renew deadline: checked synchronously before each write. */
  holds(): boolean {
    return this.leading && this.monotonic() - this.lastRenew < this.renewDeadlineMs;
  }

  start(): void {
    this.stopped = false;
    void this.tick();
  }

  /** Stops renewing and releases the Lease so a successor need not wait out its duration. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.leading) return;
    const held = this.holds();
    this.setLeading(false);
    // A Lease this replica may already have lost is not released: that would end another's term.
    if (!held) return;
    try {
      const signal = AbortSignal.timeout(this.renewDeadlineMs);
      const lease = await this.client.get<Lease>(Resources.leases, this.opts.namespace, this.opts.name, { signal });
      if (lease.spec.holderIdentity === this.opts.identity) {
        await this.client.replace(Resources.leases, { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 } }, { signal });
      }
    } catch (err) {
      this.opts.logger.debug({ err: String(err) }, 'could not release lease');
    }
  }

  private now(): Date {
    return (this.opts.clock ?? (() => new Date()))();
  }

  private monotonic(): number {
    return (this.opts.monotonic ?? (() => performance.now()))();
  }

  private async tick(): Promise<void> {
    const started = this.monotonic();
    try {
      await this.tryAcquireOrRenew(started);
    } catch (err) {
      this.opts.logger.warn({ err: String(err), lease: `${this.opts.namespace}/${this.opts.name}` }, 'leader election attempt failed');
    }
    // Fixed rate, not fixed delay: a candidate looks every retryPeriod however
    // long the API took, so takeover stays within leaseDuration + retryPeriod.
    if (!this.stopped) {
      this.timer = setTimeout(() => void this.tick(), Math.max(0, this.opts.retryPeriodMs - (this.monotonic() - started)));
    }
  }

  private async tryAcquireOrRenew(started: number): Promise<void> {
    const { namespace, name, identity } = this.opts;
    const now = this.now();
    const durationSeconds = Math.max(1, Math.round(this.opts.leaseDurationMs / 1000));
    // A leader's attempt ends at its renew deadline; a candidate's within one.
    const budget = this.leading ? this.lastRenew + this.renewDeadlineMs - started : this.renewDeadlineMs;
    const signal = AbortSignal.timeout(Math.max(1, Math.floor(budget)));
    let lease: Lease;
    try {
      lease = await this.client.get<Lease>(Resources.leases, namespace, name, { signal });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      await this.client.create<Lease>(Resources.leases, {
        metadata: { name, namespace },
        spec: { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
      }, { signal });
      this.renewed(started);
      return;
    }
    const holder = lease.spec.holderIdentity ?? '';
    if (holder !== identity && this.leading) this.setLeading(false);
    if (holder !== identity && holder !== '' && !this.expired(lease, durationSeconds)) return;
    const spec = holder === identity
      ? { ...lease.spec, renewTime: microTime(now), leaseDurationSeconds: durationSeconds }
      : { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: (lease.spec.leaseTransitions ?? 0) + 1 };
    try {
      await this.client.replace<Lease>(Resources.leases, { ...lease, spec }, { signal });
      this.renewed(started);
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
  }

  /**
   * Whether another holder's Lease has expired, by this replica's clock: the same record,
   * unchanged, for its whole duration since this replica first saw it.
   */
  private expired(lease: Lease, defaultSeconds: number): boolean {
    const { holderIdentity, renewTime, acquireTime, leaseTransitions, leaseDurationSeconds } = lease.spec;
    const record = JSON.stringify([holderIdentity, renewTime, acquireTime, leaseTransitions, leaseDurationSeconds]);
    const at = this.monotonic();
    if (this.observed?.record !== record) this.observed = { record, at };
    return this.observed.at + (leaseDurationSeconds ?? defaultSeconds) * 1000 < at;
  }

  /** `sentAt` is when the attempt began: the deadline runs from there, never from the answer. */
  private renewed(sentAt: number): void {
    this.lastRenew = sentAt;
    this.watchDeadline();
    if (!this.leading) this.setLeading(true);
  }

  /** Stepping down is a timer of its own, so a tick stuck on the network cannot delay it. */
  private watchDeadline(): void {
    if (this.deadline) clearTimeout(this.deadline);
    this.deadline = setTimeout(() => {
      // A timer may fire a millisecond early: then it looks again.
      if (this.holds()) return this.watchDeadline();
      this.opts.logger.warn({ identity: this.opts.identity, renewDeadlineMs: this.renewDeadlineMs }, 'could not renew the Lease within the renew deadline');
      this.setLeading(false);
    }, Math.max(1, this.lastRenew + this.renewDeadlineMs - this.monotonic()));
    this.deadline.unref();
  }

  private setLeading(leading: boolean): void {
    if (this.leading === leading) return;
    this.leading = leading;
    if (!leading && this.deadline) clearTimeout(this.deadline);
    this.opts.logger.info({ identity: this.opts.identity, leading }, leading ? 'became leader' : 'stopped leading');
    if (leading) this.opts.onStartedLeading();
    else this.opts.onStoppedLeading();
  }
}
