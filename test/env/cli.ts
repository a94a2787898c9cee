/**
 * `npm run stack -- up | down [--force] | status`: the local stack by hand, for poking at it with kubectl,
 * curl, or a controller started from a second terminal.
 */
import { relative } from 'node:path';
import { down, status, up, type StackEnv } from './stack.ts';
import { repoRoot } from './paths.ts';
import { kubectlPath } from './binaries.ts';

function printEnv(env: StackEnv, kubectl: string): void {
  const kubeconfig = relative(process.cwd(), env.kubeconfig) || env.kubeconfig;
  console.log(`kube-apiserver  ${env.apiserver}`);
  console.log(`pebble          ${env.pebble.directory}  (management ${env.pebble.management}, TLS CA ${env.pebble.tlsCa})`);
  console.log(`challtestsrv    ${env.challtestsrv}`);
  console.log(`traefik         web :${env.traefik.web}  websecure :${env.traefik.websecure}  api ${env.traefik.api}`);
  console.log(`responder       Service certroute/certroute → 127.0.0.1:${env.responderPort}  (certroute controller --responder-port=${env.responderPort})`);
  console.log('');
  console.log(`kubectl:  ${kubectl} --kubeconfig ${kubeconfig} get ns`);
  console.log(`      or  export KUBECONFIG=${env.kubeconfig}`);
  console.log(`routes:   curl -s ${env.traefik.api}/api/http/routers`);
  console.log(`logs:     ${relative(process.cwd(), repoRoot) || '.'}/.stack/logs/`);
  console.log('stop:     npm run stack -- down');
}

async function main(command: string | undefined): Promise<void> {
  switch (command) {
    case 'up': {
      const started = Date.now();
      const env = await up();
      console.log(`stack up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      printEnv(env, await kubectlPath());
      return;
    }
    case 'down':
      await down({ force: process.argv.includes('--force') });
      console.log('stack down; no process left');
      return;
    case 'status': {
      const { env, components } = status();
      for (const c of components) console.log(`${c.component.padEnd(15)} ${c.alive ? 'running' : 'stopped'}${c.pid ? `  pid ${c.pid}` : ''}`);
      if (env && components.every((c) => c.alive)) {
        console.log('');
        printEnv(env, await kubectlPath());
      } else {
        process.exitCode = 1;
      }
      return;
    }
    default:
      console.error('usage: npm run stack -- up | down [--force] | status');
      process.exitCode = 2;
  }
}

try {
  await main(process.argv[2]);
} catch (error) {
  console.error(`stack: ${error instanceof Error ? error.message : String(error)}`);
  if (process.env.STACK_DEBUG && error instanceof Error) console.error(error);
  process.exitCode = 1;
}
