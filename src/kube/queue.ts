/**
 * A keyed, de-duplicating work queue with per-item exponential back-off,
 * modelled on client-go's workqueue: a key is queued at most once, is never
 * processed by two workers at once, and a key added while it is being
 * processed runs again right after ("dirty").
 */
import { Backoff } from '../base/backoff.ts';
import { RetryAfterError } from '../base/errors.ts';
import { fenced, type FenceCheck } from './fence.ts';

export type Outcome = { kind: 'done' } | { kind: 'requeueAfter'; ms: number };
export const done: Outcome = { kind: 'done' };
export const requeueAfter = (ms: number): Outcome => ({ kind: 'requeueAfter', ms: clampDelay(ms) });

/**
 * The longest delay a Node timer keeps: a `setTimeout` longer than 2^31−1 ms
 * (about 24.8 days) fires after 1 ms instead, and a NaN delay fires at once,
 * so an unchecked delay from outside (a CA's Retry-After, a status time in the
 * future) would turn a wait into a hot loop.
 */
export const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * Any delay as a timer can hold it: negatives are 0, the rest at most MAX_DELAY_MS. NaN (a time
 * that did not parse) waits a minute: as 0 it would run the key again at once, for ever.
 */
export function clampDelay(ms: number): number {
  if (Number.isNaN(ms)) return 60_000;
  if (ms <= 0) return 0;
  return Math.min(MAX_DELAY_MS, Math.round(ms));
}

export interface QueueOptions {
  name: string;
  workers: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  onError?: (key: string, err: unknown, retryInMs: number) => void;
  /** Called after every run; `outcome` is set when it succeeded. */
  onSync?: (key: string, ok: boolean, outcome?: Outcome) => void;
  /**
   * Called as each run starts; the check it returns guards every write and ACME request of that
   * run (fence.ts), so a run that outlives its leadership cannot act.
   */
  fence?: () => FenceCheck;
}

export class WorkQueue {
  readonly name: string;
  private readonly reconcile: (key: string) => Promise<Outcome>;
  private readonly opts: Required<Omit<QueueOptions, 'onError' | 'onSync' | 'fence'>> & Pick<QueueOptions, 'onError' | 'onSync' | 'fence'>;
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly backoff: Backoff;
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private active = 0;
  private running = false;
  private idleWaiters: Array<() => void> = [];
  private drainWaiters: Array<() => void> = [];

  constructor(reconcile: (key: string) => Promise<Outcome>, opts: QueueOptions) {
    this.reconcile = reconcile;
    this.name = opts.name;
    this.opts = { baseDelayMs: 200, maxDelayMs: 5 * 60_000, ...opts };
    this.backoff = new Backoff(this.opts.baseDelayMs, this.opts.maxDelayMs);
  }

  add(key: string): void {
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.pump();
  }

  /**
   * Adds after a delay; an earlier pending delay for the same key wins,
   * unless `force` (a CA's Retry-After must not be cut short).
   */
  addAfter(key: string, delayMs: number, force = false): void {
    const ms = clampDelay(delayMs);
    if (ms <= 0 && !force) return this.add(key);
    const at = Date.now() + ms;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at && !force) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  start(): void {
    this.running = true;
    this.pump();
  }

  stop(): void {
    this.running = false;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }

  get length(): number {
    return this.queue.length + this.active;
  }

  /** Resolves when no run is in flight; after stop(), when the last one has finished. */
  drain(): Promise<void> {
    if (this.active === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Resolves when nothing is queued or running (tests and benchmarks). */
  idle(): Promise<void> {
    if (this.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private pump(): void {
    while (this.running && this.active < this.opts.workers && this.queue.length > 0) {
      const key = this.queue.shift() as string;
      this.queued.delete(key);
      this.processing.add(key);
      this.active++;
      void this.work(key);
    }
    if (this.active === 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
    if (this.length === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  private async work(key: string): Promise<void> {
    try {
      const outcome = await fenced(this.opts.fence?.(), () => this.reconcile(key));
      this.backoff.reset(key);
      this.opts.onSync?.(key, true, outcome);
      if (outcome.kind === 'requeueAfter') this.addAfter(key, outcome.ms);
    } catch (err) {
      const backoff = this.backoff.next(key);
      const delay = err instanceof RetryAfterError ? Math.max(clampDelay(err.retryAfterMs), backoff) : backoff;
      this.opts.onSync?.(key, false);
      this.opts.onError?.(key, err, delay);
      this.addAfter(key, delay, err instanceof RetryAfterError);
    } finally {
      this.processing.delete(key);
      this.active--;
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }
}
