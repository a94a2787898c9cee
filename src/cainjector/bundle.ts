/**
 * What goes into a caBundle, as cert-manager's cainjector decides it since CAInjectorMerging
 * became its only behaviour: the new CA is appended to the CAs the field already holds, duplicates
 * and expired certificates are dropped. During a CA rotation the field therefore trusts the old
 * and the new CA at once, so a webhook server still presenting a leaf of the old CA keeps being
 * called until it picks up its new leaf; the old CA leaves the bundle when it expires.
 */
import { X509Certificate } from 'node:crypto';
import { pemBlocks, secretValue } from '../pki/pem.ts';

/** The certificates of a PEM bundle; throws on a block that is not a certificate. */
export function parseBundle(pem: string): X509Certificate[] {
  return pemBlocks(pem, 'CERTIFICATE').map((block) => new X509Certificate(block));
}

/**
 * The bundle that trusts `ca` and every still-valid CA of `existing`, existing ones first. An
 * existing bundle that does not parse is replaced rather than merged, as cert-manager does.
 */
export function mergeBundle(existing: string | undefined, ca: readonly X509Certificate[], now: Date): X509Certificate[] {
  let current: X509Certificate[] = [];
  try {
    current = existing ? parseBundle(existing) : [];
  } catch {
    current = [];
  }
  const seen = new Set<string>();
  const merged: X509Certificate[] = [];
  for (const cert of [...current, ...ca]) {
    const id = cert.fingerprint256;
    if (seen.has(id) || Date.parse(cert.validTo) < now.getTime()) continue;
    seen.add(id);
    merged.push(cert);
  }
  return merged;
}

export const bundlePem = (certs: readonly X509Certificate[]): string => certs.map((c) => c.toString()).join('');

/** Issued by its own subject and signed by its own key: a root. */
const isSelfSigned = (c: X509Certificate): boolean => c.issuer === c.subject && c.verify(c.publicKey);

export type SecretCA = { ok: true; certificates: X509Certificate[]; from: 'ca.crt' | 'tls.crt' } | { ok: false; message: string };

/**
 * The CA a Secret offers: its `ca.crt`, or, with `rootFallback` when that is absent, the root at
 * the end of its `tls.crt` chain (a self-signed CA Certificate is its own root).
 */
export function caOfSecret(data: Record<string, string> | undefined, rootFallback: boolean): SecretCA {
  const caCrt = secretValue(data, 'ca.crt');
  if (caCrt) {
    try {
      const certificates = parseBundle(caCrt);
      if (certificates.length > 0) return { ok: true, certificates, from: 'ca.crt' };
    } catch (err) {
      return { ok: false, message: `its ca.crt is not PEM certificates (${(err as Error).message})` };
    }
    return { ok: false, message: 'its ca.crt holds no PEM certificate' };
  }
  const tlsCrt = secretValue(data, 'tls.crt');
  if (!rootFallback) return { ok: false, message: 'it has no ca.crt' };
  if (!tlsCrt) return { ok: false, message: 'it has neither ca.crt nor tls.crt' };
  let chain: X509Certificate[];
  try {
    chain = parseBundle(tlsCrt);
  } catch (err) {
    return { ok: false, message: `its tls.crt is not PEM certificates (${(err as Error).message})` };
  }
  const root = chain.at(-1);
  if (!root || !isSelfSigned(root)) return { ok: false, message: 'it has no ca.crt and its tls.crt chain does not end in a root' };
  return { ok: true, certificates: [root], from: 'tls.crt' };
}
