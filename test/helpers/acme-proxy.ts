/**
 * An HTTPS proxy in front of the stack's Pebble, for fault tests: it fails chosen requests with
 * 5xx or 429 + Retry-After, holds a request before or after Pebble has answered it (so a test can
 * kill the controller at an exact ACME step), and records when each request arrived.
 *
 * It serves Pebble's own TLS certificate (signed by the stack CA, for 127.0.0.1), so an issuer
 * whose caBundle is the stack CA trusts it unchanged. It forwards the Host header as it came, and
 * Pebble builds every URL it returns from that header, so the client keeps talking to the proxy;
 * any Pebble origin left in a body or header is rewritten to the proxy's all the same.
 */
import { readFileSync } from 'node:fs';
import { request as httpsRequest, createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pkiDir } from '../env/paths.ts';
import type { StackEnv } from '../env/stack.ts';

/** One request as the proxy saw it. `at` is when it arrived (ms since epoch). */
export interface ProxiedRequest {
  method: string;
  path: string;
  at: number;
  status?: number;
  /** Answered by the proxy itself, never forwarded. */
  injected?: boolean;
}

/** Which requests a rule applies to: a method and a path prefix such as `/finalize-order/`. */
export interface Match {
  method?: string;
  pathPrefix: string;
}

export type Fault = { status: 500 | 502 } | { status: 429 | 503; retryAfterSeconds: number };

/**
 * A request held by the proxy. `reached` resolves when the first matching request arrives
 * (`before`) or when Pebble has answered it (`after`). `release` lets it through; `drop` closes
 * the client's connection instead, as a crash or a network cut would.
 */
export interface Hold {
  reached: Promise<ProxiedRequest>;
  release(): void;
  drop(): void;
}

export interface AcmeProxy {
  origin: string;
  directory: string;
  requests: ProxiedRequest[];
  failNext(match: Match, count: number, fault: Fault): void;
  hold(match: Match, when: 'before' | 'after'): Hold;
  close(): Promise<void>;
}

/** Pebble's paths, so tests name the ACME step rather than a string. */
export const PebblePaths = {
  newAccount: { method: 'POST', pathPrefix: '/sign-me-up' },
  newOrder: { method: 'POST', pathPrefix: '/order-plz' },
  order: { method: 'POST', pathPrefix: '/my-order/' },
  authorization: { method: 'POST', pathPrefix: '/authZ/' },
  challenge: { method: 'POST', pathPrefix: '/chalZ/' },
  finalize: { method: 'POST', pathPrefix: '/finalize-order/' },
  certificate: { method: 'POST', pathPrefix: '/certZ/' },
} as const satisfies Record<string, Match>;

const matches = (m: Match, method: string, path: string) => (m.method === undefined || m.method === method) && path.startsWith(m.pathPrefix);

interface FaultRule { match: Match; left: number; fault: Fault }
interface HoldRule { match: Match; when: 'before' | 'after'; taken: boolean; reached: (r: ProxiedRequest) => void; gate: Promise<'release' | 'drop'>; open: (how: 'release' | 'drop') => void }

function problem(fault: Fault): { headers: Record<string, string>; body: string } {
  const type = fault.status === 429 ? 'rateLimited' : 'serverInternal';
  const headers: Record<string, string> = { 'content-type': 'application/problem+json' };
  if ('retryAfterSeconds' in fault) headers['retry-after'] = String(fault.retryAfterSeconds);
  return { headers, body: JSON.stringify({ type: `urn:ietf:params:acme:error:${type}`, detail: `injected by the test proxy (${fault.status})`, status: fault.status }) };
}

/** `tls`: the proxy's own certificate and key instead of Pebble's (say, one nobody trusts). */
export async function startAcmeProxy(env: StackEnv, opts: { tls?: { cert: string; key: string } } = {}): Promise<AcmeProxy> {
  const upstream = new URL(env.pebble.directory);
  const ca = readFileSync(env.pebble.tlsCa);
  const requests: ProxiedRequest[] = [];
  const faults: FaultRule[] = [];
  const holds: HoldRule[] = [];
  let origin = '';

  const rewrite = (text: string) => text.split(upstream.origin).join(origin);

  async function forward(req: IncomingMessage, body: Buffer): Promise<{ status: number; headers: Record<string, string | string[]>; body: Buffer }> {
    return new Promise((resolve, reject) => {
      const headers = { ...req.headers };
      delete headers['content-length'];
      const out = httpsRequest({
        host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, ca,
        headers: { ...headers, 'content-length': String(body.length) }, servername: upstream.hostname === '127.0.0.1' ? undefined : upstream.hostname,
        timeout: 20_000,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const h: Record<string, string | string[]> = {};
          for (const [k, v] of Object.entries(res.headers)) {
            if (v === undefined || k === 'content-length' || k === 'transfer-encoding' || k === 'connection') continue;
            h[k] = Array.isArray(v) ? v.map(rewrite) : rewrite(v);
          }
          const raw = Buffer.concat(chunks);
          const type = String(res.headers['content-type'] ?? '');
          resolve({ status: res.statusCode ?? 502, headers: h, body: type.includes('json') ? Buffer.from(rewrite(raw.toString('utf8'))) : raw });
        });
        res.on('error', reject);
      });
      out.on('timeout', () => out.destroy(new Error('Pebble did not answer within 20 s')));
      out.on('error', reject);
      out.end(body);
    });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const record: ProxiedRequest = { method, path, at: Date.now() };
    requests.push(record);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);

    const fault = faults.find((f) => f.left > 0 && matches(f.match, method, path));
    if (fault) {
      fault.left--;
      const reply = problem(fault.fault);
      record.status = fault.fault.status;
      record.injected = true;
      res.writeHead(fault.fault.status, reply.headers);
      res.end(reply.body);
      return;
    }
    const hold = holds.find((h) => !h.taken && matches(h.match, method, path));
    if (hold) hold.taken = true;
    if (hold?.when === 'before') {
      hold.reached(record);
      if ((await hold.gate) === 'drop') {
        req.socket.destroy();
        return;
      }
    }
    let answer;
    try {
      answer = await forward(req, body);
    } catch (err) {
      record.status = 502;
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(`acme proxy: ${(err as Error).message}`);
      return;
    }
    record.status = answer.status;
    if (hold?.when === 'after') {
      hold.reached(record);
      if ((await hold.gate) === 'drop') {
        req.socket.destroy();
        return;
      }
    }
    res.writeHead(answer.status, answer.headers);
    res.end(answer.body);
  }

  const tls = opts.tls ?? { cert: readFileSync(join(pkiDir, 'pebble.crt'), 'utf8'), key: readFileSync(join(pkiDir, 'pebble.key'), 'utf8') };
  const server: Server = createServer(tls, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(502);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    origin,
    directory: `${origin}${upstream.pathname}`,
    requests,
    failNext(match, count, fault) {
      faults.push({ match, left: count, fault });
    },
    hold(match, when) {
      let reached!: (r: ProxiedRequest) => void;
      let open!: (how: 'release' | 'drop') => void;
      const reachedP = new Promise<ProxiedRequest>((r) => { reached = r; });
      const gate = new Promise<'release' | 'drop'>((r) => { open = r; });
      holds.push({ match, when, taken: false, reached, gate, open });
      return { reached: reachedP, release: () => open('release'), drop: () => open('drop') };
    },
    async close() {
      for (const h of holds) h.open('drop');
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Requests to one step, in arrival order. */
export function requestsTo(proxy: AcmeProxy, match: Match): ProxiedRequest[] {
  return proxy.requests.filter((r) => matches(match, r.method, r.path));
}
