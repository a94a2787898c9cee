/**
 * Bad annotations on an IngressRoute (issue 6 §3): each gets a Warning Event on the route that
 * names the annotation, and touches nothing else. The route's Certificate and Secret keep their
 * resourceVersion, another route's Certificate and Secret too, no Certificate appears, and the
 * shim writes nothing into the route. A route whose only annotations are bad gets no Certificate
 * and no spec.tls.secretName. A SelfSigned ClusterIssuer keeps issuance instant; ACME has no part
 * in this.
 */
import test from 'ava';
import { kubectl } from '../env/stack.ts';
import { annotatedIngressRoute, applyYaml, cleanUpFile, freshNamespace, kubectlJson, startController, waitFor, waitForCertificateRevision, type ControllerProcess } from '../helpers/controller.ts';
import { deleteIssuer, freshIssuerName, waitIssuerReady, quickHandover } from '../helpers/issuance.ts';
import { shimCaughtUp } from '../helpers/wiring.ts';

let ns = '';
const issuer = freshIssuerName('selfsigned-abuse');
let controller: ControllerProcess;

/** A route to a Service of its own name; with `secretName`, it names its TLS Secret, without, it has no `tls`. */
const ingressRoute = (name: string, annotations: Record<string, string>, secretName?: string): string =>
  annotatedIngressRoute({ namespace: ns, name, host: `${name}.${ns}.test`, annotations, service: name, backendPort: 80, tls: secretName ? { secretName } : false });

const cases: Array<{ title: string; key: string; value: string; reason: string }> = [
  { title: 'a duration that is not a Go duration', key: 'cert-manager.io/duration', value: 'ten days', reason: 'BadAnnotation' },
  { title: 'a renew-before under 5 minutes', key: 'cert-manager.io/renew-before', value: '1m', reason: 'BadAnnotation' },
  { title: 'an unknown key algorithm', key: 'cert-manager.io/private-key-algorithm', value: 'DSA', reason: 'BadAnnotation' },
  { title: 'an RSA key size of 512 bits', key: 'cert-manager.io/private-key-size', value: '512', reason: 'BadAnnotation' },
  { title: 'a secret template that is not JSON', key: 'cert-manager.io/secret-template', value: '{"labels": {', reason: 'BadAnnotation' },
  { title: '20 KB of garbage in alt-names', key: 'cert-manager.io/alt-names', value: `evil.test,${'<script>'.repeat(2_500)}`, reason: 'BadAnnotation' },
  { title: 'an ignore flag that is neither true nor false', key: 'certroute.io/ignore', value: 'maybe', reason: 'BadAnnotation' },
  { title: 'a second issuer annotation', key: 'cert-manager.io/issuer', value: 'other', reason: 'ConflictingIssuerAnnotations' },
  { title: 'an annotation certroute does not implement', key: 'cert-manager.io/email-sans', value: 'root@example.com', reason: 'UnsupportedAnnotation' },
  { title: 'a misspelt annotation (it warns but blocks nothing)', key: 'cert-manager.io/renew-befor', value: '720h', reason: 'UnknownAnnotation' },
];

/**
 * Each case annotates a route of its own: the recorder, as client-go's, writes at most 25 Events
 * per object in a burst (then one every 5 minutes), and every shim pass over a route repeats its
 * current Warnings, so ten cases on one route would exhaust it before the last.
 */
const victim = (i: number): string => `victim-${i}`;

test.before(async () => {
  controller = await startController(quickHandover);
  await applyYaml(`apiVersion: cert-manager.io/v1\nkind: ClusterIssuer\nmetadata: {name: ${issuer}}\nspec: {selfSigned: {}}\n`);
  await waitIssuerReady(issuer);
  ns = await freshNamespace('bad-annotations');
  const good = { 'cert-manager.io/cluster-issuer': issuer };
  const victims = cases.map((_, i) => victim(i));
  await applyYaml([...victims.map((v) => ingressRoute(v, good, `${v}-tls`)), ingressRoute('bystander', good, 'bystander-tls')].join('---\n'));
  for (const v of victims) await waitForCertificateRevision(ns, `${v}-tls`, 1);
  await waitForCertificateRevision(ns, 'bystander-tls', 1);
});

test.after.always(async () => {
  await cleanUpFile();
  await deleteIssuer(issuer);
});

interface Obj { metadata: { name: string; resourceVersion: string; generation?: number } }

/** Everything the shim could touch, by kind/name → resourceVersion (and the routes' tls). */
async function snapshot(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const kind of ['certificates', 'secrets', 'certificaterequests']) {
    const { items } = await kubectlJson<{ items: Obj[] }>(['-n', ns, 'get', kind]);
    for (const o of items) out[`${kind}/${o.metadata.name}`] = o.metadata.resourceVersion;
  }
  const { items } = await kubectlJson<{ items: Array<Obj & { spec: { tls?: unknown } }> }>(['-n', ns, 'get', 'ingressroutes.traefik.io']);
  for (const r of items) out[`ingressroutes/${r.metadata.name}`] = `generation ${r.metadata.generation} tls ${JSON.stringify(r.spec.tls ?? null)}`;
  return out;
}

async function warnings(route: string): Promise<Array<{ reason: string; message: string }>> {
  const { items } = await kubectlJson<{ items: Array<{ reason: string; message: string }> }>(['-n', ns, 'get', 'events', '--field-selector', `involvedObject.name=${route},involvedObject.kind=IngressRoute,type=Warning`]);
  return items;
}

/** Waits for the shim's Warning about `key`, then for evidence that the shim is done with the route, in case a write were to follow. */
async function warned(route: string, reason: string, key: string): Promise<{ reason: string; message: string }> {
  const event = await waitFor(`a ${reason} Warning on IngressRoute ${route} about ${key}`, async () => (await warnings(route)).find((e) => e.reason === reason && e.message.includes(key)), 30_000, 200);
  await shimCaughtUp(controller, ns, route);
  return event;
}


for (const [i, c] of cases.entries()) {
  test.serial(`${c.title} on an IngressRoute: a Warning naming it, and nothing else changes`, async (t) => {
    const before = await snapshot();
    await kubectl(['-n', ns, 'annotate', 'ingressroute.traefik.io', victim(i), '--overwrite', `${c.key}=${c.value}`]);
    try {
      const event = await warned(victim(i), c.reason, c.key);
      t.true(event.message.length <= 1024, 'the Event message is bounded');
      const after = await snapshot();
      // The annotation itself bumps no generation; everything else must be as it was.
      t.deepEqual(after, before, 'no Certificate, Secret, CertificateRequest or IngressRoute changed or appeared');
    } finally {
      await kubectl(['-n', ns, 'annotate', 'ingressroute.traefik.io', victim(i), `${c.key}-`]);
    }
  });
}

test.serial('a new IngressRoute whose issuer annotation is bad gets a Warning, no Certificate and no secretName', async (t) => {
  const before = await snapshot();
  await applyYaml(ingressRoute('newcomer', { 'cert-manager.io/cluster-issuer': 'Not_A_Name', 'cert-manager.io/duration': '1s' }));
  await warned('newcomer', 'BadAnnotation', 'cert-manager.io/cluster-issuer');
  const after = await snapshot();
  const { 'ingressroutes/newcomer': newcomer, ...rest } = after;
  t.deepEqual(rest, before, 'nothing that existed changed, and no Certificate or Secret appeared');
  t.regex(newcomer ?? '', /tls null$/, 'the shim wrote no spec.tls.secretName into the route');
});
