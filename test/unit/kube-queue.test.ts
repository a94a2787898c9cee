/**
 * The work queue every reconciler runs behind (docs/ARCHITECTURE.md, decision 3): a key is queued at most
 * once, never runs on two workers at once, runs again when added while running, backs off
 * exponentially per key on a throw, honours a Retry-After and a requeue-after.
 */
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { RetryAfterError } from '../../src/base/errors.ts';
import { clampDelay, done, MAX_DELAY_MS, requeueAfter, WorkQueue, type Outcome, type QueueOptions } from '../../src/kube/queue.ts';

/** A reconcile function that records each call and can be held open until released. */
function recorder(behaviour: (key: string, call: number) => Promise<Outcome> | Outcome = () => done) {
  const calls: Array<{ key: string; at: number }> = [];
  let running = 0;
  let maxRunning = 0;
  const runningPerKey = new Map<string, number>();
  let overlap = false;
  const reconcile = async (key: string): Promise<Outcome> => {
    calls.push({ key, at: performance.now() });
    running++;
    maxRunning = Math.max(maxRunning, running);
    const n = (runningPerKey.get(key) ?? 0) + 1;
    runningPerKey.set(key, n);
    if (n > 1) overlap = true;
    try {
      return await behaviour(key, calls.filter((c) => c.key === key).length);
    } finally {
      running--;
      runningPerKey.set(key, (runningPerKey.get(key) ?? 1) - 1);
    }
  };
  return {
    reconcile,
    calls,
    keys: () => calls.map((c) => c.key),
    get maxRunning() {
      return maxRunning;
    },
    get overlap() {
      return overlap;
    },
  };
}

function queue(reconcile: (key: string) => Promise<Outcome>, opts: Partial<QueueOptions> = {}): WorkQueue {
  const q = new WorkQueue(reconcile, { name: 'test', workers: 4, baseDelayMs: 10, maxDelayMs: 1_000, ...opts });
  return q;
}

/** A latch a reconcile can wait on, so a test controls when it finishes. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

async function waitUntil(what: string, fn: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

test('a key added several times before a worker picks it up runs once', async (t) => {
  const r = recorder();
  const q = queue(r.reconcile);
  for (let i = 0; i < 5; i++) q.add('apps/web');
  q.add('apps/api');
  q.add('apps/web');
  q.start();
  await q.idle();
  t.deepEqual(r.keys(), ['apps/web', 'apps/api']);
  q.stop();
});

test('keys run in the order they were first added', async (t) => {
  const r = recorder();
  const q = queue(r.reconcile, { workers: 1 });
  for (const k of ['c', 'a', 'b', 'a', 'c']) q.add(k);
  q.start();
  await q.idle();
  t.deepEqual(r.keys(), ['c', 'a', 'b']);
  q.stop();
});

test('no more than `workers` keys run at once', async (t) => {
  const g = gate();
  const r = recorder(async () => {
    await g.opened;
    return done;
  });
  const q = queue(r.reconcile, { workers: 2 });
  q.start();
  for (const k of ['a', 'b', 'c', 'd']) q.add(k);
  await waitUntil('two keys running', () => r.calls.length === 2);
  await sleep(20);
  t.is(r.calls.length, 2, 'the third key waits for a free worker');
  g.open();
  await q.idle();
  t.is(r.calls.length, 4);
  t.is(r.maxRunning, 2);
  q.stop();
});

test('a key added while it is being processed is not run concurrently, and runs once more afterwards', async (t) => {
  const first = gate();
  const r = recorder(async (_key, call) => {
    if (call === 1) await first.opened;
    return done;
  });
  const q = queue(r.reconcile, { workers: 4 });
  q.start();
  q.add('apps/web');
  await waitUntil('first run started', () => r.calls.length === 1);
  q.add('apps/web');
  q.add('apps/web');
  await sleep(20);
  t.is(r.calls.length, 1, 'a second worker must not take the same key');
  first.open();
  await waitUntil('dirty re-run', () => r.calls.length === 2);
  await q.idle();
  t.false(r.overlap);
  t.deepEqual(r.keys(), ['apps/web', 'apps/web'], 'the adds during processing fold into one re-run');
  q.stop();
});

test('nothing runs before start(), and idle() waits for what was queued', async (t) => {
  const r = recorder();
  const q = queue(r.reconcile);
  q.add('a');
  await sleep(20);
  t.is(r.calls.length, 0);
  t.is(q.length, 1);
  let idle = false;
  const waiting = q.idle().then(() => (idle = true));
  await sleep(10);
  t.false(idle, 'idle() does not resolve while a key waits for start()');
  q.start();
  await waiting;
  t.is(r.calls.length, 1);
  t.is(q.length, 0);
  q.stop();
});

test('idle() resolves at once on an empty queue', async (t) => {
  const q = queue(recorder().reconcile);
  q.start();
  await q.idle();
  t.is(q.length, 0);
  q.stop();
});

test('idle() waits for a key that is still running', async (t) => {
  const g = gate();
  const r = recorder(async () => {
    await g.opened;
    return done;
  });
  const q = queue(r.reconcile);
  q.start();
  q.add('a');
  await waitUntil('running', () => r.calls.length === 1);
  let idle = false;
  const waiting = q.idle().then(() => (idle = true));
  await sleep(10);
  t.false(idle);
  g.open();
  await waiting;
  t.true(idle);
  q.stop();
});

test('a throwing key is retried with per-key exponential back-off: base, 2×, 4×, … capped at the maximum', async (t) => {
  const delays: number[] = [];
  const r = recorder((_key, call) => {
    if (call <= 6) throw new Error(`transient ${call}`);
    return done;
  });
  const q = queue(r.reconcile, { baseDelayMs: 5, maxDelayMs: 40, onError: (_k, _e, ms) => delays.push(ms) });
  q.start();
  q.add('a');
  await waitUntil('seventh run', () => r.calls.length === 7, 5_000);
  t.deepEqual(delays, [5, 10, 20, 40, 40, 40]);
  const gaps = r.calls.slice(1).map((c, i) => c.at - (r.calls[i]?.at ?? 0));
  gaps.forEach((gap, i) => t.true(gap >= (delays[i] ?? 0) - 1, `retry ${i + 1} waited ${gap.toFixed(1)} ms, at least ${delays[i]} ms`));
  q.stop();
});

test('back-off is counted per key: one failing key does not slow another', async (t) => {
  const delays: Record<string, number[]> = { bad: [], good: [] };
  const r = recorder((key, call) => {
    if (key === 'bad' || call === 1) throw new Error('transient');
    return done;
  });
  const q = queue(r.reconcile, { baseDelayMs: 5, onError: (k, _e, ms) => delays[k]?.push(ms) });
  q.start();
  q.add('bad');
  await waitUntil('bad failed three times', () => (delays.bad?.length ?? 0) >= 3);
  q.add('good');
  await waitUntil('good ran twice', () => r.keys().filter((k) => k === 'good').length === 2);
  t.deepEqual(delays.good, [5], 'the other key starts from the base delay');
  q.stop();
});

test('a success resets the back-off: the next failure starts from the base delay again', async (t) => {
  const delays: number[] = [];
  // fail, fail, succeed, then fail once more when re-added
  const r = recorder((_key, call) => {
    if (call === 3 || call === 5) return done;
    throw new Error('transient');
  });
  const q = queue(r.reconcile, { baseDelayMs: 5, onError: (_k, _e, ms) => delays.push(ms) });
  q.start();
  q.add('a');
  await waitUntil('three runs', () => r.calls.length === 3);
  await q.idle();
  q.add('a');
  await waitUntil('five runs', () => r.calls.length === 5);
  t.deepEqual(delays, [5, 10, 5]);
  q.stop();
});

test('onSync reports each run as ok or failed', async (t) => {
  const syncs: string[] = [];
  const r = recorder((_key, call) => {
    if (call === 1) throw new Error('transient');
    return done;
  });
  const q = queue(r.reconcile, { baseDelayMs: 1, onSync: (k, ok) => syncs.push(`${k}:${ok}`) });
  q.start();
  q.add('a');
  await waitUntil('second run', () => syncs.length === 2);
  t.deepEqual(syncs, ['a:false', 'a:true']);
  q.stop();
});

test('a RetryAfterError waits at least as long as the CA asked, even when the back-off is shorter', async (t) => {
  const delays: number[] = [];
  const r = recorder((_key, call) => {
    if (call === 1) throw new RetryAfterError('429 from the CA', 120);
    return done;
  });
  const q = queue(r.reconcile, { baseDelayMs: 5, onError: (_k, _e, ms) => delays.push(ms) });
  q.start();
  q.add('a');
  await waitUntil('retried', () => r.calls.length === 2);
  t.deepEqual(delays, [120]);
  const [first, second] = r.calls;
  t.true((second?.at ?? 0) - (first?.at ?? 0) >= 119, 'the retry did not come early');
  q.stop();
});

test('a RetryAfterError shorter than the back-off does not shorten the back-off', async (t) => {
  const delays: number[] = [];
  const r = recorder((_key, call) => {
    if (call <= 3) throw new RetryAfterError('503', 1);
    return done;
  });
  const q = queue(r.reconcile, { baseDelayMs: 5, onError: (_k, _e, ms) => delays.push(ms) });
  q.start();
  q.add('a');
  await waitUntil('fourth run', () => r.calls.length === 4);
  t.deepEqual(delays, [5, 10, 20]);
  q.stop();
});

test('requeueAfter runs the key again after the delay, and not before', async (t) => {
  const r = recorder((_key, call) => (call === 1 ? requeueAfter(60) : done));
  const q = queue(r.reconcile);
  q.start();
  q.add('a');
  await waitUntil('requeued run', () => r.calls.length === 2);
  const [first, second] = r.calls;
  t.true((second?.at ?? 0) - (first?.at ?? 0) >= 59);
  await sleep(80);
  t.is(r.calls.length, 2, 'done stops the cycle');
  q.stop();
});

test('requeueAfter is a wait, not a failure: it does not grow the back-off', async (t) => {
  const delays: number[] = [];
  const r = recorder((_key, call) => {
    if (call === 1 || call === 3) throw new Error('transient');
    if (call === 2) return requeueAfter(1);
    return done;
  });
  const q = queue(r.reconcile, { baseDelayMs: 5, onError: (_k, _e, ms) => delays.push(ms) });
  q.start();
  q.add('a');
  await waitUntil('fourth run', () => r.calls.length === 4);
  t.deepEqual(delays, [5, 5]);
  q.stop();
});

test('an add() while a requeue-after is pending runs the key now', async (t) => {
  const r = recorder((_key, call) => (call === 1 ? requeueAfter(10_000) : done));
  const q = queue(r.reconcile);
  q.start();
  q.add('a');
  await q.idle();
  q.add('a');
  await waitUntil('second run', () => r.calls.length === 2, 500);
  t.pass();
  q.stop();
});

test('addAfter keeps the earlier of two pending delays for a key', async (t) => {
  const r = recorder();
  const q = queue(r.reconcile);
  q.start();
  q.addAfter('a', 30);
  q.addAfter('a', 10_000);
  await waitUntil('run after the short delay', () => r.calls.length === 1, 1_000);
  q.addAfter('b', 10_000);
  q.addAfter('b', 20);
  await waitUntil('an earlier delay replaces a later one', () => r.calls.length === 2, 1_000);
  t.deepEqual(r.keys(), ['a', 'b']);
  q.stop();
});

test('addAfter with zero or a negative delay adds at once', async (t) => {
  const r = recorder();
  const q = queue(r.reconcile);
  q.start();
  q.addAfter('a', 0);
  q.addAfter('b', -5);
  await q.idle();
  t.deepEqual(r.keys(), ['a', 'b']);
  q.stop();
});

test('stop() cancels pending delayed adds', async (t) => {
  const r = recorder();
  const q = queue(r.reconcile);
  q.start();
  q.addAfter('a', 20);
  q.stop();
  await sleep(50);
  t.is(r.calls.length, 0);
});

test('requeueAfter rounds to whole milliseconds and never goes negative', (t) => {
  const table: Array<[number, number]> = [[1.4, 1], [1.6, 2], [0, 0], [-500, 0]];
  for (const [input, ms] of table) t.deepEqual(requeueAfter(input), { kind: 'requeueAfter', ms }, `requeueAfter(${input})`);
});

test('RetryAfterError carries its delay and its cause', (t) => {
  const cause = new Error('HTTP 429');
  const err = new RetryAfterError('rate limited', 3_000, { cause });
  t.is(err.name, 'RetryAfterError');
  t.is(err.retryAfterMs, 3_000);
  t.is(err.cause, cause);
  t.true(err instanceof Error);
});

test('a RetryAfterError is honoured even when an earlier requeue-after for the key is still pending', async (t) => {
  // Order polling returns requeueAfter(short); an informer event runs the key early and the CA
  // answers 429 with Retry-After. The pending short timer must not bring the retry forward.
  const r = recorder((_key, call) => {
    if (call === 1) return requeueAfter(30);
    if (call === 2) throw new RetryAfterError('429 from the CA', 300);
    return done;
  });
  const q = queue(r.reconcile, { baseDelayMs: 5 });
  q.start();
  q.add('a');
  await waitUntil('first run', () => r.calls.length === 1);
  q.add('a');
  await waitUntil('the 429', () => r.calls.length === 2);
  await sleep(150);
  t.is(r.calls.length, 2, 'no retry before the 300 ms the CA asked for');
  await waitUntil('retried after Retry-After', () => r.calls.length === 3, 1_000);
  const [, second, third] = r.calls;
  t.true((third?.at ?? 0) - (second?.at ?? 0) >= 299);
  q.stop();
});

// Node fires a timer longer than 2^31−1 ms after 1 ms, and a NaN one at once: a delay from
// outside (a CA's Retry-After, a status time far ahead) once turned a wait into a 1 ms loop.
for (const [name, outcome] of [
  ['a requeue-after longer than a Node timer holds (50 days)', () => requeueAfter(50 * 24 * 3600_000)],
  ['a requeue-after of NaN (an unparsable time)', () => requeueAfter(Number.NaN)],
  ['a Retry-After longer than a Node timer holds', () => { throw new RetryAfterError('429', 3_000_000_000); }],
] as const) {
  test(`${name} does not run the key again in a loop`, async (t) => {
    const rec = recorder(async () => outcome());
    const q = queue(rec.reconcile);
    q.start();
    q.add('a');
    await waitUntil('the first run', () => rec.calls.length === 1);
    await sleep(200);
    t.is(rec.calls.length, 1, 'one run, then a wait');
    q.stop();
  });
}

test('delays are clamped to what a Node timer holds', (t) => {
  t.deepEqual(requeueAfter(2 ** 40), { kind: 'requeueAfter', ms: MAX_DELAY_MS });
  t.deepEqual(requeueAfter(Number.NaN), { kind: 'requeueAfter', ms: 60_000 });
  t.is(clampDelay(Number.POSITIVE_INFINITY), MAX_DELAY_MS);
  t.is(clampDelay(-5), 0);
});
