/**
 * Leader election that cannot go stale: a renew deadline below the lease duration, a deadline on
 * every request, expiry judged by the candidate's own clock, and a fence that stops the work a
 * leader started once it is no longer sure it leads. The Lease lives in a small in-memory store
 * with resourceVersions, as the API server keeps it; the electors are the real ones.
 */
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import type { KubeObject, ResourceDef } from '../../src/api/types.ts';
import { ApiError, type CallOptions, type KubeClient } from '../../src/kube/client.ts';
import { assertFence, fenced, LostLeadershipError } from '../../src/kube/fence.ts';
import { LeaderElector, validateTiming, type LeaderOptions } from '../../src/kube/leader.ts';
import { done, WorkQueue } from '../../src/kube/queue.ts';

const logger = pino({ level: 'silent' });

/** One Lease, versioned; `frozen` holds every call of the named caller until its signal fires. */
class LeaseStore {
  lease: (KubeObject & { spec: Record<string, unknown> }) | undefined;
  version = 0;
  readonly frozen = new Set<string>();
  aborted = 0;
  calls = 0;

  clientFor(caller: string): KubeClient {
    const call = async <T>(opts: CallOptions, fn: () => T): Promise<T> => {
      this.calls++;
      if (this.frozen.has(caller)) {
        await new Promise<never>((_, reject) => opts.signal?.addEventListener('abort', () => {
          this.aborted++;
          reject(new Error('aborted by its deadline'));
        }));
      }
      return structuredClone(fn());
    };
    const client = {
      get: (_def: ResourceDef, _ns: string, _name: string, opts: CallOptions = {}) => call(opts, () => {
        if (!this.lease) throw new ApiError('not found', 404, 'NotFound');
        return this.lease;
      }),
      create: (_def: ResourceDef, obj: KubeObject & { spec: Record<string, unknown> }, opts: CallOptions = {}) => call(opts, () => {
        if (this.lease) throw new ApiError('exists', 409, 'AlreadyExists');
        this.lease = { ...structuredClone(obj), metadata: { ...obj.metadata, resourceVersion: String(++this.version) } };
        return this.lease;
      }),
      replace: (_def: ResourceDef, obj: KubeObject & { spec: Record<string, unknown> }, opts: CallOptions = {}) => call(opts, () => {
        if (obj.metadata.resourceVersion !== this.lease?.metadata.resourceVersion) throw new ApiError('conflict', 409, 'Conflict');
        this.lease = { ...structuredClone(obj), metadata: { ...obj.metadata, resourceVersion: String(++this.version) } };
        return this.lease;
      }),
    };
    return client as unknown as KubeClient;
  }
}

function elector(store: LeaseStore, identity: string, events: string[], extra: Partial<LeaderOptions> = {}): LeaderElector {
  return new LeaderElector(store.clientFor(identity), {
    namespace: 'certroute', name: 'certroute-controller', identity, logger,
    leaseDurationMs: 1_500, renewDeadlineMs: 1_000, retryPeriodMs: 100,
    onStartedLeading: () => events.push(`${identity} started`),
    onStoppedLeading: () => events.push(`${identity} stopped`),
    ...extra,
  });
}

async function waitUntil(what: string, fn: () => boolean): Promise<void> {
  while (!fn()) await sleep(10).then(() => what);
}

test('the timing must be retry period < renew deadline < lease duration, and the renew deadline defaults to two thirds of the lease', (t) => {
  t.is(validateTiming({ leaseDurationMs: 15_000, retryPeriodMs: 2_000 }), 10_000);
  t.throws(() => validateTiming({ leaseDurationMs: 15_000, renewDeadlineMs: 15_000, retryPeriodMs: 2_000 }), { message: /renew deadline \(15000 ms\) must be shorter than the lease duration/ });
  t.throws(() => validateTiming({ leaseDurationMs: 3_000, retryPeriodMs: 2_000 }), { message: /retry period \(2000 ms\) must be shorter than the renew deadline \(2000 ms\)/ });
  t.throws(() => validateTiming({ leaseDurationMs: 15_000, retryPeriodMs: 0 }), { message: /retry period must be more than 0/ });
  t.throws(() => new LeaderElector(new LeaseStore().clientFor('a'), {
    namespace: 'n', name: 'l', identity: 'a', logger, leaseDurationMs: 1_000, renewDeadlineMs: 2_000, retryPeriodMs: 100,
    onStartedLeading: () => undefined, onStoppedLeading: () => undefined,
  }));
});

test('a Lease renewed an hour ago by the remote clock is not taken while its holder is seen renewing it', async (t) => {
  // The holder's clock is an hour behind: judged by renewTime against the local clock, the Lease
  // would look expired at every look, and a standby would steal it from a healthy leader.
  const store = new LeaseStore();
  const events: string[] = [];
  const hourAgo = () => new Date(Date.now() - 3600_000);
  const skewed = elector(store, 'skewed-leader', events, { clock: hourAgo });
  const standby = elector(store, 'standby', events);
  skewed.start();
  await waitUntil('the skewed leader leads', () => skewed.isLeader);
  standby.start();
  const version = store.version;
  await waitUntil('the leader renews a few times while the standby watches', () => store.version >= version + 20);
  t.deepEqual(events, ['skewed-leader started']);
  t.is(store.lease?.spec.holderIdentity, 'skewed-leader');
  await standby.stop();
  await skewed.stop();
});

test('a standby takes a Lease only after seeing it unchanged for the lease duration, even if it has long expired by renewTime', async (t) => {
  const store = new LeaseStore();
  const longAgo = '2020-01-01T00:00:00.000000Z';
  store.lease = { metadata: { name: 'certroute-controller', namespace: 'certroute', resourceVersion: '1' }, spec: { holderIdentity: 'crashed', leaseDurationSeconds: 1, renewTime: longAgo, acquireTime: longAgo } };
  const events: string[] = [];
  let now = 0;
  const standby = elector(store, 'standby', events, { monotonic: () => now });
  standby.start();
  // 900 ms of the standby's clock pass while it looks at the Lease every retry period.
  for (let i = 0; i < 9; i++) {
    const calls = store.calls;
    await waitUntil('another look', () => store.calls > calls);
    now += 100;
  }
  t.deepEqual(events, [], 'not taken within the lease duration of the first look');
  now += 1_000;
  await waitUntil('the standby takes over', () => events.length > 0);
  t.deepEqual(events, ['standby started']);
  await standby.stop();
});

test('a leader whose API calls hang stops leading at its renew deadline, before the standby takes the Lease', async (t) => {
  const store = new LeaseStore();
  const events: string[] = [];
  const leader = elector(store, 'leader', events);
  const standby = elector(store, 'standby', events);
  leader.start();
  await waitUntil('leading', () => leader.isLeader);
  standby.start();
  await waitUntil('the standby has looked', () => store.version >= 5);
  store.frozen.add('leader');
  await waitUntil('the standby takes over', () => standby.isLeader);
  t.deepEqual(events, ['leader started', 'leader stopped', 'standby started']);
  t.false(leader.holds());
  t.true(store.aborted > 0, 'the hung request was ended by its deadline');
  store.frozen.delete('leader');
  await standby.stop();
  await leader.stop();
  t.is(store.lease?.spec.holderIdentity, '', 'the standby released it; the old leader did not touch it');
});

test('work a leader started cannot write once its leadership is gone', async (t) => {
  let leading = true;
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  const results: string[] = [];
  const q = new WorkQueue(async () => {
    await released; // paused mid-step, as by SIGSTOP or a stalled network
    try {
      assertFence(); // what every Kubernetes write and ACME request does first
      results.push('wrote');
    } catch (err) {
      results.push(err instanceof LostLeadershipError ? 'refused' : String(err));
    }
    return done;
  }, {
    name: 'test', workers: 1,
    fence: () => () => {
      if (!leading) throw new LostLeadershipError();
    },
  });
  q.start();
  q.add('a');
  await sleep(20);
  leading = false;
  release();
  await q.drain();
  t.deepEqual(results, ['refused']);
  t.notThrows(() => assertFence(), 'outside a fenced run nothing is refused');
  await t.throwsAsync(fenced(() => { throw new LostLeadershipError(); }, async () => assertFence()), { instanceOf: LostLeadershipError });
});
