/**
 * Runs the CA injector inside the controller's Manager: its informers start and sync with the
 * others on every replica, its queue runs on the Lease holder only, and on taking the lead it
 * looks at every annotated target once.
 */
import type { X509Certificate } from 'node:crypto';
import type { Manager } from '../controller/manager.ts';
import type { KubeClient } from '../kube/client.ts';
import type { Logger } from '../log.ts';
import { parseBundle } from './bundle.ts';
import { injectorReconciler, InjectorIndex, TargetInformers, wireInjector } from './injector.ts';
import { injectorMetrics } from './metrics.ts';

/** Call before `manager.start()`, so the injector's caches are synced before readiness. */
export function startCaInjector(manager: Manager, deps: { client: KubeClient; logger: Logger }): { stop(): void } {
  const targets = new TargetInformers(deps.client, deps.logger);
  manager.addInformers(targets.all);
  const base = { targets, certificates: manager.caches.certificates, secrets: manager.caches.secrets };
  const { reconcile } = injectorReconciler({
    ...base,
    client: deps.client,
    logger: deps.logger,
    events: manager.ctx.events,
    metrics: injectorMetrics(manager.metrics.registry),
    clock: manager.ctx.clock,
    apiserverCA: apiserverCA(deps.client, deps.logger),
  });
  const queue = manager.makeQueue('cainjector', reconcile, 2);
  wireInjector(base, new InjectorIndex(), (key) => queue.add(key));
  manager.onLeading(() => {
    for (const key of targets.annotatedKeys()) queue.add(key);
  });
  return { stop: () => queue.stop() };
}

/** The CA the controller's own kubeconfig trusts the API server with (in a Pod, the service account's ca.crt). */
export function apiserverCA(client: KubeClient, logger: Logger): X509Certificate[] | undefined {
  const pem = client.access.tls.ca?.toString('utf8');
  try {
    return pem ? parseBundle(pem) : undefined;
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'the API server CA in the kubeconfig does not parse; cert-manager.io/inject-apiserver-ca cannot be served');
    return undefined;
  }
}
