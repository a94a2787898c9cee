/**
 * ACME Renewal Information (RFC 9773): the certificate identifier the CA is asked about, and
 * the moment picked inside the window it suggests. Pure, so both are unit-tested against the
 * RFC's own example.
 */
import { randomInt } from 'node:crypto';

/**
 * The ARI certificate identifier (RFC 9773 §4.1): base64url (no padding) of the keyIdentifier
 * of the certificate's Authority Key Identifier, ".", base64url of the DER encoding of its
 * serial number without tag and length (so with the leading zero byte a serial whose top bit
 * is set needs to stay positive).
 */
export function ariCertificateId(authorityKeyIdHex: string, serialHex: string): string {
  let serial = serialHex.toLowerCase().replace(/^(?:00)+(?=.)/, '');
  if (serial.length % 2 === 1) serial = `0${serial}`;
  if (Number.parseInt(serial.slice(0, 2), 16) >= 0x80) serial = `00${serial}`;
  return `${Buffer.from(authorityKeyIdHex, 'hex').toString('base64url')}.${Buffer.from(serial, 'hex').toString('base64url')}`;
}

/**
 * A moment picked uniformly at random in [start, end), to the second (status stores seconds),
 * as RFC 9773 §4.2 asks so that the renewals of many certificates spread over the window.
 */
export function pickInWindow(start: Date, end: Date, random: (limit: number) => number = randomInt): Date {
  const from = Math.ceil(start.getTime() / 1000);
  const to = Math.floor(end.getTime() / 1000);
  if (to <= from) return new Date(from * 1000);
  return new Date((from + random(to - from)) * 1000);
}

/** Whether `time` lies inside the window [start, end]. */
export function inWindow(time: Date, start: Date, end: Date): boolean {
  return time.getTime() >= start.getTime() - 999 && time.getTime() <= end.getTime();
}
