/**
 * Bridges node:crypto keys to the WebCrypto keys @peculiar/x509 signs with.
 *
 * Keys live as PEM in Secrets and are parsed with node:crypto everywhere else;
 * only signing a CSR or a certificate needs a CryptoKey. The hash follows
 * cert-manager's choice per key (RSA by modulus size, ECDSA by curve) so the
 * signature is as strong as the key and no weaker.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { describeKey } from './keys.ts';

/** A CryptoKey pair plus the algorithm object to pass as `signingAlgorithm`. */
export interface WebSigner {
  keys: CryptoKeyPair;
  signingAlgorithm: Algorithm;
}

const EC_CURVES: Record<number, string> = { 256: 'P-256', 384: 'P-384', 521: 'P-521' };
const EC_HASHES: Record<number, string> = { 256: 'SHA-256', 384: 'SHA-384', 521: 'SHA-512' };

/** The WebCrypto algorithm to import and sign with for this key. */
export function webAlgorithmFor(key: KeyObject): Algorithm {
  const { algorithm, size } = describeKey(key);
  switch (algorithm) {
    case 'RSA': {
      const hash = size >= 4096 ? 'SHA-512' : size >= 3072 ? 'SHA-384' : 'SHA-256';
      return { name: 'RSASSA-PKCS1-v1_5', hash } as RsaHashedImportParams;
    }
    case 'ECDSA':
      return { name: 'ECDSA', namedCurve: EC_CURVES[size], hash: EC_HASHES[size] } as Algorithm;
    case 'Ed25519':
      return { name: 'Ed25519' };
  }
}

/** Converts a node private key to the pair @peculiar/x509's generators want. */
export function webSignerFor(privateKey: KeyObject): WebSigner {
  const algorithm = webAlgorithmFor(privateKey);
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
