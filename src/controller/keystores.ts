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

let loaded: KeystoreModule | undefined;

/** The keystore reader for the Secret cache's facts, once the keystore code is loaded. */
export function keystoreReader(): ((key: string, der: Buffer) => string | undefined) | undefined {
  return loaded?.readKeystore;
}

/** Whether the Certificate asks for any keystore. */
export function wantsKeystore(cert: Certificate): boolean {
  return cert.spec.keystores?.pkcs12?.create === true;
}

/**
 * The keystore data for a key and chain, and the keystore keys to remove.
 * When a password Secret is missing, the keystore is neither written nor
 * removed (what the Secret holds stays), and a Warning Event says how to fix it.
 */
export async function keystoreOutputs(ctx: Context, cert: Certificate, keyPem: Buffer, chainPem: Buffer, caPem: Buffer): Promise<{ data: Record<string, string>; remove: string[] }> {
  if (!wantsKeystore(cert)) return { data: {}, remove: [OutputKeys.pkcs12, OutputKeys.pkcs12Truststore] };
  const pkcs12 = cert.spec.keystores?.pkcs12;
  let password = pkcs12?.password;
  const ref = pkcs12?.passwordSecretRef;
  if (password === undefined && ref) {
    const ns = cert.metadata.namespace ?? 'default';
    const secret = await ctx.client.find<Secret>(Resources.secrets, ns, ref.name);
    const key = ref.key ?? 'password';
    const value = secret?.data?.[key];
    if (value === undefined) {
      const what = secret ? `has no key "${key}"` : 'does not exist';
      ctx.events.event(cert, Resources.certificates, 'Warning', 'KeystorePasswordMissing',
        `Certificate ${ns}/${cert.metadata.name}: the PKCS#12 password Secret ${ns}/${ref.name} ${what}; create it with the password under "${key}", or fix spec.keystores.pkcs12.passwordSecretRef. The keystore is not written until then`);
      return { data: {}, remove: [] };
    }
    password = decodeB64(value);
  }
  loaded ??= await import('../pki/keystores/index.ts');
  return loaded.keystoreData(cert.spec.keystores, { pkcs12: password }, keyPem, chainPem, caPem);
}
