/**
 * API helpers for the benchmark's setup and clean-up: bulk creation with a
 * bounded number of requests in flight, collection deletes, fresh namespaces,
 * and a tracker that records when each Certificate first turns Ready.
 *
 * Setup traffic goes through certroute's own KubeClient (one undici pool,
 * keep-alive), never kubectl per object: 40,000 kubectl processes would
 * measure fork, not the apiserver.
 */
import type { Certificate, KubeObject, ResourceDef } from '../../src/api/types.ts';
import { Resources } from '../../src/api/types.ts';
import { KubeClient, resourcePath } from '../../src/kube/client.ts';
import { Informer } from '../../src/kube/informer.ts';
import { createLogger } from '../../src/log.ts';
import { kubeconfigFile } from '../../test/env/paths.ts';

export const Namespaces: ResourceDef = { group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false };

export function stackClient(): KubeClient {
  return KubeClient.fromKubeconfig(kubeconfigFile);
}

/** Runs `task(i)` for i in 0..count-1 with at most `concurrency` in flight; rejects on the first failure. */
export async function pool(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < count) {
      const i = next++;
      try {
        await task(i);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  if (failed !== undefined) throw failed;
}

/** Creates objects with `concurrency` POSTs in flight; resolves to the wall time in ms. */
export async function createAll(client: KubeClient, def: ResourceDef, objects: (i: number) => KubeObject, count: number, concurrency = 32): Promise<number> {
  const start = performance.now();
  await pool(count, concurrency, async (i) => {
    await client.create(def, objects(i));
  });
  return performance.now() - start;
}

let nsCounter = 0;
/** A namespace no earlier run used: a bare apiserver never finishes deleting one. */
export async function freshNamespace(client: KubeClient, prefix: string): Promise<string> {
  const name = `bench-${prefix}-${Date.now().toString(36)}-${++nsCounter}`.slice(0, 63);
  await client.create(Namespaces, { metadata: { name } });
  return name;
}

/**
 * DELETE on the collection: one request, however many objects. Objects with
 * finalizers (Challenges) stay until their controller lets go.
 */
export async function deleteCollection(client: KubeClient, def: ResourceDef, namespace: string, labelSelector?: string): Promise<void> {
  const q = labelSelector ? `?labelSelector=${encodeURIComponent(labelSelector)}` : '';
  await client.raw('DELETE', resourcePath(def, namespace) + q);
}

/** Removes everything an issuance leaves in a namespace, Certificates first so nothing re-creates it. */
export async function cleanIssuance(client: KubeClient, namespace: string): Promise<void> {
  for (const def of [Resources.certificates, Resources.certificaterequests, Resources.orders, Resources.challenges, Resources.secrets, Resources.issuers]) {
    await deleteCollection(client, def, namespace);
  }
}

const isReady = (c: Certificate): boolean => c.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True') ?? false;

/**
 * Watches one namespace's Certificates and records, per name, the moment
 * (performance.now()) the benchmark first saw Ready=True. A watch, not
 * polling: listing 1,000 Certificates every 100 ms would load the same
 * apiserver the controller is being measured against.
 */
export class ReadyTracker {
  readonly readyAt = new Map<string, number>();
  private readonly informer: Informer<Certificate>;
  private waiters: Array<() => void> = [];

  constructor(client: KubeClient, namespace: string) {
    this.informer = new Informer<Certificate>(client, Resources.certificates, { namespace, logger: createLogger('error') });
    this.informer.on((c, ev) => {
      if (ev === 'delete' || this.readyAt.has(c.metadata.name) || !isReady(c)) return;
      this.readyAt.set(c.metadata.name, performance.now());
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w();
    });
  }

  start(): Promise<void> {
    return this.informer.start();
  }

  stop(): Promise<void> {
    return this.informer.stop();
  }

  /** Resolves with the Ready time once `done()` holds; rejects after `timeoutMs`. */
  private async until(what: string, done: () => boolean, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${this.readyAt.size} Ready so far)`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1_000));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async ready(name: string, timeoutMs: number): Promise<number> {
    await this.until(`Certificate ${name} Ready`, () => this.readyAt.has(name), timeoutMs);
    return this.readyAt.get(name)!;
  }

  /** Resolves with the time the `count`-th Certificate turned Ready. */
  async count(count: number, timeoutMs: number): Promise<number> {
    await this.until(`${count} Certificates Ready`, () => this.readyAt.size >= count, timeoutMs);
    let last = 0;
    for (const t of this.readyAt.values()) last = Math.max(last, t);
    return last;
  }
}

/** A Certificate for the benchmark's issuers, with cert-manager's defaults (RSA 2048). */
export function certificate(namespace: string, name: string, dnsName: string, issuerRef: { name: string; kind: 'Issuer' | 'ClusterIssuer' }): Certificate {
  return {
    metadata: { name, namespace },
    spec: { secretName: `${name}-tls`, dnsNames: [dnsName], issuerRef: { ...issuerRef, group: 'cert-manager.io' } },
  };
}
