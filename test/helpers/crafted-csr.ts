/**
 * CSRs laid out byte by byte, as an attacker makes them: well signed by their own key, but with
 * extensions that certroute's own CSR builder would never write (a SAN entry with a wrong tag, a
 * basic constraints extension the spec does not state, an extension twice).
 */
import { createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { bitString, extensionDer, integer, oid, sequence, Tag, tlv } from '../../src/pki/der.ts';
import { pemEncode } from '../../src/pki/pem.ts';

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';
const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
export const SAN = '2.5.29.17';
export const BASIC_CONSTRAINTS = '2.5.29.19';

/** One Extension { extnID, critical (only when true), extnValue }. */
export const extension = (id: string, value: Uint8Array, critical = false): Buffer => extensionDer(id, critical, value);

/** An IA5 GeneralName with the given tag byte (0x82 is a dNSName; 0xa2 is the forgery OpenSSL still reads as one). */
export function generalName(tag: number, text: string): Buffer {
  const ia5 = Buffer.from(text);
  return tag & 0x20 ? tlv(tag, tlv(Tag.IA5_STRING, ia5)) : tlv(tag, ia5);
}

/** One RDN holding a commonName with the given value TLV (of any tag, to forge one). */
export function commonName(value: Uint8Array): Buffer {
  return tlv(Tag.SET, sequence(oid('2.5.4.3'), value));
}

/**
 * A PEM CSR for an ECDSA key (signed with SHA-256) whose extensionRequest holds exactly the
 * given Extension encodings. `lists` puts more than one list in the attribute.
 */
export function craftedCsr(keyPem: string, extensions: Uint8Array[], options: { commonName?: string; subject?: Uint8Array; lists?: Uint8Array[][] } = {}): string {
  const key = createPrivateKey(keyPem);
  const subject = options.subject ?? sequence(commonName(tlv(Tag.UTF8_STRING, Buffer.from(options.commonName ?? 'crafted'))));
  const lists = options.lists ?? [extensions];
  const attributes = tlv(0xa0, sequence(oid(EXTENSION_REQUEST), tlv(Tag.SET, ...lists.map((list) => sequence(...list)))));
  const info = sequence(integer(0), subject, createPublicKey(key).export({ type: 'spki', format: 'der' }), attributes);
  return pemEncode('CERTIFICATE REQUEST', sequence(info, sequence(oid(ECDSA_WITH_SHA256)), bitString(sign('sha256', info, key))));
}
