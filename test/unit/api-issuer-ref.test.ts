import test from 'ava';
import { formatIssuerRef, issuerRefsEqual, normalizeIssuerRef } from '../../src/api/issuer-ref.ts';

test('an issuer reference without kind or group means an Issuer of cert-manager.io', (t) => {
  t.deepEqual(normalizeIssuerRef({ name: 'ca' }), { name: 'ca', kind: 'Issuer', group: 'cert-manager.io' });
  t.deepEqual(normalizeIssuerRef({ name: 'ca', kind: '', group: '' }), { name: 'ca', kind: 'Issuer', group: 'cert-manager.io' });
  t.is(formatIssuerRef({ name: 'ca' }), 'Issuer.cert-manager.io/ca');
});

const pairs: Array<[string, Parameters<typeof issuerRefsEqual>[0], Parameters<typeof issuerRefsEqual>[1], boolean]> = [
  ['the defaults spelled out', { name: 'ca' }, { name: 'ca', kind: 'Issuer', group: 'cert-manager.io' }, true],
  ['another name', { name: 'ca' }, { name: 'other' }, false],
  ['a ClusterIssuer of the same name', { name: 'ca' }, { name: 'ca', kind: 'ClusterIssuer' }, false],
  ['an external issuer’s group', { name: 'ca', kind: 'Issuer' }, { name: 'ca', kind: 'Issuer', group: 'awspca.cert-manager.io' }, false],
];
for (const [name, a, b, equal] of pairs) {
  test(`issuer references compared with their defaults: ${name}`, (t) => {
    t.is(issuerRefsEqual(a, b), equal);
    t.is(issuerRefsEqual(b, a), equal);
  });
}
