/**
 * SelfSigned and CA issuers through the real controller (issue 3, test 7):
 * cert-manager's "bootstrapping a CA issuer" manifests, applied in one go,
 * give a self-signed root, an intermediate from a CA Issuer on that root, and
 * a leaf from a CA Issuer on the intermediate. Each Secret is checked the
 * way a TLS client would: node:crypto and `openssl verify`.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createCsr } from '../../src/pki/csr.ts';
import { generatePrivateKey } from '../../src/pki/keys.ts';
import { signCsr } from '../../src/pki/sign.ts';
import { kubectl } from '../env/stack.ts';
import {
  applyYaml, cleanUpFile, freshNamespace, kubectlJson, secretPem, startController, waitFor, waitForCertificateRevision, type SecretView,
} from '../helpers/controller.ts';

const tmp = mkdtempSync(join(tmpdir(), 'certroute-issuers-'));

test.before(async () => {
  await startController();
});

test.after.always(async () => {
  await cleanUpFile();
  rmSync(tmp, { recursive: true, force: true });
});

const pems = (bundle: string): string[] => bundle.split(/(?<=-----END CERTIFICATE-----)\s*/).filter((p) => p.includes('BEGIN CERTIFICATE')).map((p) => `${p.trim()}\n`);
const certs = (bundle: string): X509Certificate[] => pems(bundle).map((p) => new X509Certificate(p));

async function secret(ns: string, name: string): Promise<{ tlsCrt: string; tlsKey: string; caCrt: string; raw: SecretView }> {
  const raw = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', name]);
  return { tlsCrt: secretPem(raw, 'tls.crt'), tlsKey: secretPem(raw, 'tls.key'), caCrt: secretPem(raw, 'ca.crt'), raw };
}

async function opensslVerify(caPem: string, untrusted: string[], leafPem: string): Promise<string> {
  const file = (name: string, text: string) => {
    const p = join(tmp, name);
    writeFileSync(p, text);
    return p;
  };
  const args = ['verify', '-CAfile', file('ca.pem', caPem)];
  if (untrusted.length) args.push('-untrusted', file('untrusted.pem', untrusted.join('')));
  args.push(file('leaf.pem', leafPem));
  const { stdout } = await promisify(execFile)('openssl', args);
  return stdout.trim();
}

/** Issued by its own subject and signed by its own key (checkIssued would also demand keyCertSign, which a leaf lacks). */
const isSelfSigned = (c: X509Certificate): boolean => c.issuer === c.subject && c.verify(c.publicKey);

test('a SelfSigned root, a CA Issuer on it, an intermediate and a leaf, applied at once, all become Ready and chain to the root', async (t) => {
  const ns = await freshNamespace('localca');
  const started = Date.now();
  await applyYaml(`apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: selfsigned, namespace: ${ns}}
spec:
  selfSigned: {}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: root-ca, namespace: ${ns}}
spec:
  isCA: true
  commonName: certroute test root
  secretName: root-ca
  privateKey: {algorithm: ECDSA, size: 256}
  issuerRef: {name: selfsigned, kind: Issuer, group: cert-manager.io}
---
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: root, namespace: ${ns}}
spec:
  ca: {secretName: root-ca}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: intermediate-ca, namespace: ${ns}}
spec:
  isCA: true
  commonName: certroute test intermediate
  secretName: intermediate-ca
  privateKey: {algorithm: ECDSA, size: 256}
  issuerRef: {name: root, kind: Issuer}
---
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: intermediate, namespace: ${ns}}
spec:
  ca: {secretName: intermediate-ca}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: leaf, namespace: ${ns}}
spec:
  secretName: leaf-tls
  dnsNames: [leaf.local.test]
  privateKey: {algorithm: ECDSA, size: 256}
  issuerRef: {name: intermediate, kind: Issuer}
`);
  // Three issuances, each waiting for the one before: on a loaded machine that took over 30 s.
  await waitForCertificateRevision(ns, 'leaf', 1, 90_000);
  t.log(`root, intermediate and leaf Ready ${Date.now() - started} ms after apply`);
  const issuers = (await kubectl(['-n', ns, 'get', 'issuer'])).stdout;
  for (const name of ['selfsigned', 'root', 'intermediate']) t.regex(issuers, new RegExp(`^${name}\\s+True\\s+`, 'm'), `kubectl get issuer shows ${name} READY True`);

  const root = await secret(ns, 'root-ca');
  const [rootCert] = certs(root.tlsCrt);
  t.true(rootCert!.ca, 'the root is a CA');
  t.true(isSelfSigned(rootCert!), 'the root is self-signed');
  t.is(root.caCrt, root.tlsCrt, 'a self-signed certificate\'s ca.crt is itself');
  t.true(rootCert!.checkPrivateKey(createPrivateKey(root.tlsKey)));

  const intermediate = await secret(ns, 'intermediate-ca');
  const [intermediateCert, ...rest] = certs(intermediate.tlsCrt);
  t.deepEqual(rest, [], 'tls.crt of a certificate signed by the root holds no root');
  t.true(intermediateCert!.ca);
  t.true(intermediateCert!.checkIssued(rootCert!) && intermediateCert!.verify(rootCert!.publicKey), 'the root signed the intermediate');
  t.is(intermediate.caCrt.trim(), root.tlsCrt.trim(), 'ca.crt is the root');

  const leaf = await secret(ns, 'leaf-tls');
  const leafChain = certs(leaf.tlsCrt);
  t.is(leafChain.length, 2, 'tls.crt is the leaf and the intermediate');
  const [leafCert, chained] = leafChain as [X509Certificate, X509Certificate];
  t.false(leafCert.ca);
  t.is(leafCert.subjectAltName, 'DNS:leaf.local.test');
  t.true(leafCert.checkPrivateKey(createPrivateKey(leaf.tlsKey)));
  t.is(chained.fingerprint256, intermediateCert!.fingerprint256);
  t.true(leafCert.checkIssued(intermediateCert!) && leafCert.verify(intermediateCert!.publicKey), 'the intermediate signed the leaf');
  // As cert-manager writes it: ca.crt is the top of the CA Secret's tls.crt, which for the
  // intermediate's Secret is the intermediate (its own ca.crt names the root).
  t.is(leaf.caCrt.trim(), intermediate.tlsCrt.trim(), 'the leaf\'s ca.crt is the CA that issued it');
  t.true(Date.parse(leafCert.validTo) <= Date.parse(intermediateCert!.validTo), 'the leaf does not outlive its CA');
  t.regex(await opensslVerify(intermediate.caCrt, pems(leaf.tlsCrt).slice(1), pems(leaf.tlsCrt)[0]!), /: OK$/, 'openssl builds leaf → intermediate (from tls.crt) → root');
  t.is(leaf.raw.metadata.annotations?.['cert-manager.io/issuer-name'], 'intermediate');
  t.is(leaf.raw.metadata.annotations?.['cert-manager.io/issuer-kind'], 'Issuer');

  // The next-key Secrets were consumed; none is left holding a private key.
  const leftover = await kubectlJson<{ items: Array<{ metadata: { name: string } }> }>(['-n', ns, 'get', 'secrets', '-l', 'cert-manager.io/next-private-key=true']);
  t.deepEqual(leftover.items.map((s) => s.metadata.name), [], 'no next-private-key Secret is left behind');
  // A CA Certificate is issued once: its request is not recreated in a loop.
  const requests = await kubectlJson<{ items: Array<{ metadata: { name: string } }> }>(['-n', ns, 'get', 'certificaterequests']);
  t.deepEqual(requests.items.map((r) => r.metadata.name).sort(), ['intermediate-ca-1', 'leaf-1', 'root-ca-1']);
});

test('a leaf from a SelfSigned Issuer is self-signed, not a CA, and is its own ca.crt', async (t) => {
  const ns = await freshNamespace('selfsigned');
  await applyYaml(`apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: selfsigned, namespace: ${ns}}
spec:
  selfSigned: {}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: self, namespace: ${ns}}
spec:
  secretName: self-tls
  commonName: self.local.test
  dnsNames: [self.local.test]
  issuerRef: {name: selfsigned}
`);
  await waitForCertificateRevision(ns, 'self', 1, 30_000);
  const s = await secret(ns, 'self-tls');
  const [cert, ...more] = certs(s.tlsCrt);
  t.deepEqual(more, []);
  t.true(isSelfSigned(cert!));
  t.false(cert!.ca);
  t.is(cert!.subjectAltName, 'DNS:self.local.test');
  t.regex(cert!.subject, /CN=self\.local\.test/);
  t.true(cert!.checkPrivateKey(createPrivateKey(s.tlsKey)));
  t.is(s.caCrt, s.tlsCrt);
  t.regex(await opensslVerify(s.caCrt, [], s.tlsCrt), /: OK$/);
  t.regex((await kubectl(['-n', ns, 'get', 'issuer', 'selfsigned'])).stdout, /selfsigned\s+True\s+/);
});

/** A self-signed CA certificate and key, valid for `durationMs` from `notBefore`, as a CA Secret's data. */
async function caSecretData(notBefore: Date, durationMs: number): Promise<{ 'tls.crt': string; 'tls.key': string }> {
  const keyPem = await generatePrivateKey({ algorithm: 'ECDSA' });
  const csrPem = await createCsr({ keyPem, commonName: 'rotated CA', isCA: true });
  const { certificatePem } = await signCsr({ csrPem, durationMs, selfSignKeyPem: keyPem, isCA: true, now: notBefore });
  return { 'tls.crt': Buffer.from(certificatePem).toString('base64'), 'tls.key': Buffer.from(keyPem).toString('base64') };
}

test('an expired CA Secret makes its Issuer not Ready and leaves requests Pending with the reason, not Failed; they are signed once it is replaced', async (t) => {
  const ns = await freshNamespace('casecret');
  const hour = 3_600_000;
  // Expired an hour ago: the Issuer reads it as a CA key pair, but nothing can be signed with it.
  const expired = await caSecretData(new Date(Date.now() - 3 * hour), 2 * hour);
  await applyYaml(`apiVersion: v1
kind: Secret
metadata: {name: rotating-ca, namespace: ${ns}}
type: kubernetes.io/tls
data: ${JSON.stringify(expired)}
---
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: rotating, namespace: ${ns}}
spec: {ca: {secretName: rotating-ca}}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: leaf, namespace: ${ns}}
spec:
  secretName: leaf-tls
  dnsNames: [leaf.${ns}.test]
  issuerRef: {name: rotating, kind: Issuer}
`);
  // The Issuer says why (it reads the Secret as a CA key pair, but an expired one), and the request waits on it.
  const expiry = new RegExp(`the CA certificate in secret "${ns}/rotating-ca" expired at \\S+; put a valid CA key pair in the Secret`);
  const issuerTable = await waitFor('the Issuer to report the expired CA', async () => {
    const { stdout } = await kubectl(['-n', ns, 'get', 'issuer', 'rotating', '-o', 'wide']);
    return expiry.test(stdout) ? stdout : undefined;
  }, 30_000);
  t.regex(issuerTable, /^rotating\s+False\s/m);
  const pending = await waitFor('the request to wait on the CA Secret', async () => {
    const list = await kubectlJson<{ items: Array<{ status?: { conditions?: Array<{ type: string; reason?: string; message?: string }> } }> }>(['-n', ns, 'get', 'certificaterequests']);
    const ready = list.items[0]?.status?.conditions?.find((c) => c.type === 'Ready');
    return ready && expiry.test(ready.message ?? '') ? ready : undefined;
  }, 30_000);
  t.is(pending.reason, 'Pending');

  // The operator puts a valid CA in place: the same request is signed, with no failure recorded.
  // The controller watches only the Secrets it manages, so the Issuer sees the change on its next
  // check of the Secret, within a minute.
  const valid = await caSecretData(new Date(Date.now() - hour), 24 * hour);
  await kubectl(['-n', ns, 'patch', 'secret', 'rotating-ca', '--type=merge', '-p', JSON.stringify({ data: valid })]);
  const cert = await waitForCertificateRevision(ns, 'leaf', 1, 120_000);
  t.is(cert.status?.conditions?.find((c) => c.type === 'Ready')?.status, 'True');
  t.is(cert.status?.failedIssuanceAttempts, undefined, 'no failed issuance');
  const leaf = new X509Certificate((await secret(ns, 'leaf-tls')).tlsCrt);
  t.true(leaf.checkIssued(new X509Certificate(Buffer.from(valid['tls.crt'], 'base64').toString())));
});
