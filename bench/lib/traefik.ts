/**
 * What a browser sees through Traefik, for the latency scenarios: a backend
 * behind an IngressRoute on websecure, and polling the certificate served for
 * an SNI name every 20 ms until it is the one expected.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { servedCertificate, type Served } from '../../test/helpers/tls.ts';

export const POLL_MS = 20;

export interface Backend {
  port: number;
  close(): Promise<void>;
}

export function startBackend(): Promise<Backend> {
  return new Promise((resolve) => {
    const server = http.createServer((_req, res) => res.end('certroute bench backend\n'));
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({ port, close: () => new Promise((done) => { server.closeAllConnections(); server.close(() => done()); }) });
    });
  });
}

/**
 * Polls the certificate Traefik serves for `host` until `matches` holds.
 * Resolves to the performance.now() of the first matching handshake.
 */
export async function waitServed(websecurePort: number, host: string, matches: (s: Served) => boolean, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const served = await servedCertificate(websecurePort, host, 2_000).catch((err: Error) => err);
    if (!(served instanceof Error) && matches(served)) return performance.now();
    last = served instanceof Error ? served.message : `serial ${served.serial}, ${served.subjectAltName || 'no SANs'}`;
    await sleep(POLL_MS);
  }
  throw new Error(`Traefik did not serve the expected certificate for ${host} within ${timeoutMs} ms (last seen: ${last})`);
}
