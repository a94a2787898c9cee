/**
 * The controller under test: the real `certroute controller` process (the
 * container's command, compiled to dist/ as the image ships it), with its
 * /metrics and health ports on free local ports, and what the benchmark
 * reads from outside it: RSS and CPU from
 * /proc, counters from /metrics. Nothing is read from inside the process,
 * so the figures are what an operator's dashboards would show.
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parse } from 'yaml';
import { pidsFile } from '../../test/env/paths.ts';
import { freePorts } from '../../test/env/ports.ts';
import { startController, type ControllerProcess } from '../../test/helpers/controller.ts';
import { round } from './stats.ts';
import { atMost, figure, type Result } from './types.ts';
import { builtEntry } from '../../scripts/entry.ts';

const CLK_TCK = 100; // Linux USER_HZ; `getconf CLK_TCK` on every kernel Node supports

/** Memory in MB (10^6 bytes), as the targets are written. */
export interface ProcStats {
  rssMB: number;
  peakRssMB: number;
  cpuSeconds: number;
}

/** VmRSS, VmHWM and utime+stime of a live process. */
export function procStats(pid: number): ProcStats {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  // /proc says "kB" and means KiB.
  const mb = (field: string): number => (Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN) * 1024) / 1e6;
  // Fields after the parenthesised command name, which may itself contain spaces.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return { rssMB: mb('VmRSS'), peakRssMB: mb('VmHWM'), cpuSeconds: (utime + stime) / CLK_TCK };
}

/** CPU seconds so far of each stack component (kube-apiserver, etcd, Pebble, Traefik, …). */
export function stackCpu(): Record<string, number> {
  const pids = JSON.parse(readFileSync(pidsFile, 'utf8')) as Record<string, number>;
  const out: Record<string, number> = {};
  for (const [component, pid] of Object.entries(pids)) {
    try {
      out[component] = procStats(pid).cpuSeconds;
    } catch {
      // not running: no figure
    }
  }
  return out;
}

/** Prometheus text format → `name{labels}` → value; enough for counters and gauges. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** Sum of every series of one metric, e.g. all controllers' sync counts. */
export function sumOf(metrics: Map<string, number>, name: string): number {
  let total = 0;
  for (const [series, value] of metrics) if (series === name || series.startsWith(`${name}{`)) total += value;
  return total;
}

const BINARY_UNITS: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, K: 1e3, M: 1e6, G: 1e9, '': 1 };

/**
 * The heap policy the chart gives the pod (`nodeOptions`, and `mallocTrimThreshold` as the
 * environment variable it sets), for a process
 * that has no container limit: `--max-old-space-size-percentage` is a share
 * of the cgroup's memory limit in the pod, so here it becomes the same share
 * of the chart's default `resources.limits.memory`, in MiB as V8 takes it.
 */
export function chartHeapPolicy(valuesFile = new URL('../../charts/certroute/values.yaml', import.meta.url)): { nodeOptions: string; limitMiB: number; env: Record<string, string> } {
  const values = parse(readFileSync(valuesFile, 'utf8')) as { nodeOptions?: string; mallocTrimThreshold?: string; resources?: { limits?: { memory?: string } } };
  const limit = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|K|M|G|)$/.exec(String(values.resources?.limits?.memory ?? ''));
  if (!limit) throw new Error(`charts/certroute/values.yaml: resources.limits.memory "${values.resources?.limits?.memory}" is not a quantity the bench reads (e.g. 512Mi)`);
  const limitMiB = (Number(limit[1]) * BINARY_UNITS[limit[2]!]!) / 2 ** 20;
  const nodeOptions = (values.nodeOptions ?? '').replace(/--max-old-space-size-percentage=(\d+(?:\.\d+)?)/, (_, pct: string) => `--max-old-space-size=${Math.floor((Number(pct) / 100) * limitMiB)}`);
  // The chart's malloc setting goes into the pod's environment; here into the controller's.
  const env: Record<string, string> = values.mallocTrimThreshold ? { MALLOC_TRIM_THRESHOLD_: String(values.mallocTrimThreshold) } : {};
  return { nodeOptions, limitMiB, env };
}

export class BenchController {
  /** Every controller this run started and has not stopped: stopped between scenarios and on exit. */
  private static readonly running = new Set<BenchController>();
  readonly proc: ControllerProcess;
  readonly metricsPort: number;
  readonly healthPort: number;

  private constructor(proc: ControllerProcess, metricsPort: number, healthPort: number) {
    this.proc = proc;
    this.metricsPort = metricsPort;
    this.healthPort = healthPort;
  }

  /**
   * Leader election off: a Lease left by an earlier, killed controller would
   * otherwise hold reconciling back for its whole duration. Logs at info and
   * with the heap policy, as the chart runs it (debug logging would measure
   * pino). From dist/, as the image runs it: the source entry would count
   * Node's type stripper against every figure.
   */
  static async start(name: string, extraArgs: string[] = []): Promise<BenchController> {
    const [metricsPort, healthPort] = (await freePorts(2)) as [number, number];
    const policy = chartHeapPolicy();
    const proc = await startController([`--metrics-port=${metricsPort}`, `--health-port=${healthPort}`, '--leader-elect=false', ...extraArgs], {
      name: `bench-${name}-${process.pid}`,
      entry: await builtEntry(),
      // BENCH_CONTROLLER_NODE_OPTIONS (e.g. --cpu-prof) profiles the controller without touching the bench process.
      env: { ...policy.env, LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'info', NODE_OPTIONS: `${policy.nodeOptions} ${process.env.BENCH_CONTROLLER_NODE_OPTIONS ?? ''}`.trim() },
    });
    const ctl = new BenchController(proc, metricsPort, healthPort);
    BenchController.running.add(ctl);
    await ctl.waitReady();
    return ctl;
  }

  get pid(): number {
    const pid = this.proc.child.pid;
    if (pid === undefined) throw new Error('the controller process has no pid: it failed to spawn');
    return pid;
  }

  stats(): ProcStats {
    return procStats(this.pid);
  }

  /** One scrape; with 10,000 Certificates it takes the controller seconds, hence the long timeout. */
  async metrics(): Promise<Map<string, number>> {
    const res = await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`, { signal: AbortSignal.timeout(60_000) });
    if (!res.ok) throw new Error(`controller /metrics answered ${res.status}`);
    return parseMetrics(await res.text());
  }

  /**
   * API requests so far, from one scrape: by verb (certroute_kube_requests_total) and by verb
   * and resource, e.g. `update certificates/status` (certroute_kube_requests_by_resource_total).
   */
  async kubeRequests(): Promise<RequestCounts> {
    const out: RequestCounts = { byVerb: {}, byResource: {} };
    for (const [series, value] of await this.metrics()) {
      const verb = /^certroute_kube_requests_total\{verb="(\w+)"\}$/.exec(series)?.[1];
      if (verb) out.byVerb[verb] = value;
      const m = /^certroute_kube_requests_by_resource_total\{verb="(\w+)",resource="([\w./-]+)"\}$/.exec(series);
      if (m) out.byResource[`${m[1]} ${m[2]}`] = value;
    }
    return out;
  }

  /** /readyz turns 200 once every informer has listed. */
  async waitReady(timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.proc.child.exitCode !== null) throw new Error(`the controller exited with code ${this.proc.child.exitCode}; see ${this.proc.logFile}`);
      const ok = await fetch(`http://127.0.0.1:${this.healthPort}/readyz`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.ok, () => false);
      if (ok) return;
      await sleep(100);
    }
    throw new Error(`the controller was not ready within ${timeoutMs} ms; see ${this.proc.logFile}`);
  }

  /**
   * The time (epoch ms) of the controller's first log line with message `msg`
   * whose fields match `fields`, e.g. the certificates controller's "initial
   * pass done": the moment it had looked at every Certificate once.
   */
  async waitLog(msg: string, fields: Record<string, string>, timeoutMs: number): Promise<{ time: number } & Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const line of readFileSync(this.proc.logFile, 'utf8').split('\n')) {
        if (!line.includes(`"msg":"${msg}"`)) continue;
        const entry = JSON.parse(line) as { time: number } & Record<string, unknown>;
        if (Object.entries(fields).every(([k, v]) => entry[k] === v)) return entry;
      }
      if (this.proc.child.exitCode !== null) throw new Error(`the controller exited with code ${this.proc.child.exitCode}; see ${this.proc.logFile}`);
      await sleep(250);
    }
    throw new Error(`the controller logged no "${msg}" within ${timeoutMs} ms; see ${this.proc.logFile}`);
  }

  /**
   * Waits until the controller has used at most 2 % of one CPU over the last
   * `quietMs`, read from /proc: its queues have drained and nothing is left
   * but watches and timers. Not by scraping /metrics: with 10,000
   * Certificates one scrape (70,000 series) is seconds of the controller's
   * CPU, so polling it would keep the controller busy. Resolves to the time
   * (performance.now()) the quiet window began.
   */
  async waitIdle(quietMs: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    const samples: Array<{ at: number; cpu: number }> = [];
    while (Date.now() < deadline) {
      const now = { at: performance.now(), cpu: this.stats().cpuSeconds };
      samples.push(now);
      const from = samples.find((s) => now.at - s.at <= quietMs);
      if (from && samples[0]!.at <= now.at - quietMs && (now.cpu - from.cpu) * 1000 <= 0.02 * (now.at - from.at)) return from.at;
      while (samples.length > 0 && now.at - samples[0]!.at > quietMs * 2) samples.shift();
      await sleep(250);
    }
    throw new Error(`the controller never went idle within ${timeoutMs} ms; see ${this.proc.logFile}`);
  }

  async stop(): Promise<void> {
    await this.proc.stop();
    BenchController.running.delete(this);
  }

  static async stopAll(): Promise<void> {
    await Promise.all([...BenchController.running].map((c) => c.stop()));
  }
}

/** API requests by verb, and by verb and resource (`update certificates/status`). */
export interface RequestCounts {
  byVerb: Record<string, number>;
  byResource: Record<string, number>;
}

/**
 * What the API requests between two readings cost per certificate, as figures: all verbs
 * (Events included; against `limit` per certificate when there is one), each verb, and each
 * verb and resource, the most frequent first. Logs the per-resource line as it goes.
 */
export function requestFigures(label: string, certs: number, before: RequestCounts, after: RequestCounts, log: (line: string) => void, limit?: number): Result[] {
  const byVerb = diffCounts(after.byVerb, before.byVerb);
  const byResource = Object.entries(diffCounts(after.byResource, before.byResource)).filter(([, c]) => c > 0).sort((a, b) => b[1] - a[1]);
  log(`  API requests per certificate: ${byResource.map(([k, c]) => `${k} ${round(c / certs)}`).join(', ')}`);
  const total = Object.values(byVerb).reduce((a, b) => a + b, 0);
  const allVerbs = `${label}: API requests per certificate, all verbs (Events included)`;
  return [
    limit === undefined ? figure(allVerbs, round(total / certs), 'requests') : atMost(allVerbs, round(total / certs), limit, 'requests'),
    ...[...Object.entries(byVerb), ...byResource].map(([request, count]) => figure(`${label}: API requests, ${request}`, count, `requests (${round(count / certs)}/cert)`)),
  ];
}

/** Differences of two by-verb tallies, every verb present. */
export function diffCounts(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const verb of Object.keys(after)) out[verb] = (after[verb] ?? 0) - (before[verb] ?? 0);
  return out;
}

/**
 * CPU milliseconds per certificate by process between two readings: where
 * the machine's time went, so a ratio can be explained, not just reported.
 */
export function cpuPerCert(before: Record<string, number>, after: Record<string, number>, certs: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, seconds] of Object.entries(after)) out[name] = ((seconds - (before[name] ?? 0)) * 1000) / certs;
  return out;
}
