/**
 * Hand-made CSRs against the CSR reader and the local signers. Signing copies the CSR's SAN
 * extension into the certificate byte for byte, and approvers and the spec checks see only what
 * the reader reads; so every CSR that OpenSSL reads differently from certroute must be refused,
 * and only the spec (spec.isCA, spec.usages) decides what kind of certificate is issued.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { sign, X509Certificate } from 'node:crypto';
import { parseCsr } from '../../src/pki/csr.ts';
import { bitString, oid, readTlv, sequence, Tag, tlv } from '../../src/pki/der.ts';
import { pemEncode } from '../../src/pki/pem.ts';
import { generatePrivateKey } from '../../src/pki/keys.ts';
import { createCsr } from '../../src/pki/csr.ts';
import { CaSecretError, signCsr } from '../../src/pki/sign.ts';
import { BASIC_CONSTRAINTS, commonName, craftedCsr, extension, generalName, SAN } from '../helpers/crafted-csr.ts';

const DAY = 86_400_000;
const keyPem = generatePrivateKey({ algorithm: 'ECDSA' });

/** A CA that signs what the tests send, as a CA issuer does. */
const ca = (async () => {
  const caKey = await generatePrivateKey({ algorithm: 'ECDSA' });
  const root = await signCsr({ csrPem: await createCsr({ keyPem: caKey, commonName: 'Forgery Test CA', isCA: true }), durationMs: DAY, selfSignKeyPem: caKey, isCA: true });
  return { certPem: root.certificatePem, keyPem: caKey };
})();

/** What OpenSSL reads in a CSR, as text. */
function openssl(pem: string): string {
  return execFileSync('openssl', ['req', '-noout', '-text'], { input: pem }).toString();
}

test('a DNS name hidden in a constructed [2] SAN entry is refused, though OpenSSL reads it as DNS:evil.test', async (t) => {
  const san = extension(SAN, sequence(generalName(0x82, 'good.test'), generalName(0xa2, 'evil.test')));
  const pem = craftedCsr(await keyPem, [san]);
  // The attack is real: OpenSSL, and so anything that trusts the issued certificate, sees the hidden name.
  t.regex(openssl(pem), /DNS:evil\.test/);
  t.throws(() => parseCsr(pem), { message: /GeneralName with tag 0xa2/ });
  await t.throwsAsync(signCsr({ csrPem: pem, durationMs: DAY, issuer: await ca }), { message: /GeneralName with tag 0xa2/ });
});

test('SAN entries of every tag X.509 does not define are refused, and the kinds certroute does not issue are skipped', async (t) => {
  for (const tag of [0x80, 0x83, 0x84, 0x85, 0x89, 0xa1, 0xa6, 0xa7, 0xa8, 0x8f]) {
    const pem = craftedCsr(await keyPem, [extension(SAN, sequence(generalName(0x82, 'good.test'), generalName(tag, 'x')))]);
    t.throws(() => parseCsr(pem), { message: /GeneralName with tag/ }, `tag 0x${tag.toString(16)}`);
  }
  // A directoryName ([4], constructed) is a well-formed name of another kind: every reader agrees it is no DNS name.
  const directoryName = tlv(0xa4, sequence(tlv(Tag.SET, sequence(oid('2.5.4.3'), tlv(Tag.UTF8_STRING, Buffer.from('dir'))))));
  const csr = parseCsr(craftedCsr(await keyPem, [extension(SAN, sequence(generalName(0x82, 'good.test'), directoryName))]));
  t.deepEqual(csr.dnsNames, ['good.test']);
});

test('SAN values that are not what their kind says are refused: a non-ASCII DNS name, an IP of 5 bytes, an otherName of two values', async (t) => {
  const nonAscii = tlv(0x82, Buffer.from('gööd.test'));
  const fiveBytes = tlv(0x87, Buffer.from([10, 0, 0, 1, 2]));
  const otherName = tlv(0xa0, oid('1.3.6.1.4.1.311.20.2.3'), tlv(0xa0, tlv(Tag.UTF8_STRING, Buffer.from('a@b.test')), tlv(Tag.UTF8_STRING, Buffer.from('c@d.test'))));
  const cases: Array<[string, Buffer, RegExp]> = [
    ['non-ASCII dNSName', nonAscii, /dNSName .* is not ASCII/],
    ['iPAddress of 5 bytes', fiveBytes, /iPAddress of 5 bytes/],
    ['otherName holding two values', otherName, /malformed otherName/],
  ];
  for (const [what, name, message] of cases) {
    const pem = craftedCsr(await keyPem, [extension(SAN, sequence(generalName(0x82, 'good.test'), name))]);
    t.throws(() => parseCsr(pem), { message }, what);
  }
});

test('an extension with extra elements, a BOOLEAN without content, or one extension twice is refused', async (t) => {
  const dns = sequence(generalName(0x82, 'good.test'));
  const cases: Array<[string, Uint8Array[], RegExp]> = [
    // OID, BOOLEAN, an OCTET STRING a reader may take, and the one another may take.
    ['four elements', [sequence(oid(SAN), tlv(Tag.BOOLEAN, Buffer.from([0])), tlv(Tag.OCTET_STRING, sequence(generalName(0x82, 'shown.test'))), tlv(Tag.OCTET_STRING, dns))], /malformed extension/],
    ['a criticality BOOLEAN of no bytes', [sequence(oid(SAN), tlv(Tag.BOOLEAN), tlv(Tag.OCTET_STRING, dns))], /malformed BOOLEAN/],
    ['a criticality that is no BOOLEAN', [sequence(oid(SAN), tlv(Tag.INTEGER, Buffer.from([1])), tlv(Tag.OCTET_STRING, dns))], /malformed BOOLEAN/],
    ['the SAN extension twice', [extension(SAN, dns), extension(SAN, sequence(generalName(0x82, 'evil.test')))], /2\.5\.29\.17 appears twice/],
  ];
  const key = await keyPem;
  for (const [what, extensions, message] of cases) t.throws(() => parseCsr(craftedCsr(key, extensions)), { message }, what);
  // Two extension lists in the one extensionRequest: readers disagree on which counts.
  const twoLists = craftedCsr(await keyPem, [], { lists: [[extension(SAN, dns)], [extension(SAN, sequence(generalName(0x82, 'evil.test')))]] });
  t.throws(() => parseCsr(twoLists), { message: /one extensionRequest attribute with one list/ });
});

test('basic constraints with a cA BOOLEAN of no bytes are refused, not read as cA=TRUE', async (t) => {
  const pem = craftedCsr(await keyPem, [extension(SAN, sequence(generalName(0x82, 'good.test'))), extension(BASIC_CONSTRAINTS, sequence(tlv(Tag.BOOLEAN)), true)]);
  t.throws(() => parseCsr(pem), { message: /malformed BOOLEAN/ });
});

test('a CSR asking for cA=TRUE gets no CA certificate unless spec.isCA says so', async (t) => {
  const issuer = await ca;
  const csrPem = await createCsr({ keyPem: await keyPem, commonName: 'Sneaky Sub CA', isCA: true });
  t.true(parseCsr(csrPem).isCA);
  // A request that leaves spec.isCA out (what an approver reads as "not a CA") is refused.
  await t.throwsAsync(signCsr({ csrPem, durationMs: DAY, issuer }), { message: /basic constraints say cA=true but spec\.isCA is false/ });
  await t.throwsAsync(signCsr({ csrPem, durationMs: DAY, issuer, isCA: false }), { message: /cA=true but spec\.isCA is false/ });
  // With spec.isCA, it is a CA; and spec.isCA alone makes one from a CSR that encodes no constraints.
  t.true(new X509Certificate((await signCsr({ csrPem, durationMs: DAY, issuer, isCA: true })).certificatePem).ca);
  const plain = await createCsr({ keyPem: await keyPem, commonName: 'Sub CA', encodeUsagesInRequest: false });
  t.true(new X509Certificate((await signCsr({ csrPem: plain, durationMs: DAY, issuer, isCA: true })).certificatePem).ca);
  // And a CSR saying cA=FALSE is refused for a spec that asks for a CA.
  const leafBasic = craftedCsr(await keyPem, [extension(BASIC_CONSTRAINTS, sequence(), true)], { commonName: 'leaf' });
  await t.throwsAsync(signCsr({ csrPem: leafBasic, durationMs: DAY, issuer, isCA: true }), { message: /cA=false but spec\.isCA is true/ });
});

test('usages the CSR encodes must be spec.usages: a code-signing CSR is refused for a spec that lists none', async (t) => {
  const issuer = await ca;
  const csrPem = await createCsr({ keyPem: await keyPem, dnsNames: ['a.test'], usages: ['digital signature', 'code signing'] });
  await t.throwsAsync(signCsr({ csrPem, durationMs: DAY, issuer }), { message: /key usages \[digital signature, code signing\] are not spec\.usages \[digital signature, key encipherment\]/ });
  const signed = new X509Certificate((await signCsr({ csrPem, durationMs: DAY, issuer, usages: ['code signing', 'signing'] })).certificatePem);
  t.regex(signed.toLegacyObject().ext_key_usage?.join(',') ?? '', /1\.3\.6\.1\.5\.5\.7\.3\.3/);
});

test('key usage bits past the nine X.509 names are not read, and a key usage that is no BIT STRING is refused', async (t) => {
  const dns = extension(SAN, sequence(generalName(0x82, 'good.test')));
  // digitalSignature (bit 0) and bit 31, which a shift by 31 would turn into a negative flag set.
  const wide = Buffer.from([0x80, 0, 0, 0x01]);
  const csr = parseCsr(craftedCsr(await keyPem, [dns, extension('2.5.29.15', bitString(wide), true)]));
  t.deepEqual(csr.usages, ['digital signature']);
  const notBits = craftedCsr(await keyPem, [dns, extension('2.5.29.15', tlv(Tag.OCTET_STRING, Buffer.from([0x80])), true)]);
  t.throws(() => parseCsr(notBits), { message: /key usage extension is not a BIT STRING/ });
});

test('an otherName of another string type (an SRVName is IA5) is a name of its own kind: skipped, and the CSR still signs', async (t) => {
  const srvName = tlv(0xa0, oid('1.3.6.1.5.5.7.8.7'), tlv(0xa0, tlv(Tag.IA5_STRING, Buffer.from('_https.good.test'))));
  const pem = craftedCsr(await keyPem, [extension(SAN, sequence(generalName(0x82, 'good.test'), srvName))]);
  t.deepEqual(parseCsr(pem).dnsNames, ['good.test']);
  t.deepEqual(parseCsr(pem).otherNames, []);
  const issued = new X509Certificate((await signCsr({ csrPem: pem, durationMs: DAY, issuer: await ca })).certificatePem);
  t.regex(issued.subjectAltName ?? '', /^DNS:good\.test, othername:/);
});

test('a PEM that Go and Node would read as two different CSRs is refused: only one clean block', async (t) => {
  const key = await keyPem;
  const good = craftedCsr(key, [extension(SAN, sequence(generalName(0x82, 'good.test')))]);
  const evil = craftedCsr(key, [extension(SAN, sequence(generalName(0x82, 'evil.test')))]);
  const body = (pem: string) => pem.split('\n').filter((l) => l && !l.startsWith('-----')).join('\n');
  const cases: Array<[string, string]> = [
    // Go's decoder takes the first block whatever its label; the old reader took the first CSR-labelled one.
    ['a first block of another label', `-----BEGIN NEW CERTIFICATE REQUEST-----\n${body(good)}\n-----END NEW CERTIFICATE REQUEST-----\n${evil}`],
    ['two CSR blocks', good + evil],
    // Node's base64 skips the '*', Go's refuses the block.
    ['a character outside base64', good.replace('\n', '\n*')],
    ['a header line', good.replace('\n', '\nProc-Type: 4,ENCRYPTED\n\n')],
    ['text before the block that looks like PEM', `-----BEGIN NOTE----- good.test\n${good}`],
    ['a block not at the start of a line', `see: ${good}`],
    // Node's base64 stops at the first '=', Go's refuses what follows it.
    ['data after a padding character', good.replace('\n-----END', '=QUFB\n-----END')],
  ];
  for (const [what, pem] of cases) t.throws(() => parseCsr(pem), { message: /must be one PEM block/ }, what);
  // One block, as PEM or as spec.request holds it (base64 of PEM), and the older label, are read.
  t.deepEqual(parseCsr(good).dnsNames, ['good.test']);
  t.deepEqual(parseCsr(Buffer.from(good).toString('base64')).dnsNames, ['good.test']);
  t.deepEqual(parseCsr(`-----BEGIN NEW CERTIFICATE REQUEST-----\n${body(good)}\n-----END NEW CERTIFICATE REQUEST-----\n`).dnsNames, ['good.test']);
  t.deepEqual(parseCsr(good.replaceAll('\n', '\r\n')).dnsNames, ['good.test'], 'CRLF line ends');
  // What `openssl req -text` prints: the request as text, then the one block.
  t.deepEqual(parseCsr(execFileSync('openssl', ['req', '-text'], { input: good }).toString()).dnsNames, ['good.test']);
});

test('a CSR attribute that is not a SEQUENCE, which Go skips, is refused rather than read for its extensions', async (t) => {
  const key = await keyPem;
  const pem = craftedCsr(key, [extension(SAN, sequence(generalName(0x82, 'bank.example.test')))]);
  const der = Buffer.from(pem.split('\n').filter((l) => l && !l.startsWith('-----')).join(''), 'base64');
  // The one attribute's SEQUENCE tag, found by its extensionRequest OID, turned into a SET.
  const at = der.indexOf(oid('1.2.840.113549.1.9.14')) - 2;
  t.is(der[at], Tag.SEQUENCE);
  der[at] = Tag.SET;
  const info = readTlv(der, readTlv(der, 0)!.start)!;
  const infoDer = der.subarray(info.header, info.end);
  const resigned = sequence(infoDer, sequence(oid('1.2.840.10045.4.3.2')), bitString(sign('sha256', infoDer, key)));
  t.throws(() => parseCsr(pemEncode('CERTIFICATE REQUEST', resigned)), { message: /attribute that is not a SEQUENCE/ });
});

test('a subject another reader would read differently is refused: a constructed string, two common names, bad UTF-8, UniversalString, NUL', async (t) => {
  const key = await keyPem;
  const san = [extension(SAN, sequence(generalName(0x82, 'good.test')))];
  // A constructed UTF8String of two pieces: OpenSSL reads CN = bank.example.com and matches a host by it.
  const constructed = tlv(0x2c, tlv(Tag.UTF8_STRING, Buffer.from('bank.')), tlv(Tag.UTF8_STRING, Buffer.from('example.com')));
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['a constructed UTF8String', sequence(commonName(constructed)), /not an OID and a directory string/],
    ['two common names', sequence(commonName(tlv(Tag.UTF8_STRING, Buffer.from('harmless'))), commonName(tlv(Tag.UTF8_STRING, Buffer.from('system:admin')))), /more than one commonName/],
    ['invalid UTF-8', sequence(commonName(tlv(Tag.UTF8_STRING, Buffer.from([0x61, 0xff, 0x62])))), /not an OID and a directory string/],
    ['an empty relative name', sequence(tlv(Tag.SET)), /not a SET of attributes/],
    // Go reads no UniversalString: the common name is empty to a Go approver, a host name to OpenSSL.
    ['a UniversalString', sequence(commonName(tlv(0x1c, Buffer.from([...'bank.example.test'].flatMap((c) => [0, 0, 0, c.charCodeAt(0)]))))), /not an OID and a directory string/],
    // Go drops a BMPString's last NUL; "bank\0" is not "bank".
    ['a BMPString ending in NUL', sequence(commonName(tlv(Tag.BMP_STRING, Buffer.from([0, 0x62, 0, 0x61, 0, 0x6e, 0, 0x6b, 0, 0])))), /not an OID and a directory string/],
    ['a T61String beyond ASCII', sequence(commonName(tlv(Tag.T61_STRING, Buffer.from([0x62, 0xe9])))), /not an OID and a directory string/],
  ];
  for (const [what, subject, message] of cases) t.throws(() => parseCsr(craftedCsr(key, san, { subject })), { message }, what);
  t.regex(openssl(craftedCsr(key, [], { subject: sequence(commonName(constructed)) })), /CN ?= ?bank\.example\.com/, 'the forgery is real');
});

test("a CA Secret that cannot sign is the issuer's problem (CaSecretError), not the request's", async (t) => {
  const issuer = await ca;
  const csrPem = await createCsr({ keyPem: await keyPem, dnsNames: ['a.test'] });
  const otherKey = await generatePrivateKey({ algorithm: 'ECDSA' });
  const error = await t.throwsAsync(signCsr({ csrPem, durationMs: DAY, issuer: { certPem: issuer.certPem, keyPem: otherKey } }), { message: /tls\.key does not match/ });
  t.true(error instanceof CaSecretError);
  const forged = craftedCsr(await keyPem, [extension(SAN, sequence(generalName(0xa2, 'evil.test')))]);
  t.false((await t.throwsAsync(signCsr({ csrPem: forged, durationMs: DAY, issuer }))) instanceof CaSecretError);
});

test('an otherName whose value is a UTF8String in pieces, which OpenSSL joins into an email it matches, is refused', async (t) => {
  const pieces = tlv(0x2c, tlv(Tag.UTF8_STRING, Buffer.from('ceo@')), tlv(Tag.UTF8_STRING, Buffer.from('bank.example')));
  const mailbox = tlv(0xa0, oid('1.3.6.1.5.5.7.8.9'), tlv(0xa0, pieces));
  const pem = craftedCsr(await keyPem, [extension(SAN, sequence(generalName(0x82, 'good.test'), mailbox))]);
  t.throws(() => parseCsr(pem), { message: /otherName whose value is a constructed string/ });
  const badUtf8 = tlv(0xa0, oid('1.3.6.1.5.5.7.8.9'), tlv(0xa0, tlv(Tag.UTF8_STRING, Buffer.from([0x61, 0xc0, 0x40]))));
  const badPem = craftedCsr(await keyPem, [extension(SAN, sequence(badUtf8))]);
  t.throws(() => parseCsr(badPem), { message: /not valid UTF-8/ });
});

const NAME_CONSTRAINTS = '2.5.29.30';
const ipConstraint = (bytes: number[]) => tlv(0x87, Buffer.from(bytes));

test('name constraints a Go approver would refuse or read otherwise are refused; good ones are written anew, not copied', async (t) => {
  const key = await keyPem;
  const issuer = await ca;
  const caCsr = (value: Uint8Array) => craftedCsr(key, [extension(BASIC_CONSTRAINTS, sequence(tlv(Tag.BOOLEAN, Buffer.from([0xff]))), true), extension(NAME_CONSTRAINTS, value, true)], { commonName: 'Sub CA' });
  const permitted = (...names: Uint8Array[]) => tlv(0xa0, ...names.map((n) => sequence(n)));
  const excluded = (...names: Uint8Array[]) => tlv(0xa1, ...names.map((n) => sequence(n)));
  const cases: Array<[string, Uint8Array, RegExp]> = [
    // 10.0.0.0 with mask 0.255.0.0: the library read /8; OpenSSL applies it byte by byte.
    ['a mask with holes', sequence(permitted(ipConstraint([10, 0, 0, 0, 0, 0xff, 0, 0]))), /mask that is not contiguous/],
    ['excluded before permitted', sequence(excluded(generalName(0x82, 'evil.test')), permitted(generalName(0x82, 'good.test'))), /not \{ \[0\] permitted, \[1\] excluded \}/],
    ['a directoryName constraint', sequence(permitted(tlv(0xa4, sequence()))), /tag 0xa4/],
    ['a subtree with a minimum', sequence(tlv(0xa0, sequence(generalName(0x82, 'good.test'), tlv(0x80, Buffer.from([1]))))), /subtree that is not one name/],
    ['an IP range of 5 bytes', sequence(permitted(ipConstraint([10, 0, 0, 0, 255]))), /IP range of 5 bytes/],
  ];
  for (const [what, value, message] of cases) t.throws(() => parseCsr(caCsr(value)), { message }, what);
  // Indefinite length (BER): the reader takes no such TLV.
  const ber = Buffer.concat([Buffer.from([0x30, 0x80]), permitted(generalName(0x82, 'good.test')), Buffer.from([0, 0])]);
  t.throws(() => parseCsr(caCsr(ber)), { message: /malformed DER|not valid DER/ });

  for (const [what, name] of [['an empty label', 'a..b'], ['a trailing dot', 'x.test.'], ['a space', 'a b.test']] as const) {
    t.throws(() => parseCsr(caCsr(sequence(permitted(generalName(0x82, name))))), { message: /not a domain of ASCII labels/ }, what);
  }
  t.throws(() => parseCsr(caCsr(sequence(permitted(generalName(0x86, '10.0.0.1'))))), { message: /a URI constraint is a domain/ });

  const good = caCsr(sequence(permitted(generalName(0x82, '.good.test'), ipConstraint([10, 0, 0, 0, 255, 0, 0, 0])), excluded(generalName(0x81, 'ceo@good.test'))));
  const signed = (await signCsr({ csrPem: good, durationMs: DAY, issuer, isCA: true })).certificatePem;
  const text = execFileSync('openssl', ['x509', '-noout', '-text'], { input: signed }).toString();
  t.regex(text, /X509v3 Name Constraints: critical\s+Permitted:\s+DNS:\.good\.test\s+IP:10\.0\.0\.0\/255\.0\.0\.0\s+Excluded:\s+email:ceo@good\.test/);

  // An IPv4-mapped IPv6 range (::ffff:192.168.0.0, IPv6 mask /16) permits no IPv4 name to a Go
  // reader; rewritten as 192.168.0.0/16 it would permit 192.168.1.1. It stays the same 32 bytes.
  const mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 0, 0, 0xff, 0xff, ...Array<number>(14).fill(0)];
  const mappedCa = (await signCsr({ csrPem: caCsr(sequence(permitted(ipConstraint(mapped)))), durationMs: DAY, issuer, isCA: true })).certificatePem;
  const ext = new X509Certificate(mappedCa).raw;
  t.true(ext.includes(Buffer.from([0x87, 32, ...mapped])), 'the mapped range is written as its own 32 bytes');
  t.false(ext.includes(Buffer.from([0x87, 8, 192, 168, 0, 0, 0xff, 0xff, 0, 0])), 'not as an IPv4 range');
});

test('a BOOLEAN of 0x01 is refused, as Go refuses it, and an ECDSA signature labelled RSA does not verify', async (t) => {
  const key = await keyPem;
  const oneTrue = sequence(oid(SAN), tlv(Tag.BOOLEAN, Buffer.from([0x01])), tlv(Tag.OCTET_STRING, sequence(generalName(0x82, 'good.test'))));
  t.throws(() => parseCsr(craftedCsr(key, [oneTrue])), { message: /malformed BOOLEAN/ });
  // The same CSR, its algorithm identifier swapped for sha256WithRSAEncryption.
  const pem = craftedCsr(key, [extension(SAN, sequence(generalName(0x82, 'good.test')))]);
  const der = Buffer.from(pem.split('\n').filter((l) => l && !l.startsWith('-----')).join(''), 'base64');
  const outer = readTlv(der, 0)!;
  const info = readTlv(der, outer.start)!;
  const algorithm = readTlv(der, info.end)!;
  const relabelled = sequence(der.subarray(info.header, info.end), sequence(oid('1.2.840.113549.1.1.11'), tlv(0x05)), der.subarray(algorithm.end, outer.end));
  await t.throwsAsync(signCsr({ csrPem: pemEncode('CERTIFICATE REQUEST', relabelled), durationMs: DAY, issuer: await ca }), { message: /signature is invalid/ });
});
