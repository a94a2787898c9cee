/**
 * The Order reconciler's pure parts: the stable names of the Challenges an Order creates, and the
 * poll interval that starts fast (Pebble validates in milliseconds) and backs off to a cap.
 */
import test from 'ava';
import { challengeName } from '../../src/controller/orders.ts';
import { order } from '../helpers/builders.ts';

/** DNS-1123 subdomain: what the API server demands of an object name. */
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

// ── challengeName ───────────────────────────────────────────────────────────

test('a Challenge’s name is stable for the same order and authorization, so a retry finds it again', (t) => {
  const o = order('web-1-1234567');
  const authz = 'https://acme.test/authz/abc';
  t.is(challengeName(o, authz), challengeName(order('web-1-1234567'), authz));
  t.regex(challengeName(o, authz), /^web-1-1234567-\d+$/);
});

test('each authorization of an order gets its own Challenge name', (t) => {
  const o = order('web-1-1234567');
  const names = new Set(['a', 'b', 'c', 'd'].map((x) => challengeName(o, `https://acme.test/authz/${x}`)));
  t.is(names.size, 4);
});

test('a Challenge name stays within 63 characters and a valid object name, however long the order name', (t) => {
  const table = [
    'web-1-1234567',
    'a'.repeat(52),
    'a'.repeat(63),
    'x'.repeat(200),
    `${'w'.repeat(40)}-example-com-12-3456789012`,
  ];
  for (const name of table) {
    const ch = challengeName(order(name), 'https://acme.test/authz/abc');
    t.true(ch.length <= 63, `${ch.length} chars for an order of ${name.length}`);
    t.regex(ch, DNS1123_SUBDOMAIN, name);
  }
});

test('a Challenge name is a valid object name even when the cut falls right after a dot', (t) => {
  // cert-manager trims dots and dashes left at the cut (DNSSafeShortenTo52Characters);
  // otherwise `…example.-123` is rejected by the API server on every retry.
  const name = `${'a'.repeat(51)}.example-com-1-123`;
  t.regex(challengeName(order(name), 'https://acme.test/authz/abc'), DNS1123_SUBDOMAIN);
});
