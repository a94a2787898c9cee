/**
 * How the controller process ends.
 * - A SIGTERM while it is still starting (its first list of the API server hangs, as behind a
 *   stalled network) is a clean shutdown: the signal handlers are installed before the first
 *   await, so the process logs why it stops and exits 0, instead of dying of the signal.
 * - A promise rejection nothing handles, in a running controller, is logged as fatal with its
 *   reason and ends the process with exit code 1, so the Deployment restarts the pod. (Node's own
 *   default would also exit 1, but with a stack trace on stderr and no log line: the fatal JSON
 *   line is what only certroute's handler writes.)
 */
import test from 'ava';
import { join } from 'node:path';
import { repoRoot } from '../env/paths.ts';
import { stackDir } from '../env/paths.ts';
import { readEnv } from '../env/stack.ts';
import { readLog, startController, waitFor, waitForLeader, type ControllerProcess } from '../helpers/controller.ts';
import { kubeconfigVia, startStallProxy, type StallProxy } from '../helpers/stall-proxy.ts';

const env = readEnv();
let stall: StallProxy | undefined;
let controller: ControllerProcess | undefined;
let rejecting: ControllerProcess | undefined;

test.after.always(async () => {
  await controller?.kill().catch(() => undefined);
  await rejecting?.kill().catch(() => undefined);
  await stall?.close();
});

test('SIGTERM during start-up shuts down cleanly with exit code 0', async (t) => {
  stall = await startStallProxy(env.apiserver);
  stall.stall();
  const kubeconfig = kubeconfigVia(env.kubeconfig, stall.server, join(stackDir, `shutdown-${process.pid}.kubeconfig`));
  controller = await startController(['--self-check-address=http://127.0.0.1:9', '--leader-elect=false'], { name: `shutdown-${process.pid}`, env: { KUBECONFIG: kubeconfig } });
  // Positive evidence it is past its flags and waiting on the API server.
  await waitFor('the controller to start listening', async () => readLog(controller!).includes('"msg":"certroute starting"'), 30_000);
  t.false(readLog(controller).includes('"msg":"caches synced"'), 'still starting: the first list hangs');
  controller.child.kill('SIGTERM');
  const code = await controller.exited;
  t.is(code, 0, 'exited by itself, not killed by the signal');
  t.regex(readLog(controller), /"msg":"shutting down during start-up"/);
});

test('a promise rejection nothing handles is logged as fatal, with its reason, and ends the process with exit code 1', async (t) => {
  const preload = `--import=${join(repoRoot, 'test', 'helpers', 'reject-on-sigusr2.ts')}`;
  rejecting = await startController([], { name: `unhandled-rejection-${process.pid}`, env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${preload}`.trim() } });
  // A controller at work: caches synced and leading, so the rejection hits the running process.
  await waitForLeader(rejecting);
  await waitFor('the controller to report its caches synced', async () => readLog(rejecting!).includes('"msg":"caches synced"'), 30_000);
  rejecting.child.kill('SIGUSR2');
  t.is(await rejecting.exited, 1);
  const lines = readLog(rejecting).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; time: number; msg: string; err?: string });
  const fatal = lines.filter((l) => l.level === 60);
  t.deepEqual(fatal.map((l) => [l.msg, l.err]), [['unhandled promise rejection; exiting', 'a rejection nothing handles']]);
  // By the time of each line, not its place in the file: the fatal line is written at once, and
  // an earlier line still buffered can reach the file after it.
  t.deepEqual(lines.filter((l) => l.time > fatal[0]!.time).map((l) => l.msg), [], 'its last word: it did not carry on');
});
