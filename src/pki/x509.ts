/**
 * The one place that loads @peculiar/x509.
 *
 * The library resolves its ASN.1 helpers through tsyringe, which throws at load
 * time unless a Reflect metadata polyfill is already installed, and it does all
 * signing through a WebCrypto provider that must be registered before first use.
 * Doing both here, in import order, means every other module can simply import
 * `x509` from this file and never see a half-initialised library.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import * as asn1X509 from '@peculiar/asn1-x509';
import { AsnConvert } from '@peculiar/asn1-schema';
import { webcrypto } from 'node:crypto';
import { booleanValue, children, Tag, whole, type RawExtension } from './der.ts';

// Node's webcrypto is structurally the DOM Crypto the library is typed against.
x509.cryptoProvider.set(webcrypto as unknown as Crypto);

/** The library's ASN.1 layer, for the structures its JSON helpers do not cover (otherName SANs, name constraints). */
export { x509, asn1X509, AsnConvert };

/** Runs one of the library's decoders, naming what did not decode. */
export function decodeDer<T>(what: string, decode: () => T): T {
  try {
    return decode();
  } catch (cause) {
    throw new Error(`the ${what} is not valid DER: ${(cause as Error).message}`, { cause });
  }
}

export const BASIC_CONSTRAINTS_OID = '2.5.29.19';

/** Whether extensions carry basic constraints cA=TRUE, as a CA certificate and a CA's CSR do. */
export function isCaByExtensions(extensions: readonly RawExtension[]): boolean {
  const basic = extensions.find((e) => e.oid === BASIC_CONSTRAINTS_OID);
  if (!basic) return false;
  const constraints = whole(basic.value, 'basic constraints extension');
  if (constraints.tag !== Tag.SEQUENCE) throw new Error('the basic constraints extension is not a SEQUENCE');
  const [flag] = children(basic.value, constraints);
  return flag?.tag === Tag.BOOLEAN && booleanValue(basic.value, flag);
}

/** An extension as the readers take it (der.ts), from @peculiar's. */
export function rawExtension(ext: x509.Extension): RawExtension {
  return { oid: ext.type, critical: ext.critical, value: new Uint8Array(ext.value), der: new Uint8Array(ext.rawData) };
}
