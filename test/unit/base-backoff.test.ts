import test from 'ava';
import { Backoff, exponentialDelay } from '../../src/base/backoff.ts';

const table: Array<[attempt: number, min: number, max: number, want: number]> = [
  [1, 200, 5_000, 200],
  [2, 200, 5_000, 400],
  [5, 200, 5_000, 3_200],
  [6, 200, 5_000, 5_000],
  [10_000, 200, 5_000, 5_000],
  [0, 200, 5_000, 200],
  [1, 10_000, 5_000, 5_000],
];

for (const [attempt, min, max, want] of table) {
  test(`the wait after try ${attempt} with min ${min} ms and max ${max} ms is ${want} ms`, (t) => {
    t.is(exponentialDelay(attempt, min, max), want);
  });
}

test('a per-key back-off doubles with each try of that key alone, and starts over after a reset', (t) => {
  const backoff = new Backoff(25, 300);
  t.deepEqual([backoff.next('a'), backoff.next('a'), backoff.next('b'), backoff.next('a')], [25, 50, 25, 100]);
  for (let i = 0; i < 10; i++) backoff.next('a');
  t.is(backoff.next('a'), 300, 'capped');
  backoff.reset('a');
  t.is(backoff.next('a'), 25);
});
