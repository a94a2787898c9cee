/**
 * Which API writes one issuance makes, in order: `npx node bench/trace-writes.ts [acme|ca]` with the
 * local stack up. A fresh controller issues a warm-up Certificate (the ACME account, the challenge
 * route), then the traced one; watches on the namespace print each change the API server made
 * (an object created or deleted, or the fields a write changed) and each Event, and the
 * controller's /metrics give its API requests by verb and resource for the traced Certificate.
 * The per-issuance counts in docs/ARCHITECTURE.md ("API requests per issuance") come from it.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeObject, ResourceDef } from '../src/api/types.ts';
import { Resources } from '../src/api/types.ts';
import { Informer } from '../src/kube/informer.ts';
import { createLogger } from '../src/log.ts';
import { readEnv } from '../test/env/stack.ts';
import { BenchController } from './lib/controller.ts';
import { certificate, cleanIssuance, freshNamespace, ReadyTracker, stackClient } from './lib/kube.ts';
import { makeCa, tlsSecret } from './lib/pki.ts';

const mode = process.argv[2] ?? 'acme';
const client = stackClient();
const env = readEnv();
const ns = await freshNamespace(client, 'trace');
const issuerName = `trace-${Date.now().toString(36)}`;
const eventsDef: ResourceDef = { group: '', version: 'v1', plural: 'events', kind: 'Event', namespaced: true };
const t0 = performance.now();
const ms = () => String(Math.round(performance.now() - t0)).padStart(6);

function diff(a: unknown, b: unknown, path = ''): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) => diff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k));
  }
  if (Array.isArray(a) && Array.isArray(b) && path.endsWith('conditions')) {
    const out: string[] = [];
    for (const c of b as Array<{ type: string }>) {
      const prev = (a as Array<{ type: string }>).find((x) => x.type === c.type);
      if (JSON.stringify(prev) !== JSON.stringify(c)) out.push(`${path}[${c.type}]=${(c as { status?: string }).status}/${(c as { reason?: string }).reason}`);
    }
    for (const c of a as Array<{ type: string }>) if (!(b as Array<{ type: string }>).some((x) => x.type === c.type)) out.push(`-${path}[${c.type}]`);
    return out;
  }
  return [path];
}

const informers: Informer<KubeObject>[] = [];
const last = new Map<string, KubeObject>();
for (const def of [Resources.certificates, Resources.certificaterequests, Resources.orders, Resources.challenges, Resources.secrets, eventsDef]) {
  const inf = new Informer<KubeObject>(client, def, { namespace: ns, logger: createLogger('error') });
  inf.on((o, ev) => {
    const key = `${def.plural}/${o.metadata.name}`;
    if (def === eventsDef) {
      const e = o as KubeObject & { reason?: string; involvedObject?: { kind?: string }; count?: number; message?: string };
      console.log(`${ms()} event ${ev} ${e.involvedObject?.kind} ${e.reason} x${e.count}: ${e.message?.slice(0, 90)}`);
      return;
    }
    const prev = last.get(key);
    const strip = (x: KubeObject | undefined) => x && { ...x, metadata: { ...x.metadata, resourceVersion: undefined, managedFields: undefined, generation: undefined } };
    const changed = ev === 'add' ? ['(created)'] : ev === 'delete' ? ['(deleted)'] : diff(strip(prev), strip(o));
    last.set(key, o);
    console.log(`${ms()} ${key} ${ev}: ${changed.join(', ')}`);
  });
  informers.push(inf);
}
await Promise.all(informers.map((i) => i.start()));
const tracker = new ReadyTracker(client, ns);
await tracker.start();

let issuerRef: { name: string; kind: 'Issuer' | 'ClusterIssuer' };
if (mode === 'ca') {
  await client.create(Resources.secrets, tlsSecret(ns, 'ca', await makeCa('trace CA')));
  await client.create(Resources.issuers, { metadata: { name: 'ca', namespace: ns }, spec: { ca: { secretName: 'ca' } } } as KubeObject);
  issuerRef = { name: 'ca', kind: 'Issuer' };
} else {
  await client.create(Resources.clusterissuers, {
    metadata: { name: issuerName },
    spec: { acme: { server: env.pebble.directory, email: 'trace@example.com', caBundle: readFileSync(env.pebble.tlsCa).toString('base64'), privateKeySecretRef: { name: `${issuerName}-account` }, profile: 'default', solvers: [{ http01: { ingress: { ingressClassName: 'traefik' } } }] } },
  } as KubeObject);
  issuerRef = { name: issuerName, kind: 'ClusterIssuer' };
}
const ctl = await BenchController.start('trace', ['--workers=8']);
try {
  await client.create(Resources.certificates, certificate(ns, 'warmup', `warmup.${ns}.bench.test`, issuerRef));
  await tracker.ready('warmup', 60_000);
  await sleep(3000);
  const before = (await ctl.kubeRequests()).byResource;
  console.log('---------------- traced certificate ----------------');
  await client.create(Resources.certificates, certificate(ns, 'traced', `traced.${ns}.bench.test`, issuerRef));
  await tracker.ready('traced', 60_000);
  await sleep(4000);
  const after = (await ctl.kubeRequests()).byResource;
  let total = 0;
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d > 0) {
      total += d;
      console.log(`  ${k}: ${d}`);
    }
  }
  console.log(`  total: ${total}`);
} finally {
  await tracker.stop();
  await Promise.all(informers.map((i) => i.stop()));
  await cleanIssuance(client, ns);
  await ctl.stop();
  if (mode !== 'ca') {
    await client.delete(Resources.clusterissuers, undefined, issuerName).catch(() => undefined);
    await client.delete(Resources.secrets, 'certroute', `${issuerName}-account`).catch(() => undefined);
  }
}
process.exit(0);
