/**
 * RFC 2136 dynamic updates of TXT records, signed with TSIG: add one value, or delete exactly one
 * value and leave the other values of the same name alone (two Orders may share a name).
 */
import * as packet from 'dns-packet';
import { sign, tsigError, type TsigKey } from './tsig.ts';
import { canonicalName, exchange, formatServer, newId, normalizeName, Opcode, query, RecordClass, type Response, type Server } from './wire.ts';

export interface UpdateTarget {
  server: Server;
  /** Omitted for a server that accepts unsigned updates. */
  key?: TsigKey | undefined;
  clock?: () => Date;
  timeoutMs?: number;
  /** 'tcp' (default): TCP, UDP when TCP is refused; 'udp': UDP, TCP when the answer is truncated. */
  transport?: 'tcp' | 'udp';
}

/** A refused or failed update, with the server's rcode (and TSIG error) for the caller's reason. */
export class DnsUpdateError extends Error {
  readonly rcode: string;
  constructor(message: string, rcode: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DnsUpdateError';
    this.rcode = rcode;
  }
}

/**
 * The zone that holds `fqdn` on this server: the SOA owner it answers with, in the answer
 * section for an apex, in the authority section for any other name (RFC 2308 negative answers).
 */
export async function zoneOf(target: UpdateTarget, fqdn: string): Promise<string> {
  const answer = await query(target.server, fqdn, 'SOA', { recursive: false, timeoutMs: target.timeoutMs });
  const soa = [...(answer.answers ?? []), ...(answer.authorities ?? [])].find((r) => r.type === 'SOA');
  if (!soa || (answer.rcode !== 'NOERROR' && answer.rcode !== 'NXDOMAIN')) {
    throw new DnsUpdateError(`nameserver ${formatServer(target.server)} is not authoritative for ${normalizeName(fqdn)} (answered ${answer.rcode} with no SOA)`, answer.rcode);
  }
  return normalizeName(soa.name);
}

export type Change = { op: 'add'; ttl: number } | { op: 'delete' };

export function updateMessage(zone: string, fqdn: string, value: string, change: Change): Buffer {
  const record: packet.TxtAnswer = { type: 'TXT', name: normalizeName(fqdn), class: 'IN', ttl: change.op === 'add' ? change.ttl : 0, data: [value] };
  const message = packet.encode({
    type: 'query',
    id: newId(),
    flags: Opcode.UPDATE << 11,
    questions: [{ name: zone, type: 'SOA', class: 'IN' }],
    // UPDATE reuses the sections: zone, prerequisites, updates, additional (RFC 2136 §2).
    authorities: [record],
  });
  if (change.op === 'delete') {
    // RFC 2136 §2.5.4: class NONE deletes this one RR; dns-packet has no name for class 254.
    // It writes names uncompressed, so the class sits right after the zone and the owner name.
    const zoneLength = canonicalName(zone).length + 4;
    message.writeUInt16BE(RecordClass.NONE, 12 + zoneLength + canonicalName(record.name).length + 2);
  }
  return message;
}

async function send(target: UpdateTarget, zone: string, message: Buffer, what: string): Promise<void> {
  const signed = target.key ? sign(message, target.key, (target.clock ?? (() => new Date()))()) : message;
  let raw: Buffer;
  try {
    raw = await exchange(target.server, signed, { transport: target.transport ?? 'tcp', timeoutMs: target.timeoutMs });
  } catch (error) {
    throw new DnsUpdateError(`${what}: nameserver ${formatServer(target.server)} did not answer: ${(error as Error).message}`, 'TIMEOUT', { cause: error });
  }
  const answer = packet.decode(raw) as Response;
  if (answer.rcode === 'NOERROR') return;
  const why = tsigError(answer.additionals ?? []);
  const hint = answer.rcode === 'NOTAUTH' || why
    ? '; check tsigKeyName, tsigAlgorithm and the secret against the server\'s key'
    : answer.rcode === 'REFUSED' ? `; the server's update-policy for zone ${zone} does not allow this key to change the name` : '';
  throw new DnsUpdateError(`${what}: nameserver ${formatServer(target.server)} answered ${answer.rcode}${why ? ` (${why})` : ''}${hint}`, answer.rcode);
}

/** Adds `value` to the TXT records of `fqdn`; adding a value that is already there changes nothing. */
export async function addTxt(target: UpdateTarget, fqdn: string, value: string, ttl = 60, zone?: string): Promise<void> {
  const z = zone ?? (await zoneOf(target, fqdn));
  await send(target, z, updateMessage(z, fqdn, value, { op: 'add', ttl }), `adding TXT ${normalizeName(fqdn)} in zone ${z}`);
}

/** Deletes exactly `value` from the TXT records of `fqdn`; deleting a value that is gone changes nothing. */
export async function deleteTxt(target: UpdateTarget, fqdn: string, value: string, zone?: string): Promise<void> {
  const z = zone ?? (await zoneOf(target, fqdn));
  await send(target, z, updateMessage(z, fqdn, value, { op: 'delete' }), `deleting TXT ${normalizeName(fqdn)} in zone ${z}`);
}
