/**
 * A cache of one resource kept current by list-then-watch, as client-go's
 * reflector keeps it: list once, watch from the list's resourceVersion,
 * follow bookmarks, resume when the server ends a watch, and relist only when
 * the server says the version is gone (410). Any other failure is reported
 * once through `onError` and the loop stops: the informer decides when to
 * start a fresh one.
 *
 * Objects pass through `transform` before they are stored, so the cache
 * holds only what reconcilers read.
 */
import type { KubeObject, ResourceDef } from '../api/types.ts';
import { ApiError, type KubeClient, type WatchEvent } from './client.ts';

export type CacheEvent = 'add' | 'update' | 'delete';

export interface ListWatchOptions<T> {
  namespace?: string;
  labelSelector?: string;
  transform: (obj: T) => T;
  onEvent: (obj: T, event: CacheEvent) => void;
  onError: (err: unknown) => void;
  delay: (ms: number) => Promise<void>;
}

const isGone = (err: unknown): boolean => err instanceof ApiError && err.statusCode === 410;

export class ListWatch<T extends KubeObject> {
  private readonly client: KubeClient;
  private readonly def: ResourceDef;
  private readonly opts: ListWatchOptions<T>;
  /** namespace ('' for cluster-scoped) → name → object */
  private objects = new Map<string, Map<string, T>>();
  private resourceVersion = '';
  private abort: AbortController | undefined;
  private stopped = false;

  constructor(client: KubeClient, def: ResourceDef, opts: ListWatchOptions<T>) {
    this.client = client;
    this.def = def;
    this.opts = opts;
  }

  get(name: string, namespace: string | undefined): T | undefined {
    return this.objects.get(namespace ?? '')?.get(name);
  }

  list(namespace?: string): T[] {
    if (namespace) return [...(this.objects.get(namespace)?.values() ?? [])];
    const all: T[] = [];
    for (const byName of this.objects.values()) all.push(...byName.values());
    return all;
  }

  /** Resolves once the first list is in the cache; rejects if that list failed. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.relist();
    void this.loop();
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }

  private async relist(): Promise<void> {
    // Each page is trimmed as it arrives, so the whole list is never held untrimmed.
    const res = await this.client.list<T>(this.def, this.opts.namespace, this.opts.labelSelector, { each: this.opts.transform });
    const fresh = new Map<string, Map<string, T>>();
    for (const obj of res.items) {
      const ns = obj.metadata.namespace ?? '';
      let byName = fresh.get(ns);
      if (!byName) fresh.set(ns, (byName = new Map()));
      byName.set(obj.metadata.name, obj);
    }
    const previous = this.objects;
    this.objects = fresh;
    this.resourceVersion = res.resourceVersion;
    for (const [ns, byName] of previous) {
      for (const [name, old] of byName) if (!fresh.get(ns)?.has(name)) this.opts.onEvent(old, 'delete');
    }
    for (const [ns, byName] of fresh) {
      for (const [name, obj] of byName) {
        const old = previous.get(ns)?.get(name);
        if (!old) this.opts.onEvent(obj, 'add');
        else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) this.opts.onEvent(obj, 'update');
      }
    }
  }

  private async loop(): Promise<void> {
    // A watch the server ends at once, with nothing in it, is retried after a growing pause
    // rather than in a tight loop; one that delivered anything resumes at once.
    let quietEnds = 0;
    while (!this.stopped) {
      let delivered = false;
      const openedAt = Date.now();
      this.abort = new AbortController();
      try {
        await this.client.watch(this.def, this.opts.namespace, {
          resourceVersion: this.resourceVersion,
          labelSelector: this.opts.labelSelector,
        }, (ev) => {
          delivered = true;
          this.apply(ev);
        }, this.abort.signal);
      } catch (err) {
        if (this.stopped) return;
        if (!isGone(err)) {
          this.opts.onError(err);
          return;
        }
        try {
          await this.relist();
        } catch (listErr) {
          this.opts.onError(listErr);
          return;
        }
      }
      quietEnds = delivered || Date.now() - openedAt > 1_000 ? 0 : quietEnds + 1;
      if (quietEnds > 0 && !this.stopped) await this.opts.delay(Math.min(30_000, 500 * 2 ** quietEnds));
    }
  }

  private apply(ev: WatchEvent): void {
    // An ERROR line ends the watch; a 410 in it ("too old resource version") means relist.
    if (ev.type === 'ERROR') throw new ApiError(`watch ${this.def.plural}: ${ev.object.message ?? 'error event'}`, ev.object.code ?? 500, ev.object.reason ?? 'Unknown');
    const rv = ev.object.metadata?.resourceVersion;
    if (ev.type === 'BOOKMARK') {
      if (rv) this.resourceVersion = rv;
      return;
    }
    const obj = this.opts.transform(ev.object as T);
    const ns = obj.metadata.namespace ?? '';
    let byName = this.objects.get(ns);
    if (ev.type === 'DELETED') {
      if (byName?.delete(obj.metadata.name)) {
        if (byName.size === 0) this.objects.delete(ns);
        this.opts.onEvent(obj, 'delete');
      }
    } else {
      if (!byName) this.objects.set(ns, (byName = new Map()));
      const old = byName.get(obj.metadata.name);
      if (!old || old.metadata.resourceVersion !== obj.metadata.resourceVersion) {
        byName.set(obj.metadata.name, obj);
        this.opts.onEvent(obj, old ? 'update' : 'add');
      }
    }
    if (rv) this.resourceVersion = rv;
  }
}
