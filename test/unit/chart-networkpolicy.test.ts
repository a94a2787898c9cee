/**
 * The chart's optional NetworkPolicy, as `helm template` renders it: the responder port is open
 * only to Traefik's namespace, metrics only to the chosen peers, health to the kubelet's probes.
 * (The local stack has no CNI that enforces NetworkPolicy, so what is checked is the policy.)
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { binary } from '../env/binaries.ts';

const repo = resolve(import.meta.dirname, '..', '..');
const run = promisify(execFile);

interface Peer { namespaceSelector?: { matchLabels?: Record<string, string> }; podSelector?: Record<string, unknown> }
interface Policy {
  kind: string;
  metadata: { name: string; namespace: string };
  spec: { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress: Array<{ from?: Peer[]; ports: Array<{ port: string }> }> };
}

async function render(set: string[]): Promise<Policy[]> {
  const gomod = readFileSync(join(repo, 'tools/kubernetes/go.mod'), 'utf8');
  const kubeVersion = /k8s\.io\/kubernetes (v[\d.]+)/.exec(gomod)?.[1] ?? 'v1.36.0';
  const args = ['template', 'np', join(repo, 'charts', 'certroute'), '-n', 'np-ns', '--kube-version', kubeVersion, '--set', 'traefik.namespace=edge', ...set.flatMap((s) => ['--set', s])];
  const { stdout } = await run(await binary('helm'), args, { maxBuffer: 16 << 20 });
  return parseAllDocuments(stdout).map((d) => d.toJS() as Policy | null).filter((d): d is Policy => d?.kind === 'NetworkPolicy');
}

test('no NetworkPolicy unless asked for', async (t) => {
  t.deepEqual(await render([]), []);
});

test('the NetworkPolicy lets only Traefik\'s namespace reach the responder, and opens metrics and health as configured', async (t) => {
  const [policy, ...rest] = await render(['networkPolicy.enabled=true']);
  t.deepEqual(rest, []);
  t.truthy(policy);
  t.is(policy?.metadata.namespace, 'np-ns');
  t.deepEqual(policy?.spec.policyTypes, ['Ingress']);
  t.like(policy?.spec.podSelector.matchLabels, { 'app.kubernetes.io/instance': 'np' });
  const byPort = new Map(policy?.spec.ingress.map((r) => [r.ports[0]?.port, r.from]));
  t.deepEqual(byPort.get('responder'), [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'edge' } } }]);
  t.deepEqual(byPort.get('http-metrics'), [{ podSelector: {} }], 'metrics: the release namespace by default');
  t.is(byPort.get('health'), undefined, 'health: any source, for the probes');
  t.deepEqual([...byPort.keys()].sort(), ['health', 'http-metrics', 'responder']);
});

test('metricsFrom replaces who may scrape metrics', async (t) => {
  const [policy] = await render(['networkPolicy.enabled=true', 'networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.team=monitoring']);
  const metrics = policy?.spec.ingress.find((r) => r.ports[0]?.port === 'http-metrics');
  t.deepEqual(metrics?.from, [{ namespaceSelector: { matchLabels: { team: 'monitoring' } } }]);
});
