/**
 * A SIGTERM while the controller is still starting (its first list of the API server hangs, as
 * behind a stalled network) is a clean shutdown: the signal handlers are installed before the
 * first await, so the process logs why it stops and exits 0, instead of dying of the signal.
 */
import test from 'ava';
import { join } from 'node:path';
import { stackDir } from '../env/paths.ts';
import { readEnv } from '../env/stack.ts';
import { readLog, startController, waitFor, type ControllerProcess } from '../helpers/controller.ts';
import { kubeconfigVia, startStallProxy, type StallProxy } from '../helpers/stall-proxy.ts';

const env = readEnv();
let stall: StallProxy | undefined;
let controller: ControllerProcess | undefined;

test.after.always(async () => {
  await controller?.kill().catch(() => undefined);
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
