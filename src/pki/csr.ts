/**
 * Certificate signing requests, built and read the way cert-manager does.
 *
 * The CSR is the record of what was asked for: the RequestChanged policy
 * compares it with the Certificate spec to decide whether a re-issue is due,
 * and the SelfSigned and CA signers copy names and usages from it. So the CSR
 * carries the usages (key usage and EKU extensions, as cert-manager's
 * `encodeUsagesInRequest` default does) and, for a CA, basic constraints.
 */
import type { CertificateSpec } from '../api/types.ts';
import { parsePrivateKey, spkiFingerprint } from './keys.ts';
import { sanExtension, sansFromExtensions, subjectFields, subjectName, type SubjectAltNames, type SubjectFields } from './names.ts';
import { memoize } from './memo.ts';
import { pemBlocks } from './pem.ts';
import { webSignerFor } from './signer.ts';
import { usageBits, usageBitsFromExtensions, usageExtensions, usageStrings } from './usages.ts';
import { decodeDer, isCaByExtensions, x509 } from './x509.ts';

export interface CsrOptions {
  /** PEM private key whose public half the CSR carries and which signs it. */
  keyPem: string;
  commonName?: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  uris?: string[];
  /** cert-manager usage strings; empty or absent means the defaults. */
  usages?: string[];
  isCA?: boolean;
  subject?: CertificateSpec['subject'];
}

export interface ParsedCsr extends SubjectAltNames, SubjectFields {
  publicKeyFingerprint: string;
  /** Canonical usage strings from the CSR's extensions; empty when it has none. */
  usages: string[];
  /** True when the CSR asks for basic constraints cA=TRUE. */
  isCA: boolean;
  /** The parsed request, for signers that copy its subject and key. */
  request: x509.Pkcs10CertificateRequest;
}

/**
 * Builds and signs a PEM CSR. Throws when no identity at all is requested,
 * because no issuer can sign such a request and the error is easier to read
 * here than in an ACME finalize response.
 */
export async function createCsr(options: CsrOptions): Promise<string> {
  const { commonName, dnsNames = [], ipAddresses = [], uris = [] } = options;
  if (!commonName && dnsNames.length === 0 && ipAddresses.length === 0 && uris.length === 0) {
    throw new Error('the certificate names no commonName, dnsNames, ipAddresses or uris: set at least one');
  }
  const name = subjectName({
    commonName,
    organizations: options.subject?.organizations,
    organizationalUnits: options.subject?.organizationalUnits,
    countries: options.subject?.countries,
  });
  const extensions: x509.Extension[] = [];
  const san = sanExtension({ dnsNames, ipAddresses, uris }, name.length === 0);
  if (san) extensions.push(san);
  extensions.push(...usageExtensions(usageBits(options.usages, options.isCA)));
  if (options.isCA) extensions.push(new x509.BasicConstraintsExtension(true, undefined, true));

  const signer = webSignerFor(parsePrivateKey(options.keyPem));
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name,
    keys: signer.keys,
    signingAlgorithm: signer.signingAlgorithm,
    extensions,
  });
  return `${csr.toString('pem')}\n`;
}

/**
 * Reads a CSR (PEM, or base64 of PEM as in `spec.request`). Does not check the
 * signature; see `verifyCsr`, which is async because WebCrypto is. Memoized by
 * input: the result is frozen and shared.
 */
export const parseCsr: (pem: string) => ParsedCsr = memoize(parseCsrUncached, 512);

function parseCsrUncached(pem: string): ParsedCsr {
  const block = pemBlocks(pem, 'CERTIFICATE REQUEST')[0];
  if (!block) throw new Error('the data holds no PEM CERTIFICATE REQUEST block');
  const request = decodeDer('certificate request', () => new x509.Pkcs10CertificateRequest(block));
  const extensions = request.extensions;
  const bits = usageBitsFromExtensions(extensions);
  return {
    ...subjectFields(request.subjectName),
    ...sansFromExtensions(extensions),
    publicKeyFingerprint: spkiFingerprint(request.publicKey.rawData),
    usages: bits.keyUsage === 0 && bits.extKeyUsages.length === 0 ? [] : usageStrings(bits),
    isCA: isCaByExtensions(extensions),
    request,
  };
}

/** Whether the CSR is signed by the key it carries (proof of possession). */
export async function verifyCsr(pem: string): Promise<boolean> {
  try {
    return await parseCsr(pem).request.verify();
  } catch {
    return false;
  }
}
