/**
 * `npm run bench`: certroute's figures against their targets, measured side
 * by side with the raw floor (acme-client alone against the same Pebble) in
 * one run on the local stack.
 *
 *   npm run bench                         every scenario at full scale (< 15 min on 2 cores)
 *   npm run bench -- --quick              every scenario at about a tenth of the scale
 *   npm run bench -- --only=raw-floor,single
 *
 * Prints a markdown table and the JSON, and writes bench/results/<date>.json
 * (<date>-quick.json or <date>-partial.json for --quick and --only runs, so a
 * development run never overwrites the day's full figures). The stack is
 * brought up if needed and torn down at the end only if this run started it.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { Issuer } from '../src/api/types.ts';
import { Resources } from '../src/api/types.ts';
import { ApiError } from '../src/kube/client.ts';
import { release, restart, up, use } from '../test/env/stack.ts';
import { BenchController, chartHeapPolicy } from './lib/controller.ts';
import { builtEntry, compiledEntry } from '../scripts/entry.ts';
import { stackClient } from './lib/kube.ts';
import type { BenchContext, Result, Scenario } from './lib/types.ts';
import { ariRevocation } from './scenarios/ari-revocation.ts';
import { burst } from './scenarios/burst.ts';
import { caIssuers } from './scenarios/ca-issuers.ts';
import { dns01 } from './scenarios/dns01.ts';
import { ingressRoute } from './scenarios/ingressroute.ts';
import { rawFloor } from './scenarios/raw-floor.ts';
import { secretReload } from './scenarios/secret-reload.ts';
import { single } from './scenarios/single.ts';
import { steadyState } from './scenarios/steady-state.ts';
import { timeouts } from './scenarios/timeouts.ts';

/** Run order: the floor first (the others divide by it), the 40,000-object steady state last. */
const scenarios: Scenario[] = [rawFloor, single, burst, caIssuers, secretReload, ingressRoute, ariRevocation, dns01, timeouts, steadyState];

const HELP = `Usage: npm run bench -- [--quick] [--only=${scenarios.map((s) => s.id).join(',')}] [--concurrency=8]
`;

function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    memGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    loadavgAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
    // The controller runs with the chart's heap policy, resolved against the chart's memory limit.
    controllerNodeOptions: chartHeapPolicy().nodeOptions,
    controllerEnv: chartHeapPolicy().env,
    // The controller runs compiled, as the image ships it (npm run build), not from src/.
    controllerEntry: `${compiledEntry} (npm run build, as the image runs it)`,
    apiserverAuditLog: 'off',
  };
}

function table(results: Result[]): string {
  const fmt = (v: number): string => (Number.isFinite(v) ? String(v) : 'n/a');
  const rows = results.map((r) => `| ${r.scenario} | ${fmt(r.value)} ${r.unit} | ${r.target ?? '—'} | ${r.met === null ? '' : r.met ? 'met' : '**missed**'} |`);
  return ['| scenario | value | target | met |', '|---|---|---|---|', ...rows].join('\n');
}

async function createClusterIssuer(ctx: BenchContext): Promise<void> {
  const issuer: Issuer = {
    metadata: { name: ctx.issuer },
    spec: {
      acme: {
        server: ctx.env.pebble.directory,
        email: 'bench@example.com',
        caBundle: readFileSync(ctx.env.pebble.tlsCa).toString('base64'),
        privateKeySecretRef: { name: `${ctx.issuer}-account` },
        // Pebble picks a random profile for an order that names none; every figure is for 90 days.
        profile: 'default',
        solvers: [{ http01: { ingress: { ingressClassName: 'traefik' } } }],
      },
    },
  };
  await ctx.client.create(Resources.clusterissuers, issuer);
}

async function removeClusterIssuer(ctx: BenchContext): Promise<void> {
  await ctx.client.delete(Resources.clusterissuers, undefined, ctx.issuer).catch(() => undefined);
  await ctx.client.delete(Resources.secrets, 'certroute', `${ctx.issuer}-account`).catch(() => undefined);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { quick: { type: 'boolean' }, only: { type: 'string' }, concurrency: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = only?.filter((id) => !scenarios.some((s) => s.id === id)) ?? [];
  if (unknown.length > 0) {
    process.stderr.write(`unknown scenario(s) ${unknown.join(', ')}\n${HELP}`);
    return 2;
  }
  const selected = only ? scenarios.filter((s) => only.includes(s.id)) : scenarios;
  const quick = values.quick === true;
  const concurrency = Number(values.concurrency ?? 8);
  const startedAt = Date.now();
  const host = machine();
  const log = (line: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

  // Compiled before any figure is taken, so no scenario's time includes the build.
  await builtEntry(log);
  log(`starting the local stack (load average ${host.loadavgAtStart.join(' ')})`);
  const env = await up({ startedBy: 'test', log });
  use();
  // The stack's apiserver writes an audit log of every write (the HA tests read it); it is the
  // test bed's cost, not certroute's, so the bench runs the apiserver without it and restores it.
  log('restarting kube-apiserver without its audit log for the bench');
  await restart('kube-apiserver', { audit: false });
  const ctx: BenchContext = {
    quick,
    scale: (full, min = 1) => (quick ? Math.max(min, Math.round(full / 10)) : full),
    env,
    client: stackClient(),
    issuer: `bench-pebble-${startedAt.toString(36)}`,
    concurrency,
    floor: {},
    setup: {},
    log,
  };
  const results: Result[] = [];
  let failures = 0;
  // Every controller the bench starts works on the whole cluster: what earlier test runs left
  // (a Certificate renewing every few seconds, say) is work it does during every figure.
  // A stack started just now may still answer 429 while the CRDs' storage initializes.
  const preexisting = (await waitUntilServed(() => ctx.client.list(Resources.certificates))).items.length;
  if (preexisting > 0) log(`warning: ${preexisting} Certificates already exist on this stack; the controllers will reconcile them too, which skews every figure (a fresh stack has none)`);
  try {
    await createClusterIssuer(ctx);
    for (const scenario of selected) {
      log(`» ${scenario.title}`);
      const t = performance.now();
      try {
        const out = await scenario.run(ctx);
        results.push(...out);
        for (const r of out) log(`  ${r.scenario}: ${r.value} ${r.unit}${r.target ? ` (target ${r.target}: ${r.met ? 'met' : 'MISSED'})` : ''}`);
      } catch (err) {
        failures++;
        log(`  ${scenario.id} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        results.push({ scenario: `${scenario.title}: failed: ${err instanceof Error ? err.message : String(err)}`, value: Number.NaN, unit: '', target: null, met: false });
      } finally {
        await BenchController.stopAll();
      }
      ctx.setup[`${scenario.id}: wall time (s)`] = Math.round((performance.now() - t) / 100) / 10;
      // Let the apiserver and Traefik settle before the next measurement.
      await sleep(quick ? 500 : 2_000);
    }
  } finally {
    await BenchController.stopAll();
    await removeClusterIssuer(ctx);
    if (await release().catch(() => false)) log('stopped the local stack this run started');
    else await restart('kube-apiserver').then(() => log('kube-apiserver restarted with its audit log'), (err: unknown) => log(`could not restore kube-apiserver's audit log: ${String(err)}`));
  }

  const report = {
    machine: { ...host, loadavgAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100) },
    date: new Date(startedAt).toISOString(),
    scale: quick ? 'quick (about 1/10)' : 'full',
    durationSeconds: Math.round((Date.now() - startedAt) / 1000),
    controller: `node ${compiledEntry} controller --workers=${concurrency} --leader-elect=false, LOG_LEVEL=info`,
    preexistingCertificates: preexisting,
    setup: ctx.setup,
    results,
  };
  const dir = join(import.meta.dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const suffix = quick ? '-quick' : only ? '-partial' : '';
  const file = join(dir, `${report.date.slice(0, 10)}${suffix}.json`);
  const json = JSON.stringify(report, null, 2);
  writeFileSync(file, `${json}\n`);
  process.stdout.write(`\n${table(results)}\n\nMachine: ${host.cpus} × ${host.cpuModel}, ${host.memGiB} GiB, Node ${host.node}, ${host.os}; load average at start ${host.loadavgAtStart.join(' ')}. Controller: ${host.controllerEntry}. ${report.scale} scale, ${report.durationSeconds} s.\n\n${json}\n\nwritten to ${file}\n`);
  const missed = results.filter((r) => r.met === false).length;
  if (missed > 0) log(`${missed} figure(s) missed their target`);
  return failures > 0 ? 1 : 0;
}

// Ctrl-C: no controller left behind, and the stack released (stopped if this run started it).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: stopping controllers and releasing the stack…\n`);
    void BenchController.stopAll()
      .then(() => release())
      .then((released) => (released ? undefined : restart('kube-apiserver')))
      .catch(() => undefined)
      .finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}

process.exitCode = await main();

/** Calls `fn` until the apiserver stops answering 429 (storage still initializing), for up to a minute. */
async function waitUntilServed<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof ApiError && err.statusCode === 429) || attempt >= 60) throw err;
      await sleep(1000);
    }
  }
}
