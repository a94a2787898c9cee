/**
 * `npm run cluster -- up | down | status`: the single-node cluster by hand. `up` prints where
 * everything is; `down` prints the kernel settings it put back.
 */
import { relative } from 'node:path';
import { kubectlPath } from '../env/binaries.ts';
import { clusterDown, clusterStatus, clusterUp, type ClusterEnv } from './cluster.ts';

async function printEnv(env: ClusterEnv): Promise<void> {
  const kubeconfig = relative(process.cwd(), env.kubeconfig) || env.kubeconfig;
  console.log(`node       ${env.nodeName}`);
  console.log(`traefik    web 127.0.0.1:${env.traefik.web}  websecure 127.0.0.1:${env.traefik.websecure} (host ports of the Traefik pod)`);
  console.log(`pebble     ${env.pebble.directory}  (management ${env.pebble.management}, TLS CA ${env.pebble.tlsCa})`);
  console.log(`images     ${env.images.certroute}`);
  console.log(`           ${env.images.traefik}`);
  console.log(`           ${env.images.backend}`);
  console.log('');
  console.log(`kubectl:   ${await kubectlPath()} --kubeconfig ${kubeconfig} get pods -A`);
  console.log('stop:      npm run cluster -- down');
}

async function main(command: string | undefined): Promise<void> {
  switch (command) {
    case 'up': {
      const started = Date.now();
      const env = await clusterUp({ log: (line) => console.log(`  ${line}`) });
      console.log(`cluster up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      await printEnv(env);
      return;
    }
    case 'down': {
      const restored = await clusterDown({ log: (line) => console.log(`  ${line}`) });
      if (restored.length > 0) console.log(`kernel settings put back: ${restored.join(', ')}`);
      console.log('cluster down; no process, mount, iptables rule, cgroup or link of it left');
      return;
    }
    case 'status': {
      const { env, components } = clusterStatus();
      for (const c of components) console.log(`${c.component.padEnd(24)} ${c.alive ? 'running' : 'stopped'}${c.pid ? `  pid ${c.pid}` : ''}`);
      if (env && components.every((c) => c.alive)) {
        console.log('');
        await printEnv(env);
      } else {
        process.exitCode = 1;
      }
      return;
    }
    default:
      console.error('usage: npm run cluster -- up | down | status');
      process.exitCode = 2;
  }
}

try {
  await main(process.argv[2]);
} catch (error) {
  console.error(`cluster: ${error instanceof Error ? error.message : String(error)}`);
  if (process.env.STACK_DEBUG && error instanceof Error) console.error(error);
  process.exitCode = 1;
}
