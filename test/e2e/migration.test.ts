/**
 * Moving from cert-manager to certroute re-issues nothing. For each issuer kind (SelfSigned, CA,
 * ACME) and for the additional output formats, the test lays down what cert-manager leaves in a
 * cluster after one issuance, in cert-manager's own shapes:
 *
 * - the Certificate with the status cert-manager's readiness and issuing controllers write
 *   (Ready=True "Certificate is up to date and has not expired", notBefore, notAfter,
 *   renewalTime, revision 1);
 * - its CertificateRequest `<certificate>-1` as the requestmanager creates it (StableCertificate-
 *   RequestName, on by default since cert-manager 1.13): the certificate-name,
 *   certificate-revision and private-key-secret-name annotations, the Certificate as controller
 *   owner, duration and usages copied from the Certificate (absent when it sets none), status
 *   Approved by cert-manager.io and Ready=True Issued, with the chain and the CA;
 * - the issued Secret: type kubernetes.io/tls, label controller.cert-manager.io/fao=true, every
 *   annotation AnnotationsForCertificateSecret writes (empty ones included), a PKCS#1 RSA 2048
 *   key (cert-manager's default private key), ca.crt only where the issuer returns a CA, and
 *   tls-combined.pem and key.der as OutputFormatCombinedPEM and OutputFormatDER make them;
 *   keystore.p12/truststore.p12 (cert-manager's default LegacyRC2 profile: what `openssl pkcs12
 *   -export -legacy` writes) and keystore.jks/truststore.jks (the key under the alias
 *   "certificate" and the CA as "ca"), written here with openssl and keytool.
 *
 * The certificates are made with openssl, not with certroute's signer. Then certroute starts. Once
 * it has reconciled every Certificate and request (its debug log says so), the test asserts that
 * the Secrets hold the same bytes (the same serials), no CertificateRequest or Order was created,
 * Pebble holds no order for the ACME account, and every Certificate is Ready with revision 1.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { X509Certificate } from 'node:crypto';
import { kubectl, readEnv } from '../env/stack.ts';
import { applyCrds } from '../helpers/crds.ts';
import { applyYaml, cleanUpFile, freshNamespace, kubectlJson, pebbleClusterIssuer, readLog, startController, waitFor, type ControllerProcess } from '../helpers/controller.ts';
import { controllerFlags, deleteIssuer, freshIssuerName, orderLedger, waitIssuerReady } from '../helpers/issuance.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'certroute-migration-'));
let controller: ControllerProcess | undefined;
let ns = '';
const acmeIssuer = freshIssuerName('migration-acme');

/** A Kubernetes timestamp: RFC 3339, whole seconds. */
const kubeTime = (d: Date): string => d.toISOString().replace(/\.\d+Z$/, 'Z');
const b64 = (text: string | Buffer): string => Buffer.from(text).toString('base64');

async function openssl(args: string[]): Promise<void> {
  await run('openssl', args, { cwd: dir });
}

/** A self-signed CA certificate and key, as files in the scratch directory. */
async function makeCa(name: string, cn: string): Promise<{ cert: string; key: string }> {
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-days', '365',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', `${name}.key`, '-out', `${name}.crt`]);
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

interface Issued { keyPem: string; csrPem: string; chainPem: string; caPem?: string; leaf: X509Certificate }

/**
 * What cert-manager's issuance produces for a Certificate with a commonName and dnsNames and no
 * privateKey or usages: an RSA 2048 PKCS#1 key, a CSR asking for the names and the default usages
 * (digital signature, key encipherment), and a 90-day certificate (the default duration).
 */
async function issue(name: string, cn: string, dnsNames: string[], signer: { selfSigned: true } | { ca: { cert: string; key: string }; chain: boolean }): Promise<Issued> {
  await openssl(['genrsa', '-traditional', '-out', `${name}.key`, '2048']);
  await openssl(['req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${dnsNames.map((d) => `DNS:${d}`).join(',')}`,
    '-addext', 'keyUsage=critical,digitalSignature,keyEncipherment', '-out', `${name}.csr`]);
  const serial = `0x${Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1')}`;
  const signWith = 'selfSigned' in signer ? ['-signkey', `${name}.key`] : ['-CA', signer.ca.cert, '-CAkey', signer.ca.key];
  await openssl(['x509', '-req', '-in', `${name}.csr`, ...signWith, '-set_serial', serial, '-days', '90', '-copy_extensions', 'copyall', '-out', `${name}.crt`]);
  const read = (file: string) => readFileSync(join(dir, file), 'utf8');
  const leafPem = read(`${name}.crt`);
  const leaf = new X509Certificate(leafPem);
  if ('selfSigned' in signer) return { keyPem: read(`${name}.key`), csrPem: read(`${name}.csr`), chainPem: leafPem, caPem: leafPem, leaf };
  const caPem = readFileSync(signer.ca.cert, 'utf8');
  // An ACME CA returns the chain (leaf and intermediate) and no CA; the CA issuer the leaf and its CA.
  return signer.chain
    ? { keyPem: read(`${name}.key`), csrPem: read(`${name}.csr`), chainPem: leafPem + caPem, leaf }
    : { keyPem: read(`${name}.key`), csrPem: read(`${name}.csr`), chainPem: leafPem, caPem, leaf };
}

interface IssuerRef { name: string; kind: 'Issuer' | 'ClusterIssuer' }

/** cert-manager's SerialNumberToString: lower-case hex, in pairs joined by '-'. */
const serialAnnotation = (leaf: X509Certificate): string => {
  const hex = leaf.serialNumber.toLowerCase().replace(/^0+(?=.)/, '');
  return (hex.length % 2 ? `0${hex}` : hex).match(/../g)!.join('-');
};

/** The Secret cert-manager's issuing controller writes (AnnotationsForCertificateSecret, the fao label). */
function secretOf(name: string, secretName: string, ref: IssuerRef, issued: Issued, outputs: boolean, keystores: Record<string, string> = {}): object {
  const annotations: Record<string, string> = {
    'cert-manager.io/certificate-name': name,
    'cert-manager.io/issuer-name': ref.name,
    'cert-manager.io/issuer-kind': ref.kind,
    // The Certificate's issuerRef.group as written: these manifests leave it out.
    'cert-manager.io/issuer-group': '',
    'cert-manager.io/common-name': /CN=([^\n,]+)/.exec(issued.leaf.subject)?.[1] ?? '',
    'cert-manager.io/alt-names': (issued.leaf.subjectAltName ?? '').split(', ').filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4)).join(','),
    'cert-manager.io/ip-sans': '',
    'cert-manager.io/uri-sans': '',
    'cert-manager.io/email-sans': '',
    'cert-manager.io/subject-serialnumber': serialAnnotation(issued.leaf),
    'cert-manager.io/subject-organizations': '',
    'cert-manager.io/subject-organizationalunits': '',
    'cert-manager.io/subject-countries': '',
    'cert-manager.io/subject-provinces': '',
    'cert-manager.io/subject-localities': '',
    'cert-manager.io/subject-postalcodes': '',
    'cert-manager.io/subject-streetaddresses': '',
  };
  const data: Record<string, string> = { 'tls.crt': b64(issued.chainPem), 'tls.key': b64(issued.keyPem) };
  if (issued.caPem) data['ca.crt'] = b64(issued.caPem);
  if (outputs) {
    // OutputFormatCombinedPEM: key, "\n", chain. OutputFormatDER: the bytes of the key's PEM block.
    data['tls-combined.pem'] = b64(`${issued.keyPem}\n${issued.chainPem}`);
    data['key.der'] = Buffer.from(issued.keyPem.replace(/-----[^-]+-----|\s+/g, ''), 'base64').toString('base64');
  }
  Object.assign(data, keystores);
  return {
    apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls',
    metadata: { name: secretName, namespace: ns, labels: { 'controller.cert-manager.io/fao': 'true' }, annotations },
    data,
  };
}

interface Case {
  name: string;
  ref: IssuerRef;
  issued: Issued;
  spec?: Record<string, unknown>;
  outputs?: boolean;
  /** Keystore keys of the Secret, base64. */
  keystores?: Record<string, string>;
}

const KEYSTORE_PASSWORD = 'migration-keystore-password';

/**
 * The four keystores cert-manager writes for a key, its certificate and its CA, made with
 * openssl and keytool from the files `issue` left in the scratch directory.
 */
async function keystoresOf(name: string, caCert: string): Promise<Record<string, string>> {
  const pass = `pass:${KEYSTORE_PASSWORD}`;
  await openssl(['pkcs12', '-export', '-legacy', '-inkey', `${name}.key`, '-in', `${name}.crt`, '-certfile', caCert, '-name', 'certificate', '-passout', pass, '-out', `${name}.p12`]);
  await openssl(['pkcs12', '-export', '-legacy', '-nokeys', '-in', caCert, '-passout', pass, '-out', `${name}-trust.p12`]);
  const keytool = (args: string[]) => run('keytool', [...args, '-noprompt'], { cwd: dir });
  await keytool(['-importkeystore', '-srckeystore', `${name}.p12`, '-srcstoretype', 'PKCS12', '-srcstorepass', KEYSTORE_PASSWORD, '-srcalias', 'certificate',
    '-destkeystore', `${name}.jks`, '-deststoretype', 'JKS', '-deststorepass', KEYSTORE_PASSWORD, '-destkeypass', KEYSTORE_PASSWORD, '-destalias', 'certificate']);
  await keytool(['-importcert', '-alias', 'ca', '-file', caCert, '-keystore', `${name}.jks`, '-storetype', 'JKS', '-storepass', KEYSTORE_PASSWORD]);
  await keytool(['-importcert', '-alias', 'ca', '-file', caCert, '-keystore', `${name}-trust.jks`, '-storetype', 'JKS', '-storepass', KEYSTORE_PASSWORD]);
  const read = (file: string) => readFileSync(join(dir, file)).toString('base64');
  return { 'keystore.p12': read(`${name}.p12`), 'truststore.p12': read(`${name}-trust.p12`), 'keystore.jks': read(`${name}.jks`), 'truststore.jks': read(`${name}-trust.jks`) };
}

const cases: Case[] = [];

interface ObjectView { metadata: { name: string; uid: string; resourceVersion: string; generation?: number } }
interface CertificateView extends ObjectView {
  status?: { revision?: number; conditions?: Array<{ type: string; status: string; reason?: string; lastTransitionTime?: string }>; renewalTime?: string };
}
interface SecretView extends ObjectView { data: Record<string, string>; metadata: ObjectView['metadata'] & { annotations?: Record<string, string> } }

/** Lays down one Certificate, its CertificateRequest and its Secret, as cert-manager leaves them. */
async function layDown(c: Case): Promise<void> {
  const secretName = `${c.name}-tls`;
  const dnsNames = (c.issued.leaf.subjectAltName ?? '').split(', ').map((s) => s.slice(4));
  const spec = { secretName, commonName: dnsNames[0], dnsNames, issuerRef: c.ref, ...c.spec };
  await applyYaml(JSON.stringify({ apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: { name: c.name, namespace: ns }, spec }));
  const cert = await kubectlJson<CertificateView>(['-n', ns, 'get', 'certificate', c.name]);
  const notBefore = new Date(c.issued.leaf.validFrom);
  const notAfter = new Date(c.issued.leaf.validTo);
  // The default renewBefore is a third of the lifetime.
  const renewalTime = new Date(notAfter.getTime() - Math.floor((notAfter.getTime() - notBefore.getTime()) / 3));
  const issuedAt = kubeTime(new Date(Date.now() - 60_000));
  await kubectl(['-n', ns, 'patch', 'certificate', c.name, '--subresource=status', '--type=merge', '-p', JSON.stringify({
    status: {
      conditions: [{ type: 'Ready', status: 'True', reason: 'Ready', message: 'Certificate is up to date and has not expired', lastTransitionTime: issuedAt, observedGeneration: cert.metadata.generation }],
      notBefore: kubeTime(notBefore), notAfter: kubeTime(notAfter), renewalTime: kubeTime(renewalTime), revision: 1,
    },
  })]);

  await kubectl(['create', '-f', '-'], { input: JSON.stringify({
    apiVersion: 'cert-manager.io/v1', kind: 'CertificateRequest',
    metadata: {
      name: `${c.name}-1`, namespace: ns,
      annotations: {
        'cert-manager.io/certificate-name': c.name,
        'cert-manager.io/certificate-revision': '1',
        // The next-private-key Secret, which cert-manager deletes once the certificate is issued.
        'cert-manager.io/private-key-secret-name': `${c.name}-x7k2p`,
      },
      ownerReferences: [{ apiVersion: 'cert-manager.io/v1', kind: 'Certificate', name: c.name, uid: cert.metadata.uid, controller: true, blockOwnerDeletion: true }],
    },
    spec: { request: b64(c.issued.csrPem), issuerRef: c.ref },
  }) });
  await kubectl(['-n', ns, 'patch', 'certificaterequest', `${c.name}-1`, '--subresource=status', '--type=merge', '-p', JSON.stringify({
    status: {
      conditions: [
        { type: 'Approved', status: 'True', reason: 'cert-manager.io', message: 'Certificate request has been approved by cert-manager.io', lastTransitionTime: issuedAt },
        { type: 'Ready', status: 'True', reason: 'Issued', message: 'Certificate fetched from issuer successfully', lastTransitionTime: issuedAt },
      ],
      certificate: b64(c.issued.chainPem),
      ...(c.issued.caPem ? { ca: b64(c.issued.caPem) } : {}),
    },
  })]);
  await kubectl(['create', '-f', '-'], { input: JSON.stringify(secretOf(c.name, secretName, c.ref, c.issued, c.outputs ?? false, c.keystores)) });
}

interface LogLine { msg?: string; controller?: string; key?: string; outcome?: string }
const reconciled = (p: ControllerProcess, controllerName: string, key: string): LogLine | undefined =>
  readLog(p).split('\n').filter(Boolean).map((l) => {
    try {
      return JSON.parse(l) as LogLine;
    } catch {
      return {};
    }
  }).find((l) => l.msg === 'reconciled' && l.controller === controllerName && l.key === key);

const before = new Map<string, { secret: SecretView; certificate: CertificateView; serial: string }>();
let requestUids: string[] = [];

test.before(async () => {
  await applyCrds(readEnv().kubeconfig);
  ns = await freshNamespace('migration');
  const ca = await makeCa('ca', 'Migration Test CA');
  const acmeIntermediate = await makeCa('acme-intermediate', 'Stand-in ACME Intermediate');
  // The issuers as their users wrote them; their status is the controller's to work out.
  await applyYaml([
    JSON.stringify({ apiVersion: 'cert-manager.io/v1', kind: 'Issuer', metadata: { name: 'selfsigned', namespace: ns }, spec: { selfSigned: {} } }),
    JSON.stringify({ apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name: 'ca-key-pair', namespace: ns }, data: { 'tls.crt': b64(readFileSync(ca.cert)), 'tls.key': b64(readFileSync(ca.key)) } }),
    JSON.stringify({ apiVersion: 'cert-manager.io/v1', kind: 'Issuer', metadata: { name: 'ca', namespace: ns }, spec: { ca: { secretName: 'ca-key-pair' } } }),
    pebbleClusterIssuer(acmeIssuer),
  ].join('\n---\n'));

  cases.push(
    { name: 'self-signed', ref: { name: 'selfsigned', kind: 'Issuer' }, issued: await issue('self-signed', `self.${ns}.test`, [`self.${ns}.test`], { selfSigned: true }) },
    { name: 'from-ca', ref: { name: 'ca', kind: 'Issuer' }, issued: await issue('from-ca', `ca.${ns}.test`, [`ca.${ns}.test`, `www.ca.${ns}.test`], { ca, chain: false }) },
    { name: 'from-acme', ref: { name: acmeIssuer, kind: 'ClusterIssuer' }, issued: await issue('from-acme', `acme.${ns}.test`, [`acme.${ns}.test`], { ca: acmeIntermediate, chain: true }) },
    {
      name: 'with-outputs', ref: { name: 'ca', kind: 'Issuer' }, outputs: true,
      spec: { additionalOutputFormats: [{ type: 'CombinedPEM' }, { type: 'DER' }] },
      issued: await issue('with-outputs', `outputs.${ns}.test`, [`outputs.${ns}.test`], { ca, chain: false }),
    },
    {
      name: 'with-keystores', ref: { name: 'ca', kind: 'Issuer' },
      spec: {
        keystores: {
          pkcs12: { create: true, passwordSecretRef: { name: 'keystore-password', key: 'password' } },
          jks: { create: true, passwordSecretRef: { name: 'keystore-password', key: 'password' } },
        },
      },
      issued: await issue('with-keystores', `keystores.${ns}.test`, [`keystores.${ns}.test`], { ca, chain: false }),
      keystores: await keystoresOf('with-keystores', ca.cert),
    },
  );
  await applyYaml(JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'keystore-password', namespace: ns }, stringData: { password: KEYSTORE_PASSWORD } }));
  for (const c of cases) await layDown(c);
  for (const c of cases) {
    before.set(c.name, {
      secret: await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', `${c.name}-tls`]),
      certificate: await kubectlJson<CertificateView>(['-n', ns, 'get', 'certificate', c.name]),
      serial: c.issued.leaf.serialNumber,
    });
  }
  requestUids = (await kubectlJson<{ items: ObjectView[] }>(['-n', ns, 'get', 'certificaterequests'])).items.map((r) => r.metadata.uid).sort();

  // Only now does certroute start, as after `helm uninstall cert-manager` and `helm install certroute`.
  controller = await startController(controllerFlags, { name: `migration-${process.pid}` });
  await waitIssuerReady(acmeIssuer, { timeoutMs: 120_000 });
  for (const c of cases) {
    await waitFor(`certroute to reconcile Certificate ${c.name} and its request`, async () =>
      reconciled(controller!, 'certificates', `${ns}/${c.name}`) && reconciled(controller!, 'certificaterequests', `${ns}/${c.name}-1`), 60_000, 200);
  }
});

test.after.always(async () => {
  await controller?.stop();
  await deleteIssuer(acmeIssuer);
  await cleanUpFile();
  rmSync(dir, { recursive: true, force: true });
});

test('certroute reads every Certificate cert-manager issued as up to date: no Issuing, Ready=True from before, revision 1', async (t) => {
  for (const c of cases) {
    const now = await kubectlJson<CertificateView>(['-n', ns, 'get', 'certificate', c.name]);
    const conditions = now.status?.conditions ?? [];
    t.is(conditions.find((x) => x.type === 'Issuing'), undefined, `${c.name}: not issuing`);
    t.like(conditions.find((x) => x.type === 'Ready'), { status: 'True', reason: 'Ready', lastTransitionTime: before.get(c.name)?.certificate.status?.conditions?.[0]?.lastTransitionTime }, `${c.name}: Ready, never flipped`);
    t.is(now.status?.revision, 1, c.name);
  }
});

test('no Secret gets new data: the same serials, the same key, the same extra outputs', async (t) => {
  for (const c of cases) {
    const was = before.get(c.name)!;
    const now = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', `${c.name}-tls`]);
    t.deepEqual(now.data, was.secret.data, `${c.name}: data unchanged`);
    t.is(new X509Certificate(Buffer.from(now.data['tls.crt'] ?? '', 'base64')).serialNumber, was.serial, `${c.name}: same serial`);
    t.is(now.metadata.resourceVersion, was.secret.metadata.resourceVersion, `${c.name}: the Secret was not written at all`);
  }
});

test('no CertificateRequest, Order or order at the CA is made', async (t) => {
  const requests = (await kubectlJson<{ items: ObjectView[] }>(['-n', ns, 'get', 'certificaterequests'])).items;
  t.deepEqual(requests.map((r) => r.metadata.uid).sort(), requestUids, 'the requests cert-manager made, and no other');
  t.deepEqual((await kubectlJson<{ items: ObjectView[] }>(['-n', ns, 'get', 'orders'])).items, []);
  // certroute registered its ACME account (the issuer is Ready), and asked Pebble for nothing.
  const { atPebble } = await orderLedger(acmeIssuer, [ns]);
  t.deepEqual(atPebble, []);
});

test('the issuers turn Ready under certroute', async (t) => {
  for (const name of ['selfsigned', 'ca']) {
    const issuer = await waitFor(`Issuer ${name} Ready`, async () => {
      const i = await kubectlJson<{ status?: { conditions?: Array<{ type: string; status: string }> } }>(['-n', ns, 'get', 'issuer', name]);
      return i.status?.conditions?.find((x) => x.type === 'Ready' && x.status === 'True');
    }, 30_000, 200);
    t.truthy(issuer, name);
  }
});

test('the other way: what certroute issues carries what cert-manager reads back, so cert-manager takes it over as its own', async (t) => {
  const other = await freshNamespace('migration-back');
  const ca = readFileSync(join(dir, 'ca.crt')), caKey = readFileSync(join(dir, 'ca.key'));
  await applyYaml([
    JSON.stringify({ apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/tls', metadata: { name: 'ca-key-pair', namespace: other }, data: { 'tls.crt': b64(ca), 'tls.key': b64(caKey) } }),
    JSON.stringify({ apiVersion: 'cert-manager.io/v1', kind: 'Issuer', metadata: { name: 'ca', namespace: other }, spec: { ca: { secretName: 'ca-key-pair' } } }),
    JSON.stringify({ apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: { name: 'back', namespace: other }, spec: { secretName: 'back-tls', commonName: `back.${other}.test`, dnsNames: [`back.${other}.test`], issuerRef: { name: 'ca', kind: 'Issuer' } } }),
  ].join('\n---\n'));
  const cert = await waitFor('certroute to issue Certificate back', async () => {
    const c = await kubectlJson<CertificateView & { status?: { notBefore?: string; notAfter?: string } }>(['-n', other, 'get', 'certificate', 'back']);
    return c.status?.revision === 1 && c.status.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ? c : undefined;
  }, 120_000, 200);
  // The status fields cert-manager's readiness and trigger controllers read.
  t.truthy(cert.status?.notBefore && cert.status.notAfter && cert.status.renewalTime);

  // The Secret: what cert-manager's SecretIssuerAnnotationsMismatch, SecretCertificateNameAnnotationsMismatch
  // and its filtered Secret cache (the fao label) look at.
  const secret = await kubectlJson<SecretView & { type: string; metadata: { labels?: Record<string, string> } }>(['-n', other, 'get', 'secret', 'back-tls']);
  t.is(secret.type, 'kubernetes.io/tls');
  t.is(secret.metadata.labels?.['controller.cert-manager.io/fao'], 'true');
  t.like(secret.metadata.annotations, {
    'cert-manager.io/certificate-name': 'back',
    'cert-manager.io/issuer-name': 'ca',
    'cert-manager.io/issuer-kind': 'Issuer',
    'cert-manager.io/common-name': `back.${other}.test`,
    'cert-manager.io/alt-names': `back.${other}.test`,
  });
  t.true('cert-manager.io/issuer-group' in (secret.metadata.annotations ?? {}));
  t.truthy(secret.data['tls.crt'] && secret.data['tls.key'] && secret.data['ca.crt']);

  // The request of revision 1 under the name cert-manager gives it, with the annotations its
  // requestmanager and issuing controllers match on, owned by the Certificate.
  const request = await kubectlJson<{ metadata: { annotations?: Record<string, string>; ownerReferences?: Array<{ kind: string; name: string; controller?: boolean }> } }>(['-n', other, 'get', 'certificaterequest', 'back-1']);
  t.like(request.metadata.annotations, { 'cert-manager.io/certificate-name': 'back', 'cert-manager.io/certificate-revision': '1' });
  t.truthy(request.metadata.annotations?.['cert-manager.io/private-key-secret-name']);
  t.like(request.metadata.ownerReferences?.[0], { kind: 'Certificate', name: 'back', controller: true });
});
