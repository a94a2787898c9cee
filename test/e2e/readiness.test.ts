/**
 * Readiness is the first sync of the caches, not the health of every watch. The kube-apiserver
 * restarts under a running controller: every watch fails and is restarted, and all the while
 * /readyz stays 200 (the caches keep answering, the responder keeps serving). A replica that
 * turned unready at every apiserver blip would drop every replica out of the responder Service at
 * once, and live challenges would get 503s.
 */
import test from 'ava';
import { freePorts } from '../env/ports.ts';
import { restart } from '../env/stack.ts';
import { readLog, startController, waitFor, type ControllerProcess } from '../helpers/controller.ts';

let controller: ControllerProcess | undefined;

test.after.always(async () => {
  await controller?.stop();
});

test('/readyz never answers 503 while the kube-apiserver restarts and every watch fails', async (t) => {
  const [healthPort] = (await freePorts(1)) as [number];
  controller = await startController([`--health-port=${healthPort}`]);
  const readyz = async () => (await fetch(`http://127.0.0.1:${healthPort}/readyz`, { signal: AbortSignal.timeout(2_000) })).status;
  await waitFor('the first sync (/readyz 200)', async () => (await readyz().catch(() => 0)) === 200, 60_000);

  const seen: number[] = [];
  let polling = true;
  const poller = (async () => {
    while (polling) {
      seen.push(await readyz().catch(() => -1));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  const logBefore = readLog(controller).length;
  await restart('kube-apiserver');
  // Positive evidence that the blip reached the controller: its informers failed and restarted.
  await waitFor('the informers to notice the restart', async () => /"msg":"watch failed; restarting informer"/.test(readLog(controller!).slice(logBefore)), 60_000);
  polling = false;
  await poller;

  // A probe the loaded machine did not answer within 2 s counts as -1: that is not readiness.
  t.true(seen.filter((s) => s === 200).length > 20, `${seen.length} probes during the restart: ${[...new Set(seen)].join(', ')}`);
  t.false(seen.includes(503), 'no probe answered 503 (not ready)');
  t.deepEqual(seen.filter((s) => s !== 200 && s !== -1), [], 'nothing but 200');
});
