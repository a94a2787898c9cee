/**
 * The Order reconciler's pure parts: which solver cert-manager would pick for a name, the
 * stable names of the Challenges an Order creates, and the poll interval that starts fast (Pebble
 * validates in milliseconds) and backs off to a cap.
 */
import test from 'ava';
import type { AcmeSolver } from '../../src/api/types.ts';
import { challengeName, Poller, selectSolver } from '../../src/controller/orders.ts';
import { http01Solver, issuer, order, withSolvers } from '../helpers/builders.ts';

/** DNS-1123 subdomain: what the API server demands of an object name. */
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const nameOf = (s: AcmeSolver | undefined) => s?.http01?.ingress?.name;

// ── selectSolver ────────────────────────────────────────────────────────────

const catchAll = http01Solver('catch-all');
const byLabels = http01Solver('labels', { matchLabels: { team: 'edge' } });
const byZone = http01Solver('zone example.com', { dnsZones: ['example.com'] });
const bySubZone = http01Solver('zone sub.example.com', { dnsZones: ['sub.example.com'] });
const byName = http01Solver('name www.example.com', { dnsNames: ['www.example.com'] });
const dns01ByName: AcmeSolver = { selector: { dnsNames: ['www.example.com'] }, dns01: { cloudflare: {} } };

test('the most specific matching selector wins: dnsNames, then dnsZones, then matchLabels, then none', (t) => {
  const table: Array<{ name: string; solvers: AcmeSolver[]; dnsName: string; labels?: Record<string, string>; want: string | undefined }> = [
    { name: 'no solvers', solvers: [], dnsName: 'www.example.com', want: undefined },
    { name: 'a solver without selector takes anything', solvers: [catchAll], dnsName: 'www.example.com', want: 'catch-all' },
    { name: 'dnsNames beats everything, listed last', solvers: [catchAll, byLabels, byZone, byName], dnsName: 'www.example.com', want: 'name www.example.com' },
    { name: 'dnsNames beats everything, listed first', solvers: [byName, byZone, byLabels, catchAll], dnsName: 'www.example.com', want: 'name www.example.com' },
    { name: 'a dnsNames selector that does not list the name is skipped', solvers: [byName, byZone], dnsName: 'api.example.com', want: 'zone example.com' },
    { name: 'dnsZones beats matchLabels and none', solvers: [catchAll, byLabels, byZone], dnsName: 'api.example.com', want: 'zone example.com' },
    { name: 'a zone matches its apex', solvers: [catchAll, byZone], dnsName: 'example.com', want: 'zone example.com' },
    { name: 'a zone matches only on a label boundary', solvers: [catchAll, byZone], dnsName: 'notexample.com', want: 'catch-all' },
    { name: 'a zone that does not contain the name is skipped', solvers: [byZone], dnsName: 'example.org', want: undefined },
    { name: 'matchLabels beats no selector', solvers: [catchAll, byLabels], dnsName: 'api.example.org', labels: { team: 'edge' }, want: 'labels' },
    { name: 'a matchLabels selector whose labels the Certificate lacks is skipped', solvers: [catchAll, byLabels], dnsName: 'api.example.org', labels: { team: 'core' }, want: 'catch-all' },
    { name: 'only a non-matching dnsNames selector: nothing', solvers: [byName], dnsName: 'api.example.com', want: undefined },
    { name: 'a dns01 solver is never picked for HTTP-01', solvers: [dns01ByName, catchAll], dnsName: 'www.example.com', want: 'catch-all' },
    { name: 'two equally specific solvers: the first listed wins', solvers: [http01Solver('first'), http01Solver('second')], dnsName: 'a.test', want: 'first' },
  ];
  for (const row of table) {
    t.is(nameOf(selectSolver(issuer('le', withSolvers(...row.solvers)), row.dnsName, row.labels)), row.want, row.name);
  }
});

test('between two matching dnsZones the longest zone wins, wherever it is listed', (t) => {
  const table: Array<{ solvers: AcmeSolver[]; dnsName: string; want: string }> = [
    { solvers: [bySubZone, byZone], dnsName: 'a.sub.example.com', want: 'zone sub.example.com' },
    { solvers: [byZone, bySubZone], dnsName: 'a.sub.example.com', want: 'zone sub.example.com' },
    { solvers: [byZone, bySubZone], dnsName: 'a.example.com', want: 'zone example.com' },
  ];
  for (const row of table) {
    t.is(nameOf(selectSolver(issuer('le', withSolvers(...row.solvers)), row.dnsName)), row.want, `${row.dnsName} with [${row.solvers.map(nameOf).join(', ')}]`);
  }
});

test('no issuer (not in the cache yet) or an issuer without ACME has no solver', (t) => {
  t.is(selectSolver(undefined, 'a.test'), undefined);
  t.is(selectSolver(issuer('ca', (i) => (i.spec = { ca: { secretName: 'ca' } })), 'a.test'), undefined);
});

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

// ── Poller ──────────────────────────────────────────────────────────────────

test('the poll interval doubles from the minimum and stops at the maximum', (t) => {
  const p = new Poller(25, 300);
  t.deepEqual(Array.from({ length: 7 }, () => p.next('apps/o')), [25, 50, 100, 200, 300, 300, 300]);
});

test('reset starts the poll interval from the minimum again, for that key only', (t) => {
  const p = new Poller(10, 1_000);
  p.next('a');
  p.next('a');
  p.next('b');
  p.reset('a');
  t.is(p.next('a'), 10);
  t.is(p.next('b'), 20, 'another key keeps its own count');
});

test('a reset of a key never polled is harmless', (t) => {
  const p = new Poller(10, 1_000);
  p.reset('never');
  t.is(p.next('never'), 10);
});
