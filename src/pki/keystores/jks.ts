/**
 * Java KeyStore (JKS) files as cert-manager writes them (its `keystores.jks`):
 * `keystore.jks` holds the private key with its chain under an alias
 * (`certificate` by default) and the CA as the trusted certificate `ca`;
 * `truststore.jks` holds the CA alone. The format is Sun's: big-endian
 * fields, the key sealed by Sun's proprietary SHA-1 keystream, and the file
 * sealed by a SHA-1 hash keyed with the password and "Mighty Aphrodite".
 */
import { createHash, randomBytes } from 'node:crypto';
import { EncryptedData, EncryptedPrivateKeyInfo } from '@peculiar/asn1-pkcs8';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { DER_NULL } from '../der.ts';

const MAGIC = 0xfeedfeed;
const VERSION = 2;
export const JksTag = { privateKey: 1, trustedCertificate: 2 } as const;
/** Sun's key protection algorithm. */
export const SUN_KEY_PROTECTION = '1.3.6.1.4.1.42.2.17.1.1';
export const WHITENER = 'Mighty Aphrodite';
const CERT_TYPE = 'X.509';

/** The password as JKS hashes it: each UTF-16 code unit big-endian, no terminator. */
export function jksPasswordBytes(password: string): Buffer {
  const out = Buffer.alloc(2 * password.length);
  for (let i = 0; i < password.length; i++) out.writeUInt16BE(password.charCodeAt(i), 2 * i);
  return out;
}

/** XORs `data` with Sun's keystream: SHA-1 of the password and the previous block, starting from the salt. */
export function sunKeystream(password: Buffer, salt: Buffer, data: Buffer): Buffer {
  const out = Buffer.alloc(data.length);
  let digest = salt;
  for (let off = 0; off < data.length; off += 20) {
    digest = createHash('sha1').update(password).update(digest).digest();
    for (let i = 0; i < 20 && off + i < data.length; i++) out[off + i] = data[off + i]! ^ digest[i]!;
  }
  return out;
}

/** Sun's key protection of a PKCS#8 key: salt, the key XORed with the keystream, SHA-1 of password and key. */
function protectKey(password: Buffer, pkcs8: Buffer): Buffer {
  const salt = randomBytes(20);
  const sealed = Buffer.concat([salt, sunKeystream(password, salt, pkcs8), createHash('sha1').update(password).update(pkcs8).digest()]);
  const info = new EncryptedPrivateKeyInfo({
    encryptionAlgorithm: new AlgorithmIdentifier({ algorithm: SUN_KEY_PROTECTION, parameters: new Uint8Array(DER_NULL).buffer }),
    encryptedData: new EncryptedData(sealed),
  });
  return Buffer.from(AsnConvert.serialize(info));
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** A Java modified-UTF-8 string (plain UTF-8 for the aliases and types written here). */
function utf(s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8');
  return Buffer.concat([u16(bytes.length), bytes]);
}

function certificate(der: Buffer): Buffer {
  return Buffer.concat([utf(CERT_TYPE), u32(der.length), der]);
}

function trustedEntry(alias: string, der: Buffer, now: number): Buffer {
  return Buffer.concat([u32(JksTag.trustedCertificate), utf(alias), u64(now), certificate(der)]);
}

function store(password: string, entries: Buffer[]): Buffer {
  const body = Buffer.concat([u32(MAGIC), u32(VERSION), u32(entries.length), ...entries]);
  const seal = createHash('sha1').update(jksPasswordBytes(password)).update(WHITENER, 'utf8').update(body).digest();
  return Buffer.concat([body, seal]);
}

/** `keystore.jks`: the PKCS#8 key and its chain (leaf first) under `alias`, and the first CA certificate as `ca`. */
export function jksKeystore(password: string, alias: string, keyPkcs8: Buffer, chain: Buffer[], cas: Buffer[], now = Date.now()): Buffer {
  const keyEntry = Buffer.concat([
    u32(JksTag.privateKey), utf(alias), u64(now),
    ...((sealed) => [u32(sealed.length), sealed])(protectKey(jksPasswordBytes(password), keyPkcs8)),
    u32(chain.length), ...chain.map(certificate),
  ]);
  const ca = cas[0];
  return store(password, ca ? [keyEntry, trustedEntry('ca', ca, now)] : [keyEntry]);
}

/** `truststore.jks`: the first CA certificate as the trusted entry `ca`. */
export function jksTruststore(password: string, cas: Buffer[], now = Date.now()): Buffer {
  const ca = cas[0];
  if (!ca) throw new Error('no CA certificate for the truststore');
  return store(password, [trustedEntry('ca', ca, now)]);
}

/** The alias of the first private-key entry, read without the password; undefined when the file is not a JKS. */
export function jksAliasOf(jks: Buffer): string | undefined {
  try {
    if (jks.readUInt32BE(0) !== MAGIC) return undefined;
    const count = jks.readUInt32BE(8);
    let off = 12;
    for (let n = 0; n < count; n++) {
      const tag = jks.readUInt32BE(off);
      const aliasLength = jks.readUInt16BE(off + 4);
      const alias = jks.subarray(off + 6, off + 6 + aliasLength).toString('utf8');
      if (tag === JksTag.privateKey) return alias;
      // A trusted certificate entry: timestamp, type, certificate.
      off += 6 + aliasLength + 8;
      off += 2 + jks.readUInt16BE(off);
      off += 4 + jks.readUInt32BE(off);
    }
  } catch {
    // Truncated: no alias.
  }
  return undefined;
}
