/**
 * What the CA injector's e2e tests stand on: a CA Certificate certroute issues (SelfSigned, new
 * key on every renewal), a leaf from a CA Issuer on it, and a small HTTPS server on loopback that
 * serves that leaf and records which certificate answered each request, so a test can tell that
 * the API server really called it over a connection made with a given leaf.
 */
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { kubectl } from '../env/stack.ts';
import { applyYaml, kubectlJson, secretPem, waitFor, waitForCertificateRevision, type SecretView } from './controller.ts';
import { triggerRenewal } from './issuance.ts';

export const CA_CERTIFICATE = 'serving-ca';
export const LEAF_CERTIFICATE = 'serving';

export interface KeyPair {
  key: string;
  cert: string;
  x509: X509Certificate;
}

async function keyPair(ns: string, secret: string): Promise<KeyPair> {
  const s = await kubectlJson<SecretView>(['-n', ns, 'get', 'secret', secret]);
  const cert = secretPem(s, 'tls.crt');
  return { key: secretPem(s, 'tls.key'), cert, x509: new X509Certificate(cert) };
}

/** A CA Certificate and a leaf for 127.0.0.1 and `dnsNames`, both Ready, in `ns`. */
export async function servingPki(ns: string, dnsNames: string[] = []): Promise<{ ca: () => Promise<KeyPair>; leaf: () => Promise<KeyPair> }> {
  await applyYaml(`apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: selfsigned, namespace: ${ns}}
spec: {selfSigned: {}}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: ${CA_CERTIFICATE}, namespace: ${ns}}
spec:
  isCA: true
  commonName: ${ns} serving CA
  secretName: ${CA_CERTIFICATE}
  privateKey: {algorithm: ECDSA, size: 256, rotationPolicy: Always}
  issuerRef: {name: selfsigned}
---
apiVersion: cert-manager.io/v1
kind: Issuer
metadata: {name: serving-ca, namespace: ${ns}}
spec: {ca: {secretName: ${CA_CERTIFICATE}}}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: ${LEAF_CERTIFICATE}, namespace: ${ns}}
spec:
  secretName: ${LEAF_CERTIFICATE}-tls
  ipAddresses: [127.0.0.1]
  dnsNames: [${['localhost', ...dnsNames].join(', ')}]
  privateKey: {algorithm: ECDSA, size: 256, rotationPolicy: Always}
  issuerRef: {name: serving-ca}
`);
  await waitForCertificateRevision(ns, CA_CERTIFICATE, 1, 120_000);
  await waitForCertificateRevision(ns, LEAF_CERTIFICATE, 1, 120_000);
  return { ca: () => keyPair(ns, CA_CERTIFICATE), leaf: () => keyPair(ns, `${LEAF_CERTIFICATE}-tls`) };
}

/** Renews a Certificate the way `cmctl renew` does and waits for the next revision. */
export async function renew(ns: string, name: string, revision: number): Promise<void> {
  await triggerRenewal(ns, name);
  await waitForCertificateRevision(ns, name, revision, 120_000);
}

export interface Served {
  path: string;
  /** Serial of the certificate this server presented on the request's connection. */
  servedSerial: string;
  body: unknown;
}

export interface TlsBackend {
  port: number;
  requests: Served[];
  /** Serve another leaf from now on; open connections (made with the old one) are closed. */
  use(pair: KeyPair): void;
  close(): Promise<void>;
}

export type Handler = (path: string, body: unknown) => { status?: number; body: unknown };

export function startTlsBackend(pair: KeyPair, handler: Handler): Promise<TlsBackend> {
  const requests: Served[] = [];
  const server = https.createServer({ key: pair.key, cert: pair.cert }, (req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      const body: unknown = raw ? JSON.parse(raw) : undefined;
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const servedSerial = (req.socket as TLSSocket).getX509Certificate()?.serialNumber ?? '';
      requests.push({ path, servedSerial, body });
      const reply = handler(path, body);
      res.writeHead(reply.status ?? 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(reply.body));
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({
        port: (server.address() as AddressInfo).port,
        requests,
        use(next) {
          server.setSecureContext({ key: next.key, cert: next.cert });
          server.closeAllConnections();
        },
        close: () => new Promise((done) => {
          server.closeAllConnections();
          server.close(() => done());
        }),
      });
    });
  });
}

/** The certificates a base64 caBundle holds, as SHA-256 fingerprints. */
export const bundleFingerprints = (b64: string | undefined): string[] =>
  (Buffer.from(b64 ?? '', 'base64').toString('utf8').match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p).fingerprint256);

/** Waits until `read` returns exactly these CAs, in this order (old first, as cert-manager merges). */
export async function waitForBundle(what: string, read: () => Promise<string | undefined>, cas: KeyPair[], timeoutMs = 30_000): Promise<void> {
  const want = cas.map((c) => c.x509.fingerprint256).join(',');
  await waitFor(`${what} to hold ${cas.map((c) => c.x509.serialNumber).join(' and ')}`, async () => bundleFingerprints(await read()).join(',') === want, timeoutMs, 200);
}

/** Cluster-scoped objects are deleted by name (a bare apiserver has no garbage collector). */
export async function deleteClusterObject(kind: string, name: string): Promise<void> {
  await kubectl(['delete', kind, name, '--ignore-not-found', '--wait=false']);
}
