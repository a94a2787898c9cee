/**
 * Private keys as cert-manager makes and judges them.
 *
 * The defaults (RSA 2048, ECDSA P-256, PKCS#1/SEC1 encoding) and the size rules
 * are cert-manager's, so a Secret written by cert-manager is accepted unchanged
 * by certroute and the other way round. Keys are generated with the callback
 * form of `generateKeyPair`, which runs on libuv's thread pool: an RSA 4096 key
 * can take a second or more, and the controller's event loop must keep serving
 * the HTTP-01 responder and informer events meanwhile.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from 'node:crypto';
import type { PrivateKeyAlgorithm, PrivateKeySpec } from '../api/types.ts';
import { memoize } from './memo.ts';

/** A key spec with cert-manager's defaults filled in and its limits checked. */
export interface ResolvedKeySpec {
  algorithm: PrivateKeyAlgorithm;
  /** RSA modulus bits, ECDSA curve bits; 256 for Ed25519, whose size is fixed. */
  size: number;
  encoding: 'PKCS1' | 'PKCS8';
}

/** The algorithm and size of a key, read from the key itself. */
export interface KeyDescription {
  algorithm: PrivateKeyAlgorithm;
  size: number;
}

export const DEFAULT_RSA_SIZE = 2048;
export const DEFAULT_ECDSA_SIZE = 256;
/** cert-manager's bounds; larger RSA keys make every TLS handshake slow. */
export const MIN_RSA_SIZE = 2048;
export const MAX_RSA_SIZE = 8192;

const CURVES: Record<number, string> = { 256: 'prime256v1', 384: 'secp384r1', 521: 'secp521r1' };
const CURVE_BITS: Record<string, number> = { prime256v1: 256, secp384r1: 384, secp521r1: 521 };

/**
 * Fills in defaults and rejects what cert-manager rejects, so a bad spec fails
 * with a message naming the field instead of producing a surprising key.
 */
export function resolveKeySpec(spec: PrivateKeySpec = {}): ResolvedKeySpec {
  const algorithm = spec.algorithm ?? 'RSA';
  const encoding = spec.encoding ?? 'PKCS1';
  if (encoding !== 'PKCS1' && encoding !== 'PKCS8') {
    throw new Error(`spec.privateKey.encoding ${JSON.stringify(encoding)} is not supported: use PKCS1 or PKCS8`);
  }
  switch (algorithm) {
    case 'RSA': {
      const size = spec.size || DEFAULT_RSA_SIZE;
      if (!Number.isInteger(size) || size < MIN_RSA_SIZE || size > MAX_RSA_SIZE) {
        throw new Error(`spec.privateKey.size ${size} is not valid for RSA: use ${MIN_RSA_SIZE} to ${MAX_RSA_SIZE}`);
      }
      return { algorithm, size, encoding };
    }
    case 'ECDSA': {
      const size = spec.size || DEFAULT_ECDSA_SIZE;
      if (CURVES[size] === undefined) {
        throw new Error(`spec.privateKey.size ${size} is not valid for ECDSA: use 256, 384 or 521`);
      }
      return { algorithm, size, encoding };
    }
    case 'Ed25519':
      return { algorithm, size: 256, encoding };
    default:
      throw new Error(`spec.privateKey.algorithm ${JSON.stringify(algorithm)} is not supported: use RSA, ECDSA or Ed25519`);
  }
}

/** Generates a key for the spec and returns it PEM-encoded as the spec asks. */
export async function generatePrivateKey(spec: PrivateKeySpec = {}): Promise<string> {
  const resolved = resolveKeySpec(spec);
  const key = await generateKeyObject(resolved);
  return encodePrivateKey(key, resolved.encoding);
}

function generateKeyObject(spec: ResolvedKeySpec): Promise<KeyObject> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null, _pub: KeyObject, priv: KeyObject): void => {
      if (err) reject(new Error(`generating a ${spec.algorithm} ${spec.size} key failed`, { cause: err }));
      else resolve(priv);
    };
    switch (spec.algorithm) {
      case 'RSA':
        generateKeyPair('rsa', { modulusLength: spec.size, publicExponent: 0x10001 }, done);
        break;
      case 'ECDSA':
        generateKeyPair('ec', { namedCurve: CURVES[spec.size] ?? 'prime256v1' }, done);
        break;
      case 'Ed25519':
        generateKeyPair('ed25519', {}, done);
        break;
    }
  });
}

/**
 * PEM-encodes a private key. PKCS1 means what it means in cert-manager: the
 * algorithm's own structure ("RSA PRIVATE KEY", SEC1 "EC PRIVATE KEY"). Ed25519
 * has no such structure, so it is always PKCS#8, as cert-manager writes it.
 */
export function encodePrivateKey(key: KeyObject, encoding: 'PKCS1' | 'PKCS8' = 'PKCS1'): string {
  let type: 'pkcs1' | 'sec1' | 'pkcs8' = 'pkcs8';
  if (encoding === 'PKCS1' && key.asymmetricKeyType === 'rsa') type = 'pkcs1';
  if (encoding === 'PKCS1' && key.asymmetricKeyType === 'ec') type = 'sec1';
  return key.export({ type, format: 'pem' }).toString();
}

/**
 * Parses a PEM private key of any of the encodings above. Throws when the data
 * is not an unencrypted private key, because a Secret holding anything else
 * cannot serve TLS and must be re-issued.
 */
export function parsePrivateKey(pem: string): KeyObject {
  return parsedKeys(pem).key;
}

/**
 * Memoized by PEM: one issuance reads the same key five times (the CSR, the request check, the
 * store gate, the Secret's facts, the key policy), and parsing it was about 2 ms of CPU each
 * time on the bench. Bounded as the CSR and certificate memos are (512: with hundreds of
 * issuances in flight the reads of one key are far apart); the Secret cache itself keeps no key.
 */
const parsedKeys = memoize((pem: string): { key: KeyObject } => ({ key: parsePrivateKeyUncached(pem) }), 512);

function parsePrivateKeyUncached(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (cause) {
    throw new Error('the private key is not a valid unencrypted PEM private key', { cause });
  }
  describeKey(key);
  return key;
}

/** Reads algorithm and size from a key; throws for algorithms cert-manager does not issue. */
export function describeKey(key: KeyObject): KeyDescription {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return { algorithm: 'RSA', size: details.modulusLength ?? 0 };
    case 'ec': {
      const size = CURVE_BITS[details.namedCurve ?? ''];
      if (size === undefined) throw new Error(`the EC private key uses unsupported curve ${details.namedCurve}`);
      return { algorithm: 'ECDSA', size };
    }
    case 'ed25519':
      return { algorithm: 'Ed25519', size: 256 };
    default:
      throw new Error(`the private key type ${key.asymmetricKeyType} is not supported: use RSA, ECDSA or Ed25519`);
  }
}

/**
 * Lists the spec fields the key does not satisfy, as cert-manager names them
 * ("spec.privateKey.algorithm", "spec.privateKey.size"). Encoding is not listed:
 * it is a property of the Secret's bytes, not of the key, and re-encoding never
 * needs a new certificate.
 */
export function keySpecViolations(key: KeyObject | string | KeyDescription, spec: PrivateKeySpec = {}): string[] {
  const actual = typeof key === 'string' ? describeKey(parsePrivateKey(key)) : 'algorithm' in key ? key : describeKey(key);
  const algorithm = spec.algorithm ?? 'RSA';
  if (actual.algorithm !== algorithm) return ['spec.privateKey.algorithm'];
  if (algorithm === 'Ed25519') return [];
  const size = spec.size || (algorithm === 'RSA' ? DEFAULT_RSA_SIZE : DEFAULT_ECDSA_SIZE);
  return actual.size === size ? [] : ['spec.privateKey.size'];
}

/**
 * Whether a key may be kept for a spec: with `rotationPolicy: Never` the stored
 * key is reused only while this holds, and a mismatch is a reason to re-issue.
 */
export function keyMatchesSpec(pem: string, spec: PrivateKeySpec = {}): boolean {
  return keySpecViolations(pem, spec).length === 0;
}

/**
 * SHA-256 (hex) of the DER SubjectPublicKeyInfo. Accepts a private or public
 * KeyObject or a PEM private key, public key or certificate, so that keys,
 * CSRs and certificates can be compared by one value without caring which
 * side holds which form.
 */
export function publicKeyFingerprint(key: KeyObject | string): string {
  if (typeof key === 'string') return spkiFingerprint(createPublicKey(key).export({ type: 'spki', format: 'der' }));
  let fingerprint = fingerprints.get(key);
  if (fingerprint === undefined) {
    fingerprint = spkiFingerprint(createPublicKey(key).export({ type: 'spki', format: 'der' }));
    fingerprints.set(key, fingerprint);
  }
  return fingerprint;
}

/** Fingerprints of parsed keys (which parsePrivateKey shares): exporting the public half is not cheap. */
const fingerprints = new WeakMap<KeyObject, string>();

/** SHA-256 (hex) of DER SubjectPublicKeyInfo bytes, as read from a CSR or certificate. */
export function spkiFingerprint(spki: ArrayBuffer | Uint8Array): string {
  const bytes = spki instanceof Uint8Array ? spki : new Uint8Array(spki);
  return createHash('sha256').update(bytes).digest('hex');
}
