/**
 * One ACME Renewal Information check (RFC 9773) of one certificate: what status.acme.ari becomes,
 * and when to ask again. The renewalinfo reconciler runs it on its schedule; the issuing path
 * runs it for a certificate it has just stored, so that the Ready write carries the window and
 * the renewal time it gives, instead of a second status write moments later.
 */
import type { AriStatus } from '../api/types.ts';
import { AcmeProblemError, call, directoryOffers, fetchRenewalInfo, type AcmeClient } from '../acme/client.ts';
import { kubeTime } from '../kube/conditions.ts';
import { pickInWindow } from '../pki/ari.ts';

/** RFC 9773 §4.3: a Retry-After is honoured, but a client need not wait longer than this. */
export const MAX_ARI_RETRY_AFTER_MS = 6 * 3600_000;
/** The shortest wait between two checks, whatever a CA's Retry-After says (unless the poll interval is shorter). */
const MIN_ARI_RETRY_AFTER_MS = 60_000;

/** How long to wait before the next check: the CA's Retry-After, within the bounds above. */
export function nextCheckDelay(retryAfterMs: number | undefined, pollMaxMs: number): number {
  const longest = Math.min(MAX_ARI_RETRY_AFTER_MS, pollMaxMs);
  return Math.max(Math.min(retryAfterMs ?? longest, longest), Math.min(MIN_ARI_RETRY_AFTER_MS, pollMaxMs));
}

export type AriCheck =
  /** The CA answered: the status to record (its selected time kept while the window stays the same), and the wait. */
  | { kind: 'answered'; ari: AriStatus; waitMs: number; unchanged: boolean }
  /** The CA's directory has no renewalInfo: nothing is asked, nothing kept. */
  | { kind: 'unsupported' }
  /** The CA does not know the certificate or answered nonsense: ask again after the wait. */
  | { kind: 'unknown'; waitMs: number };

/** Asks the CA about the certificate `id`; `had` is what status says now. Transport errors throw. */
export async function checkRenewalInfo(client: AcmeClient, id: string, had: AriStatus | undefined, now: number, pollMaxMs: number): Promise<AriCheck> {
  const { renewalInfo } = await call('read directory', () => directoryOffers(client));
  if (!renewalInfo) return { kind: 'unsupported' };
  let info;
  try {
    info = await call('get renewal info', () => fetchRenewalInfo(client, renewalInfo, id));
  } catch (err) {
    // Another CA issued it, a test CA restarted: the renewal time stays the spec's.
    if (err instanceof AcmeProblemError) return { kind: 'unknown', waitMs: nextCheckDelay(undefined, pollMaxMs) };
    throw err;
  }
  const window = { start: kubeTime(info.start), end: kubeTime(info.end) };
  const sameWindow = had?.certID === id && had.suggestedWindow.start === window.start && had.suggestedWindow.end === window.end;
  const waitMs = nextCheckDelay(info.retryAfterMs, pollMaxMs);
  const ari: AriStatus = {
    certID: id,
    suggestedWindow: window,
    selectedTime: sameWindow && had.selectedTime ? had.selectedTime : kubeTime(pickInWindow(info.start, info.end)),
    ...(info.explanationURL ? { explanationURL: info.explanationURL } : {}),
    lastChecked: kubeTime(new Date(now)),
    nextCheck: kubeTime(new Date(now + waitMs)),
  };
  return { kind: 'answered', ari, waitMs, unchanged: sameWindow && ari.selectedTime === had.selectedTime && ari.explanationURL === had.explanationURL };
}
