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
  applyYaml, cleanUpFile, freshNamespace, kubectlJson, secretPem, startController, waitFor, waitForCertificateRevision, type SecretView,
} from '../helpers/controller.ts';

const tmp = mkdtempSync(join(tmpdir(), 'certroute-fields-'));
let files = 0;

test.before(async () => {
  await startController();
});

test.after.always(async () => {
  await cleanUpFile();
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

const readSecret = (ns: string, name: string): Promise<SecretView> => kubectlJson<SecretView>(['-n', ns, 'get', 'secret', name]);
const bytes = (s: SecretView, key: string): Buffer => Buffer.from(s.data[key] ?? '', 'base64');

/** A namespace with a SelfSigned Issuer named `selfsigned`. */
async function selfSignedNamespace(prefix: string): Promise<string> {
  const ns = await freshNamespace(prefix);
  await applyYaml(`apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: selfsigned, namespace: ${ns}}
spec:
  selfSigned: {}
`);
  return ns;
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
  const fromCombined = await openssl(['x509', '-noout', '-text', '-in', { file: bytes(secret, 'tls-combined.pem') }]);
  t.regex(fromCombined, /DNS:formats\.example\.com/, 'openssl x509 reads the certificate out of tls-combined.pem');
  const publicFromCombined = await openssl(['pkey', '-pubout', '-in', { file: bytes(secret, 'tls-combined.pem') }]);
  const publicFromDer = await openssl(['pkey', '-pubout', '-inform', 'DER', '-in', { file: bytes(secret, 'key.der') }]);
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
