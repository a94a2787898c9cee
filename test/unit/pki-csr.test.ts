/**
 * CSRs: what a Certificate spec puts into the request, read back as the
 * RequestChanged policy and the SelfSigned/CA signers read it.
 */
import test from 'ava';
import { createCsr, parseCsr, verifyCsr, type CsrOptions } from '../../src/pki/csr.ts';
import { generatePrivateKey, publicKeyFingerprint } from '../../src/pki/keys.ts';
import { normaliseIp } from '../../src/pki/names.ts';
import { nameConstraintsSpecKey } from '../../src/pki/name-constraints.ts';
import type { NameConstraints } from '../../src/api/types.ts';
import { encodeB64 } from '../../src/base/objects.ts';
import { DEFAULT_USAGES, usageBits, usagesEqual, usageStrings } from '../../src/pki/usages.ts';

const keys = { rsa: generatePrivateKey({}), ec: generatePrivateKey({ algorithm: 'ECDSA' }), ed: generatePrivateKey({ algorithm: 'Ed25519' }) };

/** CSR options with a key of the given kind, overridden by `extra`. */
async function csrFor(kind: keyof typeof keys, extra: Omit<CsrOptions, 'keyPem'>): Promise<{ pem: string; keyPem: string }> {
  const keyPem = await keys[kind];
  return { pem: await createCsr({ keyPem, ...extra }), keyPem };
}

for (const kind of ['rsa', 'ec', 'ed'] as const) {
  test(`a CSR signed with an ${kind} key reads back with every name it was given`, async (t) => {
    const { pem, keyPem } = await csrFor(kind, {
      commonName: 'www.a.test',
      dnsNames: ['www.a.test', 'a.test'],
      ipAddresses: ['10.0.0.1', '2001:DB8::1'],
      uris: ['spiffe://cluster.local/ns/a/sa/b'],
      subject: { organizations: ['Example'], organizationalUnits: ['Ops'], countries: ['NL'] },
    });
    t.true(pem.startsWith('-----BEGIN CERTIFICATE REQUEST-----'));
    t.true(await verifyCsr(pem));
    const csr = parseCsr(pem);
    t.is(csr.commonName, 'www.a.test');
    t.deepEqual(csr.dnsNames, ['www.a.test', 'a.test']);
    t.deepEqual(csr.ipAddresses, ['10.0.0.1', '2001:db8::1']);
    t.deepEqual(csr.uris, ['spiffe://cluster.local/ns/a/sa/b']);
    t.deepEqual(csr.organizations, ['Example']);
    t.deepEqual(csr.organizationalUnits, ['Ops']);
    t.deepEqual(csr.countries, ['NL']);
    t.is(csr.publicKeyFingerprint, publicKeyFingerprint(keyPem));
    t.false(csr.isCA);
  });
}

test('a CSR without usages carries cert-manager’s defaults: digital signature and key encipherment', async (t) => {
  const { pem } = await csrFor('ec', { dnsNames: ['a.test'] });
  t.deepEqual(parseCsr(pem).usages, [...DEFAULT_USAGES]);
});

test('a CSR carries the usages it was given, aliases in canonical form', async (t) => {
  const { pem } = await csrFor('ec', { dnsNames: ['a.test'], usages: ['signing', 'server auth', 'client auth', 's/mime'] });
  t.deepEqual(parseCsr(pem).usages, ['digital signature', 'server auth', 'client auth', 'email protection']);
});

test('a CA CSR asks for basic constraints and cert sign', async (t) => {
  const { pem } = await csrFor('ec', { commonName: 'Example CA', isCA: true });
  const csr = parseCsr(pem);
  t.true(csr.isCA);
  t.true(csr.usages.includes('cert sign'));
});

test('a CSR with only a common name has no SAN extension and still parses', async (t) => {
  const { pem } = await csrFor('ec', { commonName: 'only-cn.test' });
  const csr = parseCsr(pem);
  t.is(csr.commonName, 'only-cn.test');
  t.deepEqual(csr.dnsNames, []);
});

test('a CSR with no name at all is refused, naming the fields to set', async (t) => {
  await t.throwsAsync(csrFor('ec', {}), { message: /commonName, literalSubject, dnsNames, ipAddresses, uris, emailAddresses or otherNames/ });
});

test('an unknown usage is refused rather than dropped', async (t) => {
  await t.throwsAsync(csrFor('ec', { dnsNames: ['a.test'], usages: ['teleport'] }), { message: /unknown usages \["teleport"\]/ });
});

test('a CSR is read the same from PEM and from base64 of PEM, as stored in spec.request', async (t) => {
  const { pem } = await csrFor('ec', { dnsNames: ['a.test'] });
  t.deepEqual(parseCsr(encodeB64(pem)).dnsNames, ['a.test']);
});

test('garbage is not a CSR', (t) => {
  t.throws(() => parseCsr('not a csr'), { message: /neither PEM nor base64/ });
  t.throws(() => parseCsr('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n'), { message: /not valid DER/ });
});

test('a CSR whose body was tampered with fails verification', async (t) => {
  const { pem } = await csrFor('rsa', { dnsNames: ['a.test'] });
  const lines = pem.trim().split('\n');
  const body = lines.slice(1, -1).join('');
  const der = Buffer.from(body, 'base64');
  const at = der.indexOf(Buffer.from('a.test'));
  der[at] = 'b'.charCodeAt(0);
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  t.deepEqual(parseCsr(tampered).dnsNames, ['b.test']);
  t.false(await verifyCsr(tampered));
});

const usageEquality: Array<[string, string[] | undefined, string[] | undefined, boolean]> = [
  ['no usages equal the defaults spelled out', undefined, ['key encipherment', 'digital signature'], true],
  ['order does not matter', ['server auth', 'digital signature'], ['digital signature', 'server auth'], true],
  ['"signing" is "digital signature"', ['signing'], ['digital signature'], true],
  ['"s/mime" is "email protection"', ['s/mime'], ['email protection'], true],
  ['adding client auth is a change', ['server auth'], ['server auth', 'client auth'], false],
  ['dropping key encipherment is a change', ['digital signature', 'key encipherment'], ['digital signature'], false],
];

for (const [name, a, b, equal] of usageEquality) {
  test(`comparing usages: ${name}`, (t) => {
    t.is(usagesEqual(a, b), equal);
  });
}

test('usage strings survive a round trip through key usage bits and OIDs', (t) => {
  const all = ['digital signature', 'content commitment', 'key encipherment', 'key agreement', 'data encipherment', 'cert sign', 'crl sign', 'encipher only', 'decipher only', 'any', 'server auth', 'client auth', 'code signing', 'email protection', 'ipsec end system', 'ipsec tunnel', 'ipsec user', 'timestamping', 'ocsp signing', 'microsoft sgc', 'netscape sgc'];
  t.deepEqual(usageStrings(usageBits(all)), all);
});

const ipCases: Array<[string, string]> = [
  ['10.0.0.1', '10.0.0.1'],
  ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
  ['::ffff:10.0.0.1', '10.0.0.1'],
  ['0:0:0:0:0:0:0:1', '::1'],
];

for (const [input, canonical] of ipCases) {
  test(`the IP address ${input} is compared as ${canonical}`, (t) => {
    t.is(normaliseIp(input), canonical);
  });
}

test('name constraints in a spec read back from the CSR as the same key, IPv6 forms with a dotted tail or IPv4-mapped included', async (t) => {
  const specs: NameConstraints[] = [
    { permitted: { ipRanges: ['10.0.0.0/8', '2001:db8::/32'] } },
    { critical: true, permitted: { ipRanges: ['::ffff:10.0.0.0/104'] }, excluded: { dnsDomains: ['.evil.test'] } },
    { excluded: { ipRanges: ['64:ff9b::192.0.2.0/120', '2001:db8::1.2.3.4/128'], emailAddresses: ['ceo@good.test', '.good.test'], uriDomains: ['.good.test'] } },
  ];
  for (const spec of specs) {
    const { pem } = await csrFor('ec', { commonName: 'Sub CA', isCA: true, nameConstraints: spec });
    t.is(parseCsr(pem).nameConstraints, nameConstraintsSpecKey(spec), JSON.stringify(spec));
  }
  // A dotted tail is its own bytes (64:ff9b::c000:200), not hex digits read from '192'.
  t.regex(nameConstraintsSpecKey(specs[2]), /ipRanges:64:ff9b::c000:200\/120/);
  t.regex(nameConstraintsSpecKey(specs[1]), /ipRanges:::ffff:a00:0\/104/);
});

test('a spec name constraint Go would not read is refused, naming the entry', (t) => {
  t.throws(() => nameConstraintsSpecKey({ permitted: { dnsDomains: ['a..b'] } }), { message: 'spec.nameConstraints.permitted.dnsDomains entry "a..b" is not a domain of ASCII labels such as example.com or .example.com' });
  t.throws(() => nameConstraintsSpecKey({ excluded: { dnsDomains: ['bücher.test'] } }), { message: 'spec.nameConstraints.excluded.dnsDomains entry "bücher.test" is not ASCII' });
  t.throws(() => nameConstraintsSpecKey({ permitted: { ipRanges: ['10.0.0.0/33'] } }), { message: /ipRanges entry "10\.0\.0\.0\/33" is not a CIDR range/ });
  t.throws(() => nameConstraintsSpecKey({ permitted: { uriDomains: ['10.0.0.1'] } }), { message: /a URI constraint is a domain/ });
});

test('email and URI constraints are held to what Go reads: RFC 2821 mailboxes, domains, no bare address for a URI', (t) => {
  const email = (value: string) => () => nameConstraintsSpecKey({ permitted: { emailAddresses: [value] } });
  const uri = (value: string) => () => nameConstraintsSpecKey({ permitted: { uriDomains: [value] } });
  for (const honest of ['ceo@good.test', '"a b"@x.test', '"a@b"@x.test', 'a\\ b@x.test', 'a@b@x.test', 'a@', '.good.test', 'good.test', '']) {
    t.notThrows(email(honest), honest);
  }
  for (const bad of ['a..b@x.test', 'a(b@x.test', '.a@x.test', 'a.@x.test', 'a\u0001b@x.test', 'café@x.test', 'x\u0140y@z.test', '@x.test']) {
    t.throws(email(bad), { message: /is not (ASCII|a mailbox)/ }, bad);
  }
  for (const honest of ['.good.test', '[::1]', '.10.0.0.1', 'fe80::1%eth0']) t.notThrows(uri(honest), honest);
  for (const bad of ['10.0.0.1', '::1']) t.throws(uri(bad), { message: /a URI constraint is a domain/ }, bad);
});
