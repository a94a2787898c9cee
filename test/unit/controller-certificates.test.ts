/**
 * The failure back-off of a Certificate, as cert-manager's: after n failed issuances the next
 * attempt waits minBackoff·2^(n−1), capped (1h doubling to 32h by default), counted from
 * lastFailureTime — unless the user changed the spec since, which retries at once.
 */
import test from 'ava';
import { retryAt } from '../../src/controller/certificates.ts';
import { certificate, configOnlyContext, failed, HOUR, issuing, withGeneration, type Option } from '../helpers/builders.ts';
import type { Certificate } from '../../src/api/types.ts';

const failedAt = new Date('2030-01-01T00:00:00Z');
const ctx = configOnlyContext();
const after = (ms: number) => failedAt.getTime() + ms;

test('no failure recorded: no back-off', (t) => {
  t.is(retryAt(ctx, certificate('web'), failedAt), undefined);
});

test('after n failures the next attempt waits 1h·2^(n−1), capped at 32h', (t) => {
  const table: Array<[attempts: number, waitHours: number]> = [[1, 1], [2, 2], [3, 4], [4, 8], [5, 16], [6, 32], [7, 32], [12, 32], [2000, 32]];
  for (const [attempts, hours] of table) {
    const cert = certificate('web', failed(attempts, failedAt), issuing('False', 'Failed', 'boom', 1));
    t.is(retryAt(ctx, cert, failedAt), after(hours * HOUR), `${attempts} failures`);
  }
});

test('the back-off follows the configured minimum and maximum', (t) => {
  const fast = configOnlyContext({ minBackoffMs: 1_000, maxBackoffMs: 5_000 });
  const table: Array<[number, number]> = [[1, 1_000], [2, 2_000], [3, 4_000], [4, 5_000]];
  for (const [attempts, ms] of table) t.is(retryAt(fast, certificate('web', failed(attempts, failedAt)), failedAt), after(ms), `${attempts} failures`);
});

test('a spec change since the failure retries at once', (t) => {
  const table: Array<{ name: string; options: Array<Option<Certificate>>; retriesNow: boolean }> = [
    { name: 'generation moved past the failed Issuing condition', options: [withGeneration(3), issuing('False', 'Failed', 'boom', 2)], retriesNow: true },
    { name: 'same generation as the failure', options: [withGeneration(2), issuing('False', 'Failed', 'boom', 2)], retriesNow: false },
    { name: 'no Issuing condition to compare with', options: [withGeneration(5)], retriesNow: false },
    { name: 'an Issuing condition without observedGeneration', options: [withGeneration(5), issuing('False', 'Failed', 'boom')], retriesNow: false },
  ];
  for (const row of table) {
    const cert = certificate('web', failed(3, failedAt), ...row.options);
    t.is(retryAt(ctx, cert, failedAt), row.retriesNow ? undefined : after(4 * HOUR), row.name);
  }
});

test('failures counted without a lastFailureTime give no back-off', (t) => {
  const cert = certificate('web', (c) => (c.status = { failedIssuanceAttempts: 2 }));
  t.is(retryAt(ctx, cert, failedAt), undefined);
});

test('retryAt reads nothing from the Context but its config', (t) => {
  // configOnlyContext throws on any other property.
  t.notThrows(() => retryAt(ctx, certificate('web', failed(1, failedAt), withGeneration(2), issuing('False', 'Failed', 'x', 1)), failedAt));
});

test('a lastFailureTime in the future counts from now, so it delays a retry by one back-off at most', (t) => {
  // Anyone who may write certificates/status can set it; a date years ahead once made the
  // requeue delay overflow Node's timer and retry every millisecond.
  const now = new Date('2030-01-01T00:00:00Z');
  for (const last of ['2300-01-01T00:00:00Z', '2030-01-01T00:00:01Z', 'not a date']) {
    const cert = certificate('web', (c) => (c.status = { failedIssuanceAttempts: 1, lastFailureTime: last }));
    t.is(retryAt(ctx, cert, now), now.getTime() + HOUR, last);
  }
});
