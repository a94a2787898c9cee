/**
 * The TLS-ALPN-01 half of the responder: a TLS listener that negotiates only `acme-tls/1` and,
 * for a ClientHello naming a presented challenge, presents that challenge's validation
 * certificate (RFC 8737). Every replica runs it and answers from its own index of the presented
 * Challenges, fed by the informer like HTTP-01's; certificates are made on the first handshake
 * that needs one and dropped with their Challenge.
 */
import { connect, createSecureContext, createServer, type SecureContext, type Server, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { Challenge } from '../api/types.ts';
import { objectKey } from '../base/objects.ts';
import { ACME_TLS_PROTOCOL, validationCertificate, validationCertificateProblem } from '../pki/acme-tls-alpn.ts';
import { normalizeHost } from './challenge-index.ts';
import { listenOn } from './server.ts';

/** Whether the responder may answer for this Challenge: TLS-ALPN-01, a DNS name, presented, with a key authorization. */
export function isServableTlsAlpn(ch: Challenge): boolean {
  const spec = ch.spec;
  return spec?.type === 'TLS-ALPN-01' && spec.wildcard !== true && typeof spec.dnsName === 'string' && spec.dnsName.length > 0 &&
    !spec.dnsName.startsWith('*.') && ch.status?.presented === true && typeof spec.key === 'string' && spec.key.length > 0;
}

interface Entry {
  name: string;
  keyAuthorization: string;
  context?: Promise<SecureContext>;
}

/**
 * Name → the Challenge to answer for it. Two Challenges for one name (two orders at once) cannot
 * both be answered on one SNI: the one presented last wins, and the other's self-check waits.
 */
export class TlsAlpnIndex {
  private readonly byKey = new Map<string, Entry>();
  private readonly byName = new Map<string, string>();
  private readonly trusted: (ch: Challenge) => boolean;

  /** `trusted` says whether certroute's own ACME flow made the Challenge (challenge-owner.ts). */
  constructor(trusted: (ch: Challenge) => boolean = () => true) {
    this.trusted = trusted;
  }

  upsert(ch: Challenge): void {
    const key = objectKey(ch);
    const had = this.byKey.get(key);
    if (!isServableTlsAlpn(ch) || !this.trusted(ch)) {
      this.remove(ch);
      return;
    }
    const name = normalizeHost(ch.spec.dnsName);
    const same = had?.name === name && had.keyAuthorization === ch.spec.key;
    if (!same) this.byKey.set(key, { name, keyAuthorization: ch.spec.key });
    if (!same || this.byName.get(name) === undefined) this.byName.set(name, key);
  }

  remove(ch: Challenge): void {
    const key = objectKey(ch);
    const entry = this.byKey.get(key);
    if (!entry) return;
    this.byKey.delete(key);
    if (this.byName.get(entry.name) !== key) return;
    this.byName.delete(entry.name);
    // Another Challenge for the same name takes over the SNI.
    for (const [other, e] of this.byKey) if (e.name === entry.name) this.byName.set(entry.name, other);
  }

  /** The TLS context answering for `servername`, made on first use. */
  context(servername: string): Promise<SecureContext> | undefined {
    const key = this.byName.get(normalizeHost(servername));
    const entry = key === undefined ? undefined : this.byKey.get(key);
    if (!entry) return undefined;
    entry.context ??= validationCertificate(entry.name, entry.keyAuthorization).then(createSecureContext);
    return entry.context;
  }

  get size(): number {
    return this.byKey.size;
  }
}

export interface TlsAlpnResponderOptions {
  index: Pick<TlsAlpnIndex, 'context'>;
  port: number;
  host?: string;
  logger?: Pick<Logger, 'debug' | 'info'>;
  /** The validator only needs the handshake; a connection still open after this is closed. */
  idleTimeoutMs?: number;
}

export interface TlsAlpnResponder {
  listen(): Promise<number>;
  close(): Promise<void>;
}

export function createTlsAlpnResponder(options: TlsAlpnResponderOptions): TlsAlpnResponder {
  const log = options.logger;
  const server: Server = createServer({
    ALPNProtocols: [ACME_TLS_PROTOCOL],
    SNICallback: (servername, done) => {
      const context = options.index.context(servername);
      if (!context) {
        log?.debug({ servername: servername.slice(0, 256) }, 'TLS-ALPN-01 handshake for a name with no presented challenge');
        done(new Error('no presented TLS-ALPN-01 challenge for this name'));
        return;
      }
      context.then((c) => done(null, c), (err: unknown) => done(err instanceof Error ? err : new Error(String(err))));
    },
  }, (socket: TLSSocket) => {
    // A client that offered no ALPN at all still completed the handshake; it is not a validator.
    if (socket.alpnProtocol === ACME_TLS_PROTOCOL) log?.info({ servername: socket.servername }, 'served TLS-ALPN-01 challenge');
    socket.end();
  });
  server.on('tlsClientError', (err: NodeJS.ErrnoException) => log?.debug({ code: err.code }, 'TLS-ALPN-01 handshake refused'));
  server.on('connection', (socket) => socket.setTimeout(options.idleTimeoutMs ?? 10_000, () => socket.destroy()));
  return {
    listen: () => listenOn(server, options.port, options.host),
    close: () =>
      new Promise<void>((resolve) => {
        if (!server.listening) {
          resolve();
          return;
        }
        server.close(() => resolve());
      }),
  };
}

export type TlsAlpnCheckResult = { ok: true } | { ok: false; requested: string; got: string };

/**
 * The TLS-ALPN-01 self-check: the handshake the CA will make (SNI the name, ALPN only
 * `acme-tls/1`), sent to Traefik's websecure entry point, and the certificate judged as the CA
 * would. Never throws for what the network does.
 */
export function tlsAlpnSelfCheck(opts: { address: URL; name: string; keyAuthorization: string; timeoutMs?: number }): Promise<TlsAlpnCheckResult> {
  const port = Number(opts.address.port || 443);
  const requested = `TLS handshake to ${opts.address.hostname}:${port} (SNI ${opts.name}, ALPN ${ACME_TLS_PROTOCOL})`;
  return new Promise((resolve) => {
    const socket = connect({
      host: opts.address.hostname.replace(/^\[|\]$/g, ''),
      port,
      servername: opts.name,
      ALPNProtocols: [ACME_TLS_PROTOCOL],
      rejectUnauthorized: false,
      timeout: opts.timeoutMs ?? 5_000,
    }, () => {
      const cert = socket.getPeerCertificate();
      const problem = socket.alpnProtocol !== ACME_TLS_PROTOCOL
        ? `negotiated ${socket.alpnProtocol || 'no protocol'} instead of ${ACME_TLS_PROTOCOL}`
        : cert?.raw ? validationCertificateProblem(cert.raw, opts.name, opts.keyAuthorization) : 'presented no certificate';
      socket.destroy();
      resolve(problem === undefined ? { ok: true } : { ok: false, requested, got: `the certificate ${problem}` });
    });
    socket.on('timeout', () => {
      socket.destroy();
      resolve({ ok: false, requested, got: 'no handshake within the timeout' });
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ ok: false, requested, got: `handshake failed (${err.code ?? err.message})` }));
  });
}
