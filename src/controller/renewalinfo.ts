/**
 * ACME Renewal Information (RFC 9773), on by default (`--ari=false` turns it off). For the
 * certificate in each ACME Certificate's Secret this asks the CA's renewalInfo resource for the
 * window in which to renew, picks a moment uniformly at random inside it (kept while the window
 * stays the same), and writes both to status.acme.ari, in cert-manager's shape. The
 * certificates reconciler reads that moment as the renewal time, unless renewBefore or
 * renewBeforePercentage gives an earlier one (`certificateRenewalTime`). When the CA revokes a
 * certificate it moves the window into the past, and the next check here starts the renewal.
 *
 * It checks again after the CA's Retry-After, capped at 6 hours and at --ari-poll-interval.
 * A check that changed nothing is written at most once an hour (REWRITE_UNCHANGED_MS).
 * A CA whose directory has no renewalInfo is left exactly as before: nothing is asked, nothing
 * written. The check time is kept in status (nextCheck), so a restarted controller does not ask
 * about every certificate at once.
 */
import type { Certificate, CertificateStatus } from '../api/types.ts';
import { Resources } from '../api/types.ts';
import { objectKey, splitKey } from '../base/objects.ts';
import { getCondition } from '../kube/conditions.ts';
import { keysOf, type ControllerRegistration } from '../kube/controller.ts';
import { done, requeueAfter, type Outcome } from '../kube/queue.ts';
import { secretFacts } from '../pki/secret-facts.ts';
import { indexBySecretName, namingSecret, timesFromSecret } from './certificates.ts';
import { checkRenewalInfo } from './ari-check.ts';
import { findIssuer, issuerKey, type Context } from './context.ts';
import { writeStatus } from './status.ts';

export const renewalInfoController: ControllerRegistration<Context> = {
  name: 'renewalinfo',
  register(ctx, { queue }) {
    indexBySecretName(ctx);
    ctx.caches.certificates.on((c) => queue.add(objectKey(c)));
    // The certificate to ask about is in the Secret, whose cache can show it after the
    // Certificate's own event (two watches): a pass that found no certificate yet ends, and the
    // Secret's event brings the Certificate back.
    ctx.caches.secrets.on((s) => {
      for (const c of namingSecret(ctx, s.metadata.namespace, s.metadata.name)) queue.add(objectKey(c));
    });
    return { reconcile: renewalInfoReconciler(ctx), resync: () => keysOf(ctx.caches.certificates) };
  },
};

/**
 * How old lastChecked may grow before a check that changed nothing is written anyway. A check
 * that changed nothing is otherwise not written: with a short --ari-poll-interval, 200
 * Certificates would each be rewritten every few seconds (and each write is a pass of the
 * Certificate reconciler). At the default 6 h every check is written.
 */
const REWRITE_UNCHANGED_MS = 3600_000;

export function renewalInfoReconciler(ctx: Context): (key: string) => Promise<Outcome> {
  /** When each certificate (by key and identifier) is to be checked next, where status may be older. */
  const nextChecks = new Map<string, { id: string; at: number }>();
  return async (key) => {
    const { namespace, name } = splitKey(key);
    const cert = ctx.caches.certificates.get(namespace, name);
    if (!cert || cert.metadata.deletionTimestamp) {
      nextChecks.delete(key);
      return done;
    }
    if (ctx.caches.certificates.isReplaced(cert)) return done;
    const had = cert.status?.acme?.ari;
    const issuer = findIssuer(ctx, cert.spec.issuerRef, namespace);
    if (!ctx.config.ari || (issuer && !issuer.spec.acme)) return forget(ctx, cert);
    // A renewal under way ends in a new certificate, which is asked about then.
    if (!issuer || getCondition(cert.status?.conditions, 'Issuing')?.status === 'True') return done;
    const secret = ctx.caches.secrets.get(namespace, cert.spec.secretName);
    const leaf = secret ? secretFacts(secret).certificate : undefined;
    const id = leaf?.renewalInfoId;
    if (!id) return done;
    // The Secret cache still shows the certificate before a renewal the Certificate's status
    // already records (two watches): asking about it, and writing its dates back, would undo
    // that status. The new Secret's event brings this pass back.
    const recorded = cert.status?.notAfter ? Date.parse(cert.status.notAfter) : Number.NaN;
    if (Number.isFinite(recorded) && Math.floor(recorded / 1000) !== Math.floor(leaf.notAfter.getTime() / 1000)) return done;
    const now = ctx.clock().getTime();
    const remembered = nextChecks.get(key);
    const due = Math.max(had?.certID === id && had.nextCheck ? Date.parse(had.nextCheck) : now, remembered?.id === id ? remembered.at : now);
    if (due > now) return requeueAfter(due - now);
    const client = ctx.accounts.client(issuerKey(cert.spec.issuerRef, namespace));
    const check = await checkRenewalInfo(client, id, had, now, ctx.config.ariPollMaxMs);
    if (check.kind === 'unsupported') return forget(ctx, cert);
    if (check.kind === 'unknown') return requeueAfter(check.waitMs);
    const { ari, waitMs: wait } = check;
    nextChecks.set(key, { id, at: now + wait });
    if (check.unchanged && had?.lastChecked && now - Date.parse(had.lastChecked) < REWRITE_UNCHANGED_MS) return requeueAfter(wait);
    const status: CertificateStatus = structuredClone(cert.status ?? {});
    status.acme = { ...status.acme, ari };
    // The renewal time this moment gives, in the same write: the Certificate reconciler would
    // otherwise write it in a second one, on the event of this one.
    Object.assign(status, timesFromSecret({ ...cert, status }, secret));
    await writeStatus(ctx, Resources.certificates, cert, status);
    return requeueAfter(wait);
  };
}

/** Drops status.acme.ari, so that nothing an old window said drives the renewal time any more. */
async function forget(ctx: Context, cert: Certificate): Promise<Outcome> {
  if (!cert.status?.acme?.ari) return done;
  const status: CertificateStatus = structuredClone(cert.status);
  delete status.acme!.ari;
  if (Object.keys(status.acme!).length === 0) delete status.acme;
  await writeStatus(ctx, Resources.certificates, cert, status);
  return done;
}
