/**
 * The leader's fence: work a leader started must not act once the replica is
 * no longer sure it holds the Lease.
 *
 * A queue runs each reconcile inside `fenced(check, …)`; every Kubernetes
 * write and every ACME request made from there, however deep, calls
 * `assertFence()` first. So a leader that was paused (SIGSTOP, a stalled
 * network, a long GC) and wakes after its renew deadline fails its next
 * write instead of racing the replica that took over, and a reconcile left
 * over from an earlier term cannot act in a later one.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** Throws when the work it guards may no longer act. */
export type FenceCheck = () => void;

export class LostLeadershipError extends Error {
  constructor(message = 'this replica is no longer sure it holds the leader Lease; the step was not taken') {
    super(message);
    this.name = 'LostLeadershipError';
  }
}

const current = new AsyncLocalStorage<FenceCheck>();

export function fenced<T>(check: FenceCheck | undefined, fn: () => Promise<T>): Promise<T> {
  return check ? current.run(check, fn) : fn();
}

/** Called before any side effect: throws when the surrounding work lost its leadership. */
export function assertFence(): void {
  current.getStore()?.();
}
