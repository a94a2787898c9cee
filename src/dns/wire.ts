/**
 * DNS on the wire: one exchange of a message with one server, over TCP or UDP, and queries built
 * on it. dns-packet encodes and decodes the messages; what it lacks (the UPDATE class NONE, TSIG,
 * transports) lives beside it in this directory.
 */
import { randomInt } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { connect } from 'node:net';
import * as packet from 'dns-packet';

/** A nameserver as cert-manager's `nameserver` fields write it: `host`, `host:port` or `[v6]:port`. */
export interface Server {
  host: string;
  port: number;
}

export function parseServer(text: string, defaultPort = 53): Server {
  const trimmed = text.trim();
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(trimmed);
  const [host, port] = v6 ? [v6[1]!, v6[2]] : isIPv6(trimmed) ? [trimmed, undefined] : (trimmed.split(':') as [string, string | undefined]);
  const n = port === undefined ? defaultPort : Number(port);
  if (!host || !Number.isInteger(n) || n < 1 || n > 65535) {
    throw new Error(`"${text}" is not a nameserver address; write it as host, host:port or [IPv6]:port`);
  }
  return { host, port: n };
}

export function formatServer(server: Server): string {
  return isIPv6(server.host) ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}

/** Lower-case, without the trailing dot: the form every comparison here uses. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** A name in uncompressed, lower-cased wire form (RFC 4034 §6.2's canonical form), as TSIG hashes it. */
export function canonicalName(name: string): Buffer {
  const labels = normalizeName(name).split('.').filter(Boolean);
  return Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')])), Buffer.from([0])]);
}

export const Opcode = { QUERY: 0, UPDATE: 5 } as const;
export const RecordClass = { IN: 1, NONE: 254, ANY: 255 } as const;

/** dns-packet's decoded header carries these, which its type definitions leave out. */
export type Response = packet.DecodedPacket & { rcode: string; opcode: string };

export function newId(): number {
  return randomInt(0, 0x10000);
}

const defaultTimeoutMs = 5_000;

function exchangeTcp(server: Server, message: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: server.host, port: server.port });
    const chunks: Buffer[] = [];
    let length = 0;
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer from ${formatServer(server)} over TCP within ${timeoutMs} ms`)));
    socket.on('connect', () => {
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16BE(message.length);
      socket.end(Buffer.concat([prefix, message]));
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      const all = Buffer.concat(chunks, length);
      if (all.length >= 2 && all.length >= 2 + all.readUInt16BE(0)) {
        socket.destroy();
        resolve(all.subarray(2, 2 + all.readUInt16BE(0)));
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`${formatServer(server)} closed the TCP connection without a full answer`)));
  });
}

function exchangeUdp(server: Server, message: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIPv6(server.host) ? 'udp6' : 'udp4');
    const id = message.readUInt16BE(0);
    const timer = setTimeout(() => finish(new Error(`no answer from ${formatServer(server)} over UDP within ${timeoutMs} ms`)), timeoutMs);
    const finish = (error: Error | undefined, answer?: Buffer) => {
      clearTimeout(timer);
      socket.close();
      if (error) reject(error);
      else resolve(answer!);
    };
    socket.on('message', (answer: Buffer) => {
      // A datagram with another id is not our answer (a late reply to an earlier try).
      if (answer.length >= 12 && answer.readUInt16BE(0) === id) finish(undefined, answer);
    });
    socket.on('error', (error) => finish(error));
    socket.send(message, server.port, server.host);
  });
}

function isConnectionFailure(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && ['ECONNREFUSED', 'ECONNRESET', 'EPIPE'].includes(code);
}

export interface ExchangeOptions {
  timeoutMs?: number;
  /**
   * 'tcp': TCP, and UDP when the server refuses TCP connections (RFC 2136 §3.8 allows either for
   * updates). 'udp': UDP, and TCP again when the answer is truncated, as resolvers do.
   */
  transport?: 'tcp' | 'udp';
}

/** Sends one message and returns the raw answer. */
export async function exchange(server: Server, message: Buffer, options: ExchangeOptions = {}): Promise<Buffer> {
  const timeoutMs = options.timeoutMs ?? defaultTimeoutMs;
  if (options.transport === 'udp') {
    const answer = await exchangeUdp(server, message, timeoutMs);
    return (answer.readUInt16BE(2) & packet.TRUNCATED_RESPONSE) !== 0 ? exchangeTcp(server, message, timeoutMs) : answer;
  }
  try {
    return await exchangeTcp(server, message, timeoutMs);
  } catch (error) {
    if (!isConnectionFailure(error) || message.length > 512) throw error;
    return exchangeUdp(server, message, timeoutMs);
  }
}

export interface QueryOptions extends ExchangeOptions {
  /** Set RD: ask a recursive resolver. Off when asking an authoritative server directly. */
  recursive?: boolean;
}

/** One question to one server; the decoded answer, whatever its rcode. */
export async function query(server: Server, name: string, type: packet.RecordType, options: QueryOptions = {}): Promise<Response> {
  const message = packet.encode({
    type: 'query',
    id: newId(),
    flags: options.recursive === false ? 0 : packet.RECURSION_DESIRED,
    questions: [{ name: normalizeName(name), type, class: 'IN' }],
  });
  const answer = await exchange(server, message, { transport: 'udp', ...options });
  return packet.decode(answer) as Response;
}

/** The strings of each TXT record for `name` in an answer, each record's strings joined. */
export function txtValues(response: Response, name: string): string[] {
  const wanted = normalizeName(name);
  return (response.answers ?? [])
    .filter((a): a is packet.TxtAnswer => a.type === 'TXT' && normalizeName(a.name) === wanted)
    .map((a) => (Array.isArray(a.data) ? a.data : [a.data]).map((part) => part.toString()).join(''));
}
