/**
 * A local stand-in for the Cloudflare edge and a Cloudflare Tunnel (issue 4 §6), the path
 * Let's Encrypt takes to a cluster that no public port reaches:
 * - the edge's plain-HTTP listener answers every request with a 301 to HTTPS, as the zone
 *   setting "Always Use HTTPS" does;
 * - the edge's HTTPS listener, with a certificate no CA signed, hands the request through the
 *   "tunnel" to the origin service, Traefik's web entrypoint, in plain HTTP with
 *   `X-Forwarded-Proto: https`, as cloudflared does for an `http://` origin.
 * Every request is recorded, so a test can tell who came through the edge.
 */
import { webcrypto } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import httpProxy from 'http-proxy';
// @peculiar/x509 resolves its crypto providers through tsyringe, which needs this polyfill first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

export interface EdgeRequest {
  listener: 'http' | 'https';
  host: string;
  path: string;
  userAgent: string;
  status: number;
  location?: string;
}

export interface Tunnel {
  /** The edge's port 80. */
  httpPort: number;
  /** The edge's port 443. */
  tlsPort: number;
  requests: EdgeRequest[];
  close(): Promise<void>;
}

/** A self-signed edge certificate: validation servers must not (and Pebble does not) verify it. */
async function edgeCertificate(): Promise<{ cert: string; key: string }> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01' + Buffer.from(webcrypto.getRandomValues(new Uint8Array(15))).toString('hex'),
    name: 'CN=edge stand-in (self-signed)',
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 86400_000),
    signingAlgorithm: algorithm,
    keys,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: '*.test' }])],
  });
  const key = x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey), 'PRIVATE KEY');
  return { cert: cert.toString('pem'), key };
}

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function close(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

/** Starts the edge; `originPort` is the port the tunnel delivers to (Traefik's web entrypoint). */
export async function startTunnel(opts: { originPort: number }): Promise<Tunnel> {
  const requests: EdgeRequest[] = [];
  const record = (listener: EdgeRequest['listener'], req: http.IncomingMessage, res: http.ServerResponse) => {
    res.once('finish', () => {
      const location = res.getHeader('location');
      requests.push({
        listener,
        host: req.headers.host ?? '',
        path: req.url ?? '',
        userAgent: req.headers['user-agent'] ?? '',
        status: res.statusCode,
        ...(typeof location === 'string' ? { location } : {}),
      });
    });
  };

  let tlsPort = 0;
  const plain = http.createServer((req, res) => {
    record('http', req, res);
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    res.statusCode = 301;
    res.setHeader('location', `https://${host}:${tlsPort}${req.url ?? '/'}`);
    res.setHeader('content-length', '0');
    res.end();
  });

  const proxy = httpProxy.createProxyServer({
    target: `http://127.0.0.1:${opts.originPort}`,
    // The Host header travels unchanged, as through a tunnel to an http:// origin.
    changeOrigin: false,
    headers: { 'x-forwarded-proto': 'https', 'cf-visitor': '{"scheme":"https"}' },
    proxyTimeout: 10_000,
  });
  proxy.on('error', (err, _req, res) => {
    if (res instanceof http.ServerResponse && !res.headersSent) {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`edge stand-in: origin unreachable: ${err.message}\n`);
    }
  });
  const secure = https.createServer(await edgeCertificate(), (req, res) => {
    record('https', req, res);
    proxy.web(req, res);
  });

  const httpPort = await listen(plain);
  tlsPort = await listen(secure);
  return {
    httpPort,
    tlsPort,
    requests,
    async close() {
      await Promise.all([close(plain), close(secure)]);
      proxy.close();
    },
  };
}
