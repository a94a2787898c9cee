/**
 * The CA injector as one of the controller's controllers: its informers start and sync with the
 * others on every replica, its queue runs on the Lease holder only, and on taking the lead it
 * looks at every annotated target once.
 */
import type { X509Certificate } from 'node:crypto';
import type { Context } from '../controller/context.ts';
import type { KubeClient } from '../kube/client.ts';
import type { ControllerRegistration } from '../kube/controller.ts';
import type { Logger } from '../log.ts';
import { parseBundle } from './bundle.ts';
import { injectorReconciler, InjectorIndex, TargetInformers, wireInjector } from './injector.ts';
import { injectorMetrics } from './metrics.ts';

export const caInjectorController: ControllerRegistration<Context> = {
  name: 'cainjector',
  workers: 2,
  register(ctx, { informers, queue }) {
    const targets = new TargetInformers(informers);
    const base = { targets, certificates: ctx.caches.certificates, secrets: ctx.caches.secrets };
    const { reconcile } = injectorReconciler({
      ...base,
      client: ctx.client,
      logger: ctx.logger,
      events: ctx.events,
      metrics: injectorMetrics(ctx.metrics.registry),
      clock: ctx.clock,
      apiserverCA: apiserverCA(ctx.client, ctx.logger),
    });
    wireInjector(base, new InjectorIndex(), (key) => queue.add(key));
    return { reconcile, resync: () => targets.annotatedKeys() };
  },
};

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
