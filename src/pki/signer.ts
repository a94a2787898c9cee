/**
 * Bridges node:crypto keys to the WebCrypto keys @peculiar/x509 signs with.
 *
 * Keys live as PEM in Secrets and are parsed with node:crypto everywhere else;
 * only signing a CSR or a certificate needs a CryptoKey. The hash follows
 * cert-manager's choice per key (RSA by modulus size, ECDSA by curve) so the
 * signature is as strong as the key and no weaker.
 */
import { sign, verify, type KeyObject } from 'node:crypto';
import type { PrivateKeyAlgorithm, SignatureAlgorithm } from '../api/types.ts';
import { DER_NULL, oid, sequence } from './der.ts';
import { describeKey } from './keys.ts';

const EC_CURVES: Record<number, string> = { 256: 'P-256', 384: 'P-384', 521: 'P-521' };
const EC_HASHES: Record<number, string> = { 256: 'SHA-256', 384: 'SHA-384', 521: 'SHA-512' };

/** cert-manager's signatureAlgorithm names: the key type each needs, and its hash. */
const SIGNATURE_ALGORITHMS: Record<SignatureAlgorithm, { key: PrivateKeyAlgorithm; hash?: string }> = {
  SHA256WithRSA: { key: 'RSA', hash: 'SHA-256' },
  SHA384WithRSA: { key: 'RSA', hash: 'SHA-384' },
  SHA512WithRSA: { key: 'RSA', hash: 'SHA-512' },
  ECDSAWithSHA256: { key: 'ECDSA', hash: 'SHA-256' },
  ECDSAWithSHA384: { key: 'ECDSA', hash: 'SHA-384' },
  ECDSAWithSHA512: { key: 'ECDSA', hash: 'SHA-512' },
  PureEd25519: { key: 'Ed25519' },
};

/**
 * The WebCrypto algorithm to import and sign with for this key: the requested
 * signature algorithm, or cert-manager's default for the key. Throws, naming
 * the field, when the requested algorithm needs another type of key.
 */
export function webAlgorithmFor(key: KeyObject, requested?: SignatureAlgorithm): Algorithm {
  const { algorithm, size } = describeKey(key);
  const wanted = requested ? SIGNATURE_ALGORITHMS[requested] : undefined;
  if (requested && wanted?.key !== algorithm) {
    throw new Error(`spec.signatureAlgorithm ${requested} needs ${wanted ? `an ${wanted.key}` : 'a known'} key, and the signing key is ${algorithm}: pick an algorithm for ${algorithm} or change the key`);
  }
  switch (algorithm) {
    case 'RSA': {
      const hash = wanted?.hash ?? (size >= 4096 ? 'SHA-512' : size >= 3072 ? 'SHA-384' : 'SHA-256');
      return { name: 'RSASSA-PKCS1-v1_5', hash } as RsaHashedImportParams;
    }
    case 'ECDSA':
      return { name: 'ECDSA', namedCurve: EC_CURVES[size], hash: wanted?.hash ?? EC_HASHES[size] } as Algorithm;
    case 'Ed25519':
      return { name: 'Ed25519' };
  }
}

/** cert-manager's name for a signature algorithm as @peculiar/x509 reports it, if it has one. */
export function signatureAlgorithmName(algorithm: Algorithm & { hash?: Algorithm | string }): SignatureAlgorithm | undefined {
  const hash = typeof algorithm.hash === 'string' ? algorithm.hash : algorithm.hash?.name;
  const key = algorithm.name === 'RSASSA-PKCS1-v1_5' ? 'RSA' : algorithm.name === 'ECDSA' ? 'ECDSA' : algorithm.name === 'Ed25519' ? 'Ed25519' : undefined;
  const found = Object.entries(SIGNATURE_ALGORITHMS).find(([, a]) => a.key === key && a.hash === (key === 'Ed25519' ? undefined : hash));
  return found?.[0] as SignatureAlgorithm | undefined;
}

/** Whether a signature algorithm can be made with this key. */
export function signatureAlgorithmFits(key: KeyObject, name: SignatureAlgorithm): boolean {
  return SIGNATURE_ALGORITHMS[name].key === describeKey(key).algorithm;
}

/** AlgorithmIdentifier OIDs of the signatures certroute makes and checks natively; RSA ones carry NULL parameters. */
const SIGNATURE_OIDS: Record<string, { oid: string; key: PrivateKeyAlgorithm; hash: string | null }> = {
  'RSA/SHA-256': { oid: '1.2.840.113549.1.1.11', key: 'RSA', hash: 'sha256' },
  'RSA/SHA-384': { oid: '1.2.840.113549.1.1.12', key: 'RSA', hash: 'sha384' },
  'RSA/SHA-512': { oid: '1.2.840.113549.1.1.13', key: 'RSA', hash: 'sha512' },
  'ECDSA/SHA-256': { oid: '1.2.840.10045.4.3.2', key: 'ECDSA', hash: 'sha256' },
  'ECDSA/SHA-384': { oid: '1.2.840.10045.4.3.3', key: 'ECDSA', hash: 'sha384' },
  'ECDSA/SHA-512': { oid: '1.2.840.10045.4.3.4', key: 'ECDSA', hash: 'sha512' },
  'Ed25519/': { oid: '1.3.101.112', key: 'Ed25519', hash: null },
};

/** Signs with Node's crypto directly: DER-encoded ECDSA, PKCS#1 v1.5 RSA, pure Ed25519, as X.509 wants them. */
export interface NativeSigner {
  /** The AlgorithmIdentifier DER that names the signature. */
  algorithmIdentifier: Buffer;
  sign(data: Uint8Array): Buffer;
}

/**
 * The same choice of algorithm as `webAlgorithmFor` (one rule), made with Node's synchronous
 * signer: WebCrypto's promise round trip per signature was a visible share of the CPU the
 * bench's CA issuance took.
 */
export function nativeSignerFor(privateKey: KeyObject, requested?: SignatureAlgorithm): NativeSigner {
  const web = webAlgorithmFor(privateKey, requested) as Algorithm & { hash?: string };
  const key = web.name === 'RSASSA-PKCS1-v1_5' ? 'RSA' : web.name === 'ECDSA' ? 'ECDSA' : 'Ed25519';
  const entry = SIGNATURE_OIDS[`${key}/${web.hash ?? ''}`];
  if (!entry) throw new Error(`no signature algorithm for a ${key} key with ${web.hash ?? 'no hash'}`);
  return {
    algorithmIdentifier: entry.key === 'RSA' ? sequence(oid(entry.oid), DER_NULL) : sequence(oid(entry.oid)),
    sign: (data) => sign(entry.hash, data, privateKey),
  };
}

/**
 * Checks a signature natively when its algorithm is one of those above; undefined for any other
 * algorithm (the caller falls back to the general path), never a guess.
 */
export function verifyNatively(algorithmOid: string, data: Uint8Array, spkiDer: Uint8Array, signature: Uint8Array): boolean | undefined {
  const entry = Object.values(SIGNATURE_OIDS).find((e) => e.oid === algorithmOid);
  if (!entry) return undefined;
  try {
    return verify(entry.hash, data, { key: Buffer.from(spkiDer), format: 'der', type: 'spki' }, signature);
  } catch {
    return false;
  }
}
