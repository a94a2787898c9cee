import test from 'ava';
import { exponentialDelay } from '../../src/base/backoff.ts';

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
