/**
 * Local CAs and leaves for the scenarios that need certificates without an
 * ACME round trip (CA issuers, the steady state, the Secret reload), signed
 * with certroute's own src/pki so they are exactly what its CA issuer writes.
 */
import { X509Certificate } from 'node:crypto';
import type { PrivateKeySpec, Secret } from '../../src/api/types.ts';
import { createCsr } from '../../src/pki/csr.ts';
import { generatePrivateKey } from '../../src/pki/keys.ts';
import { signCsr } from '../../src/pki/sign.ts';

const DAY_MS = 24 * 3600_000;

export interface KeyPair {
  certPem: string;
  keyPem: string;
}

export interface Leaf extends KeyPair {
  caPem: string;
  /** As node's X509Certificate prints it, which is how servedCertificate reports it. */
  serial: string;
}

/** A self-signed CA, ECDSA P-256 unless told otherwise. */
export async function makeCa(commonName: string, key: PrivateKeySpec = { algorithm: 'ECDSA' }): Promise<KeyPair> {
  const keyPem = await generatePrivateKey(key);
  const usages = ['cert sign', 'crl sign', 'digital signature'];
  const csrPem = await createCsr({ keyPem, commonName, isCA: true, usages });
  const signed = await signCsr({ csrPem, durationMs: 365 * DAY_MS, isCA: true, usages, selfSignKeyPem: keyPem });
  return { certPem: signed.certificatePem, keyPem };
}

/** A leaf for `dnsNames` signed by `ca`, with a fresh key of `key` (cert-manager's default RSA 2048). */
export async function signLeaf(ca: KeyPair, dnsNames: string[], key: PrivateKeySpec = {}): Promise<Leaf> {
  const keyPem = await generatePrivateKey(key);
  const csrPem = await createCsr({ keyPem, dnsNames });
  const signed = await signCsr({ csrPem, durationMs: 30 * DAY_MS, issuer: ca });
  const leafPem = signed.certificatePem.slice(0, signed.certificatePem.indexOf('-----END CERTIFICATE-----') + 25);
  return { certPem: signed.certificatePem, keyPem, caPem: signed.caPem, serial: new X509Certificate(leafPem).serialNumber };
}

/**
 * `count` distinct leaves for `dnsNames` sharing one fresh key: distinct
 * certificates at the price of one key generation.
 */
export async function signLeaves(ca: KeyPair, dnsNames: string[], count: number, key: PrivateKeySpec = {}): Promise<Leaf[]> {
  const keyPem = await generatePrivateKey(key);
  const csrPem = await createCsr({ keyPem, dnsNames });
  const out: Leaf[] = [];
  for (let i = 0; i < count; i++) {
    const signed = await signCsr({ csrPem, durationMs: 30 * DAY_MS, issuer: ca });
    out.push({ certPem: signed.certificatePem, keyPem, caPem: signed.caPem, serial: new X509Certificate(signed.certificatePem).serialNumber });
  }
  return out;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

/** A kubernetes.io/tls Secret holding `pair`; `ca.crt` too when given. */
export function tlsSecret(namespace: string, name: string, pair: KeyPair & { caPem?: string }, meta: { labels?: Record<string, string>; annotations?: Record<string, string> } = {}): Secret {
  return {
    metadata: { name, namespace, ...meta },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': b64(pair.certPem), 'tls.key': b64(pair.keyPem), ...(pair.caPem ? { 'ca.crt': b64(pair.caPem) } : {}) },
  };
}
