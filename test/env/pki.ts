/**
 * The stack's own PKI, made fresh at every `up`: one CA that signs the kube-apiserver's serving
 * certificate, the admin client certificate and Pebble's TLS certificate, plus the
 * service-account signing key pair. Node's WebCrypto and @peculiar/x509 do it in well under a
 * second, and no openssl binary is needed.
 */
import { generateKeyPairSync, webcrypto } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
// @peculiar/x509 resolves its crypto providers through tsyringe, which needs this polyfill first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

export interface StackPki {
  caCert: string;
  /** The CA's key, so that tests can mint a client certificate per identity (`clientCertificate`). */
  caKey: string;
  apiserverCert: string;
  apiserverKey: string;
  adminCert: string;
  adminKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
  pebbleCert: string;
  pebbleKey: string;
}

interface Issued {
  certPem: string;
  keyPem: string;
}

async function keyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

function validity(): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  // An hour of back-dating absorbs clock skew between the processes' views of "now".
  return { notBefore: new Date(now - 3600_000), notAfter: new Date(now + 365 * 86400_000) };
}

function serial(): string {
  // A leading 01 keeps the DER integer positive, which Go's x509 parser insists on.
  return '01' + Buffer.from(webcrypto.getRandomValues(new Uint8Array(15))).toString('hex');
}

interface LeafRequest {
  subject: string;
  dns?: string[];
  ips?: string[];
  usage: x509.ExtendedKeyUsage[];
}

async function issue(ca: x509.X509Certificate, caKey: CryptoKey, req: LeafRequest): Promise<Issued> {
  const keys = await keyPair();
  const names: x509.JsonGeneralName[] = [
    ...(req.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(req.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(req.usage, false),
    await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: req.subject,
    issuer: ca.subject,
    ...validity(),
    signingAlgorithm: algorithm,
    publicKey: keys.publicKey,
    signingKey: caKey,
    extensions,
  });
  return { certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}

/** Addresses beyond loopback that clients dial, e.g. a cluster's node IP and Service IP. */
export interface PkiAddresses {
  apiserverIps?: string[];
  pebbleIps?: string[];
}

/** Writes the PKI into `dir` and returns the absolute path of every file. */
export async function makeStackPki(dir: string, addresses: PkiAddresses = {}): Promise<StackPki> {
  mkdirSync(dir, { recursive: true });
  const caKeys = await keyPair();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=certroute local stack CA',
    ...validity(),
    signingAlgorithm: algorithm,
    keys: caKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const loopback = { dns: ['localhost'], ips: ['127.0.0.1'] };
  const [apiserver, admin, pebble] = await Promise.all([
    issue(ca, caKeys.privateKey, {
      subject: 'CN=kube-apiserver',
      dns: [...loopback.dns, 'kubernetes', 'kubernetes.default', 'kubernetes.default.svc'],
      // The first address of the Service range: the `kubernetes` Service's ClusterIP.
      ips: [...loopback.ips, '198.19.0.1', ...(addresses.apiserverIps ?? [])],
      usage: [x509.ExtendedKeyUsage.serverAuth],
    }),
    issue(ca, caKeys.privateKey, { subject: 'CN=admin, O=system:masters', usage: [x509.ExtendedKeyUsage.clientAuth] }),
    issue(ca, caKeys.privateKey, {
      subject: 'CN=pebble', dns: [...loopback.dns, 'pebble'], ips: [...loopback.ips, ...(addresses.pebbleIps ?? [])], usage: [x509.ExtendedKeyUsage.serverAuth],
    }),
  ]);
  const sa = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });

  const files: Record<keyof StackPki, [string, string]> = {
    caCert: ['ca.crt', ca.toString('pem')],
    caKey: ['ca.key', await privateKeyPem(caKeys.privateKey)],
    apiserverCert: ['apiserver.crt', apiserver.certPem],
    apiserverKey: ['apiserver.key', apiserver.keyPem],
    adminCert: ['admin.crt', admin.certPem],
    adminKey: ['admin.key', admin.keyPem],
    serviceAccountKey: ['sa.key', sa.privateKey],
    serviceAccountPub: ['sa.pub', sa.publicKey],
    pebbleCert: ['pebble.crt', pebble.certPem],
    pebbleKey: ['pebble.key', pebble.keyPem],
  };
  const paths = {} as StackPki;
  for (const [field, [name, pem]] of Object.entries(files) as [keyof StackPki, [string, string]][]) {
    const path = join(dir, name);
    writeFileSync(path, pem.endsWith('\n') ? pem : pem + '\n', { mode: name.endsWith('.key') ? 0o600 : 0o644 });
    paths[field] = path;
  }
  return paths;
}

/**
 * A client certificate for user `name` in group system:masters, signed by the stack's CA: a
 * second identity, so that the apiserver's audit log tells apart two processes that would
 * otherwise both be `admin`.
 */
export async function clientCertificate(pki: Pick<StackPki, 'caCert' | 'caKey'>, name: string): Promise<Issued> {
  const ca = new x509.X509Certificate(readFileSync(pki.caCert, 'utf8'));
  const der = x509.PemConverter.decode(readFileSync(pki.caKey, 'utf8'))[0]!;
  const caKey = (await webcrypto.subtle.importKey('pkcs8', der, algorithm, false, ['sign'])) as unknown as CryptoKey;
  return issue(ca, caKey, { subject: `CN=${name}, O=system:masters`, usage: [x509.ExtendedKeyUsage.clientAuth] });
}
