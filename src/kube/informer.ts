/**
 * Informer wrapper: a ListWatch that never stays dead.
 *
 * The ListWatch relists by itself after a 410 Gone, but after any other error
 * (apiserver restart, connection reset) it reports and stops. A
 * controller whose cache silently freezes is worse than one that crashes, so
 * this wrapper restarts the ListWatch with capped exponential back-off and
 * reports whether the first list is in the cache, for the readiness probe.
 * A later watch error does not make the cache unready: the previous cache
 * keeps answering while the watch restarts, and an apiserver blip would
 * otherwise turn every replica unready at once, failing live challenges.
 */
import type { KubeObject, ResourceDef } from '../api/types.ts';
import { exponentialDelay } from '../base/backoff.ts';
import { objectKey } from '../base/objects.ts';
import type { KubeClient } from './client.ts';
import { byController, byOwnerUid, controllerIndexValue, Indexer, type IndexFunc } from './indexer.ts';
import { ListWatch } from './listwatch.ts';
import { OwnWrites } from './own-writes.ts';
import type { Logger } from '../log.ts';

export type Handler<T> = (obj: T, event: 'add' | 'update' | 'delete') => void;

export interface InformerOptions {
  labelSelector?: string;
  /**
   * Trims each object before it is cached, in place (it is the only copy). For Secrets, whose
   * label selector a namespace user can match at will, this bounds what they can make us hold.
   */
  trim?: (obj: object) => void;
  namespace?: string;
  logger: Logger;
  /** Injected so tests can drive restarts without waiting. */
  delay?: (ms: number) => Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** kubectl apply's copy of the whole object as the user last applied it. */
export const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';

/**
 * Bookkeeping no reconciler reads, dropped before anything is cached, as
 * controller-runtime's TransformStripManagedFields does:
 * - managedFields, the apiserver's server-side-apply record: more than half of
 *   the JS objects in a cache of 1,000 Certificates and their Secrets (88k → 39k);
 *   an update sent without them leaves the server's copy as it is;
 * - kubectl apply's last-applied annotation, a second copy of every object a
 *   user applied. Status updates ignore metadata; the one main-resource update
 *   from a cached copy (the shim's, of a Certificate it owns) says why it may drop it.
 */
function stripBookkeeping(o: KubeObject): void {
  delete (o.metadata as { managedFields?: unknown }).managedFields;
  const annotations = o.metadata.annotations;
  if (annotations && LAST_APPLIED_ANNOTATION in annotations) delete annotations[LAST_APPLIED_ANNOTATION];
}

export class Informer<T extends KubeObject> {
  readonly def: ResourceDef;
  private readonly client: KubeClient;
  private readonly opts: InformerOptions;
  private readonly handlers: Handler<T>[] = [];
  private lw: ListWatch<T> | undefined;
  private pending: ListWatch<T> | undefined;
  private stopped = false;
  private synced = false;
  private failures = 0;
  private lastFailureAt = 0;
  private onSynced: (() => void) | undefined;
  private readonly owners = new Indexer<T>(byOwnerUid);
  private readonly controllers = new Indexer<T>(byController);
  private readonly indexes = new Map<string, Indexer<T>>();
  private readonly ownWrites = new OwnWrites((namespace, name) => this.get(namespace, name));

  constructor(client: KubeClient, def: ResourceDef, opts: InformerOptions) {
    this.client = client;
    this.def = def;
    this.opts = opts;
  }

  on(handler: Handler<T>): void {
    this.handlers.push(handler);
  }

  get hasSynced(): boolean {
    return this.synced;
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.lw?.get(name, this.def.namespaced ? namespace : undefined);
  }

  list(namespace?: string): readonly T[] {
    return this.lw?.list(namespace) ?? [];
  }

  /** Cached objects with an owner reference to `owner` (by uid, as `isOwnedBy` checks). */
  ownedBy(owner: KubeObject): T[] {
    return owner.metadata.uid ? this.owners.get(owner.metadata.uid) : [];
  }

  /** Cached objects in `namespace` whose controller is the `kind` named `name` (as `controllerOf` reads). */
  controlledBy(namespace: string | undefined, kind: string, name: string): T[] {
    return this.controllers.get(controllerIndexValue(namespace, kind, name));
  }

  /** `obj`, as read from this cache, was just replaced by a write of this process that made the version `written` (own-writes.ts). */
  replacedByWrite(obj: KubeObject, written: string | undefined): void {
    this.ownWrites.replacedVersion(obj, written);
  }

  /** Whether this cache still shows a version a write of this process replaced (own-writes.ts). */
  isReplaced(obj: KubeObject): boolean {
    return this.ownWrites.outdated(obj);
  }

  /** `obj` was just created by this process, at `now` (ms) (own-writes.ts). */
  createdByWrite(obj: KubeObject, now: number): void {
    this.ownWrites.createdObject(obj, now);
  }

  /** `obj` was just deleted by this process (own-writes.ts). */
  deletedByWrite(obj: KubeObject): void {
    this.ownWrites.deletedObject(obj);
  }

  /** Whether this process deleted `obj` and this cache has not shown the deletion yet (own-writes.ts). */
  isDeleting(obj: KubeObject): boolean {
    return this.ownWrites.deleting(obj);
  }

  /** How much longer to wait for an object this process created and this cache does not show (own-writes.ts). */
  createdWaitMs(namespace: string | undefined, name: string, now: number): number | undefined {
    return this.ownWrites.createdWaitMs(namespace, name, now);
  }

  /** Adds an index; only before `start`, so that it sees every object. */
  addIndex(name: string, fn: IndexFunc<T>): void {
    if (this.indexes.has(name)) return;
    if (this.lw || this.pending) throw new Error(`index ${name} on ${this.def.plural} added after the informer started`);
    this.indexes.set(name, new Indexer(fn));
  }

  /** Cached objects filed under `value` by the index `name`. */
  byIndex(name: string, value: string): T[] {
    const index = this.indexes.get(name);
    if (!index) throw new Error(`no index ${name} on ${this.def.plural}`);
    return index.get(value);
  }

  /** Resolves once the first list is in the cache. */
  async start(): Promise<void> {
    this.stopped = false;
    const synced = new Promise<void>((resolve) => {
      this.onSynced = resolve;
    });
    await this.run();
    await synced;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.pending?.stop();
    this.lw?.stop();
  }

  /**
   * Starts a fresh ListWatch; the previous cache keeps answering `get`/`list`
   * until the new one has listed, so a reconciler never mistakes a restart
   * for "the object is gone".
   */
  private async run(): Promise<void> {
    // Events from a ListWatch that is not yet the cache are held back: a
    // reconciler they trigger would read the previous cache and miss the object.
    let held: Array<[T, 'add' | 'update' | 'delete']> | undefined = [];
    let failed = false;
    const next: ListWatch<T> = new ListWatch<T>(this.client, this.def, {
      namespace: this.opts.namespace,
      labelSelector: this.opts.labelSelector,
      transform: (o) => {
        stripBookkeeping(o);
        this.opts.trim?.(o);
        return o;
      },
      onEvent: (o, ev) => (held ? held.push([o, ev]) : this.emit(o, ev)),
      onError: (err) => {
        if (this.pending !== next && this.lw !== next) return;
        failed = true;
        void this.restart(err);
      },
      delay: this.opts.delay ?? sleep,
    });
    this.pending = next;
    try {
      await next.start();
    } catch (err) {
      void this.restart(err);
      return;
    }
    if (failed) return; // the restart already scheduled takes over
    const previous = this.lw;
    this.lw = next;
    this.pending = undefined;
    this.synced = true;
    const events = held;
    held = undefined;
    for (const [o, ev] of events) this.emit(o, ev);
    this.onSynced?.();
    if (previous) {
      previous.stop();
      const live = new Set(next.list().map(objectKey));
      for (const old of previous.list()) {
        if (!live.has(objectKey(old))) this.emit(old, 'delete');
      }
    }
  }

  private async restart(err: unknown): Promise<void> {
    if (this.stopped) return;
    // A watch that held for a minute earns a fresh back-off; one refused at
    // every connect (403, say) keeps growing it.
    if (Date.now() - this.lastFailureAt > 60_000) this.failures = 0;
    this.lastFailureAt = Date.now();
    this.failures++;
    const backoff = exponentialDelay(this.failures + 1, 200, 30_000);
    // A 429 is the apiserver asking for patience (say, "storage is (re)initializing" right
    // after a CRD is installed): expected, so not a warning.
    const level = (err as { statusCode?: number } | undefined)?.statusCode === 429 ? 'info' : 'warn';
    this.opts.logger[level]({ resource: this.def.plural, err: String(err), backoffMs: backoff }, 'watch failed; restarting informer');
    await (this.opts.delay ?? sleep)(backoff);
    if (this.stopped) return;
    this.pending?.stop();
    await this.run();
  }

  private emit(obj: T, event: 'add' | 'update' | 'delete'): void {
    this.ownWrites.seen(obj, event === 'delete');
    this.owners.apply(obj, event);
    this.controllers.apply(obj, event);
    for (const index of this.indexes.values()) index.apply(obj, event);
    for (const h of this.handlers) h(obj, event);
  }
}
