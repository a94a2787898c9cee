/**
 * cert-manager's Certificate fields beyond names and keys, through the real controller and the
 * SelfSigned and CA issuers: each test applies the example of cert-manager's documentation for
 * its field (quoted above the test) and reads the result the way a user would, with
 * `openssl x509 -text` and `openssl pkey` on the Secret's keys.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { kubectl } from '../env/stack.ts';
import {
  applyYaml, cleanUpFile, freshNamespace, kubectlJson, readSecret, secretBytes, secretPem, selfSignedNamespace, startController, waitFor, waitForCertificateRevision,
} from '../helpers/controller.ts';
import { certificateYaml, deleteIssuers, newIssuer } from '../helpers/issuance.ts';

const tmp = mkdtempSync(join(tmpdir(), 'certroute-fields-'));
let files = 0;

test.before(async () => {
  await startController();
});

test.after.always(async () => {
  await cleanUpFile();
  await deleteIssuers();
  rmSync(tmp, { recursive: true, force: true });
});

/** Runs openssl on Secret data written to files; `{file}` placeholders are replaced by their paths. */
async function openssl(args: Array<string | { file: Buffer | string }>): Promise<string> {
  const argv = args.map((a) => {
    if (typeof a === 'string') return a;
    const path = join(tmp, `f${++files}`);
    writeFileSync(path, a.file);
    return path;
  });
  const { stdout } = await promisify(execFile)('openssl', argv, { maxBuffer: 8 << 20 });
  return stdout;
}

// cert-manager, "Certificate resource", Additional Certificate Output Formats:
//   additionalOutputFormats:
//   - type: CombinedPEM
//   - type: DER
// gives a Secret with
//   tls-combined.pem: <PEM private key + "\n" + PEM signed certificate chain>
//   key.der: <DER binary format of private key>
test('additionalOutputFormats CombinedPEM and DER add tls-combined.pem and key.der, and dropping one rewrites the Secret without re-issuing', async (t) => {
  const ns = await selfSignedNamespace('formats');
  const certificate = (formats: string) => `apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: my-cert, namespace: ${ns}}
spec:
  secretName: my-cert-tls
  dnsNames: [formats.example.com]
  issuerRef: {name: selfsigned}
  additionalOutputFormats:
${formats}`;
  await applyYaml(certificate('  - type: CombinedPEM\n  - type: DER\n'));
  await waitForCertificateRevision(ns, 'my-cert', 1, 60_000);
  const secret = await readSecret(ns, 'my-cert-tls');
  const key = secretPem(secret, 'tls.key');
  const chain = secretPem(secret, 'tls.crt');
  t.is(secretPem(secret, 'tls-combined.pem'), `${key}\n${chain}`, 'tls-combined.pem is tls.key, a newline, tls.crt');
  const fromCombined = await openssl(['x509', '-noout', '-text', '-in', { file: secretBytes(secret, 'tls-combined.pem') }]);
  t.regex(fromCombined, /DNS:formats\.example\.com/, 'openssl x509 reads the certificate out of tls-combined.pem');
  const publicFromCombined = await openssl(['pkey', '-pubout', '-in', { file: secretBytes(secret, 'tls-combined.pem') }]);
  const publicFromDer = await openssl(['pkey', '-pubout', '-inform', 'DER', '-in', { file: secretBytes(secret, 'key.der') }]);
  const publicFromCert = await openssl(['x509', '-noout', '-pubkey', '-in', { file: chain }]);
  t.is(publicFromDer, publicFromCert, 'key.der is the private key of the certificate, in binary');
  t.is(publicFromCombined, publicFromCert, 'the key in tls-combined.pem is the private key of the certificate');

  await applyYaml(certificate('  - type: CombinedPEM\n'));
  const rewritten = await waitFor('key.der to leave the Secret', async () => {
    const s = await readSecret(ns, 'my-cert-tls');
    return s.data['key.der'] === undefined ? s : undefined;
  }, 60_000);
  t.is(secretPem(rewritten, 'tls.crt'), chain, 'the certificate was not re-issued');
  t.is(secretPem(rewritten, 'tls-combined.pem'), `${key}\n${chain}`);
  const cert = await kubectlJson<{ status: { revision: number } }>(['-n', ns, 'get', 'certificate', 'my-cert']);
  t.is(cert.status.revision, 1);
  const requests = (await kubectl(['-n', ns, 'get', 'certificaterequests', '-o', 'name'])).stdout.trim().split('\n');
  t.deepEqual(requests, ['certificaterequest.cert-manager.io/my-cert-1'], 'no second CertificateRequest');
});

/** Applies a Certificate for the namespace's `selfsigned` Issuer (or another), waits for it and returns `openssl x509 -text` of its leaf. */
async function issuedText(ns: string, name: string, spec: string, issuer = 'selfsigned'): Promise<string> {
  await applyYaml(`apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: ${name}, namespace: ${ns}}
spec:
  secretName: ${name}-tls
  issuerRef: {name: ${issuer}}
${spec}`);
  await waitForCertificateRevision(ns, name, 1, 60_000);
  const secret = await readSecret(ns, `${name}-tls`);
  return openssl(['x509', '-noout', '-text', '-nameopt', 'RFC2253', '-in', { file: secretPem(secret, 'tls.crt') }]);
}

// cert-manager's exhaustive example Certificate ("Certificate resource"):
//   emailAddresses:
//     - john.doe@cert-manager.io
//   otherNames:
//     - oid: 1.3.6.1.4.1.311.20.2.3 # User Principal Name "OID"
//       utf8Value: upn@example.local
test('emailAddresses and a UPN otherName from cert-manager’s example are in the issued certificate’s SANs', async (t) => {
  const ns = await selfSignedNamespace('sans');
  const out = await issuedText(ns, 'example-com', `  dnsNames: [example.com]
  emailAddresses:
    - john.doe@cert-manager.io
  otherNames:
    - oid: 1.3.6.1.4.1.311.20.2.3 # User Principal Name "OID"
      utf8Value: upn@example.local
`);
  t.regex(out, /DNS:example\.com, email:john\.doe@cert-manager\.io, othername: UPN::upn@example\.local/);
  const secret = await readSecret(ns, 'example-com-tls');
  t.is(secret.metadata.annotations?.['cert-manager.io/email-sans'], 'john.doe@cert-manager.io');
});

// cert-manager's API reference for literalSubject: "Example: `CN=foo,DC=corp,DC=example,DC=com`";
// the LDAP string format also gives the order of the attributes in the subject.
test('a literalSubject is the issued certificate’s subject, in the order written', async (t) => {
  const ns = await selfSignedNamespace('literal');
  const out = await issuedText(ns, 'ldap-client', '  literalSubject: "CN=foo,DC=corp,DC=example,DC=com"\n  usages: [client auth]\n');
  t.regex(out, /Subject: CN=foo,DC=corp,DC=example,DC=com\n/);
  t.regex(out, /TLS Web Client Authentication/);
});

// cert-manager's exhaustive example's subject, with every attribute its API has.
test('every subject attribute reaches the certificate and the Secret’s subject-* annotations', async (t) => {
  const ns = await selfSignedNamespace('subject');
  const out = await issuedText(ns, 'subject', `  commonName: example.com
  dnsNames: [example.com]
  subject:
    organizations: [jetstack]
    organizationalUnits: [platform]
    countries: [GB]
    provinces: [London]
    localities: [Westminster]
    streetAddresses: [1 Example Road]
    postalCodes: [SW1A 1AA]
    serialNumber: "1234"
`);
  t.regex(out, /Subject: serialNumber=1234,CN=example\.com,OU=platform,O=jetstack,postalCode=SW1A 1AA,street=1 Example Road,L=Westminster,ST=London,C=GB\n/);
  const annotations = (await readSecret(ns, 'subject-tls')).metadata.annotations ?? {};
  t.is(annotations['cert-manager.io/subject-postalcodes'], 'SW1A 1AA');
  t.is(annotations['cert-manager.io/subject-serialnumber'], '1234');
});

// cert-manager's API reference for signatureAlgorithm: "Allowed values for RSA keys: SHA256WithRSA,
// SHA384WithRSA, SHA512WithRSA. Allowed values for ECDSA keys: ECDSAWithSHA256, ECDSAWithSHA384,
// ECDSAWithSHA512." Honoured by the SelfSigned issuer, and by a CA issuer whose key has that type.
test('signatureAlgorithm is honoured by the SelfSigned issuer and by a CA issuer', async (t) => {
  const ns = await selfSignedNamespace('sigalg');
  const root = await issuedText(ns, 'root', `  isCA: true
  commonName: sigalg root
  privateKey: {algorithm: ECDSA, size: 256}
  signatureAlgorithm: ECDSAWithSHA512
`);
  t.regex(root, /Signature Algorithm: ecdsa-with-SHA512/);
  await applyYaml(`apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: root, namespace: ${ns}}
spec:
  ca: {secretName: root-tls}
`);
  const leaf = await issuedText(ns, 'leaf', `  dnsNames: [leaf.example.com]
  privateKey: {algorithm: ECDSA, size: 256}
  signatureAlgorithm: ECDSAWithSHA384
`, 'root');
  t.regex(leaf, /Signature Algorithm: ecdsa-with-SHA384/);
  t.regex(leaf, /Issuer: CN=sigalg root/);
});

// cert-manager's API reference for nameConstraints: "x.509 certificate NameConstraint extension which
// MUST NOT be used in a non-CA certificate"; permitted and excluded take dnsDomains, ipRanges,
// emailAddresses and uriDomains.
test('nameConstraints of a CA certificate are in the issued CA certificate', async (t) => {
  const ns = await selfSignedNamespace('constraints');
  const out = await issuedText(ns, 'constrained-ca', `  isCA: true
  commonName: constrained ca
  nameConstraints:
    critical: true
    permitted:
      dnsDomains: [example.com]
      ipRanges: [10.0.0.0/8]
    excluded:
      emailAddresses: [example.org]
`);
  t.regex(out, /X509v3 Name Constraints: critical\s+Permitted:\s+DNS:example\.com\s+IP:10\.0\.0\.0\/255\.0\.0\.0\s+Excluded:\s+email:example\.org/);
  t.regex(out, /CA:TRUE/);
});

test('a name constraint no CSR can carry fails the issuance with the entry named, backed off, and nothing is issued', async (t) => {
  const ns = await selfSignedNamespace('badconstraint');
  await applyYaml(`apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: ca, namespace: ${ns}}
spec:
  secretName: ca-tls
  issuerRef: {name: selfsigned}
  isCA: true
  commonName: constrained ca
  nameConstraints:
    permitted:
      dnsDomains: [bücher.example]
`);
  const cert = await waitFor('the failed issuance', async () => {
    const c = await kubectlJson<{ status?: { failedIssuanceAttempts?: number; conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> } }>(['-n', ns, 'get', 'certificate', 'ca']);
    return c.status?.failedIssuanceAttempts ? c : undefined;
  }, 30_000);
  const issuing = cert.status?.conditions?.find((c) => c.type === 'Issuing');
  t.like(issuing, { status: 'False', reason: 'Failed' });
  t.regex(issuing?.message ?? '', /no CSR can be made from the spec: spec\.nameConstraints\.permitted\.dnsDomains entry "bücher\.example" is not ASCII/);
  t.is(cert.status?.failedIssuanceAttempts, 1);
  const requests = await kubectlJson<{ items: unknown[] }>(['-n', ns, 'get', 'certificaterequests']);
  t.deepEqual(requests.items, [], 'no CertificateRequest');
  await t.throwsAsync(kubectl(['-n', ns, 'get', 'secret', 'ca-tls']), undefined, 'no Secret');
});

// cert-manager's CA issuer fields: crlDistributionPoints, ocspServers ("for example
// http://ocsp.int-x3.letsencrypt.org") and issuingCertificateURLs.
test('a CA issuer’s CRL distribution points, OCSP servers and issuing certificate URLs are in what it issues', async (t) => {
  const ns = await selfSignedNamespace('caurls');
  await issuedText(ns, 'ca', '  isCA: true\n  commonName: url ca\n');
  await applyYaml(`apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: ca-issuer, namespace: ${ns}}
spec:
  ca:
    secretName: ca-tls
    crlDistributionPoints: [http://crl.example.com/ca.crl]
    ocspServers: [http://ocsp.int-x3.letsencrypt.org]
    issuingCertificateURLs: [http://ca.example.com/ca.crt]
`);
  const out = await issuedText(ns, 'leaf', '  dnsNames: [leaf.example.com]\n', 'ca-issuer');
  t.regex(out, /X509v3 CRL Distribution Points:\s+Full Name:\s+URI:http:\/\/crl\.example\.com\/ca\.crl/);
  t.regex(out, /Authority Information Access:\s+OCSP - URI:http:\/\/ocsp\.int-x3\.letsencrypt\.org\s+CA Issuers - URI:http:\/\/ca\.example\.com\/ca\.crt/);
});

test('changing emailAddresses re-issues the certificate with the new address', async (t) => {
  const ns = await selfSignedNamespace('reissue');
  const spec = (email: string) => `apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: mail, namespace: ${ns}}
spec:
  secretName: mail-tls
  issuerRef: {name: selfsigned}
  emailAddresses: [${email}]
`;
  await applyYaml(spec('a@example.com'));
  await waitForCertificateRevision(ns, 'mail', 1, 60_000);
  await applyYaml(spec('b@example.com'));
  await waitForCertificateRevision(ns, 'mail', 2, 60_000);
  const out = await openssl(['x509', '-noout', '-text', '-in', { file: secretPem(await readSecret(ns, 'mail-tls'), 'tls.crt') }]);
  t.regex(out, /email:b@example\.com/);
  t.notRegex(out, /email:a@example\.com/);
});

// cert-manager's ACME issuer field: "enableDurationFeature: Enables requesting a Not After date on
// certificates that matches the duration of the certificate." Pebble honours notAfter in newOrder.
test('an ACME issuer with enableDurationFeature gets a certificate for the Certificate’s duration from Pebble', async (t) => {
  const ns = await freshNamespace('duration');
  const issuer = await newIssuer('pebble-duration', undefined, { acme: { enableDurationFeature: true } });
  await applyYaml(certificateYaml(ns, 'short', [`short.${ns}.test`], issuer, { duration: '48h', renewBefore: '1h' }));
  await waitForCertificateRevision(ns, 'short', 1, 120_000);
  const out = await openssl(['x509', '-noout', '-startdate', '-enddate', '-dateopt', 'iso_8601', '-in', { file: secretPem(await readSecret(ns, 'short-tls'), 'tls.crt') }]);
  const start = Date.parse(/notBefore=(.+)/.exec(out)?.[1] ?? '');
  const end = Date.parse(/notAfter=(.+)/.exec(out)?.[1] ?? '');
  const hours = (end - start) / 3_600_000;
  t.log(`issued lifetime ${hours.toFixed(2)} h`);
  // Pebble's default lifetime is far longer; 48 h (give or take the seconds between order and issuance) is what was asked for.
  t.true(hours > 47 && hours < 49, `lifetime ${hours} h`);
});
