/**
 * The keystores of cert-manager's `spec.keystores`, written from a Secret's
 * key and chain. Loaded with a dynamic import, only once a Certificate asks
 * for a keystore: a controller without one never holds this code.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { CertificateKeystores } from '../../api/types.ts';
import { OutputKeys } from '../outputs.ts';
import { pemBlocks } from '../pem.ts';
import { pkcs12Keystore, pkcs12ProfileOf, pkcs12Truststore } from './pkcs12.ts';

export interface KeystorePasswords {
  pkcs12?: string;
}

function certificatesDer(pem: Buffer): Buffer[] {
  return pem.length ? pemBlocks(pem.toString('utf8'), 'CERTIFICATE').map((b) => new X509Certificate(b).raw) : [];
}

/**
 * The Secret data (base64) of the keystores `keystores` asks for, and the
 * keystore keys to remove. A truststore is written only when the CA is known.
 */
export function keystoreData(keystores: CertificateKeystores | undefined, passwords: KeystorePasswords, keyPem: Buffer, chainPem: Buffer, caPem: Buffer): { data: Record<string, string>; remove: string[] } {
  const data: Record<string, string> = {};
  const remove: string[] = [];
  const pkcs12 = keystores?.pkcs12;
  if (pkcs12?.create && passwords.pkcs12 !== undefined) {
    const profile = pkcs12.profile ?? 'LegacyRC2';
    const key = createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' });
    const cas = certificatesDer(caPem);
    data[OutputKeys.pkcs12] = pkcs12Keystore(profile, passwords.pkcs12, key, certificatesDer(chainPem), cas).toString('base64');
    if (cas.length) data[OutputKeys.pkcs12Truststore] = pkcs12Truststore(profile, passwords.pkcs12, cas).toString('base64');
    else remove.push(OutputKeys.pkcs12Truststore);
  } else if (!pkcs12?.create) {
    remove.push(OutputKeys.pkcs12, OutputKeys.pkcs12Truststore);
  }
  return { data, remove };
}

/** What the unencrypted structure of a keystore says: the profile of keystore.p12. */
export function readKeystore(key: string, der: Buffer): string | undefined {
  return key === OutputKeys.pkcs12 ? pkcs12ProfileOf(der) : undefined;
}
