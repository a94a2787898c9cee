/**
 * The Order a CertificateRequest hands over to is found again by name, so its name must be a
 * pure function of the request and the order spec: stable across restarts, new when the spec
 * changes, and always a valid object name.
 */
import test from 'ava';
import type { Order } from '../../src/api/types.ts';
import { orderName } from '../../src/controller/certificaterequests.ts';
import { certificateRequest } from '../helpers/builders.ts';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const spec = (dnsNames: string[], extra: Partial<Order['spec']> = {}): Order['spec'] => ({
  request: 'Q1NS',
  issuerRef: { name: 'letsencrypt', kind: 'ClusterIssuer', group: 'cert-manager.io' },
  dnsNames,
  ...extra,
});

test('the Order name is stable: the same request and spec give the same name', (t) => {
  const a = orderName(certificateRequest('web-1'), spec(['a.test']));
  const b = orderName(certificateRequest('web-1'), spec(['a.test']));
  t.is(a, b);
  t.regex(a, /^web-1-\d+$/);
});

test('the Order name changes when anything in the order spec changes', (t) => {
  const cr = certificateRequest('web-1');
  const base = orderName(cr, spec(['a.test']));
  const table: Array<[string, Order['spec']]> = [
    ['a name added', spec(['a.test', 'b.test'])],
    ['another CSR', { ...spec(['a.test']), request: 'T1RIRVI=' }],
    ['another issuer', { ...spec(['a.test']), issuerRef: { name: 'staging', kind: 'ClusterIssuer', group: 'cert-manager.io' } }],
    ['a duration', spec(['a.test'], { duration: '720h' })],
    ['an IP address', spec(['a.test'], { ipAddresses: ['10.0.0.1'] })],
  ];
  for (const [what, s] of table) t.not(orderName(cr, s), base, what);
});

test('the Order name depends on the request’s name', (t) => {
  t.not(orderName(certificateRequest('web-1'), spec(['a.test'])), orderName(certificateRequest('web-2'), spec(['a.test'])));
});

test('the Order name stays within 63 characters and a valid object name, however long the request name', (t) => {
  for (const name of ['web-1', 'a'.repeat(52), 'b'.repeat(100), `${'c'.repeat(240)}-12`]) {
    const o = orderName(certificateRequest(name), spec(['a.test']));
    t.true(o.length <= 63, `${o.length} chars for a request of ${name.length}`);
    t.regex(o, DNS1123_SUBDOMAIN, name);
  }
});

test('the Order name is a valid object name even when the cut falls right after a dot', (t) => {
  // A Certificate named after a host (www.example.com…) gives requests with dots in their names.
  const name = `${'a'.repeat(51)}.example.com-1`;
  t.regex(orderName(certificateRequest(name), spec(['a.test'])), DNS1123_SUBDOMAIN);
});
