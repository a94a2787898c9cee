/**
 * Conditions as cert-manager keeps them (docs/ARCHITECTURE.md, decision 3): lastTransitionTime moves only when the
 * status flips, observedGeneration is always stamped, and status equality ignores what a user
 * cannot see (key order, undefined fields), so unchanged status is never rewritten.
 */
import test from 'ava';
import type { Condition } from '../../src/api/types.ts';
import { sameContent } from '../../src/base/objects.ts';
import { getCondition, isTrue, kubeTime, removeCondition, setCondition, type ConditionInput } from '../../src/kube/conditions.ts';

const T0 = new Date('2030-01-01T00:00:00.000Z');
const T1 = new Date('2030-01-01T01:00:00.000Z');

const readyTrue: ConditionInput = { type: 'Ready', status: 'True', reason: 'Ready', message: 'Certificate is up to date and has not expired' };
const readyFalse: ConditionInput = { type: 'Ready', status: 'False', reason: 'DoesNotExist', message: 'Issuing certificate as Secret does not exist' };

const at = (conditions: Condition[], type = 'Ready') => getCondition(conditions, type);

test('a new condition gets lastTransitionTime now, at second precision', (t) => {
  const conditions = setCondition(undefined, readyTrue, 1, new Date('2030-01-01T00:00:00.789Z'));
  t.deepEqual(conditions, [{ ...readyTrue, lastTransitionTime: '2030-01-01T00:00:00Z', observedGeneration: 1 }]);
});

test('lastTransitionTime moves only when the status flips', (t) => {
  const table: Array<{ name: string; first: ConditionInput; second: ConditionInput; moves: boolean }> = [
    { name: 'same status, same reason', first: readyTrue, second: readyTrue, moves: false },
    { name: 'same status, new reason and message', first: readyFalse, second: { ...readyFalse, reason: 'Expired', message: 'expired' }, moves: false },
    { name: 'True → False', first: readyTrue, second: readyFalse, moves: true },
    { name: 'False → True', first: readyFalse, second: readyTrue, moves: true },
    { name: 'False → Unknown', first: readyFalse, second: { ...readyFalse, status: 'Unknown' }, moves: true },
  ];
  for (const row of table) {
    const before = setCondition(undefined, row.first, 1, T0);
    const after = setCondition(before, row.second, 1, T1);
    t.is(at(after)?.lastTransitionTime, kubeTime(row.moves ? T1 : T0), row.name);
    t.is(at(after)?.reason, row.second.reason, `${row.name}: reason is always the latest`);
    t.is(at(after)?.message, row.second.message, `${row.name}: message is always the latest`);
  }
});

test('a condition read without lastTransitionTime gets one, even when the status did not flip', (t) => {
  const read: Condition[] = [{ type: 'Ready', status: 'True', reason: 'Ready' }];
  t.is(at(setCondition(read, readyTrue, 1, T1))?.lastTransitionTime, kubeTime(T1));
});

test('observedGeneration is stamped on every set, flip or not', (t) => {
  const before = setCondition(undefined, readyTrue, 1, T0);
  const after = setCondition(before, readyTrue, 4, T1);
  t.is(at(after)?.observedGeneration, 4);
  t.is(at(after)?.lastTransitionTime, kubeTime(T0));
});

test('without a generation (CertificateRequest conditions) no observedGeneration is written', (t) => {
  const before: Condition[] = [{ ...readyTrue, lastTransitionTime: kubeTime(T0), observedGeneration: 3 }];
  const after = setCondition(before, readyTrue, undefined, T1);
  t.false('observedGeneration' in (at(after) ?? {}));
});

test('setting one condition leaves the others and their order alone', (t) => {
  let conditions = setCondition(undefined, readyTrue, 1, T0);
  conditions = setCondition(conditions, { type: 'Issuing', status: 'True', reason: 'Renewing', message: 'renewing' }, 1, T0);
  const after = setCondition(conditions, readyFalse, 2, T1);
  t.deepEqual(after.map((c) => c.type), ['Ready', 'Issuing']);
  t.deepEqual(at(after, 'Issuing'), at(conditions, 'Issuing'));
});

test('setCondition never mutates the list it was given (it may come from an informer cache)', (t) => {
  const cached = Object.freeze([Object.freeze({ ...readyTrue, lastTransitionTime: kubeTime(T0), observedGeneration: 1 })]) as readonly Condition[];
  const snapshot = structuredClone(cached);
  const after = setCondition(cached, readyFalse, 2, T1);
  t.deepEqual(cached, snapshot);
  t.not(after, cached);
});

test('removeCondition drops only the named type, and tolerates a missing list', (t) => {
  const conditions = setCondition(setCondition(undefined, readyTrue, 1, T0), { type: 'Issuing', status: 'True', reason: 'x', message: 'y' }, 1, T0);
  t.deepEqual(removeCondition(conditions, 'Issuing').map((c) => c.type), ['Ready']);
  t.deepEqual(removeCondition(undefined, 'Issuing'), []);
  t.is(conditions.length, 2, 'the input is untouched');
});

test('getCondition and isTrue read a condition by type', (t) => {
  const conditions = setCondition(undefined, readyFalse, 1, T0);
  t.is(getCondition(conditions, 'Ready')?.reason, 'DoesNotExist');
  t.is(getCondition(conditions, 'Issuing'), undefined);
  t.false(isTrue(conditions, 'Ready'));
  t.true(isTrue(setCondition(conditions, readyTrue, 1, T1), 'Ready'));
  t.false(isTrue(undefined, 'Ready'));
});

test('sameContent ignores key order and undefined fields, and nothing else', (t) => {
  const table: Array<{ name: string; a: unknown; b: unknown; equal: boolean }> = [
    { name: 'key order', a: { revision: 1, notAfter: 'x' }, b: { notAfter: 'x', revision: 1 }, equal: true },
    { name: 'nested key order', a: { conditions: [{ type: 'Ready', status: 'True' }] }, b: { conditions: [{ status: 'True', type: 'Ready' }] }, equal: true },
    { name: 'an undefined field', a: { revision: 1, lastFailureTime: undefined }, b: { revision: 1 }, equal: true },
    { name: 'a changed value', a: { revision: 1 }, b: { revision: 2 }, equal: false },
    { name: 'a number against its string', a: { revision: 1 }, b: { revision: '1' }, equal: false },
    { name: 'list order matters', a: { conditions: [{ type: 'A' }, { type: 'B' }] }, b: { conditions: [{ type: 'B' }, { type: 'A' }] }, equal: false },
    { name: 'an extra field', a: { revision: 1 }, b: { revision: 1, failedIssuanceAttempts: 1 }, equal: false },
    { name: 'null is not undefined', a: { reason: null }, b: {}, equal: false },
    { name: 'two undefined', a: undefined, b: undefined, equal: true },
    { name: 'empty object against undefined', a: {}, b: undefined, equal: false },
  ];
  for (const row of table) t.is(sameContent(row.a, row.b), row.equal, row.name);
});

test('kubeTime formats RFC 3339 with whole seconds, as metav1.Time', (t) => {
  t.is(kubeTime(new Date('2030-06-01T12:34:56.999Z')), '2030-06-01T12:34:56Z');
  t.is(kubeTime(new Date('2030-06-01T12:34:56Z')), '2030-06-01T12:34:56Z');
});
