/**
 * The Secret keys derived from `tls.key` and `tls.crt` (cert-manager's
 * `additionalOutputFormats` and `keystores`), and the facts that tell whether
 * a Secret still carries what its Certificate asks for.
 *
 * These outputs never change the certificate, so a change to them never
 * re-issues: like cert-manager's post-issuance policies, the Secret is
 * rewritten from the key and chain it already holds. The facts are computed
 * when a Secret enters the cache, where only `tls.crt` and `tls.key` survive
 * (as facts), so they carry everything the comparison needs.
 */
import type { CertificateSpec } from '../api/types.ts';

/** The Secret keys cert-manager writes for each output, by cert-manager's names. */
export const OutputKeys = {
  combinedPem: 'tls-combined.pem',
  der: 'key.der',
  pkcs12: 'keystore.p12',
  pkcs12Truststore: 'truststore.p12',
  jks: 'keystore.jks',
  jksTruststore: 'truststore.jks',
} as const;

export const ALL_OUTPUT_KEYS: readonly string[] = Object.values(OutputKeys);

export type OutputFormat = 'CombinedPEM' | 'DER';

/** What the cache keeps of a Secret's derived outputs. */
export interface OutputFacts {
  /** Output keys present (non-empty) in the Secret. */
  present: readonly string[];
  /** CombinedPEM or DER keys whose bytes no longer follow from tls.key and tls.crt. */
  stale: readonly string[];
  /** The Secret has a non-empty ca.crt (a truststore is written only then). */
  hasCa: boolean;
  /** The profile keystore.p12 was written with, read from its unencrypted structure. */
  pkcs12Profile?: string;
  /** The alias of the key entry of keystore.jks, read from its unencrypted structure. */
  jksAlias?: string;
}

const NONE: readonly string[] = Object.freeze([]);

/** cert-manager's CombinedPEM: the key, a newline, then the chain, byte for byte. */
export function combinedPem(keyPem: Buffer, chainPem: Buffer): Buffer {
  return Buffer.concat([keyPem, Buffer.from('\n'), chainPem]);
}

/** cert-manager's DER: the body of the key's PEM block, in the encoding tls.key has (PKCS#1, SEC1 or PKCS#8). */
export function derKey(keyPem: Buffer): Buffer {
  const text = keyPem.toString('utf8');
  const block = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(text);
  if (!block) throw new Error('tls.key holds no PEM block');
  return Buffer.from((block[2] ?? '').replace(/\s+/g, ''), 'base64');
}

/** The requested formats, without repeats. */
export function requestedFormats(spec: Pick<CertificateSpec, 'additionalOutputFormats'>): OutputFormat[] {
  return [...new Set((spec.additionalOutputFormats ?? []).map((f) => f.type))];
}

/**
 * The Secret data (base64) the formats of `spec` add to a key and chain,
 * and the format keys to remove because the spec no longer asks for them.
 */
export function formatOutputs(spec: Pick<CertificateSpec, 'additionalOutputFormats'>, keyPem: Buffer, chainPem: Buffer): { data: Record<string, string>; remove: string[] } {
  const formats = requestedFormats(spec);
  const data: Record<string, string> = {};
  const remove: string[] = [];
  if (formats.includes('CombinedPEM')) data[OutputKeys.combinedPem] = combinedPem(keyPem, chainPem).toString('base64');
  else remove.push(OutputKeys.combinedPem);
  if (formats.includes('DER')) data[OutputKeys.der] = derKey(keyPem).toString('base64');
  else remove.push(OutputKeys.der);
  return { data, remove };
}

/**
 * Reads the output facts of a Secret's data (base64 values, as the API
 * serves them). `readKeystore` reads the unencrypted parts of a keystore; it
 * is passed in so that the keystore code is loaded only where one exists.
 */
export function outputFacts(data: Record<string, string> | undefined, readKeystore?: (key: string, der: Buffer) => string | undefined): OutputFacts {
  if (!data) return { present: NONE, stale: NONE, hasCa: false };
  const present = ALL_OUTPUT_KEYS.filter((k) => (data[k] ?? '') !== '');
  const facts: OutputFacts = { present: present.length ? present : NONE, stale: NONE, hasCa: (data['ca.crt'] ?? '') !== '' };
  if (present.length === 0) return facts;
  const key = Buffer.from(data['tls.key'] ?? '', 'base64');
  const chain = Buffer.from(data['tls.crt'] ?? '', 'base64');
  const stale: string[] = [];
  if (present.includes(OutputKeys.combinedPem) && data[OutputKeys.combinedPem] !== combinedPem(key, chain).toString('base64')) stale.push(OutputKeys.combinedPem);
  if (present.includes(OutputKeys.der)) {
    let expected = '';
    try {
      expected = derKey(key).toString('base64');
    } catch {
      // No key to derive from: the DER key is stale whatever it holds.
    }
    if (data[OutputKeys.der] !== expected) stale.push(OutputKeys.der);
  }
  if (stale.length) facts.stale = stale;
  if (readKeystore && present.includes(OutputKeys.pkcs12)) facts.pkcs12Profile = readKeystore(OutputKeys.pkcs12, Buffer.from(data[OutputKeys.pkcs12] ?? '', 'base64'));
  if (readKeystore && present.includes(OutputKeys.jks)) facts.jksAlias = readKeystore(OutputKeys.jks, Buffer.from(data[OutputKeys.jks] ?? '', 'base64'));
  return facts;
}

/**
 * Why the Secret's derived outputs no longer match the spec (cert-manager's
 * AdditionalOutputFormatsMismatch), or undefined when they do.
 */
export function outputsMismatch(spec: Pick<CertificateSpec, 'additionalOutputFormats' | 'keystores'>, facts: OutputFacts): string | undefined {
  const formats = requestedFormats(spec);
  const wanted: string[] = [];
  if (formats.includes('CombinedPEM')) wanted.push(OutputKeys.combinedPem);
  if (formats.includes('DER')) wanted.push(OutputKeys.der);
  const missing = wanted.filter((k) => !facts.present.includes(k));
  const extra = [OutputKeys.combinedPem, OutputKeys.der].filter((k) => facts.present.includes(k) && !wanted.includes(k));
  const stale = facts.stale.filter((k) => wanted.includes(k));
  const problems = [
    ...missing.map((k) => `${k} is missing`),
    ...extra.map((k) => `${k} is no longer requested`),
    ...stale.map((k) => `${k} does not match tls.key and tls.crt`),
  ];
  const reasons: string[] = [];
  if (problems.length) reasons.push(`Certificate's additionalOutputFormats doesn't match Secret data: ${problems.join(', ')}`);
  const keystores = keystoresMismatch(spec, facts);
  if (keystores.length) reasons.push(`Certificate's keystores don't match Secret data: ${keystores.join(', ')}`);
  return reasons.length ? reasons.join('; ') : undefined;
}

/** What keeps the Secret's keystores from matching `spec.keystores`. */
function keystoresMismatch(spec: Pick<CertificateSpec, 'keystores'>, facts: OutputFacts): string[] {
  const has = (k: string): boolean => facts.present.includes(k);
  const problems: string[] = [];
  const kinds = [
    // The profile and alias are known once the keystore code is loaded (it reads the keystores' unencrypted structure).
    { create: spec.keystores?.pkcs12?.create, keystore: OutputKeys.pkcs12, truststore: OutputKeys.pkcs12Truststore, what: 'profile', wanted: spec.keystores?.pkcs12?.profile ?? 'LegacyRC2', found: facts.pkcs12Profile },
    { create: spec.keystores?.jks?.create, keystore: OutputKeys.jks, truststore: OutputKeys.jksTruststore, what: 'alias', wanted: spec.keystores?.jks?.alias ?? 'certificate', found: facts.jksAlias },
  ];
  for (const k of kinds) {
    if (k.create) {
      if (!has(k.keystore)) problems.push(`${k.keystore} is missing`);
      if (facts.hasCa && !has(k.truststore)) problems.push(`${k.truststore} is missing`);
      if (k.found !== undefined && has(k.keystore) && k.found !== k.wanted) problems.push(`${k.keystore} was written with ${k.what} ${k.found}, not ${k.wanted}`);
    } else {
      for (const key of [k.keystore, k.truststore]) if (has(key)) problems.push(`${key} is no longer requested`);
    }
  }
  return problems;
}
