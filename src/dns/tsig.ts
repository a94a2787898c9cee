/**
 * TSIG (RFC 8945): signs a DNS message with a shared HMAC key, as BIND, Knot and PowerDNS expect
 * for dynamic updates. No maintained npm DNS library signs messages, so this is the one piece
 * written here; dns-packet builds the message being signed.
 */
import { createHmac } from 'node:crypto';
import { canonicalName, RecordClass } from './wire.ts';

/** cert-manager's `tsigAlgorithm` values, with their RFC 8945 names and Node's digests. */
export const TsigAlgorithms = {
  HMACMD5: { name: 'hmac-md5.sig-alg.reg.int', digest: 'md5' },
  HMACSHA1: { name: 'hmac-sha1', digest: 'sha1' },
  HMACSHA256: { name: 'hmac-sha256', digest: 'sha256' },
  HMACSHA384: { name: 'hmac-sha384', digest: 'sha384' },
  HMACSHA512: { name: 'hmac-sha512', digest: 'sha512' },
} as const;
export type TsigAlgorithm = keyof typeof TsigAlgorithms;

/** cert-manager uses HMACMD5 when `tsigAlgorithm` is empty. */
export const DEFAULT_TSIG_ALGORITHM: TsigAlgorithm = 'HMACMD5';

export function isTsigAlgorithm(value: string): value is TsigAlgorithm {
  return Object.hasOwn(TsigAlgorithms, value);
}

export interface TsigKey {
  name: string;
  algorithm: TsigAlgorithm;
  secret: Buffer;
}

/** The window either side of our clock within which the server accepts the signature. */
const FUDGE_SECONDS = 300;
const TSIG_TYPE = 250;

function uint48(seconds: number): Buffer {
  const b = Buffer.alloc(6);
  b.writeUIntBE(seconds, 0, 6);
  return b;
}

function uint16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

/**
 * Appends a TSIG record to `message` (whose additional section it counts) and returns the signed
 * message. `now` is injected so that tests can sign deterministically.
 */
export function sign(message: Buffer, key: TsigKey, now: Date): Buffer {
  const algorithm = TsigAlgorithms[key.algorithm];
  const keyName = canonicalName(key.name);
  const algorithmName = canonicalName(algorithm.name);
  const timeSigned = uint48(Math.floor(now.getTime() / 1000));
  const fudge = uint16(FUDGE_SECONDS);
  const error = uint16(0);
  const otherLen = uint16(0);
  // RFC 8945 §4.3.3: the MAC covers the unsigned message, then the TSIG variables.
  const variables = Buffer.concat([keyName, uint16(RecordClass.ANY), Buffer.alloc(4), algorithmName, timeSigned, fudge, error, otherLen]);
  const mac = createHmac(algorithm.digest, key.secret).update(message).update(variables).digest();
  const rdata = Buffer.concat([algorithmName, timeSigned, fudge, uint16(mac.length), mac, message.subarray(0, 2), error, otherLen]);
  const record = Buffer.concat([keyName, uint16(TSIG_TYPE), uint16(RecordClass.ANY), Buffer.alloc(4), uint16(rdata.length), rdata]);
  const signed = Buffer.concat([message, record]);
  signed.writeUInt16BE(message.readUInt16BE(10) + 1, 10);
  return signed;
}

/** RFC 8945 §4.3's TSIG error codes, in the answer's TSIG record, by the name BIND logs. */
const tsigErrors: Record<number, string> = { 16: 'BADSIG', 17: 'BADKEY', 18: 'BADTIME', 22: 'BADTRUNC' };

/**
 * The TSIG error of an answer, if its TSIG record carries one: a NOTAUTH answer says only that
 * the update was refused; this says why (a wrong secret, an unknown key name, a skewed clock).
 */
export function tsigError(additionals: ReadonlyArray<{ type: string; data?: unknown }>): string | undefined {
  const tsig = additionals.find((a) => a.type === 'TSIG');
  if (!tsig || !Buffer.isBuffer(tsig.data)) return undefined;
  const rdata = tsig.data;
  // Algorithm name (uncompressed), time (6), fudge (2), MAC size (2), MAC, original id (2), error (2).
  let offset = 0;
  while (offset < rdata.length && rdata[offset] !== 0) offset += rdata[offset]! + 1;
  offset += 1 + 6 + 2;
  if (offset + 2 > rdata.length) return undefined;
  offset += 2 + rdata.readUInt16BE(offset) + 2;
  if (offset + 2 > rdata.length) return undefined;
  const code = rdata.readUInt16BE(offset);
  return code === 0 ? undefined : (tsigErrors[code] ?? `TSIG error ${code}`);
}
