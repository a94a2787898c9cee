/**
 * What a browser sees: the certificate Traefik serves for an SNI name on the
 * websecure entrypoint.
 */
import { X509Certificate } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';

export interface Served {
  serial: string;
  issuer: string;
  subjectAltName: string;
  cert: X509Certificate;
  chain: X509Certificate[];
}

/**
 * The certificate served for `servername`. With `trust` (PEM roots) the handshake is a strict
 * client's: it fails unless the chain verifies against those roots and the certificate names
 * `servername`; without, any certificate is returned for inspection.
 */
export function servedCertificate(port: number, servername: string, timeoutMs = 3_000, trust?: string): Promise<Served> {
  return new Promise((resolve, reject) => {
    const verify = trust === undefined ? { rejectUnauthorized: false } : { rejectUnauthorized: true, ca: trust };
    const socket = tls.connect({ host: '127.0.0.1', port, servername, ...verify, timeout: timeoutMs }, () => {
      const detailed = socket.getPeerCertificate(true);
      const peer = socket.getPeerX509Certificate();
      socket.destroy();
      if (!peer) return reject(new Error('no peer certificate'));
      const chain: X509Certificate[] = [];
      let cur: tls.DetailedPeerCertificate | undefined = detailed;
      const seen = new Set<string>();
      while (cur && cur.raw && !seen.has(cur.fingerprint256)) {
        seen.add(cur.fingerprint256);
        chain.push(new X509Certificate(cur.raw));
        cur = cur.issuerCertificate;
      }
      resolve({ serial: peer.serialNumber, issuer: peer.issuer, subjectAltName: peer.subjectAltName ?? '', cert: peer, chain });
    });
    socket.on('timeout', () => socket.destroy(new Error('TLS handshake timed out')));
    socket.on('error', reject);
  });
}

export interface LocalServer {
  port: number;
  close(): Promise<void>;
}

export function serveLocal(handler: http.RequestListener): Promise<LocalServer> {
  return new Promise((resolve) => {
    const server = http.createServer(handler);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ port, close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()); }) });
    });
  });
}
