/**
 * Renewal time and Go durations: the numbers that end up in status.renewalTime
 * and decide when a certificate is renewed.
 */
import test from 'ava';
import { DEFAULT_DURATION, DEFAULT_DURATION_MS, durationMs, formatGoDuration, parseGoDuration } from '../../src/base/duration.ts';
import { renewalTime, type RenewalInput } from '../../src/pki/renewal.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const start = new Date('2030-01-01T00:00:00Z');
const after = (ms: number): Date => new Date(start.getTime() + ms);

/** A certificate lifetime from `start`, with optional renewal settings. */
function lifetime(ms: number, extra: Partial<RenewalInput> = {}): RenewalInput {
  return { notBefore: start, notAfter: after(ms), ...extra };
}

const renewalCases: Array<{ name: string; input: RenewalInput; expected: Date }> = [
  { name: 'with nothing set, a 90-day certificate renews 30 days before expiry', input: lifetime(90 * DAY), expected: after(60 * DAY) },
  { name: 'with nothing set, a 1-hour certificate renews after 40 minutes', input: lifetime(HOUR), expected: after(40 * 60_000) },
  { name: 'renewBefore is honoured when shorter than the lifetime', input: lifetime(90 * DAY, { renewBefore: '360h' }), expected: after(75 * DAY) },
  { name: 'renewBefore equal to the lifetime falls back to one third', input: lifetime(90 * DAY, { renewBefore: '2160h' }), expected: after(60 * DAY) },
  { name: 'renewBefore longer than the lifetime falls back to one third', input: lifetime(HOUR, { renewBefore: '720h' }), expected: after(40 * 60_000) },
  { name: 'renewBefore of zero falls back to one third', input: lifetime(90 * DAY, { renewBefore: '0s' }), expected: after(60 * DAY) },
  { name: 'renewBeforePercentage takes that share of the lifetime', input: lifetime(100 * DAY, { renewBeforePercentage: 25 }), expected: after(75 * DAY) },
  { name: 'renewBefore wins over renewBeforePercentage when both are set', input: lifetime(100 * DAY, { renewBefore: '240h', renewBeforePercentage: 50 }), expected: after(90 * DAY) },
  { name: 'renewBeforePercentage of 100 is ignored in favour of one third', input: lifetime(90 * DAY, { renewBeforePercentage: 100 }), expected: after(60 * DAY) },
  { name: 'renewBeforePercentage of 0 is ignored in favour of one third', input: lifetime(90 * DAY, { renewBeforePercentage: 0 }), expected: after(60 * DAY) },
  { name: 'the result is truncated to the whole second', input: lifetime(10_000), expected: after(6_000) },
  {
    name: 'the lifetime is the issued certificate’s, not a round number',
    input: { notBefore: new Date('2030-01-01T00:00:00Z'), notAfter: new Date('2030-03-31T23:59:59Z') },
    expected: new Date('2030-03-01T23:59:59Z'),
  },
];

for (const c of renewalCases) {
  test(`renewal time: ${c.name}`, (t) => {
    t.is(renewalTime(c.input).toISOString(), c.expected.toISOString());
  });
}

test('a renewBefore that is not a Go duration is an error naming the syntax', (t) => {
  t.throws(() => renewalTime(lifetime(DAY, { renewBefore: '1 day' })), { message: /not a duration/ });
});

const parseCases: Array<[string, number]> = [
  ['2160h', 90 * DAY],
  ['2160h30m1.5s', 90 * DAY + 30 * 60_000 + 1500],
  ['1h0m0s', HOUR],
  ['90m', 90 * 60_000],
  ['1.5h', 1.5 * HOUR],
  ['.5s', 500],
  ['1.s', 1000],
  ['250ms', 250],
  ['1500us', 1.5],
  ['1500µs', 1.5],
  ['2000000ns', 2],
  ['-1m', -60_000],
  ['+5s', 5000],
  ['0', 0],
  ['0s', 0],
];

for (const [text, ms] of parseCases) {
  test(`the Go duration "${text}" is ${ms} ms`, (t) => {
    t.is(parseGoDuration(text), ms);
  });
}

for (const text of ['', '-', '1', '1d', 'h', '1h 30m', '1.h2', 'abc', '1hh']) {
  test(`"${text}" is not a Go duration`, (t) => {
    t.throws(() => parseGoDuration(text), { message: /not a duration/ });
  });
}

const formatCases: Array<[number, string]> = [
  [90 * DAY, '2160h0m0s'],
  [HOUR, '1h0m0s'],
  [90 * 60_000, '1h30m0s'],
  [61_000, '1m1s'],
  [1500, '1.5s'],
  [250, '250ms'],
  [1.5, '1.5ms'],
  [0.002, '2µs'],
  [0.000001, '1ns'],
  [0, '0s'],
  [-60_000, '-1m0s'],
  [365 * DAY + 1, '8760h0m0.001s'],
];

for (const [ms, text] of formatCases) {
  test(`${ms} ms is formatted as Go would: "${text}"`, (t) => {
    t.is(formatGoDuration(ms), text);
  });
}

test('formatting then parsing gives back the same duration', (t) => {
  for (const ms of [1, 999, 1000, 59_999, 3_600_001, 90 * DAY, 123_456_789]) {
    t.is(parseGoDuration(formatGoDuration(ms)), ms);
  }
});

test('an unset spec.duration means cert-manager’s 90 days', (t) => {
  t.is(DEFAULT_DURATION, '2160h');
  t.is(durationMs(undefined), DEFAULT_DURATION_MS);
  t.is(durationMs(''), DEFAULT_DURATION_MS);
  t.is(durationMs('24h'), DAY);
});
