/**
 * The kube-apiserver's audit log on the stack (see `auditPolicy` in test/env/components.ts):
 * who wrote what, and when the apiserver answered. Tests read it to learn what a controller
 * process did, as the API server saw it.
 */
import { readFileSync } from 'node:fs';
import { auditLogFile } from '../env/paths.ts';

export interface AuditEvent {
  stage: string;
  verb: string;
  user: { username: string };
  objectRef?: { resource?: string; namespace?: string; name?: string; apiGroup?: string; subresource?: string };
  responseStatus?: { code?: number };
  /** When the request arrived; microseconds. */
  requestReceivedTimestamp: string;
  /** When the answer left. */
  stageTimestamp: string;
}

/** Completed requests of `users`, received at or after `since`, in log order. */
export function auditedRequests(users: string[], since: Date): AuditEvent[] {
  return readEvents().filter((e) => users.includes(e.user.username) && Date.parse(e.requestReceivedTimestamp) >= since.getTime());
}

/** Every completed request in the log. */
function readEvents(): AuditEvent[] {
  let text: string;
  try {
    text = readFileSync(auditLogFile, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').filter(Boolean).flatMap((line) => {
    const e = JSON.parse(line) as AuditEvent;
    return e.stage === 'ResponseComplete' ? [e] : [];
  });
}

/** Completed requests on one object (its subresources included), by anyone, received at or after `since`, in log order. */
export function requestsOn(resource: string, namespace: string, name: string, since: Date): AuditEvent[] {
  return readEvents().filter((e) => e.objectRef?.resource === resource && e.objectRef.namespace === namespace && e.objectRef.name === name && Date.parse(e.requestReceivedTimestamp) >= since.getTime());
}

/** A request the apiserver carried out (2xx). */
export const succeeded = (e: AuditEvent): boolean => (e.responseStatus?.code ?? 0) < 300;

/** `resource[/subresource] namespace/name verb`, for messages. */
export const describeRequest = (e: AuditEvent): string =>
  `${e.verb} ${e.objectRef?.resource ?? '?'}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''} ${e.objectRef?.namespace ?? ''}/${e.objectRef?.name ?? ''} at ${e.stageTimestamp}`;
