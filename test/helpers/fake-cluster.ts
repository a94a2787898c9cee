/**
 * One small in-memory API server for the reconcilers' unit specs: a store of
 * objects with the Kubernetes client's methods over it, and informer-like
 * caches that read the same store. It keeps the rules the reconcilers lean on
 * (uids, resourceVersion preconditions and 409s, 404s, generation bumps on a
 * spec change, finalizers holding a deletion) and records every write and
 * every read from the API server, so a spec can say "created an Order" or
 * "read the Secret from the API server" without mocking calls. A spec can pin
 * what a cache shows for one object, to play a cache that lags behind.
 *
 * Integration and e2e tests never use this: they run against the real stack.
 */
import type { KubeObject, ResourceDef } from '../../src/api/types.ts';
import { OwnWrites } from '../../src/kube/own-writes.ts';
import { ApiError, type ListResult } from '../../src/kube/client.ts';
import { controllerOf, isOwnedBy, sameContent } from '../../src/base/objects.ts';
import type { IndexFunc } from '../../src/kube/indexer.ts';

export interface Write {
  verb: 'create' | 'update' | 'status' | 'patch' | 'delete';
  resource: string;
  key: string;
}

/** What the reconcilers call on the Kubernetes client; the fake has exactly these. */
export interface FakeClient {
  get<T extends KubeObject>(def: ResourceDef, namespace: string | undefined, name: string): Promise<T>;
  find<T extends KubeObject>(def: ResourceDef, namespace: string | undefined, name: string): Promise<T | undefined>;
  list<T extends KubeObject>(def: ResourceDef, namespace?: string): Promise<ListResult<T>>;
  create<T extends KubeObject>(def: ResourceDef, obj: T): Promise<T>;
  replace<T extends KubeObject>(def: ResourceDef, obj: T): Promise<T>;
  replaceStatus<T extends KubeObject>(def: ResourceDef, obj: T): Promise<T>;
  mergePatch<T extends KubeObject>(def: ResourceDef, namespace: string | undefined, name: string, patch: unknown): Promise<T>;
  delete(def: ResourceDef, namespace: string | undefined, name: string, preconditionUid?: string): Promise<void>;
}

/** The informer methods the reconcilers read. */
export interface FakeCache<T extends KubeObject> {
  get(namespace: string | undefined, name: string): T | undefined;
  list(namespace?: string): readonly T[];
  ownedBy(owner: KubeObject): T[];
  controlledBy(namespace: string | undefined, kind: string, name: string): T[];
  addIndex(name: string, fn: IndexFunc<T>): void;
  byIndex(name: string, value: string): T[];
  replacedByWrite(obj: KubeObject, written: string | undefined): void;
  isReplaced(obj: KubeObject): boolean;
  createdByWrite(obj: KubeObject, now: number): void;
  createdWaitMs(namespace: string | undefined, name: string, now: number): number | undefined;
  deletedByWrite(obj: KubeObject): void;
  isDeleting(obj: KubeObject): boolean;
  /** A controller's event handler; a spec plays a watch event to it with `emit`. */
  on(handler: (obj: T, event: 'add' | 'update' | 'delete') => void): void;
}

const notFound = (def: ResourceDef, name: string) => new ApiError(`${def.plural} "${name}" not found`, 404, 'NotFound');
const conflict = (def: ResourceDef, name: string, reason: string) => new ApiError(`${def.plural} "${name}": ${reason}`, 409, reason === 'AlreadyExists' ? 'AlreadyExists' : 'Conflict');

export class FakeCluster {
  readonly writes: Write[] = [];
  /** `resource ns/name` of every get or find sent to the API server. */
  readonly reads: string[] = [];
  private readonly store = new Map<string, KubeObject>();
  /** The caches' records of this process's own writes, by resource (kube/own-writes.ts). */
  private readonly ownWrites = new Map<string, OwnWrites>();
  /** What a lagging cache shows instead of the store, by store key (undefined: not there). */
  private readonly pinned = new Map<string, KubeObject | undefined>();
  /** Index functions by resource and index name; a fake index scans the store. */
  private readonly indexes = new Map<string, IndexFunc<KubeObject>>();
  /** Event handlers by resource, as controllers registered them on the caches. */
  private readonly handlers = new Map<string, Array<(obj: KubeObject, event: 'add' | 'update' | 'delete') => void>>();
  private version = 0;
  private uids = 0;
  private readonly now: () => Date;

  constructor(now: () => Date = () => new Date()) {
    this.now = now;
  }

  private key(def: ResourceDef, namespace: string | undefined, name: string): string {
    return `${def.plural}/${def.namespaced ? (namespace ?? '') : ''}/${name}`;
  }

  private stamp<T extends KubeObject>(obj: T): T {
    obj.metadata.resourceVersion = String(++this.version);
    return obj;
  }

  private record(verb: Write['verb'], def: ResourceDef, o: { metadata: { namespace?: string; name: string } }): void {
    this.writes.push({ verb, resource: def.plural, key: `${o.metadata.namespace ?? ''}/${o.metadata.name}` });
  }

  /** Puts objects in the store as the API server would hold them, without recording a write. */
  seed<T extends KubeObject>(def: ResourceDef, ...objects: T[]): T[] {
    return objects.map((o) => {
      const copy = structuredClone(o);
      copy.metadata.uid ??= `uid-${++this.uids}`;
      copy.metadata.generation ??= 1;
      copy.metadata.creationTimestamp ??= this.now().toISOString();
      this.store.set(this.key(def, copy.metadata.namespace, copy.metadata.name), this.stamp(copy));
      return structuredClone(copy);
    });
  }

  /** The object as the API server holds it now (a copy). */
  read<T extends KubeObject>(def: ResourceDef, namespace: string | undefined, name: string): T | undefined {
    const o = this.store.get(this.key(def, namespace, name));
    return o ? (structuredClone(o) as T) : undefined;
  }

  all<T extends KubeObject>(def: ResourceDef, namespace?: string): T[] {
    const prefix = `${def.plural}/`;
    return [...this.store.entries()]
      .filter(([k, o]) => k.startsWith(prefix) && (namespace === undefined || !def.namespaced || o.metadata.namespace === namespace))
      .map(([, o]) => structuredClone(o) as T);
  }

  /** What the caches list: the store, with what `showInCache` pins in place of (or instead of no) object. */
  private shown<T extends KubeObject>(def: ResourceDef, namespace?: string): T[] {
    const prefix = `${def.plural}/`;
    const byKey = new Map([...this.store.entries()].filter(([k]) => k.startsWith(prefix)));
    for (const [k, o] of this.pinned) {
      if (!k.startsWith(prefix)) continue;
      if (o) byKey.set(k, o);
      else byKey.delete(k);
    }
    return [...byKey.values()]
      .filter((o) => namespace === undefined || !def.namespaced || o.metadata.namespace === namespace)
      .map((o) => structuredClone(o) as T);
  }

  /** A cache over the store: it sees every write at once, as a caught-up informer does, except what `showInCache` pins. */
  cache<T extends KubeObject>(def: ResourceDef): FakeCache<T> {
    // What the real informer keeps of the writes it has not shown yet, by the same rules over
    // what this cache shows. The store shows writes at once, so only a copy `showInCache` pins
    // keeps a record alive, as a lagging informer would.
    const own = this.ownWrites.get(def.plural) ?? new OwnWrites((namespace, name) => this.cache<T>(def).get(namespace, name));
    this.ownWrites.set(def.plural, own);
    return {
      replacedByWrite: (obj, written) => own.replacedVersion(obj, written),
      isReplaced: (obj) => own.outdated(obj),
      createdByWrite: (obj, now) => own.createdObject(obj, now),
      createdWaitMs: (namespace, name, now) => own.createdWaitMs(namespace, name, now),
      deletedByWrite: (obj) => own.deletedObject(obj),
      isDeleting: (obj) => own.deleting(obj),
      get: (namespace, name) => {
        const key = this.key(def, namespace, name);
        if (!this.pinned.has(key)) return this.read<T>(def, namespace, name);
        const shown = this.pinned.get(key);
        return shown ? (structuredClone(shown) as T) : undefined;
      },
      list: (namespace) => this.shown<T>(def, namespace),
      ownedBy: (owner) => this.shown<T>(def).filter((o) => isOwnedBy(o, owner)),
      controlledBy: (namespace, kind, name) => this.shown<T>(def, namespace).filter((o) => controllerOf(o, kind) === name),
      addIndex: (name, fn) => void this.indexes.set(`${def.plural}/${name}`, fn as IndexFunc<KubeObject>),
      byIndex: (name, value) => {
        const fn = this.indexes.get(`${def.plural}/${name}`);
        if (!fn) throw new Error(`no index ${name} on ${def.plural}`);
        return this.shown<T>(def).filter((o) => fn(o).includes(value));
      },
      on: (handler) => {
        const list = this.handlers.get(def.plural) ?? [];
        list.push(handler as (obj: KubeObject, event: 'add' | 'update' | 'delete') => void);
        this.handlers.set(def.plural, list);
      },
    };
  }

  /** Plays a watch event to the handlers registered on the cache of `def` (the store is not changed). */
  emit(def: ResourceDef, obj: KubeObject, event: 'add' | 'update' | 'delete'): void {
    for (const handler of this.handlers.get(def.plural) ?? []) handler(structuredClone(obj), event);
  }

  /** Makes the cache show `shown` (or nothing) for this object, whatever the API server holds: a cache that lags. */
  showInCache<T extends KubeObject>(def: ResourceDef, namespace: string | undefined, name: string, shown: T | undefined): void {
    this.pinned.set(this.key(def, namespace, name), shown === undefined ? undefined : structuredClone(shown));
  }

  readonly client: FakeClient = {
    get: async <T extends KubeObject>(def: ResourceDef, namespace: string | undefined, name: string) => {
      this.reads.push(`${def.plural} ${namespace ?? ''}/${name}`);
      const o = this.read<T>(def, namespace, name);
      if (!o) throw notFound(def, name);
      return o;
    },
    find: async <T extends KubeObject>(def: ResourceDef, namespace: string | undefined, name: string) => {
      this.reads.push(`${def.plural} ${namespace ?? ''}/${name}`);
      return this.read<T>(def, namespace, name);
    },
    list: async <T extends KubeObject>(def: ResourceDef, namespace?: string) => ({ items: this.all<T>(def, namespace), resourceVersion: String(this.version) }),
    create: async <T extends KubeObject>(def: ResourceDef, obj: T) => {
      const key = this.key(def, obj.metadata.namespace, obj.metadata.name);
      if (this.store.has(key)) throw conflict(def, obj.metadata.name, 'AlreadyExists');
      this.record('create', def, obj);
      return this.seed(def, { ...structuredClone(obj), metadata: { ...structuredClone(obj.metadata), uid: undefined, generation: undefined, creationTimestamp: undefined } })[0] as T;
    },
    replace: async <T extends KubeObject>(def: ResourceDef, obj: T) => this.update(def, obj, 'update'),
    replaceStatus: async <T extends KubeObject>(def: ResourceDef, obj: T) => this.update(def, obj, 'status'),
    mergePatch: async <T extends KubeObject>(def: ResourceDef, namespace: string | undefined, name: string, patch: unknown) => {
      const current = this.read<T>(def, namespace, name);
      if (!current) throw notFound(def, name);
      // Top-level fields replace (an Event's count); metadata fields merge one level down.
      const { metadata = {}, ...fields } = patch as { metadata?: Partial<KubeObject['metadata']> };
      if (metadata.resourceVersion !== undefined && metadata.resourceVersion !== current.metadata.resourceVersion) throw conflict(def, name, 'Conflict');
      const next = { ...current, ...fields, metadata: { ...current.metadata, ...metadata } };
      this.record('patch', def, next);
      return this.settle(def, next);
    },
    delete: async (def: ResourceDef, namespace: string | undefined, name: string, preconditionUid?: string) => {
      const current = this.read(def, namespace, name);
      if (!current) return;
      if (preconditionUid !== undefined && preconditionUid !== current.metadata.uid) throw conflict(def, name, 'Conflict');
      this.record('delete', def, current);
      if (current.metadata.finalizers?.length) {
        current.metadata.deletionTimestamp ??= this.now().toISOString();
        this.store.set(this.key(def, namespace, name), this.stamp(current));
      } else {
        this.store.delete(this.key(def, namespace, name));
      }
    },
  };

  private update<T extends KubeObject>(def: ResourceDef, obj: T, verb: 'update' | 'status'): T {
    const current = this.read<T & { spec?: unknown; status?: unknown }>(def, obj.metadata.namespace, obj.metadata.name);
    if (!current) throw notFound(def, obj.metadata.name);
    if (obj.metadata.resourceVersion !== current.metadata.resourceVersion) throw conflict(def, obj.metadata.name, 'Conflict');
    const incoming = structuredClone(obj) as T & { spec?: unknown; status?: unknown };
    // The status subresource changes status only; a plain update changes everything else.
    const next = verb === 'status'
      ? { ...current, status: incoming.status }
      : { ...incoming, status: current.status, metadata: { ...incoming.metadata, uid: current.metadata.uid, creationTimestamp: current.metadata.creationTimestamp } };
    if (verb === 'update' && !sameContent(current.spec, incoming.spec)) next.metadata.generation = (current.metadata.generation ?? 1) + 1;
    this.record(verb, def, next);
    return this.settle(def, next);
  }

  /** Stores an updated object; one whose finalizers are gone while deleting goes away. */
  private settle<T extends KubeObject>(def: ResourceDef, next: T): T {
    const key = this.key(def, next.metadata.namespace, next.metadata.name);
    if (next.metadata.deletionTimestamp && !next.metadata.finalizers?.length) {
      this.store.delete(key);
      return next;
    }
    this.store.set(key, this.stamp(structuredClone(next)));
    return this.read<T>(def, next.metadata.namespace, next.metadata.name) as T;
  }
}
