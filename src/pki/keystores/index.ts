/**
 * The keystores of cert-manager's `spec.keystores`, written from a Secret's
 * key and chain. Loaded with a dynamic import, only once a Certificate asks
 * for a keystore: a controller without one never holds this code.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { CertificateKeystores } from '../../api/types.ts';
import { OutputKeys } from '../outputs.ts';
import { pemBlocks } from '../pem.ts';
import { jksAliasOf, jksKeystore, jksTruststore } from './jks.ts';
import { pkcs12Keystore, pkcs12ProfileOf, pkcs12Truststore } from './pkcs12.ts';

export interface KeystorePasswords {
  pkcs12?: string;
  jks?: string;
}

function certificatesDer(pem: Buffer): Buffer[] {
  return pem.length ? pemBlocks(pem.toString('utf8'), 'CERTIFICATE').map((b) => new X509Certificate(b).raw) : [];
}

/** cert-manager's default alias of the key entry in keystore.jks. */
export const DEFAULT_JKS_ALIAS = 'certificate';

/**
 * The Secret data (base64) of the keystores `keystores` asks for, and the
 * keystore keys to remove. A truststore is written only when the CA is known.
 * A keystore asked for without a password (its Secret is missing) is neither
 * written nor removed: the Secret keeps what it has.
 */
export function keystoreData(keystores: CertificateKeystores | undefined, passwords: KeystorePasswords, keyPem: Buffer, chainPem: Buffer, caPem: Buffer): { data: Record<string, string>; remove: string[] } {
  const data: Record<string, string> = {};
  const remove: string[] = [];
  const cas = certificatesDer(caPem);
  let material: { key: Buffer; chain: Buffer[] } | undefined;
  const keyAndChain = (): { key: Buffer; chain: Buffer[] } =>
    (material ??= { key: createPrivateKey(keyPem).export({ type: 'pkcs8', format: 'der' }), chain: certificatesDer(chainPem) });
  const kinds = [
    {
      create: keystores?.pkcs12?.create === true, password: passwords.pkcs12, keystore: OutputKeys.pkcs12, truststore: OutputKeys.pkcs12Truststore,
      write: (password: string) => {
        const profile = keystores?.pkcs12?.profile ?? 'LegacyRC2';
        const { key, chain } = keyAndChain();
        return { keystore: pkcs12Keystore(profile, password, key, chain, cas), truststore: cas.length ? pkcs12Truststore(profile, password, cas) : undefined };
      },
    },
    {
      create: keystores?.jks?.create === true, password: passwords.jks, keystore: OutputKeys.jks, truststore: OutputKeys.jksTruststore,
      write: (password: string) => {
        const { key, chain } = keyAndChain();
        return { keystore: jksKeystore(password, keystores?.jks?.alias ?? DEFAULT_JKS_ALIAS, key, chain, cas), truststore: cas.length ? jksTruststore(password, cas) : undefined };
      },
    },
  ];
  for (const kind of kinds) {
    if (!kind.create) {
      remove.push(kind.keystore, kind.truststore);
      continue;
    }
    if (kind.password === undefined) continue;
    const written = kind.write(kind.password);
    data[kind.keystore] = written.keystore.toString('base64');
    if (written.truststore) data[kind.truststore] = written.truststore.toString('base64');
    else remove.push(kind.truststore);
  }
  return { data, remove };
}

/** What the unencrypted structure of a keystore says: the profile of keystore.p12, the key alias of keystore.jks. */
export function readKeystore(key: string, der: Buffer): string | undefined {
  if (key === OutputKeys.pkcs12) return pkcs12ProfileOf(der);
  if (key === OutputKeys.jks) return jksAliasOf(der);
  return undefined;
}
