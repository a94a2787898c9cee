/**
 * `npm test`: type-check, unit tests, then integration and e2e tests against one real local stack
 * that this process starts and always tears down, on failure and on Ctrl-C too. A stack that was
 * already up (`npm run stack -- up`, or another test run using it) is reused and left up.
 *
 *   npm test                              everything
 *   npm test -- test/e2e/smoke.test.ts    only the given files or globs (plus the type-check)
 *   npm test -- --match='*redirect*'      flags go to ava unchanged
 *
 * It ends with the plain line `N passed, N failed`: the sum over the ava runs, with a failed
 * type-check, a stack that would not start, or an ava run that crashed without a count as one
 * failure each, so that the line never reads "0 failed" for a red run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { globSync } from 'node:fs';
import { join, relative } from 'node:path';
import { repoRoot } from './env/paths.ts';
import { binary, release, up, use } from './env/stack.ts';
import { testsLockFile, withFileLock } from './env/lock.ts';
import { clusterDown, clusterUp } from './cluster/cluster.ts';
import { clusterLockFile } from './cluster/paths.ts';

const unitGlobs = ['test/unit/**/*.test.ts'];
const stackGlobs = ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'];
const clusterGlobs = ['test/cluster/**/*.test.ts'];
const avaCli = join(repoRoot, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');
const tscCli = join(repoRoot, 'node_modules', '.bin', 'tsc');

const totals = { passed: 0, failed: 0 };
let current: ChildProcess | undefined;
let starting: Promise<unknown> | undefined;
let clusterStarting: Promise<unknown> | undefined;
let clusterRunning = false;
let interrupted = false;

/** Files matching the globs, in glob order (integration before e2e), each glob's matches sorted. */
function expand(globs: string[]): string[] {
  const files = globs.flatMap((pattern) => globSync(pattern, { cwd: repoRoot }).sort());
  return [...new Set(files.map((file) => relative(repoRoot, join(repoRoot, file))))];
}

/** Runs a command with its output shown live, and also returned for counting. */
function run(command: string, args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...(process.stdout.isTTY ? { FORCE_COLOR: '1' } : {}) },
    });
    current = child;
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      process.stdout.write(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      process.stderr.write(chunk);
    });
    child.on('error', (error) => {
      output += String(error);
    });
    child.on('close', (code, signal) => {
      current = undefined;
      resolve({ code: code ?? (signal ? 128 : 1), output });
    });
  });
}

/**
 * Counts ava's per-test lines. Its closing summary is no use for this: once anything fails it
 * leaves out how many passed. Tests skipped after a failed hook, uncaught errors and timeouts
 * come from the summary lines, which do give counts.
 */
function count(output: string, code: number): void {
  // eslint-disable-next-line no-control-regex
  const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
  const lines = (pattern: RegExp) => plain.match(pattern)?.length ?? 0;
  const sum = (pattern: RegExp) => [...plain.matchAll(pattern)].reduce((n, m) => n + Number(m[1]), 0);
  const passed = lines(/^\s*✔ /gm);
  let failed =
    lines(/^\s*✘ \[fail\]:/gm) +
    sum(/^\s*✘ (\d+) tests? remaining in /gm) +
    sum(/^\s*(\d+) (?:uncaught exceptions?|unhandled rejections?|tests? remained pending after a timeout)$/gm);
  // A run that exits red without saying why (a worker crash, say) is still a failure.
  if (code !== 0 && failed === 0) failed = 1;
  totals.passed += passed;
  totals.failed += failed;
}

async function ava(files: string[], flags: string[], serial: boolean): Promise<void> {
  if (files.length === 0) return;
  const { code, output } = await run(process.execPath, [avaCli, ...(serial ? ['--serial'] : []), ...flags, ...files]);
  count(output, code);
}

/**
 * The single-node cluster's tests: the cluster comes up (a few minutes warm), the tests run, and
 * it always goes down again, leaving the host as it was.
 */
async function withCluster(files: string[], flags: string[]): Promise<void> {
  if (files.length === 0 || interrupted) return;
  await withFileLock(clusterLockFile, `npm test in ${repoRoot}: the single-node cluster`, () => clusterTests(files, flags), (line) => console.log(`» ${line}`));
}

async function clusterTests(files: string[], flags: string[]): Promise<void> {
  if (interrupted) return;
  console.log('» starting the single-node cluster');
  const started = Date.now();
  try {
    clusterRunning = true;
    clusterStarting = clusterUp({ log: (line) => console.log(`  ${line}`) });
    await clusterStarting;
  } catch (error) {
    // clusterUp took down what it had started.
    clusterRunning = false;
    console.error(`cluster: ${error instanceof Error ? error.message : String(error)}`);
    totals.failed += 1;
    return;
  } finally {
    clusterStarting = undefined;
  }
  console.log(`» cluster up in ${((Date.now() - started) / 1000).toFixed(1)} s; cluster tests (serial)`);
  try {
    // A helm install or a rolling upgrade waits minutes without a test finishing.
    if (!interrupted) await ava(files, ['--timeout=10m', ...flags], true);
  } finally {
    await stopCluster();
  }
}

async function stopCluster(): Promise<void> {
  clusterRunning = false;
  try {
    await clusterDown({ log: (line) => console.log(`  ${line}`) });
  } catch (error) {
    console.error(`cluster down: ${error instanceof Error ? error.message : String(error)}`);
    totals.failed += 1;
  }
}

async function typecheck(): Promise<void> {
  console.log('» type-check (tsc --noEmit -p .)');
  const { code } = await run(tscCli, ['--noEmit', '-p', '.']);
  if (code !== 0) {
    console.error('type-check failed');
    totals.failed += 1;
  }
}

/**
 * helm, built before any test needs it (unit tests render the chart with it too), so that no
 * test's timeout has to absorb a first build. False if it would not build.
 */
async function buildHelm(): Promise<boolean> {
  try {
    await binary('helm');
    return true;
  } catch (error) {
    console.error(`helm: ${error instanceof Error ? error.message : String(error)}`);
    totals.failed += 1;
    return false;
  }
}

async function withStack(files: string[], flags: string[]): Promise<void> {
  if (files.length === 0) return;
  console.log('» starting the local stack');
  const started = Date.now();
  try {
    starting = up({ startedBy: 'test' }).then(() => use());
    await starting;
  } catch (error) {
    console.error(`stack: ${error instanceof Error ? error.message : String(error)}`);
    totals.failed += 1;
    return;
  }
  console.log(`» stack up in ${((Date.now() - started) / 1000).toFixed(1)} s; integration and e2e tests (serial)`);
  // One test run's files at a time on one stack (see testsLockFile).
  await withFileLock(testsLockFile, `npm test in ${repoRoot}: integration and e2e tests`, async () => {
    if (!interrupted) await ava(files, flags, true);
  }, (line) => console.log(`» ${line}`));
}

/**
 * Tears the stack down unless it was already running before this run (started by hand, or in
 * use by another test run at the same time): those stay up. False if tearing down failed.
 */
async function stopStack(): Promise<boolean> {
  try {
    if (!(await release())) console.log('» the stack was started by hand or is still in use, so it stays up');
    return true;
  } catch (error) {
    console.error(`stack: ${error instanceof Error ? error.message : String(error)}`);
    return false;
  }
}

function onSignal(signal: NodeJS.Signals): void {
  const code = signal === 'SIGINT' ? 130 : 143;
  if (interrupted) process.exit(code); // a second Ctrl-C: stop waiting
  interrupted = true;
  console.error(`\n${signal}: stopping tests and the stack…`);
  current?.kill('SIGINT');
  // Let a start in progress finish first, or it could launch a component after `down` looked.
  void (async () => {
    await starting?.catch(() => {});
    await stopStack();
    await clusterStarting?.catch(() => {});
    if (clusterRunning) await stopCluster();
    process.exit(code);
  })();
}

async function main(): Promise<void> {
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const args = process.argv.slice(2);
  const flags = args.filter((arg) => arg.startsWith('-'));
  const selected = args.filter((arg) => !arg.startsWith('-'));
  const files = selected.length > 0 ? expand(selected) : [];
  if (selected.length > 0 && files.length === 0) {
    console.error(`no test file matches ${selected.join(' ')}`);
    totals.failed += 1;
  }
  const isUnit = (file: string) => file.startsWith('test/unit/');
  const isCluster = (file: string) => file.startsWith('test/cluster/');
  const unitFiles = selected.length > 0 ? files.filter(isUnit) : expand(unitGlobs);
  const stackFiles = selected.length > 0 ? files.filter((f) => !isUnit(f) && !isCluster(f)) : expand(stackGlobs);
  const clusterFiles = selected.length > 0 ? files.filter(isCluster) : expand(clusterGlobs);
  const started = Date.now();
  try {
    await typecheck();
    if (unitFiles.length > 0 || stackFiles.length > 0) await buildHelm();
    if (unitFiles.length > 0) console.log('» unit tests');
    await ava(unitFiles, flags, false);
    if (!interrupted) await withStack(stackFiles, flags);
  } finally {
    if (!interrupted && stackFiles.length > 0 && !(await stopStack())) totals.failed += 1;
  }
  await withCluster(clusterFiles, flags);
  console.log(`» done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(`${totals.passed} passed, ${totals.failed} failed`);
  process.exitCode = totals.failed > 0 ? 1 : 0;
}

await main();
