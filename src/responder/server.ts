/**
 * The one HTTP-01 responder every replica runs (docs/ARCHITECTURE.md, decision 4). It
 * answers `/.well-known/acme-challenge/<token>` from the informer cache and
 * gives every other request the same constant 404, so that probing for
 * tokens or hosts learns nothing. Timeouts are tight because the only
 * legitimate clients are Traefik and ACME validators sending tiny requests.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Server as NetServer, Socket } from 'node:net';
import type { Logger } from 'pino';
import { TOKEN_PATTERN } from './challenge-index.ts';

export type ResponderOutcome = 'served' | 'not_found' | 'bad_request';

export interface ResponderTimeouts {
  /** Time allowed to receive the request headers; cuts off slowloris clients. */
  headersTimeoutMs: number;
  /** Time allowed for the whole request. */
  requestTimeoutMs: number;
  /** Idle time before a kept-alive connection is closed. */
  keepAliveTimeoutMs: number;
}

export const DEFAULT_TIMEOUTS: ResponderTimeouts = {
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
};

/** node:http answers 431 when the request line and headers exceed this. */
export const MAX_HEADER_SIZE = 8 * 1024;

export interface ResponderOptions {
  /** The key authorization for a token requested on a host, if a presented challenge matches both. */
  lookup: (token: string, host: string) => string | undefined;
  port: number;
  host?: string;
  logger?: Pick<Logger, 'debug' | 'info' | 'warn'>;
  /** Called once per challenge request and per rejected connection, for metrics. */
  onRequest?: (outcome: ResponderOutcome) => void;
  isReady: () => boolean;
  timeouts?: Partial<ResponderTimeouts>;
}

export interface Responder {
  /** Starts listening and resolves with the bound port (useful with port 0). */
  listen(): Promise<number>;
  close(): Promise<void>;
}

const CHALLENGE_PREFIX = '/.well-known/acme-challenge/';
/** The body of every 404 the responder sends: Traefik's own 404 has the same one. */
export const NOT_FOUND_BODY = '404 page not found\n';

const COMMON_HEADERS = {
  'Content-Type': 'text/plain; charset=utf-8',
  'Cache-Control': 'no-cache, no-store, must-revalidate',
  Pragma: 'no-cache',
  'X-Content-Type-Options': 'nosniff',
} as const;

/**
 * Whether a response is this responder's 404 rather than Traefik's own for a
 * request no router matches: the bodies are the same, the no-cache headers
 * only the responder sends tell them apart. `certroute check` relies on it to
 * say which hop a broken route stops at. Header names in lower case.
 */
export function isResponderNotFound(r: { status: number; headers: Readonly<Record<string, string>>; body: string }): boolean {
  return r.status === 404 && r.body === NOT_FOUND_BODY && r.headers['cache-control'] === COMMON_HEADERS['Cache-Control'] && r.headers.pragma === COMMON_HEADERS.Pragma;
}

const CLIENT_ERROR_RESPONSES: Record<string, string> = {
  HPE_HEADER_OVERFLOW: 'HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
  ERR_HTTP_REQUEST_TIMEOUT: 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
};
const BAD_REQUEST_RESPONSE = 'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n';

function send(req: IncomingMessage, res: ServerResponse, status: number, body: string): void {
  const headers: Record<string, string | number> = {
    ...COMMON_HEADERS,
    'Content-Length': Buffer.byteLength(body),
  };
  // The body is never read. Closing the connection keeps an unread body
  // from being parsed as the next request.
  if (hasBody(req)) headers.Connection = 'close';
  res.writeHead(status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function pathOf(url: string | undefined): string | undefined {
  if (url === undefined || !url.startsWith('/')) return undefined;
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** Attacker-controlled text is cut short before it reaches a log line. */
function clip(value: string | undefined): string | undefined {
  return value === undefined || value.length <= 256 ? value : `${value.slice(0, 256)}…`;
}

interface Classified {
  outcome: ResponderOutcome;
  keyAuthorization?: string;
  token?: string;
}

function classifyChallenge(req: IncomingMessage, path: string, lookup: ResponderOptions['lookup']): Classified {
  const token = path.slice(CHALLENGE_PREFIX.length);
  const host = req.headers.host;
  if ((req.method !== 'GET' && req.method !== 'HEAD') || !TOKEN_PATTERN.test(token) || !host) {
    return { outcome: 'bad_request' };
  }
  const keyAuthorization = lookup(token, host);
  return keyAuthorization === undefined ? { outcome: 'not_found', token } : { outcome: 'served', keyAuthorization, token };
}

/** Starts `server` listening and resolves with the bound port (useful with port 0). */
export function listenOn(server: NetServer, port: number, host?: string): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}

export function createResponder(options: ResponderOptions): Responder {
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const log = options.logger;

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const path = pathOf(req.url);
    const readOnly = req.method === 'GET' || req.method === 'HEAD';

    if (path?.startsWith(CHALLENGE_PREFIX)) {
      const result = classifyChallenge(req, path, options.lookup);
      options.onRequest?.(result.outcome);
      if (result.keyAuthorization !== undefined) {
        log?.info({ token: result.token, host: clip(req.headers.host) }, 'served HTTP-01 challenge');
        send(req, res, 200, result.keyAuthorization);
        return;
      }
      log?.debug({ outcome: result.outcome, host: clip(req.headers.host), path: clip(path) }, 'challenge request not answered');
      send(req, res, 404, NOT_FOUND_BODY);
      return;
    }
    if (readOnly && path === '/livez') {
      send(req, res, 200, 'ok\n');
      return;
    }
    if (readOnly && path === '/readyz') {
      const ready = options.isReady();
      send(req, res, ready ? 200 : 503, ready ? 'ok\n' : 'not ready\n');
      return;
    }
    send(req, res, 404, NOT_FOUND_BODY);
  }

  /** Replaces node's default so rejected connections are counted and closed promptly. */
  function onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    options.onRequest?.('bad_request');
    log?.debug({ code: err.code }, 'rejected malformed or slow request');
    if (socket.writable && socket.bytesWritten === 0) {
      socket.end(CLIENT_ERROR_RESPONSES[err.code ?? ''] ?? BAD_REQUEST_RESPONSE);
      setTimeout(() => socket.destroy(), 1_000).unref();
    } else {
      socket.destroy();
    }
  }

  const server: Server = createServer(
    {
      maxHeaderSize: MAX_HEADER_SIZE,
      headersTimeout: timeouts.headersTimeoutMs,
      requestTimeout: timeouts.requestTimeoutMs,
      keepAliveTimeout: timeouts.keepAliveTimeoutMs,
      // headersTimeout and requestTimeout are only enforced when this sweep
      // runs; node's default of 30 s would let a slow client linger that long.
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(timeouts.headersTimeoutMs / 4))),
    },
    handle,
  );
  server.maxHeadersCount = 100;
  server.on('clientError', onClientError);

  return {
    listen: () => listenOn(server, options.port, options.host),
    close: () =>
      new Promise<void>((resolve, reject) => {
        if (!server.listening) {
          resolve();
          return;
        }
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
