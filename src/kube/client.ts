/**
 * A thin typed REST client for the few verbs certroute uses.
 *
 * Why not the generated client-node APIs: every kind here is addressed the
 * same way (group/version/plural), merge patches and status subresources need
 * per-call content types there, and the benchmark must count API requests by
 * verb. One small client over undici gives all three, without loading the
 * generated API at all (see kubeconfig.ts).
 */
import { Agent, request, type Dispatcher } from 'undici';
import type { KubeObject, ResourceDef } from '../api/types.ts';
import { assertFence } from './fence.ts';
import { fromDefault, fromFiles, type ClusterAccess } from './kubeconfig.ts';

export class ApiError extends Error {
  readonly statusCode: number;
  readonly reason: string;
  constructor(message: string, statusCode: number, reason: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ApiError';
    this.statusCode = statusCode;
    this.reason = reason;
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof ApiError && err.statusCode === 404;
export const isConflict = (err: unknown): boolean => err instanceof ApiError && err.statusCode === 409;
export const isAlreadyExists = (err: unknown): boolean =>
  err instanceof ApiError && err.statusCode === 409 && err.reason === 'AlreadyExists';

/** Items per page of a list, as client-go's pager asks (its default is 500). */
export const LIST_PAGE_SIZE = 500;

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export interface CallOptions {
  /** Ends the request early (the leader's renew deadline). */
  signal?: AbortSignal;
}

export type Verb = 'get' | 'list' | 'create' | 'update' | 'patch' | 'delete';

export function resourcePath(def: ResourceDef, namespace?: string, name?: string, subresource?: string): string {
  const base = def.group === '' ? `/api/${def.version}` : `/apis/${def.group}/${def.version}`;
  const ns = def.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const tail = name ? `/${encodeURIComponent(name)}${subresource ? `/${subresource}` : ''}` : '';
  return `${base}${ns}/${def.plural}${tail}`;
}

/**
 * Every request gives up after this (undici's own defaults wait 300 s for headers and body).
 * Long enough for a list of 10,000 objects; the leader passes a shorter signal of its own.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** One line of a watch stream. */
export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: KubeObject & { code?: number; reason?: string; message?: string };
}

export interface WatchQuery {
  resourceVersion: string;
  labelSelector?: string;
  /** The server ends the watch after this long; unset, a random 5 to 10 minutes, as client-go's reflector asks. */
  timeoutSeconds?: number;
}

/** client-go's minWatchTimeout: a watch asks for between one and two of these. */
const WATCH_MIN_SECONDS = 300;

export class KubeClient {
  readonly access: ClusterAccess;
  readonly server: string;
  /** Requests made, by verb (informer lists included, watches not), for the metrics and the benchmark. */
  readonly requestCounts: Record<Verb, number> = { get: 0, list: 0, create: 0, update: 0, patch: 0, delete: 0 };
  /** The same requests by verb and resource (`update certificates/status`), to see which writes an issuance costs. */
  readonly requestCountsByResource = new Map<string, number>();
  private dispatcher: Promise<Dispatcher> | undefined;
  private readonly timeoutMs: number;
  private readonly watchTimeoutSeconds: number | undefined;

  /** `watchTimeoutSeconds`: how long each watch asks to stay open; unset, a random 5 to 10 minutes per watch. */
  constructor(access: ClusterAccess, opts: { timeoutMs?: number; watchTimeoutSeconds?: number } = {}) {
    this.access = access;
    this.server = access.server;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.watchTimeoutSeconds = opts.watchTimeoutSeconds;
  }

  static fromKubeconfig(file: string): KubeClient {
    return new KubeClient(fromFiles([file]));
  }

  static fromDefault(opts: { watchTimeoutSeconds?: number } = {}): KubeClient {
    return new KubeClient(fromDefault(), opts);
  }

  /** The current context's namespace, where commands without --namespace look. */
  get namespace(): string | undefined {
    return this.access.namespace;
  }

  /** Auth headers are read per request so rotated service-account tokens are picked up. */
  private async prepare(): Promise<{ dispatcher: Dispatcher; headers: Record<string, string> }> {
    this.dispatcher ??= (async () => {
      const tls = this.access.delegated ? await this.access.delegated() : this.access.tls;
      return new Agent({ connect: { ...tls }, keepAliveTimeout: 30_000, connections: 64 });
    })();
    return { dispatcher: await this.dispatcher, headers: await this.access.headers() };
  }

  /**
   * One watch request, from `resourceVersion` on, with bookmarks so a quiet
   * resource still advances its resourceVersion and a reconnect rarely meets
   * 410 Gone. As client-go's reflector does, it asks the server to end the
   * watch after a random 5 to 10 minutes (`timeoutSeconds`), and the caller
   * resumes from the last version: a watch the server accepted but never feeds
   * (seen while a restarted API server was still installing the CRDs) cannot
   * leave a cache frozen for the server's own 30–60 minutes. A stream silent
   * for that long plus a minute is dropped here (undici's body timeout counts
   * from the last chunk), and a peer that died is found sooner by TCP keep-alive. Resolves when the
   * server ends the stream; rejects with an ApiError when it refuses one.
   */
  async watch(def: ResourceDef, namespace: string | undefined, query: WatchQuery, onEvent: (ev: WatchEvent) => void, signal?: AbortSignal): Promise<void> {
    const { dispatcher, headers } = await this.prepare();
    const timeoutSeconds = query.timeoutSeconds ?? this.watchTimeoutSeconds ?? WATCH_MIN_SECONDS + Math.floor(Math.random() * WATCH_MIN_SECONDS);
    const params = new URLSearchParams({ watch: 'true', allowWatchBookmarks: 'true', resourceVersion: query.resourceVersion, timeoutSeconds: String(timeoutSeconds) });
    if (query.labelSelector) params.set('labelSelector', query.labelSelector);
    const path = `${resourcePath(def, namespace)}?${params}`;
    const res = await request(`${this.server}${path}`, {
      method: 'GET',
      dispatcher,
      headers: { ...headers, accept: 'application/json' },
      signal,
      headersTimeout: this.timeoutMs,
      bodyTimeout: (timeoutSeconds + 60) * 1000,
    });
    if (res.statusCode !== 200) {
      const text = await res.body.text();
      let status: { reason?: string; message?: string } = {};
      try {
        status = JSON.parse(text) as typeof status;
      } catch {
        // not a Status object
      }
      throw new ApiError(`watch ${path}: ${res.statusCode} ${status.message ?? text.slice(0, 500)}`, res.statusCode, status.reason ?? 'Unknown');
    }
    res.body.setEncoding('utf8');
    let partial = '';
    for await (const chunk of res.body as AsyncIterable<string>) {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line) onEvent(JSON.parse(line) as WatchEvent);
    }
  }

  /**
   * One request, with a timeout on the whole exchange. A write made from a leader's work is
   * refused once that leadership is in doubt (see fence.ts).
   */
  async raw(method: string, path: string, body?: unknown, contentType = 'application/json', signal?: AbortSignal): Promise<unknown> {
    const { dispatcher, headers } = await this.prepare();
    if (MUTATING.has(method)) assertFence();
    const timeout = AbortSignal.timeout(this.timeoutMs);
    let text: string;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(`${this.server}${path}`, {
        method: method as Dispatcher.HttpMethod,
        dispatcher,
        headers: { ...headers, accept: 'application/json', ...(body !== undefined ? { 'content-type': contentType } : {}) },
        body: body !== undefined ? JSON.stringify(body) : undefined,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
      text = await res.body.text();
    } catch (err) {
      if (timeout.aborted || signal?.aborted) throw new Error(`${method} ${path}: no answer from the API server within ${signal?.aborted ? 'the caller\'s deadline' : `${this.timeoutMs} ms`}`, { cause: err });
      throw err;
    }
    if (res.statusCode >= 400) {
      let reason = 'Unknown';
      let message = text.slice(0, 500);
      try {
        const status = JSON.parse(text) as { reason?: string; message?: string };
        reason = status.reason ?? reason;
        message = status.message ?? message;
      } catch {
        // not a Status object; keep the raw text
      }
      throw new ApiError(`${method} ${path}: ${res.statusCode} ${message}`, res.statusCode, reason);
    }
    return text ? JSON.parse(text) : undefined;
  }

  private count(verb: Verb, def: ResourceDef, subresource?: string): void {
    this.requestCounts[verb]++;
    const key = `${verb} ${def.plural}${subresource ? `/${subresource}` : ''}`;
    this.requestCountsByResource.set(key, (this.requestCountsByResource.get(key) ?? 0) + 1);
  }

  async get<T extends KubeObject>(def: ResourceDef, namespace: string | undefined, name: string, opts: CallOptions = {}): Promise<T> {
    this.count('get', def);
    return (await this.raw('GET', resourcePath(def, namespace, name), undefined, undefined, opts.signal)) as T;
  }

  /** A get where "not found" is an answer, not an error. */
  async find<T extends KubeObject>(def: ResourceDef, namespace: string | undefined, name: string): Promise<T | undefined> {
    try {
      return await this.get<T>(def, namespace, name);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Lists in pages of `pageSize`, as client-go's pager does, handing each item to `each` as its
   * page arrives: 10,000 Secrets are never one 60 MB response held whole before the cache trims
   * them. The pages are one consistent snapshot; if the server expires the continue token
   * (410 Gone) midway, the list starts again in one piece, as client-go's pager falls back.
   */
  async list<T extends KubeObject>(def: ResourceDef, namespace?: string, labelSelector?: string, opts: { pageSize?: number; each?: (item: T) => T } = {}): Promise<ListResult<T>> {
    const apiVersion = def.group === '' ? def.version : `${def.group}/${def.version}`;
    const items: T[] = [];
    const page = async (query: Record<string, string>): Promise<{ resourceVersion: string; continue?: string }> => {
      this.count('list', def);
      const q = new URLSearchParams({ ...(labelSelector ? { labelSelector } : {}), ...query }).toString();
      const res = (await this.raw('GET', resourcePath(def, namespace) + (q ? `?${q}` : ''))) as { items: T[]; metadata: { resourceVersion: string; continue?: string } };
      for (const item of res.items) {
        item.apiVersion = apiVersion;
        item.kind = def.kind;
        items.push(opts.each ? opts.each(item) : item);
      }
      return res.metadata;
    };
    const limit = String(opts.pageSize ?? LIST_PAGE_SIZE);
    let meta = await page({ limit });
    try {
      while (meta.continue) meta = await page({ limit, continue: meta.continue });
    } catch (err) {
      if (!(err instanceof ApiError && err.statusCode === 410)) throw err;
      items.length = 0;
      meta = await page({});
    }
    return { items, resourceVersion: meta.resourceVersion };
  }

  async create<T extends KubeObject>(def: ResourceDef, obj: T, opts: CallOptions = {}): Promise<T> {
    this.count('create', def);
    return (await this.raw('POST', resourcePath(def, obj.metadata.namespace), withTypeMeta(def, obj), undefined, opts.signal)) as T;
  }

  /** Replace with the resourceVersion the caller read: a lost race is a 409, never a blind overwrite. */
  async replace<T extends KubeObject>(def: ResourceDef, obj: T, opts: CallOptions = {}): Promise<T> {
    this.count('update', def);
    return (await this.raw('PUT', resourcePath(def, obj.metadata.namespace, obj.metadata.name), withTypeMeta(def, obj), undefined, opts.signal)) as T;
  }

  async replaceStatus<T extends KubeObject>(def: ResourceDef, obj: T): Promise<T> {
    this.count('update', def, 'status');
    return (await this.raw('PUT', resourcePath(def, obj.metadata.namespace, obj.metadata.name, 'status'), withTypeMeta(def, obj))) as T;
  }

  async mergePatch<T extends KubeObject>(def: ResourceDef, namespace: string | undefined, name: string, patch: unknown, subresource?: string): Promise<T> {
    this.count('patch', def, subresource);
    return (await this.raw('PATCH', resourcePath(def, namespace, name, subresource), patch, 'application/merge-patch+json')) as T;
  }

  async delete(def: ResourceDef, namespace: string | undefined, name: string, preconditionUid?: string): Promise<void> {
    this.count('delete', def);
    const body = preconditionUid ? { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: preconditionUid } } : undefined;
    try {
      await this.raw('DELETE', resourcePath(def, namespace, name), body);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

function withTypeMeta<T extends KubeObject>(def: ResourceDef, obj: T): T {
  return { ...obj, apiVersion: def.group === '' ? def.version : `${def.group}/${def.version}`, kind: def.kind };
}
