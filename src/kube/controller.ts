/**
 * The controller seam. A controller declares, next to its own reconciler,
 * what it watches and which of its keys an event there concerns ("when a
 * Secret changes, enqueue the Certificates that name it"), how many workers
 * it wants, and what to look at on taking leadership. A runner (the Manager)
 * only runs a list of these, as cert-manager's controllers register
 * themselves. Every controller enqueues only its own keys.
 */
import type { KubeObject, ResourceDef } from '../api/types.ts';
import { controllerOf, objectKey } from '../base/objects.ts';
import type { Logger } from '../log.ts';
import type { KubeClient } from './client.ts';
import type { EventSink } from './events.ts';
import { Informer, type InformerOptions } from './informer.ts';
import type { Outcome } from './queue.ts';

/** What every controller gets, whichever layer it lives in; the runner may hand in more. */
export interface ControllerDeps {
  client: KubeClient;
  logger: Logger;
  events: EventSink;
  clock: () => Date;
}

/**
 * The process's informers, one per resource and label selector, shared by
 * every controller that asks for the same one. The runner starts them all
 * before any controller reconciles.
 */
export class Informers {
  private readonly client: KubeClient;
  private readonly logger: Logger;
  private readonly byKey = new Map<string, Informer<KubeObject>>();

  constructor(client: KubeClient, logger: Logger) {
    this.client = client;
    this.logger = logger;
  }

  /** `trim` is decided by the first to ask for a resource and selector: only one kind of cache trims (Secrets). */
  for<T extends KubeObject>(def: ResourceDef, opts: Pick<InformerOptions, 'labelSelector' | 'trim'> = {}): Informer<T> {
    const key = `${def.group}/${def.plural}?${opts.labelSelector ?? ''}`;
    let informer = this.byKey.get(key);
    if (!informer) {
      informer = new Informer<KubeObject>(this.client, def, { logger: this.logger, ...opts });
      this.byKey.set(key, informer);
    }
    return informer as unknown as Informer<T>;
  }

  all(): Informer<KubeObject>[] {
    return [...this.byKey.values()];
  }
}

export interface ControllerSetup {
  informers: Informers;
  /** The controller's own work queue. */
  queue: { add(key: string): void };
}

export interface Reconciler {
  reconcile(key: string): Promise<Outcome>;
  /** The keys to look at once on taking leadership: reconcilers are level-based. */
  resync(): Iterable<string>;
}

/**
 * One controller, as its own file declares it. Registrations end alike
 * (`return { reconcile, resync }`) and reconcilers begin alike (split the key,
 * read the cache, stop when the object is gone): that sameness is the seam,
 * kept on purpose so that a new controller reads like the others.
 */
export interface ControllerRegistration<D extends ControllerDeps = ControllerDeps> {
  /** The queue's name, in logs and in the sync metrics' `controller` label. */
  name: string;
  /** Concurrent reconciles; unset, the runner's default. */
  workers?: number;
  /** Subscribes to the informers it needs, maps their events to its own keys, and returns its reconciler. */
  register(deps: D, setup: ControllerSetup): Reconciler;
}

/** An event handler that enqueues the object of `kind` controlling the one that changed (cert-manager's EnqueueControllerOf). */
export function enqueueOwner(queue: ControllerSetup['queue'], kind: string): (o: KubeObject) => void {
  return (o) => {
    const owner = controllerOf(o, kind);
    if (owner) queue.add(`${o.metadata.namespace ?? ''}/${owner}`);
  };
}

/** The usual resync: every object an informer holds. */
export function keysOf(informer: { list(): readonly KubeObject[] }): string[] {
  return informer.list().map(objectKey);
}
