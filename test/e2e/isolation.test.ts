/**
 * A test run beside another certroute controller on the same machine: a controller started with
 * every default (responder port 8089, metrics 9402, health 9403, Lease
 * certroute/certroute-controller) keeps running while one e2e file runs in its own ava process.
 * The file passes, and the other controller is undisturbed, because each test file's controllers
 * take a free responder port with their own responder Service, their own Lease and their own
 * issuer names.
 *
 * The other controller stays a follower: a Lease of its default name, held for an hour by a
 * stand-in for its own deployment's leader, keeps it from reconciling. (Two leaders on one cluster
 * would both reconcile every Certificate; certroute runs one leader per cluster by design.)
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { logsDir, repoRoot } from '../env/paths.ts';
import { kubectl, readEnv } from '../env/stack.ts';
import { sourceEntry } from '../../scripts/entry.ts';
import { applyYaml, CONTROLLER_NAMESPACE, kubectlJson, readLog, waitFor, type ControllerProcess, type LeaseView } from '../helpers/controller.ts';

const DEFAULT_PORTS = { responder: 8089, metrics: 9402, health: 9403 };
const DEFAULT_LEASE = 'certroute-controller';
const STAND_IN = `other-deployment-leader-${process.pid}`;
/** A short e2e file whose controllers lead, issue through Traefik and Pebble, and are killed. */
const FILE = 'test/e2e/crash-resume.test.ts';

let other: ControllerProcess | undefined;

test.after.always(async () => {
  await other?.stop();
  const lease = await kubectlJson<LeaseView>(['-n', CONTROLLER_NAMESPACE, 'get', 'lease', DEFAULT_LEASE]).catch(() => undefined);
  if (lease?.spec.holderIdentity === STAND_IN) await kubectl(['-n', CONTROLLER_NAMESPACE, 'delete', 'lease', DEFAULT_LEASE, '--wait=false']).catch(() => undefined);
});

/** Whether something on this machine accepts connections on `port`. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/** `certroute controller` with no flags at all, as an operator would start it by hand. */
function startWithDefaults(): ControllerProcess {
  const logFile = join(logsDir, `isolation-default-${process.pid}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  const { POD_NAMESPACE: _ignored, ...inherited } = process.env;
  const child = spawn(process.execPath, [join(repoRoot, sourceEntry), 'controller'], {
    cwd: repoRoot,
    env: { ...inherited, KUBECONFIG: readEnv().kubeconfig, LOG_LEVEL: 'debug' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  process.once('exit', () => child.kill('SIGKILL'));
  return {
    child,
    logFile,
    exited,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * The nested run's output, each line behind a bar: `npm test` counts the lines that start with
 * ava's ✔ and ✘, and must not count the nested run's as this file's.
 */
const quoted = (text: string): string => text.split('\n').map((line) => `│ ${line}`).join('\n');

/** One ava run of `file` in its own process, as `npm test -- file` would run it. */
function runFile(file: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(repoRoot, 'node_modules', 'ava', 'entrypoints', 'cli.mjs'), '--serial', file], { cwd: repoRoot, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.once('close', (code) => resolve({ code, output }));
  });
}

test('an e2e file passes while another controller runs on the machine\'s default ports and Lease, and that controller is undisturbed', async (t) => {
  t.timeout(6 * 60_000);
  const now = new Date().toISOString().replace(/Z$/, '000Z');
  await applyYaml(`apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: ${DEFAULT_LEASE}, namespace: ${CONTROLLER_NAMESPACE}}
spec: {holderIdentity: ${STAND_IN}, leaseDurationSeconds: 3600, acquireTime: "${now}", renewTime: "${now}"}
`);
  const busy = await Promise.all(Object.values(DEFAULT_PORTS).map(listening));
  if (busy.some(Boolean)) {
    // Someone on this machine already holds the default ports: that is the very situation to test.
    t.log(`the default ports ${Object.values(DEFAULT_PORTS).filter((_, i) => busy[i]).join(', ')} are already taken on this machine; running beside that process`);
  } else {
    const started = startWithDefaults();
    const outcome = await waitFor('the default controller to sync its caches on the default ports', async () => {
      // Another run on this machine can take the ports between the check above and this start.
      if (started.child.exitCode !== null && /EADDRINUSE|cannot listen on port/.test(readLog(started))) return 'taken' as const;
      if (started.child.exitCode !== null) throw new Error(`it exited with ${started.child.exitCode}: ${readLog(started).slice(-400)}`);
      return readLog(started).includes('"msg":"caches synced"') && (await fetch(`http://127.0.0.1:${DEFAULT_PORTS.health}/livez`)).ok && ('started' as const);
    }, 60_000);
    if (outcome === 'started') other = started;
    else t.log('another process took the default ports as this controller started; running beside that process');
  }
  t.true((await Promise.all(Object.values(DEFAULT_PORTS).map(listening))).every(Boolean), 'ports 8089, 9402 and 9403 are taken while the file runs');

  const { code, output } = await runFile(FILE);
  t.log(quoted(output.trim().split('\n').filter((l) => /✔|✘|passed|failed/.test(l)).join('\n')));
  t.is(code, 0, `${FILE} passed beside the other controller:\n${quoted(output.slice(-3000))}`);
  t.regex(output, /✔/, 'and ran at least one test');

  const lease = await kubectlJson<LeaseView>(['-n', CONTROLLER_NAMESPACE, 'get', 'lease', DEFAULT_LEASE]);
  t.is(lease.spec.holderIdentity, STAND_IN, 'the run never touched the default Lease');
  if (other) {
    t.is(other.child.exitCode, null, 'the other controller is still running');
    t.true((await fetch(`http://127.0.0.1:${DEFAULT_PORTS.health}/livez`)).ok, 'and still answers on its health port');
    t.false(readLog(other).includes('"msg":"became leader"'), 'and never led');
  }
});
