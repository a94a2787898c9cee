/**
 * The keystores of a Certificate's Secret (cert-manager's `spec.keystores`):
 * their passwords, read from the Certificate's namespace, and the keystore
 * code, imported only once a Certificate asks for a keystore.
 */
import type { Certificate, Secret } from '../api/types.ts';
import { Resources } from '../api/types.ts';
import { decodeB64 } from '../base/objects.ts';
import { OutputKeys } from '../pki/outputs.ts';
import type { Context } from './context.ts';

type KeystoreModule = typeof import('../pki/keystores/index.ts');
type KeystorePasswords = import('../pki/keystores/index.ts').KeystorePasswords;

let loaded: KeystoreModule | undefined;

/** The keystore reader for the Secret cache's facts, once the keystore code is loaded. */
export function keystoreReader(): ((key: string, der: Buffer) => string | undefined) | undefined {
  return loaded?.readKeystore;
}

/** Whether the Certificate asks for any keystore. */
export function wantsKeystore(cert: Certificate): boolean {
  return cert.spec.keystores?.pkcs12?.create === true || cert.spec.keystores?.jks?.create === true;
}

const KINDS = [
  { kind: 'pkcs12', name: 'PKCS#12' },
  { kind: 'jks', name: 'JKS' },
] as const;

/**
 * The password of each keystore asked for, from `password` or from
 * `passwordSecretRef` (a Secret in the Certificate's namespace). A missing
 * Secret or key leaves that password out, with a Warning Event on the
 * Certificate that names the Secret and the fix. The password is never logged.
 */
async function passwords(ctx: Context, cert: Certificate): Promise<KeystorePasswords> {
  const ns = cert.metadata.namespace ?? 'default';
  const out: KeystorePasswords = {};
  for (const { kind, name } of KINDS) {
    const spec = cert.spec.keystores?.[kind];
    if (!spec?.create) continue;
    if (spec.password !== undefined) {
      out[kind] = spec.password;
      continue;
    }
    const ref = spec.passwordSecretRef;
    if (!ref) continue;
    const key = ref.key ?? 'password';
    const secret = await ctx.client.find<Secret>(Resources.secrets, ns, ref.name);
    const value = secret?.data?.[key];
    if (value === undefined) {
      const what = secret ? `has no key "${key}"` : 'does not exist';
      ctx.events.event(cert, Resources.certificates, 'Warning', 'KeystorePasswordMissing',
        `Certificate ${ns}/${cert.metadata.name}: the ${name} password Secret ${ns}/${ref.name} ${what}; create it with the password under "${key}", or fix spec.keystores.${kind}.passwordSecretRef. The keystore is not written until then`);
      continue;
    }
    out[kind] = decodeB64(value);
  }
  return out;
}

/**
 * The keystore data for a key and chain, and the keystore keys to remove.
 * A keystore whose password Secret is missing is neither written nor removed:
 * the Secret keeps what it holds.
 */
export async function keystoreOutputs(ctx: Context, cert: Certificate, keyPem: Buffer, chainPem: Buffer, caPem: Buffer): Promise<KeystoreOutputs> {
  if (!wantsKeystore(cert)) return { data: {}, remove: [OutputKeys.pkcs12, OutputKeys.pkcs12Truststore, OutputKeys.jks, OutputKeys.jksTruststore], passwordMissing: false };
  const found = await passwords(ctx, cert);
  loaded ??= await import('../pki/keystores/index.ts');
  const passwordMissing = KINDS.some(({ kind }) => cert.spec.keystores?.[kind]?.create === true && found[kind] === undefined);
  return { ...loaded.keystoreData(cert.spec.keystores, found, keyPem, chainPem, caPem), passwordMissing };
}

export interface KeystoreOutputs {
  data: Record<string, string>;
  remove: string[];
  /** A keystore is asked for whose password Secret is missing: look again in PASSWORD_RETRY_MS. */
  passwordMissing: boolean;
}

/**
 * How soon a Certificate whose keystore password Secret is missing is looked at again: the
 * password Secret carries nothing that would bring its Certificate back to the queue.
 */
export const PASSWORD_RETRY_MS = 60_000;
