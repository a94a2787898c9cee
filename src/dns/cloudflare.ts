/**
 * The part of Cloudflare's v4 API that DNS-01 needs: find the zone of a name, and create and
 * delete TXT records in it. Every answer comes in Cloudflare's envelope
 * (`{success, errors: [{code, message}], result, result_info}`); a failure becomes a
 * `CloudflareError` whose message starts `Cloudflare API: <status>`, which the Challenge shows.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { normalizeName } from './wire.ts';

export const CLOUDFLARE_API = 'https://api.cloudflare.com/client/v4';

export type CloudflareAuth = { token: string } | { key: string; email: string };

interface Envelope<T> {
  success?: boolean;
  errors?: Array<{ code?: number; message?: string }>;
  result?: T;
  result_info?: { page?: number; total_pages?: number };
}

export interface CloudflareZone {
  id: string;
  name: string;
}

export interface CloudflareRecord {
  id: string;
  type: string;
  name: string;
  content: string;
}

/** Codes Cloudflare gives when the record we are creating is already there. */
const ALREADY_THERE = new Set([81057, 81058]);

export class CloudflareError extends Error {
  readonly status: number;
  readonly codes: number[];
  constructor(message: string, status: number, codes: number[], options?: ErrorOptions) {
    super(message, options);
    this.name = 'CloudflareError';
    this.status = status;
    this.codes = codes;
  }

  /** Credentials refused or too narrow: retrying will not help until the user changes something. */
  get permanent(): boolean {
    return this.status === 400 || this.status === 401 || this.status === 403 || this.status === 404;
  }
}

export interface CloudflareOptions {
  baseUrl?: string;
  auth: CloudflareAuth;
  /** Attempts for one call while Cloudflare answers 429 (rate limited), backing off between them. */
  maxAttempts?: number;
  /** First back-off after a 429 without Retry-After; doubles each time, capped at 30 s. */
  backoffMs?: number;
  timeoutMs?: number;
  /** Records per page of a list (Cloudflare's default for dns_records is 100). */
  pageSize?: number;
  sleep?: (ms: number) => Promise<unknown>;
}

export class CloudflareClient {
  private readonly baseUrl: string;
  private readonly auth: CloudflareAuth;
  private readonly maxAttempts: number;
  private readonly backoffMs: number;
  private readonly timeoutMs: number;
  private readonly pageSize: number;
  private readonly sleep: (ms: number) => Promise<unknown>;

  constructor(options: CloudflareOptions) {
    this.baseUrl = (options.baseUrl ?? CLOUDFLARE_API).replace(/\/+$/, '');
    this.auth = options.auth;
    this.maxAttempts = options.maxAttempts ?? 6;
    this.backoffMs = options.backoffMs ?? 1_000;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.pageSize = options.pageSize ?? 100;
    this.sleep = options.sleep ?? ((ms) => sleep(ms));
  }

  private headers(): Record<string, string> {
    const auth: Record<string, string> = 'token' in this.auth
      ? { authorization: `Bearer ${this.auth.token}` }
      : { 'x-auth-key': this.auth.key, 'x-auth-email': this.auth.email };
    return { ...auth, 'content-type': 'application/json', accept: 'application/json' };
  }

  /** One API call; a 429 is retried here after Retry-After (or a doubling back-off). */
  private async call<T>(method: string, path: string, body?: unknown): Promise<Envelope<T>> {
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(`${this.baseUrl}${path}`, {
          method,
          headers: this.headers(),
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.timeoutMs),
          redirect: 'error',
        });
      } catch (error) {
        throw new CloudflareError(`Cloudflare API: ${method} ${path} failed: ${(error as Error).message}`, 0, [], { cause: error });
      }
      const envelope = (await response.json().catch(() => ({}))) as Envelope<T>;
      if (response.status === 429 && attempt < this.maxAttempts) {
        await this.sleep(retryAfterMs(response.headers.get('retry-after')) ?? Math.min(30_000, this.backoffMs * 2 ** (attempt - 1)));
        continue;
      }
      if (response.ok && envelope.success !== false) return envelope;
      const errors = envelope.errors ?? [];
      const detail = errors.map((e) => `${e.message ?? 'error'} (${e.code ?? '?'})`).join('; ') || response.statusText;
      throw new CloudflareError(`Cloudflare API: ${response.status} ${detail}`, response.status, errors.flatMap((e) => (typeof e.code === 'number' ? [e.code] : [])));
    }
  }

  /** Every page of a list. */
  private async list<T>(path: string, params: Record<string, string>): Promise<T[]> {
    const items: T[] = [];
    for (let page = 1; ; page++) {
      const query = new URLSearchParams({ ...params, page: String(page) });
      const envelope = await this.call<T[]>('GET', `${path}?${query}`);
      items.push(...(envelope.result ?? []));
      if (page >= (envelope.result_info?.total_pages ?? 1)) return items;
    }
  }

  /**
   * The zone holding `fqdn`: the longest of its parent names that the credentials can see,
   * found by walking up one label at a time, as cert-manager does.
   */
  async findZone(fqdn: string): Promise<CloudflareZone> {
    const labels = normalizeName(fqdn).split('.');
    for (let i = 0; i < labels.length - 1; i++) {
      const candidate = labels.slice(i).join('.');
      const zones = await this.list<CloudflareZone>('/zones', { name: candidate, per_page: '50' });
      const zone = zones.find((z) => normalizeName(z.name) === candidate);
      if (zone) return zone;
    }
    throw new CloudflareError(`Cloudflare API: no zone for ${normalizeName(fqdn)} is visible to these credentials; give the API token Zone:Read and DNS:Edit on the zone`, 404, []);
  }

  async txtRecords(zone: CloudflareZone, fqdn: string): Promise<CloudflareRecord[]> {
    return this.list<CloudflareRecord>(`/zones/${zone.id}/dns_records`, { type: 'TXT', name: normalizeName(fqdn), per_page: String(this.pageSize) });
  }

  /** Creates the TXT record; one that is already there (81057, 81058) counts as created. */
  async createTxt(zone: CloudflareZone, fqdn: string, content: string, ttl = 120): Promise<void> {
    try {
      await this.call('POST', `/zones/${zone.id}/dns_records`, { type: 'TXT', name: normalizeName(fqdn), content, ttl });
    } catch (error) {
      if (error instanceof CloudflareError && error.codes.some((c) => ALREADY_THERE.has(c))) return;
      throw error;
    }
  }

  /** Deletes exactly the TXT records of `fqdn` holding `content`; others on the name stay. */
  async deleteTxt(zone: CloudflareZone, fqdn: string, content: string): Promise<void> {
    // Listed by name only: Cloudflare may hand TXT content back in quotes, which a content filter misses.
    for (const record of await this.txtRecords(zone, fqdn)) {
      if (record.content.replace(/^"(.*)"$/, '$1') !== content) continue;
      await this.call('DELETE', `/zones/${zone.id}/dns_records/${record.id}`);
    }
  }
}

/** Retry-After as seconds or an HTTP date, in ms; capped at a minute. */
function retryAfterMs(value: string | null): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) ? Math.min(60_000, Math.max(0, ms)) : undefined;
}
