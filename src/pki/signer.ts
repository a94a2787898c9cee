/**
 * Bridges node:crypto keys to the WebCrypto keys @peculiar/x509 signs with.
 *
 * Keys live as PEM in Secrets and are parsed with node:crypto everywhere else;
 * only signing a CSR or a certificate needs a CryptoKey. The hash follows
 * cert-manager's choice per key (RSA by modulus size, ECDSA by curve) so the
 * signature is as strong as the key and no weaker.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { PrivateKeyAlgorithm, SignatureAlgorithm } from '../api/types.ts';
import { describeKey } from './keys.ts';

/** A CryptoKey pair plus the algorithm object to pass as `signingAlgorithm`. */
export interface WebSigner {
  keys: CryptoKeyPair;
  signingAlgorithm: Algorithm;
}

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

/** Converts a node private key to the pair @peculiar/x509's generators want. */
export function webSignerFor(privateKey: KeyObject, requested?: SignatureAlgorithm): WebSigner {
  const algorithm = webAlgorithmFor(privateKey, requested);
  const publicKey = createPublicKey(privateKey);
  // node's webcrypto.CryptoKey and the DOM CryptoKey the library is typed against are the same object at runtime.
  return {
    keys: {
      privateKey: privateKey.toCryptoKey(algorithm, false, ['sign']) as unknown as CryptoKey,
      publicKey: publicKey.toCryptoKey(algorithm, true, ['verify']) as unknown as CryptoKey,
    },
    signingAlgorithm: algorithm,
  };
}
