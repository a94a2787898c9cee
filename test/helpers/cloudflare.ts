/**
 * A stand-in for the part of Cloudflare's v4 API that certroute calls: zones by name, and a
 * zone's dns_records list, create and delete. It checks Cloudflare's auth headers, answers with
 * Cloudflare's envelope, error codes and pagination, and applies every record change to BIND
 * through RFC 2136, so Pebble validates against what certroute wrote.
 *
 * The stack runs it as a process (`node test/helpers/cloudflare.ts`, configured through
 * CERTROUTE_CLOUDFLARE_STANDIN). Tests steer it through `/__stand-in/…`, which the real API has not:
 * make the next requests fail with a status (a 429 storm), and read the request log.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { addTxt, deleteTxt, type UpdateTarget } from '../../src/dns/rfc2136.ts';
import type { TsigAlgorithm } from '../../src/dns/tsig.ts';
import { normalizeName, parseServer } from '../../src/dns/wire.ts';

export interface StandInConfig {
  port: number;
  zone: string;
  token: string;
  /** The account email that goes with `token` used as a Global API Key (X-Auth-Email + X-Auth-Key). */
  email: string;
  bind: { address: string; tsigKeyName: string; tsigAlgorithm: TsigAlgorithm; tsigSecret: string };
}

export const STANDIN_ENV = 'CERTROUTE_CLOUDFLARE_STANDIN';

/** The account email the stand-in pairs with its token for Global API Key auth. */
export function standInEmail(zone: string): string {
  return `admin@${zone}`;
}

interface DnsRecord {
  id: string;
  zone_id: string;
  zone_name: string;
  type: string;
  name: string;
  content: string;
  ttl: number;
  proxied: boolean;
  created_on: string;
}

interface CfError {
  code: number;
  message: string;
}

/** Faults injected by a test: the next `count` API requests answer `status`. */
export interface Fault {
  status: number;
  count: number;
  retryAfter?: number;
}

const idOf = () => randomBytes(16).toString('hex');

export function startStandIn(config: StandInConfig): http.Server {
  const zone = { id: idOf(), name: normalizeName(config.zone), status: 'active' };
  const records = new Map<string, DnsRecord>();
  const log: Array<{ method: string; path: string; status: number }> = [];
  let fault: Fault | undefined;
  const target: UpdateTarget = {
    server: parseServer(config.bind.address),
    key: { name: config.bind.tsigKeyName, algorithm: config.bind.tsigAlgorithm, secret: Buffer.from(config.bind.tsigSecret, 'base64') },
  };

  const send = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const failure = (res: http.ServerResponse, status: number, errors: CfError[], headers?: Record<string, string>) =>
    send(res, status, { success: false, errors, messages: [], result: null }, headers);
  const success = (res: http.ServerResponse, result: unknown, resultInfo?: unknown) =>
    send(res, 200, { success: true, errors: [], messages: [], result, ...(resultInfo ? { result_info: resultInfo } : {}) });

  /** Cloudflare answers lists one page at a time, with result_info saying where the page is. */
  const page = <T>(res: http.ServerResponse, items: T[], url: URL, defaultPerPage: number, maxPerPage: number) => {
    const perPage = Math.min(maxPerPage, Math.max(1, Number(url.searchParams.get('per_page') ?? defaultPerPage)));
    const pageNo = Math.max(1, Number(url.searchParams.get('page') ?? 1));
    const slice = items.slice((pageNo - 1) * perPage, pageNo * perPage);
    success(res, slice, { page: pageNo, per_page: perPage, count: slice.length, total_count: items.length, total_pages: Math.max(1, Math.ceil(items.length / perPage)) });
  };

  const authorized = (req: http.IncomingMessage): CfError | undefined => {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (bearer !== undefined) return bearer === config.token ? undefined : { code: 9109, message: 'Invalid access token' };
    const key = req.headers['x-auth-key'];
    const email = req.headers['x-auth-email'];
    if (key === undefined && email === undefined) return { code: 10000, message: 'Authentication error' };
    return key === config.token && email === config.email ? undefined : { code: 9103, message: 'Unknown X-Auth-Key or X-Auth-Email' };
  };

  const api = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL, body: string): Promise<void> => {
    if (fault && fault.count > 0) {
      fault.count -= 1;
      const headers: Record<string, string> = fault.retryAfter !== undefined ? { 'retry-after': String(fault.retryAfter) } : {};
      return failure(res, fault.status, [{ code: fault.status === 429 ? 971 : 10000, message: fault.status === 429 ? 'Please wait and consider throttling your request speed' : 'Injected failure' }], headers);
    }
    const denied = authorized(req);
    if (denied) return failure(res, 403, [denied]);
    const path = url.pathname.replace(/^\/client\/v4/, '');
    if (req.method === 'GET' && path === '/zones') {
      const name = url.searchParams.get('name');
      return page(res, name === null || normalizeName(name) === zone.name ? [zone] : [], url, 20, 50);
    }
    const m = /^\/zones\/([^/]+)\/dns_records(?:\/([^/]+))?$/.exec(path);
    if (!m) return failure(res, 404, [{ code: 7003, message: 'Could not route to ' + path + ', perhaps your object identifier is invalid?' }]);
    if (m[1] !== zone.id) return failure(res, 404, [{ code: 7003, message: 'Could not route to ' + path + ', perhaps your object identifier is invalid?' }]);
    if (req.method === 'GET' && !m[2]) {
      const want = (key: string) => url.searchParams.get(key);
      const matches = [...records.values()].filter((r) =>
        (!want('type') || r.type === want('type')) && (!want('name') || r.name === normalizeName(want('name')!)) && (!want('content') || r.content === want('content')));
      return page(res, matches, url, 100, 5000);
    }
    if (req.method === 'POST' && !m[2]) {
      let input: { type?: unknown; name?: unknown; content?: unknown; ttl?: unknown };
      try {
        input = JSON.parse(body) as typeof input;
      } catch {
        return failure(res, 400, [{ code: 9207, message: 'Request body is invalid.' }]);
      }
      if (input.type !== 'TXT' || typeof input.name !== 'string' || typeof input.content !== 'string') {
        return failure(res, 400, [{ code: 9000, message: 'DNS name, type and content are required; this stand-in knows only TXT' }]);
      }
      const name = normalizeName(input.name);
      if (name !== zone.name && !name.endsWith(`.${zone.name}`)) return failure(res, 400, [{ code: 9007, message: `Content for TXT record is invalid: ${name} is not in zone ${zone.name}` }]);
      if ([...records.values()].some((r) => r.type === 'TXT' && r.name === name && r.content === input.content)) {
        return failure(res, 400, [{ code: 81058, message: 'An identical record already exists.' }]);
      }
      const ttl = typeof input.ttl === 'number' && input.ttl > 1 ? input.ttl : 1;
      await addTxt(target, name, input.content, ttl === 1 ? 60 : ttl, zone.name);
      const record: DnsRecord = { id: idOf(), zone_id: zone.id, zone_name: zone.name, type: 'TXT', name, content: input.content, ttl, proxied: false, created_on: new Date().toISOString() };
      records.set(record.id, record);
      return success(res, record);
    }
    if (req.method === 'DELETE' && m[2]) {
      const record = records.get(m[2]);
      if (!record) return failure(res, 404, [{ code: 81044, message: 'Record does not exist.' }]);
      await deleteTxt(target, record.name, record.content, zone.name);
      records.delete(record.id);
      return success(res, { id: record.id });
    }
    return failure(res, 405, [{ code: 10405, message: `Method ${req.method ?? ''} not allowed` }]);
  };

  const control = (req: http.IncomingMessage, res: http.ServerResponse, url: URL, body: string) => {
    if (req.method === 'POST' && url.pathname === '/__stand-in/fail') {
      fault = JSON.parse(body) as Fault;
      return send(res, 200, { ok: true });
    }
    if (req.method === 'GET' && url.pathname === '/__stand-in/requests') return send(res, 200, log);
    if (req.method === 'GET' && url.pathname === '/__stand-in/records') return send(res, 200, [...records.values()]);
    return send(res, 404, { ok: false });
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://stand-in');
      const body = Buffer.concat(chunks).toString('utf8');
      if (url.pathname.startsWith('/__stand-in/')) return control(req, res, url, body);
      res.on('finish', () => log.push({ method: req.method ?? '', path: url.pathname + url.search, status: res.statusCode }));
      api(req, res, url, body).catch((error: unknown) => failure(res, 500, [{ code: 10001, message: `stand-in: ${(error as Error).message}` }]));
    });
  });
  server.listen(config.port, '127.0.0.1');
  return server;
}

/** Makes the stand-in at `api` (…/client/v4) answer the next `count` API requests with `status`. */
export async function injectFault(api: string, fault: Fault): Promise<void> {
  const res = await fetch(new URL('/__stand-in/fail', api), { method: 'POST', body: JSON.stringify(fault) });
  if (!res.ok) throw new Error(`the Cloudflare stand-in refused the fault: ${res.status}`);
}

/** The API requests the stand-in answered, oldest first, with their status. */
export async function standInRequests(api: string): Promise<Array<{ method: string; path: string; status: number }>> {
  return (await (await fetch(new URL('/__stand-in/requests', api))).json()) as Array<{ method: string; path: string; status: number }>;
}

if (import.meta.main) {
  const raw = process.env[STANDIN_ENV];
  if (!raw) throw new Error(`${STANDIN_ENV} is not set; the stack starts this stand-in with its configuration`);
  const config = JSON.parse(raw) as StandInConfig;
  startStandIn(config).on('listening', () => console.log(`Cloudflare API stand-in for zone ${config.zone} on 127.0.0.1:${config.port}`));
}
