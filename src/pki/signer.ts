/**
 * Bridges node:crypto keys to the WebCrypto keys @peculiar/x509 signs with.
 *
 * Keys live as PEM in Secrets and are parsed with node:crypto everywhere else;
 * only signing a CSR or a certificate needs a CryptoKey. The hash follows
 * cert-manager's choice per key (RSA by modulus size, ECDSA by curve) so the
 * signature is as strong as the key and no weaker.
 */
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import type { PrivateKeyAlgorithm, SignatureAlgorithm } from '../api/types.ts';
import { DER_NULL, oid, sequence } from './der.ts';
import { describeKey } from './keys.ts';

const EC_CURVES: Record<number, string> = { 256: 'P-256', 384: 'P-384', 521: 'P-521' };
const EC_HASHES: Record<number, string> = { 256: 'SHA-256', 384: 'SHA-384', 521: 'SHA-512' };

/**
 * cert-manager's signatureAlgorithm names: the key type each needs, its hash (WebCrypto's name),
 * and the AlgorithmIdentifier OID that names it in a certificate or CSR.
 */
const SIGNATURE_ALGORITHMS: Record<SignatureAlgorithm, { key: PrivateKeyAlgorithm; hash?: string; oid: string }> = {
  SHA256WithRSA: { key: 'RSA', hash: 'SHA-256', oid: '1.2.840.113549.1.1.11' },
  SHA384WithRSA: { key: 'RSA', hash: 'SHA-384', oid: '1.2.840.113549.1.1.12' },
  SHA512WithRSA: { key: 'RSA', hash: 'SHA-512', oid: '1.2.840.113549.1.1.13' },
  ECDSAWithSHA256: { key: 'ECDSA', hash: 'SHA-256', oid: '1.2.840.10045.4.3.2' },
  ECDSAWithSHA384: { key: 'ECDSA', hash: 'SHA-384', oid: '1.2.840.10045.4.3.3' },
  ECDSAWithSHA512: { key: 'ECDSA', hash: 'SHA-512', oid: '1.2.840.10045.4.3.4' },
  PureEd25519: { key: 'Ed25519', oid: '1.3.101.112' },
};

/** Node's name for a WebCrypto hash ('SHA-256' → 'sha256'); null for Ed25519, which hashes by itself. */
const nodeHash = (hash: string | undefined): string | null => (hash ? hash.replace('SHA-', 'sha') : null);

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

/** cert-manager's name for a signature algorithm's OID, if it has one. */
export function signatureAlgorithmByOid(oid: string): SignatureAlgorithm | undefined {
  return (Object.keys(SIGNATURE_ALGORITHMS) as SignatureAlgorithm[]).find((name) => SIGNATURE_ALGORITHMS[name].oid === oid);
}

/** Whether a signature algorithm can be made with this key. */
export function signatureAlgorithmFits(key: KeyObject, name: SignatureAlgorithm): boolean {
  return SIGNATURE_ALGORITHMS[name].key === describeKey(key).algorithm;
}

/** Signs with Node's crypto directly: DER-encoded ECDSA, PKCS#1 v1.5 RSA, pure Ed25519, as X.509 wants them. */
export interface NativeSigner {
  /** The AlgorithmIdentifier DER that names the signature (RSA ones carry NULL parameters). */
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
  const entry = Object.values(SIGNATURE_ALGORITHMS).find((a) => a.key === key && a.hash === web.hash);
  if (!entry) throw new Error(`no signature algorithm for a ${key} key with ${web.hash ?? 'no hash'}`);
  return {
    algorithmIdentifier: entry.key === 'RSA' ? sequence(oid(entry.oid), DER_NULL) : sequence(oid(entry.oid)),
    sign: (data) => sign(nodeHash(entry.hash), data, privateKey),
  };
}

/**
 * Checks a signature natively when its algorithm is one of cert-manager's; undefined for any
 * other algorithm (the caller falls back to the general path), never a guess.
 */
export function verifyNatively(algorithmOid: string, data: Uint8Array, spkiDer: Uint8Array, signature: Uint8Array): boolean | undefined {
  const name = signatureAlgorithmByOid(algorithmOid);
  if (!name) return undefined;
  try {
    const key = createPublicKey({ key: Buffer.from(spkiDer), format: 'der', type: 'spki' });
    // The algorithm must be the key's kind, as Go's CheckSignature demands (Node would verify an ECDSA signature labelled RSA).
    if (!signatureAlgorithmFits(key, name)) return false;
    return verify(nodeHash(SIGNATURE_ALGORITHMS[name].hash), data, key, signature);
  } catch {
    return false;
  }
}
