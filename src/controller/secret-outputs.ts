/**
 * The Secret's derived keys after issuance: cert-manager's post-issuance
 * step for `additionalOutputFormats` and `keystores`. When the spec asks for another format
 * (or no longer asks for one), or the derived bytes drifted from tls.key and
 * tls.crt, the Secret is rewritten from the key and chain it holds. The
 * certificate is not re-issued: the outputs do not change it.
 */
import type { Certificate, Secret } from '../api/types.ts';
import { Resources, SecretAnnotations } from '../api/types.ts';
import { sameContent } from '../base/objects.ts';
import { formatOutputs, outputsMismatch } from '../pki/outputs.ts';
import { secretFacts } from '../pki/secret-facts.ts';
import type { Context } from './context.ts';
import { keystoreOutputs } from './keystores.ts';

/**
 * Rewrites the derived keys of the Certificate's Secret when they no longer
 * match the spec; says whether it wrote, and whether a keystore waits for its
 * password Secret. Only a Secret issued for this Certificate is touched, and
 * only when its key and chain are present.
 */
export async function refreshOutputs(ctx: Context, cert: Certificate, secret: Secret | undefined): Promise<{ wrote: boolean; passwordMissing: boolean }> {
  const nothing = { wrote: false, passwordMissing: false };
  if (!secret || secret.metadata.annotations?.[SecretAnnotations.certificateName] !== cert.metadata.name) return nothing;
  const problem = outputsMismatch(cert.spec, secretFacts(secret).outputs);
  if (!problem) return nothing;
  const live = await ctx.client.find<Secret>(Resources.secrets, secret.metadata.namespace, secret.metadata.name);
  const key = live?.data?.['tls.key'];
  const chain = live?.data?.['tls.crt'];
  if (!live || !key || !chain) return nothing;
  const keyPem = Buffer.from(key, 'base64');
  const chainPem = Buffer.from(chain, 'base64');
  const outputs = formatOutputs(cert.spec, keyPem, chainPem);
  const keystores = await keystoreOutputs(ctx, cert, keyPem, chainPem, Buffer.from(live.data?.['ca.crt'] ?? '', 'base64'));
  const next: Secret = { ...structuredClone(live), data: { ...live.data, ...outputs.data, ...keystores.data } };
  for (const k of [...outputs.remove, ...keystores.remove]) delete next.data?.[k];
  if (sameContent(next, live)) return { wrote: false, passwordMissing: keystores.passwordMissing };
  // Written with the resourceVersion just read: a concurrent issuance wins, and this pass retries.
  await ctx.client.replace(Resources.secrets, next);
  ctx.logger.info({ certificate: `${cert.metadata.namespace}/${cert.metadata.name}`, secret: live.metadata.name, reason: problem }, 'rewrote the derived keys of the Secret');
  return { wrote: true, passwordMissing: keystores.passwordMissing };
}
