/**
 * `certroute status`: the Certificates in a namespace as a table, and for each
 * one that is not Ready or is being issued, the chain that explains why —
 * CertificateRequest → Order → Challenges — so that an operator sees the failing step without
 * running four `kubectl describe` commands.
 *
 * Fetching (`fetchStatus`) and rendering (`renderStatus`, `statusJson`) are
 * separate: rendering is pure, and the unit tests drive it with fixtures.
 */
import type { Certificate, CertificateRequest, Challenge, Condition, KubeObject, Order } from '../api/types.ts';
import { normalizeIssuerRef } from '../api/issuer-ref.ts';
import { CERT_MANAGER_GROUP, Resources } from '../api/types.ts';
import { isOwnedBy } from '../base/objects.ts';
import { requestName } from '../controller/certificates.ts';
import { isNotFound, KubeClient } from '../kube/client.ts';
import { getCondition } from '../kube/conditions.ts';
import { parse, UsageError } from './args.ts';
import { withProgress } from './progress.ts';

const HELP = `Usage: certroute status [CERTIFICATE] [-n NAMESPACE | -A] [-o table|json]

Shows Certificates: whether they are Ready, their Secret and issuer, when they
expire and renew, and their last failure. For a Certificate that is not Ready
or is being issued, also its CertificateRequest, Order and Challenges, so the
failing step is visible.

Flags:
  -n, --namespace NAMESPACE   the namespace (default: the kubeconfig context's, else "default")
  -A, --all-namespaces        every namespace
  -o, --output table|json     output format (default table)
  -h, --help                  this help

Exit codes: 0 all listed Certificates are Ready, 1 some are not (or the named
one does not exist), 2 usage error, 3 the cluster cannot be reached.
`;

/** One Certificate and, when it needs explaining, the objects of its current issuance. */
export interface StatusEntry {
  certificate: Certificate;
  /** Set when the chain was looked up: the name the next CertificateRequest has. */
  requestName?: string;
  request?: CertificateRequest;
  order?: Order;
  challenges?: Challenge[];
}

export interface StatusData {
  /** Adds the NAMESPACE column. */
  allNamespaces: boolean;
  /** The namespace listed, for the "nothing found" line; undefined with -A. */
  namespace?: string;
  entries: StatusEntry[];
}

// ── policy ──────────────────────────────────────────────────────────────────

export const isReady = (cert: Certificate): boolean => getCondition(cert.status?.conditions, 'Ready')?.status === 'True';
export const isIssuing = (cert: Certificate): boolean => getCondition(cert.status?.conditions, 'Issuing')?.status === 'True';

/** Whether the table should explain this Certificate with its issuance chain. */
export const needsChain = (cert: Certificate): boolean => !isReady(cert) || isIssuing(cert);

/** cert-manager names the request of revision n `<certificate>-<n>`; the one in flight is the next revision. */
export const nextRequestName = (cert: Certificate): string => requestName(cert, (cert.status?.revision ?? 0) + 1);

/** 0 when every listed Certificate is Ready, 1 otherwise. */
export const exitCodeFor = (data: StatusData): number => (data.entries.every((e) => isReady(e.certificate)) ? 0 : 1);

// ── fetching ────────────────────────────────────────────────────────────────

export interface FetchOptions {
  /** undefined: every namespace. */
  namespace: string | undefined;
  /** One Certificate by name, in `namespace`. */
  name?: string;
}

const newestFirst = (a: KubeObject, b: KubeObject): number => (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '');

/** Links each Certificate needing it to its request, that request's Order, and the Order's Challenges. */
export function linkChains(certificates: readonly Certificate[], requests: readonly CertificateRequest[], orders: readonly Order[], challenges: readonly Challenge[]): StatusEntry[] {
  return certificates.map((certificate) => {
    if (!needsChain(certificate)) return { certificate };
    const ns = certificate.metadata.namespace;
    const requestName = nextRequestName(certificate);
    const request = requests.find((r) => r.metadata.namespace === ns && r.metadata.name === requestName && isOwnedBy(r, certificate));
    const order = request ? orders.filter((o) => o.metadata.namespace === ns && isOwnedBy(o, request)).sort(newestFirst)[0] : undefined;
    const mine = order ? challenges.filter((c) => c.metadata.namespace === ns && isOwnedBy(c, order)) : [];
    mine.sort((a, b) => a.spec.dnsName.localeCompare(b.spec.dnsName) || a.metadata.name.localeCompare(b.metadata.name));
    return { certificate, requestName, request, order, challenges: mine };
  });
}

/** Reads what `renderStatus` shows: at most four list calls, only the first when everything is Ready. */
export async function fetchStatus(client: KubeClient, opts: FetchOptions): Promise<StatusData> {
  let certificates: Certificate[];
  if (opts.name !== undefined) {
    try {
      certificates = [await client.get<Certificate>(Resources.certificates, opts.namespace, opts.name)];
    } catch (err) {
      if (isNotFound(err)) throw new Error(`Certificate ${opts.namespace}/${opts.name} not found; list them with 'certroute status -n ${opts.namespace}'`, { cause: err });
      throw err;
    }
  } else {
    certificates = (await client.list<Certificate>(Resources.certificates, opts.namespace)).items;
  }
  certificates.sort((a, b) => (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '') || a.metadata.name.localeCompare(b.metadata.name));
  const data: StatusData = { allNamespaces: opts.namespace === undefined, namespace: opts.namespace, entries: [] };
  if (!certificates.some(needsChain)) {
    data.entries = certificates.map((certificate) => ({ certificate }));
    return data;
  }
  const [requests, orders, challenges] = await Promise.all([
    client.list<CertificateRequest>(Resources.certificaterequests, opts.namespace),
    client.list<Order>(Resources.orders, opts.namespace),
    client.list<Challenge>(Resources.challenges, opts.namespace),
  ]);
  data.entries = linkChains(certificates, requests.items, orders.items, challenges.items);
  return data;
}

// ── rendering ───────────────────────────────────────────────────────────────

/** kubectl's short human duration: 45s, 12m, 5h, 89d, 2y. */
export function shortDuration(ms: number): string {
  const s = Math.floor(Math.abs(ms) / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h`;
  if (s < 365 * 86_400) return `${Math.floor(s / 86_400)}d`;
  return `${Math.floor(s / (365 * 86_400))}y`;
}

/** "89d" for a time ahead, "3d ago" for one behind, "-" for none. */
export function relative(time: string | undefined, now: Date): string {
  if (!time) return '-';
  const at = Date.parse(time);
  if (Number.isNaN(at)) return time;
  const diff = at - now.getTime();
  return diff >= 0 ? shortDuration(diff) : `${shortDuration(diff)} ago`;
}

export function issuerText(cert: Certificate): string {
  const { name, kind, group } = normalizeIssuerRef(cert.spec.issuerRef);
  return group !== CERT_MANAGER_GROUP ? `${kind}.${group}/${name}` : `${kind}/${name}`;
}

function lastFailureText(cert: Certificate, now: Date): string {
  const n = cert.status?.failedIssuanceAttempts ?? 0;
  const at = cert.status?.lastFailureTime;
  if (!at && n === 0) return '-';
  const attempts = n > 0 ? `(${n} attempt${n === 1 ? '' : 's'})` : '';
  return [at ? relative(at, now) : '', attempts].filter(Boolean).join(' ');
}

/** Messages come from controllers and CAs: keep them on one line. */
const oneLine = (s: string): string => s.replace(/\s*[\r\n]+\s*/g, ' ').trim();

function conditionText(c: Condition | undefined): string {
  if (!c) return 'no Ready condition yet';
  const head = `${c.type}=${c.status}${c.reason ? ` ${c.reason}` : ''}`;
  return c.message ? `${head}: ${oneLine(c.message)}` : head;
}

/** The indented lines under a Certificate that is not Ready or is being issued. */
export function chainLines(entry: StatusEntry): string[] {
  const cert = entry.certificate;
  const lines: string[] = [];
  const readyCond = getCondition(cert.status?.conditions, 'Ready');
  if (!isReady(cert)) lines.push(readyCond ? conditionText(readyCond) : 'Ready: not reported yet (is the controller running?)');
  const issuingCond = getCondition(cert.status?.conditions, 'Issuing');
  if (issuingCond) lines.push(conditionText(issuingCond));
  if (entry.requestName === undefined) return lines.map((l) => `  ${l}`);

  if (!entry.request) {
    const why = issuingCond?.status === 'True' ? 'not created yet' : 'none in flight';
    lines.push(`CertificateRequest ${entry.requestName}: ${why}`);
    return lines.map((l) => `  ${l}`);
  }
  const crReady = getCondition(entry.request.status?.conditions, 'Ready');
  lines.push(`CertificateRequest ${entry.request.metadata.name}: ${crReady ? conditionText(crReady) : 'not processed yet'}`);
  if (entry.order) {
    const { state, reason } = entry.order.status ?? {};
    lines.push(`  Order ${entry.order.metadata.name}: ${state || 'not sent to the CA yet'}${reason ? `: ${oneLine(reason)}` : ''}`);
    for (const ch of entry.challenges ?? []) {
      const { state: chState, reason: chReason, presented } = ch.status ?? {};
      const flags = presented ? ', presented' : '';
      lines.push(`    Challenge ${ch.spec.dnsName} (${ch.spec.type}): ${chState || 'not processed yet'}${flags}${chReason ? `: ${oneLine(chReason)}` : ''}`);
    }
  }
  return lines.map((l) => `  ${l}`);
}

/**
 * The profile the certificate came from, and the ARI window the CA suggests with the moment
 * picked in it: whether that moment is the renewal time, or renewBefore's earlier one is.
 */
export function acmeLines(cert: Certificate): string[] {
  const acme = cert.status?.acme;
  if (!acme?.profile && !acme?.ari) return [];
  const parts: string[] = [];
  if (acme.profile) parts.push(`profile ${acme.profile}`);
  const ari = acme.ari;
  if (ari) {
    const setsIt = cert.status?.renewalTime === ari.selectedTime;
    parts.push(`ARI window ${ari.suggestedWindow.start} – ${ari.suggestedWindow.end}, picked ${ari.selectedTime} (${setsIt ? 'the renewal time' : 'renewBefore gives an earlier renewal time'})`);
    if (ari.nextCheck) parts.push(`next ARI check ${ari.nextCheck}`);
  }
  return [`  ACME: ${parts.join('; ')}`];
}

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('   ').trimEnd());
}

/** The table a user reads. Pure: the same data and clock give the same text. */
export function renderStatus(data: StatusData, now: Date): string {
  if (data.entries.length === 0) {
    return data.allNamespaces ? 'No Certificates found in any namespace.\n' : `No Certificates found in namespace ${data.namespace ?? 'default'}.\n`;
  }
  const header = ['NAME', 'READY', 'SECRET', 'ISSUER', 'EXPIRES', 'RENEWAL', 'LAST FAILURE'];
  const rows = data.entries.map(({ certificate: c }) => [
    c.metadata.name,
    getCondition(c.status?.conditions, 'Ready')?.status ?? 'Unknown',
    c.spec.secretName,
    issuerText(c),
    relative(c.status?.notAfter, now),
    relative(c.status?.renewalTime, now),
    lastFailureText(c, now),
  ]);
  const all = [header, ...rows].map((r, i) => (data.allNamespaces ? [i === 0 ? 'NAMESPACE' : (data.entries[i - 1]?.certificate.metadata.namespace ?? ''), ...r] : r));
  const [head = '', ...lines] = table(all);
  const out = [head];
  data.entries.forEach((entry, i) => {
    out.push(lines[i] ?? '');
    out.push(...acmeLines(entry.certificate));
    out.push(...chainLines(entry));
  });
  return `${out.join('\n')}\n`;
}

const conditionJson = (c: Condition | undefined) => (c ? { status: c.status, reason: c.reason ?? '', message: c.message ?? '' } : undefined);

/** The same facts for scripts: absolute timestamps, no relative times. */
export function statusJson(data: StatusData): unknown {
  return {
    items: data.entries.map((e) => {
      const c = e.certificate;
      const ref = c.spec.issuerRef;
      return {
        namespace: c.metadata.namespace ?? '',
        name: c.metadata.name,
        ready: conditionJson(getCondition(c.status?.conditions, 'Ready')) ?? { status: 'Unknown', reason: '', message: '' },
        issuing: conditionJson(getCondition(c.status?.conditions, 'Issuing')),
        secretName: c.spec.secretName,
        issuerRef: normalizeIssuerRef(ref),
        notAfter: c.status?.notAfter,
        renewalTime: c.status?.renewalTime,
        revision: c.status?.revision,
        lastFailureTime: c.status?.lastFailureTime,
        failedIssuanceAttempts: c.status?.failedIssuanceAttempts,
        ...(c.status?.acme ? { acme: c.status.acme } : {}),
        ...(e.requestName === undefined ? {} : {
          certificateRequest: {
            name: e.requestName,
            found: e.request !== undefined,
            ready: conditionJson(getCondition(e.request?.status?.conditions, 'Ready')),
          },
          order: e.order ? { name: e.order.metadata.name, state: e.order.status?.state ?? '', reason: e.order.status?.reason ?? '' } : undefined,
          challenges: (e.challenges ?? []).map((ch) => ({
            name: ch.metadata.name,
            dnsName: ch.spec.dnsName,
            type: ch.spec.type,
            state: ch.status?.state ?? '',
            presented: ch.status?.presented ?? false,
            reason: ch.status?.reason ?? '',
          })),
        }),
      };
    }),
  };
}

// ── command ─────────────────────────────────────────────────────────────────

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    namespace: { type: 'string', short: 'n' },
    'all-namespaces': { type: 'boolean', short: 'A' },
    output: { type: 'string', short: 'o', default: 'table' },
  }, true);
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError('name at most one Certificate');
  const name = positionals[0];
  if (name !== undefined && values['all-namespaces']) throw new UsageError('a Certificate name and -A do not go together; use -n NAMESPACE');
  if (values.namespace !== undefined && values['all-namespaces']) throw new UsageError('-n and -A do not go together');
  const output = values.output;
  if (output !== 'table' && output !== 'json') throw new UsageError(`--output=${output}: use table or json`);

  const client = KubeClient.fromDefault();
  const namespace = values['all-namespaces'] ? undefined : (values.namespace ?? client.namespace ?? 'default');
  const data = await withProgress('Reading Certificates from the cluster', () => fetchStatus(client, { namespace, name }));
  process.stdout.write(output === 'json' ? `${JSON.stringify(statusJson(data), null, 2)}\n` : renderStatus(data, new Date()));
  return exitCodeFor(data);
}
