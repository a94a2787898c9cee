/**
 * What the CA injector did, by target: a dashboard shows which webhook configurations, CRDs and
 * APIServices got a new bundle from where, and which ones it refused (with the Event reason).
 */
import { Counter, type Registry } from 'prom-client';

export interface InjectorMetrics {
  injected: Pick<Counter<'kind' | 'name' | 'source_kind' | 'source'>, 'inc'>;
  refused: Pick<Counter<'kind' | 'name' | 'reason'>, 'inc'>;
}

export function injectorMetrics(registry: Registry): InjectorMetrics {
  return {
    injected: new Counter({
      name: 'certroute_ca_injections_total',
      help: 'caBundle writes by the CA injector, by target (kind, name) and source (Certificate, Secret or APIServer; namespace/name).',
      labelNames: ['kind', 'name', 'source_kind', 'source'],
      registers: [registry],
    }),
    refused: new Counter({
      name: 'certroute_ca_injection_refusals_total',
      help: 'Targets the CA injector refused, by target and the reason of the Warning Event it recorded (each problem counts once).',
      labelNames: ['kind', 'name', 'reason'],
      registers: [registry],
    }),
  };
}
