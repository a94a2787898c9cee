/**
 * `certroute status` as a user reads it: one row per Certificate, and under each one that is not
 * Ready or is being issued, the chain that says why (CertificateRequest → Order → Challenges).
 * Rendering is pure, so every case is a fixture and a fixed clock.
 */
import test from 'ava';
import type { Certificate } from '../../src/api/types.ts';
import {
  chainLines, exitCodeFor, issuerText, linkChains, needsChain, nextRequestName, relative, renderStatus, shortDuration, statusJson,
  type StatusData, type StatusEntry,
} from '../../src/cli/status.ts';
import {
  certificate, certificateRequest, challenge, condition, DAY, failed, HOUR, inNamespace, issuing, order, ownedBy, ready, Resources,
  withAnnotations, withCertificateStatus, withChallengeState, withCondition, withIssuer, withOrderState, type Option,
} from '../helpers/builders.ts';

const now = new Date('2030-01-10T00:00:00Z');
const at = (ms: number) => new Date(now.getTime() + ms).toISOString().replace(/\.\d+Z$/, 'Z');
const MINUTE = 60_000;

const issued = (expiresIn: number, renewsIn: number): Option<Certificate> => withCertificateStatus({ revision: 1, notAfter: at(expiresIn), renewalTime: at(renewsIn) });

/** A Certificate stuck on its first issuance: Secret missing, request → order → two challenges. */
function stuckOnChallenge() {
  const cert = certificate('api', ready('False', 'DoesNotExist', 'Issuing certificate as Secret does not exist'), issuing('True', 'DoesNotExist', 'Issuing certificate as Secret does not exist', 1));
  const cr = certificateRequest('api-1', ownedBy(cert, Resources.certificates), withCondition(condition('Ready', 'False', 'Pending', 'Waiting on certificate issuance from order apps/api-1-42')));
  const o = order('api-1-42', ownedBy(cr, Resources.certificaterequests), withOrderState('pending'));
  const challenges = [
    challenge('api-1-42-2', 'b.test', ownedBy(o, Resources.orders), withChallengeState('pending', 'Waiting for HTTP-01 challenge propagation: self-check returned 404', { presented: true })),
    challenge('api-1-42-1', 'a.test', ownedBy(o, Resources.orders), withChallengeState('valid', undefined, { presented: true })),
  ];
  return { cert, cr, o, challenges };
}

const data = (entries: StatusEntry[], allNamespaces = false): StatusData => ({ allNamespaces, namespace: allNamespaces ? undefined : 'apps', entries });
const only = (...certs: Certificate[]): StatusData => data(linkChains(certs, [], [], []));

// ── the table ───────────────────────────────────────────────────────────────

test('a Ready Certificate is one row: secret, issuer, time to expiry and to renewal, no failure', (t) => {
  const out = renderStatus(only(certificate('web', ready(), issued(89 * DAY + HOUR, 59 * DAY + HOUR))), now);
  t.is(out, [
    'NAME   READY   SECRET    ISSUER                      EXPIRES   RENEWAL   LAST FAILURE',
    'web    True    web-tls   ClusterIssuer/letsencrypt   89d       59d       -',
    '',
  ].join('\n'));
});

test('-A adds a NAMESPACE column first', (t) => {
  const out = renderStatus(data(linkChains([certificate('web', inNamespace('shop'), ready(), issued(89 * DAY + HOUR, 59 * DAY + HOUR))], [], [], []), true), now);
  t.is(out.split('\n')[0], 'NAMESPACE   NAME   READY   SECRET    ISSUER                      EXPIRES   RENEWAL   LAST FAILURE');
  t.is(out.split('\n')[1], 'shop        web    True    web-tls   ClusterIssuer/letsencrypt   89d       59d       -');
});

test('no Certificates: one sentence that names where it looked', (t) => {
  t.is(renderStatus(data([]), now), 'No Certificates found in namespace apps.\n');
  t.is(renderStatus(data([], true), now), 'No Certificates found in any namespace.\n');
});

test('a Certificate stuck on a Challenge shows the chain down to the failing Challenge', (t) => {
  const { cert, cr, o, challenges } = stuckOnChallenge();
  const out = renderStatus(data(linkChains([cert], [cr], [o], challenges)), now);
  t.is(out, [
    'NAME   READY   SECRET    ISSUER                      EXPIRES   RENEWAL   LAST FAILURE',
    'api    False   api-tls   ClusterIssuer/letsencrypt   -         -         -',
    '  Ready=False DoesNotExist: Issuing certificate as Secret does not exist',
    '  Issuing=True DoesNotExist: Issuing certificate as Secret does not exist',
    '  CertificateRequest api-1: Ready=False Pending: Waiting on certificate issuance from order apps/api-1-42',
    '    Order api-1-42: pending',
    '      Challenge a.test (HTTP-01): valid, presented',
    '      Challenge b.test (HTTP-01): pending, presented: Waiting for HTTP-01 challenge propagation: self-check returned 404',
    '',
  ].join('\n'));
});

test('each Certificate’s chain sits right under its own row', (t) => {
  const { cert, cr, o, challenges } = stuckOnChallenge();
  const web = certificate('web', ready(), issued(30 * DAY, 10 * DAY));
  const lines = renderStatus(data(linkChains([cert, web], [cr], [o], challenges)), now).split('\n');
  t.regex(lines[1] ?? '', /^api /);
  t.regex(lines[lines.length - 2] ?? '', /^web /, 'the Ready Certificate comes after api’s chain');
});

const COLUMNS = ['NAME', 'READY', 'SECRET', 'ISSUER', 'EXPIRES', 'RENEWAL', 'LAST FAILURE'];

test('the table’s cells, one case per row', (t) => {
  type Row = { name: string; cert: Certificate; cells: Record<string, string> };
  const table: Row[] = [
    { name: 'expired', cert: certificate('x', ready('False', 'Expired'), issued(-3 * DAY, -20 * DAY)), cells: { READY: 'False', EXPIRES: '3d ago', RENEWAL: '20d ago' } },
    { name: 'expires within the hour', cert: certificate('x', ready(), issued(42 * MINUTE, -DAY)), cells: { EXPIRES: '42m', RENEWAL: '1d ago' } },
    { name: 'never reconciled', cert: certificate('x'), cells: { READY: 'Unknown', EXPIRES: '-', RENEWAL: '-', 'LAST FAILURE': '-' } },
    { name: 'failed three times', cert: certificate('x', ready('False'), failed(3, at(-2 * HOUR))), cells: { 'LAST FAILURE': '2h ago (3 attempts)' } },
    { name: 'failed once', cert: certificate('x', ready('False'), failed(1, at(-90 * 1000))), cells: { 'LAST FAILURE': '1m ago (1 attempt)' } },
    { name: 'a namespaced Issuer', cert: certificate('x', withIssuer('ca')), cells: { ISSUER: 'Issuer/ca' } },
    { name: 'an external issuer', cert: certificate('x', withIssuer('pca', 'AWSPCAIssuer', 'awspca.cert-manager.io')), cells: { ISSUER: 'AWSPCAIssuer.awspca.cert-manager.io/pca' } },
  ];
  for (const row of table) {
    const [head = '', line = ''] = renderStatus(only(row.cert), now).split('\n');
    // A cell starts where its column's title does.
    const starts = COLUMNS.map((title) => head.indexOf(title));
    const cells = Object.fromEntries(COLUMNS.map((title, i) => [title, line.slice(starts[i], starts[i + 1]).trim()]));
    for (const [column, want] of Object.entries(row.cells)) t.is(cells[column], want, `${row.name}: ${column}`);
  }
});

test('a Ready Certificate that is renewing shows its chain too', (t) => {
  const cert = certificate('web', ready(), issuing('True', 'Renewing', 'Renewing certificate as renewal was scheduled at 2030-01-09 00:00:00 +0000 UTC', 1), issued(29 * DAY, -DAY));
  const lines = chainLines(linkChains([cert], [], [], [])[0] as StatusEntry);
  t.deepEqual(lines, [
    '  Issuing=True Renewing: Renewing certificate as renewal was scheduled at 2030-01-09 00:00:00 +0000 UTC',
    '  CertificateRequest web-2: not created yet',
  ]);
});

test('after a failed issuance, the Issuing message says why and no request is in flight', (t) => {
  const cert = certificate('web', ready('False', 'DoesNotExist', 'Issuing certificate as Secret does not exist'), failed(2, at(-30 * MINUTE)),
    issuing('False', 'Failed', 'The certificate request has failed to complete and will be retried: urn:ietf:params:acme:error:unauthorized', 1));
  t.deepEqual(chainLines(linkChains([cert], [], [], [])[0] as StatusEntry), [
    '  Ready=False DoesNotExist: Issuing certificate as Secret does not exist',
    '  Issuing=False Failed: The certificate request has failed to complete and will be retried: urn:ietf:params:acme:error:unauthorized',
    '  CertificateRequest web-1: none in flight',
  ]);
});

test('chain lines for each stage of an issuance', (t) => {
  const cert = certificate('web', ready('False', 'DoesNotExist'), issuing('True', 'DoesNotExist'));
  const request = (...options: Parameters<typeof certificateRequest>[1][]) => certificateRequest('web-1', ownedBy(cert, Resources.certificates), ...options);
  const cr = request(withCondition(condition('Ready', 'False', 'Pending', 'Waiting on certificate issuance from order apps/web-1-7')));
  const table: Array<{ name: string; entry: StatusEntry; tail: string[] }> = [
    { name: 'request not processed', entry: linkChains([cert], [request()], [], [])[0] as StatusEntry, tail: ['  CertificateRequest web-1: not processed yet'] },
    { name: 'request failed at the CA', entry: linkChains([cert], [request(withCondition(condition('Ready', 'False', 'Failed', 'Failed to finalize Order: 403 urn:ietf:params:acme:error:unauthorized')))], [], [])[0] as StatusEntry, tail: ['  CertificateRequest web-1: Ready=False Failed: Failed to finalize Order: 403 urn:ietf:params:acme:error:unauthorized'] },
    {
      name: 'order not sent yet',
      entry: linkChains([cert], [cr], [order('web-1-7', ownedBy(cr, Resources.certificaterequests))], [])[0] as StatusEntry,
      tail: ['  CertificateRequest web-1: Ready=False Pending: Waiting on certificate issuance from order apps/web-1-7', '    Order web-1-7: not sent to the CA yet'],
    },
    {
      name: 'order invalid, challenge invalid with a multi-line reason',
      entry: (() => {
        const o = order('web-1-7', ownedBy(cr, Resources.certificaterequests), withOrderState('invalid', 'urn:ietf:params:acme:error:unauthorized: validation failed'));
        const ch = challenge('web-1-7-1', 'a.test', ownedBy(o, Resources.orders), withChallengeState('invalid', 'Error accepting authorization:\n  acme: 403\n  unauthorized'));
        return linkChains([cert], [cr], [o], [ch])[0] as StatusEntry;
      })(),
      tail: [
        '  CertificateRequest web-1: Ready=False Pending: Waiting on certificate issuance from order apps/web-1-7',
        '    Order web-1-7: invalid: urn:ietf:params:acme:error:unauthorized: validation failed',
        '      Challenge a.test (HTTP-01): invalid: Error accepting authorization: acme: 403 unauthorized',
      ],
    },
    {
      name: 'challenge created but not processed',
      entry: (() => {
        const o = order('web-1-7', ownedBy(cr, Resources.certificaterequests), withOrderState('pending'));
        return linkChains([cert], [cr], [o], [challenge('web-1-7-1', 'a.test', ownedBy(o, Resources.orders))])[0] as StatusEntry;
      })(),
      tail: ['  CertificateRequest web-1: Ready=False Pending: Waiting on certificate issuance from order apps/web-1-7', '    Order web-1-7: pending', '      Challenge a.test (HTTP-01): not processed yet'],
    },
  ];
  for (const row of table) t.deepEqual(chainLines(row.entry).slice(2), row.tail, row.name);
});

test('a Certificate with no status at all says the controller has not reported', (t) => {
  t.deepEqual(chainLines(linkChains([certificate('web')], [], [], [])[0] as StatusEntry), [
    '  Ready: not reported yet (is the controller running?)',
    '  CertificateRequest web-1: none in flight',
  ]);
});

// ── linking the chain ───────────────────────────────────────────────────────

test('only Certificates that are not Ready or are issuing get a chain', (t) => {
  const table: Array<[string, Certificate, boolean]> = [
    ['Ready', certificate('a', ready()), false],
    ['Ready and issuing', certificate('a', ready(), issuing()), true],
    ['Ready, issuing failed', certificate('a', ready(), issuing('False', 'Failed')), false],
    ['not Ready', certificate('a', ready('False')), true],
    ['no conditions', certificate('a'), true],
  ];
  for (const [name, cert, want] of table) t.is(needsChain(cert), want, name);
});

test('the request in flight is the next revision: <name>-<revision+1>', (t) => {
  t.is(nextRequestName(certificate('web')), 'web-1');
  t.is(nextRequestName(certificate('web', withCertificateStatus({ revision: 4 }))), 'web-5');
});

test('a request, order or challenge belongs to the chain only through owner references', (t) => {
  const { cert, cr, o, challenges } = stuckOnChallenge();
  const stranger = certificateRequest('api-1', (r) => (r.metadata.uid = 'uid-other'), ownedBy(certificate('api', (c) => (c.metadata.uid = 'uid-old-api')), Resources.certificates));
  t.is(linkChains([cert], [stranger], [o], challenges)[0]?.request, undefined, 'a request of a deleted namesake is not this Certificate’s');
  const otherNs = certificateRequest('api-1', inNamespace('other'), ownedBy(cert, Resources.certificates));
  t.is(linkChains([cert], [otherNs], [], [])[0]?.request, undefined, 'nor one in another namespace');
  const foreignChallenge = challenge('x', 'c.test', ownedBy(order('other-order'), Resources.orders));
  t.deepEqual(linkChains([cert], [cr], [o], [...challenges, foreignChallenge])[0]?.challenges?.map((c) => c.spec.dnsName), ['a.test', 'b.test']);
});

test('of several Orders owned by the request, the newest is shown', (t) => {
  const { cert, cr } = stuckOnChallenge();
  const older = order('api-1-1', ownedBy(cr, Resources.certificaterequests), (o) => (o.metadata.creationTimestamp = '2030-01-01T00:00:00Z'));
  const newer = order('api-1-2', ownedBy(cr, Resources.certificaterequests), (o) => (o.metadata.creationTimestamp = '2030-01-02T00:00:00Z'));
  t.is(linkChains([cert], [cr], [older, newer], [])[0]?.order?.metadata.name, 'api-1-2');
  t.is(linkChains([cert], [cr], [newer, older], [])[0]?.order?.metadata.name, 'api-1-2');
});

// ── exit code, JSON, helpers ────────────────────────────────────────────────

test('exit code 0 only when every listed Certificate is Ready', (t) => {
  const table: Array<[string, Certificate[], number]> = [
    ['none listed', [], 0],
    ['all Ready', [certificate('a', ready()), certificate('b', ready(), issuing())], 0],
    ['one not Ready', [certificate('a', ready()), certificate('b', ready('False'))], 1],
    ['one never reconciled', [certificate('a')], 1],
  ];
  for (const [name, certs, code] of table) t.is(exitCodeFor(only(...certs)), code, name);
});

test('JSON output carries absolute timestamps and the chain, for scripts', (t) => {
  const { cert, cr, o, challenges } = stuckOnChallenge();
  const web = certificate('web', ready(), issued(89 * DAY, 59 * DAY), withAnnotations<Certificate>({ note: 'x' }));
  const json = statusJson(data(linkChains([cert, web], [cr], [o], challenges))) as { items: Array<Record<string, unknown>> };
  t.deepEqual(json.items[1], {
    namespace: 'apps',
    name: 'web',
    ready: { status: 'True', reason: 'Ready', message: '' },
    issuing: undefined,
    secretName: 'web-tls',
    issuerRef: { name: 'letsencrypt', kind: 'ClusterIssuer', group: 'cert-manager.io' },
    notAfter: at(89 * DAY),
    renewalTime: at(59 * DAY),
    revision: 1,
    lastFailureTime: undefined,
    failedIssuanceAttempts: undefined,
  });
  t.like(json.items[0], {
    name: 'api',
    certificateRequest: { name: 'api-1', found: true, ready: { status: 'False', reason: 'Pending' } },
    order: { name: 'api-1-42', state: 'pending', reason: '' },
  });
  t.deepEqual((json.items[0]?.challenges as Array<{ dnsName: string; state: string }>).map((c) => `${c.dnsName}:${c.state}`), ['a.test:valid', 'b.test:pending']);
});

test('durations read like kubectl’s: seconds, minutes, hours, days, years, rounded down', (t) => {
  const table: Array<[number, string]> = [[0, '0s'], [59_999, '59s'], [60_000, '1m'], [59 * MINUTE, '59m'], [HOUR, '1h'], [23 * HOUR + 59 * MINUTE, '23h'], [DAY, '1d'], [89.9 * DAY, '89d'], [364 * DAY, '364d'], [800 * DAY, '2y'], [-3 * DAY, '3d']];
  for (const [ms, text] of table) t.is(shortDuration(ms), text, String(ms));
});

test('relative times: ahead is bare, behind says ago, missing is a dash', (t) => {
  t.is(relative(at(5 * HOUR), now), '5h');
  t.is(relative(at(-5 * HOUR), now), '5h ago');
  t.is(relative(undefined, now), '-');
  t.is(relative('not a time', now), 'not a time');
});

test('issuerText spells the kind, and the group only when it is not cert-manager’s', (t) => {
  t.is(issuerText(certificate('a', withIssuer('le', 'ClusterIssuer'))), 'ClusterIssuer/le');
  t.is(issuerText(certificate('a', withIssuer('ca'))), 'Issuer/ca');
  t.is(issuerText(certificate('a', withIssuer('ca', 'Issuer', 'cert-manager.io'))), 'Issuer/ca');
});
