/**
 * What the reconcilers need to know about a TLS Secret's contents: the leaf
 * certificate's fields and the private key's type, size and public-key
 * fingerprint. Never the key itself.
 *
 * The Secret cache stores these facts in place of the PEM (`factsInPlaceOfPem`):
 * at 10,000 Certificates the PEM of their Secrets was about 55 MB of the
 * controller's heap, and every pass parsed it again. A Secret read from the
 * API server (the full object) is parsed on first use; either way `secretFacts`
 * answers the same questions.
 */
import type { KeyObject } from 'node:crypto';
import type { Secret } from '../api/types.ts';
import { leafFacts, type LeafFacts } from './leaf-facts.ts';
import { describeKey, parsePrivateKey, publicKeyFingerprint, type KeyDescription } from './keys.ts';
import { outputFacts, type OutputFacts } from './outputs.ts';
import { secretValue } from './pem.ts';

/** A leaf certificate as the policies read it (leaf-facts.ts): never its PEM. */
export type CertificateFacts = LeafFacts;

export interface KeyFacts extends KeyDescription {
  publicKeyFingerprint: string;
}

export interface SecretFacts {
  /** `tls.crt` / `tls.key` were present and not empty. */
  hasCertificate: boolean;
  hasKey: boolean;
  certificate?: CertificateFacts;
  certificateError?: string;
  key?: KeyFacts;
  keyError?: string;
  /** The keys derived from tls.key and tls.crt (tls-combined.pem, key.der, keystores). */
  outputs: OutputFacts;
}

/** Facts of Secrets whose PEM was dropped from the cache, and memoized facts of full Secrets. */
const known = new WeakMap<Secret, SecretFacts>();

function keyFacts(key: KeyObject): KeyFacts {
  return { ...describeKey(key), publicKeyFingerprint: publicKeyFingerprint(key) };
}

function parse(secret: Secret, outputs: OutputFacts = outputFacts(secret.data)): SecretFacts {
  const certPem = secretValue(secret.data, 'tls.crt');
  const keyPem = secretValue(secret.data, 'tls.key');
  const facts: SecretFacts = { hasCertificate: certPem !== undefined, hasKey: keyPem !== undefined, outputs };
  try {
    if (certPem) facts.certificate = leafFacts(certPem);
  } catch (err) {
    facts.certificateError = (err as Error).message;
  }
  try {
    if (keyPem) facts.key = keyFacts(parsePrivateKey(keyPem));
  } catch (err) {
    facts.keyError = (err as Error).message;
  }
  return facts;
}

/** The facts of a Secret, cached or read from the API server. */
export function secretFacts(secret: Secret): SecretFacts {
  let facts = known.get(secret);
  if (!facts) {
    facts = parse(secret);
    known.set(secret, facts);
  }
  return facts;
}

/**
 * Replaces `tls.crt` and `tls.key` of a Secret about to be cached by their
 * facts (in place: the cache holds the only copy). A reconciler that needs
 * the PEM itself reads the Secret from the API server. `outputs` are the
 * facts of the derived keys, read before the cache trimmed them away.
 */
export function factsInPlaceOfPem(secret: Secret, outputs?: OutputFacts): void {
  if (!secret.data) return;
  known.set(secret, parse(secret, outputs));
  delete secret.data['tls.crt'];
  delete secret.data['tls.key'];
}
