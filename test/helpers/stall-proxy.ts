/**
 * A TCP proxy in front of the kube-apiserver that can stall: every byte in both directions stops,
 * connections stay open, new ones are accepted and never answered. What a controller sees when
 * its node's network hangs (or the process is paused) while the rest of the cluster carries on.
 * The TLS session is end to end (the proxy never decrypts), so the client's credentials work as
 * they are.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';

export interface StallProxy {
  /** The https URL to put in a kubeconfig instead of the apiserver's. */
  server: string;
  stall(): void;
  close(): Promise<void>;
}

export async function startStallProxy(upstream: string): Promise<StallProxy> {
  const target = new URL(upstream);
  const sockets = new Set<Socket>();
  let stalled = false;
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on('close', () => sockets.delete(client));
    client.on('error', () => undefined);
    if (stalled) {
      client.pause();
      return;
    }
    const up = connect(Number(target.port), target.hostname);
    sockets.add(up);
    up.on('close', () => sockets.delete(up));
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
    client.pipe(up);
    up.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stall() {
      stalled = true;
      for (const s of sockets) {
        s.unpipe();
        s.pause();
      }
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A copy of `kubeconfig` at `path` whose clusters point at `server`. */
export function kubeconfigVia(kubeconfig: string, server: string, path: string): string {
  const text = readFileSync(kubeconfig, 'utf8').replace(/server: https:\/\/[^\s]+/g, `server: ${server}`);
  writeFileSync(path, text);
  return path;
}
