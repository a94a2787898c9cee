/**
 * PKCS#12 keystores as cert-manager writes them (its `keystores.pkcs12`):
 * `keystore.p12` holds the private key and the certificate chain (with the
 * CA when known), `truststore.p12` the CA alone, as a trusted certificate
 * Java reads. The three profiles are cert-manager's:
 * - LegacyRC2 (its default): certificates under RC2-40-CBC, the key under
 *   3DES, a SHA-1 MAC; what old Java and Windows read;
 * - LegacyDES: 3DES for both;
 * - Modern2023: PBES2 (PBKDF2-HMAC-SHA-256, AES-256-CBC), a SHA-256 MAC.
 */
import { createCipheriv, createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { ContentInfo, EncryptedContent, EncryptedContentInfo, id_data, id_encryptedData } from '@peculiar/asn1-cms';
import {
  AuthenticatedSafe, CertBag, id_certBag, id_pbeWithSHAAnd3_KeyTripleDES_CBC, id_pbewithSHAAnd40BitRC2_CBC, id_pkcs8ShroudedKeyBag, id_x509Certificate, MacData, PFX, PKCS12Attribute, SafeBag, SafeContents,
} from '@peculiar/asn1-pfx';
import { EncryptedData, EncryptedPrivateKeyInfo } from '@peculiar/asn1-pkcs8';
import { DigestInfo } from '@peculiar/asn1-rsa';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { DER_NULL, integer as derInteger, oid as derOid, tlv as der } from '../der.ts';
import { bmpPassword, pkcs12Kdf, Purpose } from './pkcs12-kdf.ts';
import { rc2CbcEncrypt } from './rc2.ts';

export type Pkcs12Profile = 'LegacyRC2' | 'LegacyDES' | 'Modern2023';

const Oid = {
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  hmacWithSha256: '1.2.840.113549.2.9',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  localKeyId: '1.2.840.113549.1.9.21',
  // Oracle's attribute that makes Java read a certificate bag as a trusted certificate entry.
  javaTrustedKeyUsage: '2.16.840.1.113894.746875.1.1',
  anyExtendedKeyUsage: '2.5.29.37.0',
} as const;

type Cipher = 'rc2-40' | '3des' | 'pbes2-aes256';

interface ProfileParams {
  certs: Cipher;
  key: Cipher;
  mac: 'sha1' | 'sha256';
  macIterations: number;
}

// The iteration counts of cert-manager's encoder (go-pkcs12): 2048 for encryption; the legacy MAC keeps 1.
const ITERATIONS = 2048;
const PROFILES: Record<Pkcs12Profile, ProfileParams> = {
  LegacyRC2: { certs: 'rc2-40', key: '3des', mac: 'sha1', macIterations: 1 },
  LegacyDES: { certs: '3des', key: '3des', mac: 'sha1', macIterations: 1 },
  Modern2023: { certs: 'pbes2-aes256', key: 'pbes2-aes256', mac: 'sha256', macIterations: ITERATIONS },
};

function serialize(value: object): Buffer {
  return Buffer.from(AsnConvert.serialize(value));
}

function algorithm(oid: string, parameters: Buffer): AlgorithmIdentifier {
  return new AlgorithmIdentifier({ algorithm: oid, parameters: new Uint8Array(parameters).buffer });
}

/** Encrypts `plain` under the password with one of the profile's ciphers. */
function encrypt(cipher: Cipher, password: string, plain: Buffer): { alg: AlgorithmIdentifier; data: Buffer } {
  if (cipher === 'pbes2-aes256') {
    const salt = randomBytes(16);
    const iv = randomBytes(16);
    const key = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, ITERATIONS, 32, 'sha256');
    const c = createCipheriv('aes-256-cbc', key, iv);
    const data = Buffer.concat([c.update(plain), c.final()]);
    const kdf = serialize(algorithm(Oid.pbkdf2, der(0x30, der(0x04, salt), derInteger(ITERATIONS), serialize(algorithm(Oid.hmacWithSha256, DER_NULL)))));
    const scheme = serialize(algorithm(Oid.aes256Cbc, der(0x04, iv)));
    return { alg: algorithm(Oid.pbes2, der(0x30, kdf, scheme)), data };
  }
  const salt = randomBytes(8);
  const bmp = bmpPassword(password);
  const params = der(0x30, der(0x04, salt), derInteger(ITERATIONS));
  const iv = pkcs12Kdf('sha1', bmp, salt, ITERATIONS, Purpose.iv, 8);
  if (cipher === 'rc2-40') {
    const key = pkcs12Kdf('sha1', bmp, salt, ITERATIONS, Purpose.key, 5);
    return { alg: algorithm(id_pbewithSHAAnd40BitRC2_CBC, params), data: rc2CbcEncrypt(key, 40, iv, plain) };
  }
  const key = pkcs12Kdf('sha1', bmp, salt, ITERATIONS, Purpose.key, 24);
  const c = createCipheriv('des-ede3-cbc', key, iv);
  return { alg: algorithm(id_pbeWithSHAAnd3_KeyTripleDES_CBC, params), data: Buffer.concat([c.update(plain), c.final()]) };
}

function attribute(oid: string, value: Buffer): PKCS12Attribute {
  // Assigned after construction: PKCS12Attribute's constructor (asn1-pfx 2.11) drops its params.
  const attr = new PKCS12Attribute();
  attr.attrId = oid;
  attr.attrValues = [new Uint8Array(value).buffer];
  return attr;
}

function certBag(certDer: Buffer, attributes: PKCS12Attribute[]): SafeBag {
  const bag = new CertBag({ certId: id_x509Certificate, certValue: new Uint8Array(der(0x04, certDer)).buffer });
  return new SafeBag({ bagId: id_certBag, bagValue: new Uint8Array(serialize(bag)).buffer, ...(attributes.length ? { bagAttributes: attributes } : {}) });
}

function dataContent(bags: SafeBag[]): ContentInfo {
  return new ContentInfo({ contentType: id_data, content: new Uint8Array(serialize(new OctetString(serialize(new SafeContents(bags))))).buffer });
}

function encryptedContent(cipher: Cipher, password: string, bags: SafeBag[]): ContentInfo {
  const { alg, data } = encrypt(cipher, password, serialize(new SafeContents(bags)));
  const info = new EncryptedContentInfo({ contentType: id_data, contentEncryptionAlgorithm: alg, encryptedContent: new EncryptedContent({ value: new OctetString(data) }) });
  // CMS EncryptedData: SEQUENCE { version 0, EncryptedContentInfo }.
  return new ContentInfo({ contentType: id_encryptedData, content: new Uint8Array(der(0x30, derInteger(0), serialize(info))).buffer });
}

function pfx(params: ProfileParams, password: string, contents: ContentInfo[]): Buffer {
  const authSafe = serialize(new AuthenticatedSafe(contents));
  const salt = randomBytes(params.mac === 'sha1' ? 8 : 16);
  const macKey = pkcs12Kdf(params.mac, bmpPassword(password), salt, params.macIterations, Purpose.mac, params.mac === 'sha1' ? 20 : 32);
  const mac = createHmac(params.mac, macKey).update(authSafe).digest();
  const macData = new MacData({
    mac: new DigestInfo({ digestAlgorithm: algorithm(params.mac === 'sha1' ? Oid.sha1 : Oid.sha256, DER_NULL), digest: new OctetString(mac) }),
    macSalt: new OctetString(salt),
    iterations: params.macIterations,
  });
  return serialize(new PFX({ version: 3, authSafe: new ContentInfo({ contentType: id_data, content: new Uint8Array(serialize(new OctetString(authSafe))).buffer }), macData }));
}

/** `keystore.p12`: the PKCS#8 key, the chain (leaf first) and any CA certificates, all DER. */
export function pkcs12Keystore(profile: Pkcs12Profile, password: string, keyPkcs8: Buffer, chain: Buffer[], cas: Buffer[]): Buffer {
  const params = PROFILES[profile];
  const [leaf, ...rest] = chain;
  if (!leaf) throw new Error('no certificate to put in the keystore');
  const localKeyId = attribute(Oid.localKeyId, der(0x04, createHash('sha1').update(leaf).digest()));
  const certs = [certBag(leaf, [localKeyId]), ...[...rest, ...cas].map((c) => certBag(c, []))];
  const { alg, data } = encrypt(params.key, password, keyPkcs8);
  const shrouded = new EncryptedPrivateKeyInfo({ encryptionAlgorithm: alg, encryptedData: new EncryptedData(data) });
  const keyBag = new SafeBag({ bagId: id_pkcs8ShroudedKeyBag, bagValue: new Uint8Array(serialize(shrouded)).buffer, bagAttributes: [localKeyId] });
  return pfx(params, password, [encryptedContent(params.certs, password, certs), dataContent([keyBag])]);
}

/** `truststore.p12`: the first CA certificate (as cert-manager), marked trusted for Java. */
export function pkcs12Truststore(profile: Pkcs12Profile, password: string, cas: Buffer[]): Buffer {
  const params = PROFILES[profile];
  const ca = cas[0];
  if (!ca) throw new Error('no CA certificate for the truststore');
  const trusted = attribute(Oid.javaTrustedKeyUsage, der(0x06, Buffer.from([0x55, 0x1d, 0x25, 0x00])));
  return pfx(params, password, [encryptedContent(params.certs, password, [certBag(ca, [trusted])])]);
}

/** The profile a keystore was written with, read from its unencrypted structure; undefined when it is none of cert-manager's. */
export function pkcs12ProfileOf(p12: Buffer): Pkcs12Profile | undefined {
  try {
    const parsed = AsnConvert.parse(p12, PFX);
    if (parsed.macData.mac.digestAlgorithm.algorithm === Oid.sha256) return 'Modern2023';
    const authSafe = AsnConvert.parse(AsnConvert.parse(parsed.authSafe.content, OctetString), AuthenticatedSafe);
    for (const info of authSafe) {
      if (info.contentType !== id_encryptedData) continue;
      // EncryptedData's EncryptedContentInfo names the certificates' cipher.
      const text = Buffer.from(info.content).toString('hex');
      if (text.includes(oidHex(id_pbewithSHAAnd40BitRC2_CBC))) return 'LegacyRC2';
      if (text.includes(oidHex(id_pbeWithSHAAnd3_KeyTripleDES_CBC))) return 'LegacyDES';
    }
  } catch {
    // Not a PKCS#12 file certroute can read: no profile.
  }
  return undefined;
}

function oidHex(oid: string): string {
  return derOid(oid).toString('hex');
}
