/**
 * The peer certroute is measured against: Traefik's own ACME resolver. A
 * second Traefik (the stack's binary) with a `certificatesResolvers` ACME
 * resolver on HTTP-01 and a file provider, and a second Pebble whose
 * `httpPort` is that Traefik's `web` port, so Pebble validates through the
 * peer Traefik as the stack's Pebble validates through the stack's Traefik.
 * Traefik trusts the stack's Pebble TLS root through LEGO_CA_CERTIFICATES.
 *
 * The figure: from writing a router with `tls.certResolver` to the file
 * provider's directory to the first TLS handshake on the peer's websecure
 * port that presents a certificate for the router's host, polled every 20 ms
 * like certroute's IngressRoute figure. Same provider throttle as the
 * stack's Traefik, same key type as the Certificate certroute's shim writes
 * (RSA 2048, cert-manager's default), fresh authorizations for every order.
 *
 * The peer's figure is bimodal, and that is Traefik's behaviour, not the
 * bench's: lego (Traefik's ACME library) polls the authorization again only
 * after the challenge response's Retry-After, or 5 s (randomized by ±50 %)
 * when there is none, as with Pebble and Let's Encrypt. A run in which Pebble
 * validated before answering the challenge POST takes about 0.3 s; any other
 * takes 2.5 to 7.5 s more.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { pebbleDefaultEnv, PEBBLE_PROFILES, type Binaries, type Ports } from '../../test/env/components.ts';
import { stackDir, stateFile } from '../../test/env/paths.ts';
import type { StackPki } from '../../test/env/pki.ts';
import { freePorts } from '../../test/env/ports.ts';
import { get } from '../../test/env/probe.ts';
import { killGroup, launch, logSize, waitReady } from '../../test/env/proc.ts';
import { readJson } from '../../test/env/stack.ts';
import { servesName, startBackend, waitServed, type Backend } from './traefik.ts';

const loopback = '127.0.0.1';
const TIMEOUT_MS = 60_000;
const RESOLVER = 'peer';

/** What the peer needs from the running stack: its binaries, its PKI and its DNS. */
interface StackState {
  bins: Pick<Binaries, 'traefik' | 'pebble'>;
  ports: Pick<Ports, 'bindDns'>;
  pki: Pick<StackPki, 'caCert' | 'pebbleCert' | 'pebbleKey'>;
}

export interface PeerResolver {
  /** Milliseconds from writing a router for a fresh host to the peer serving its certificate. */
  once(name: string): Promise<number>;
  close(): Promise<void>;
}

/** Starts the second Pebble and the second Traefik; `close()` stops both and removes their files. */
export async function startPeerResolver(stamp: string): Promise<PeerResolver> {
  const state = readJson<StackState>(stateFile);
  if (!state) throw new Error(`no local stack: ${stateFile} is missing; run \`npm run stack -- up\``);
  const dir = join(stackDir, `peer-resolver-${stamp}`);
  const dynamicDir = join(dir, 'dynamic');
  mkdirSync(dynamicDir, { recursive: true });
  const [pebble, pebbleManagement, web, websecure, api] = (await freePorts(5)) as [number, number, number, number, number];
  const groups: number[] = [];
  let backend: Backend | undefined;
  const close = async (): Promise<void> => {
    for (const pgid of groups.reverse()) await killGroup(pgid).catch(() => undefined);
    await backend?.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const pebbleConfig = join(dir, 'pebble-config.json');
    writeFileSync(pebbleConfig, JSON.stringify({
      pebble: {
        listenAddress: `${loopback}:${pebble}`,
        managementListenAddress: `${loopback}:${pebbleManagement}`,
        certificate: state.pki.pebbleCert,
        privateKey: state.pki.pebbleKey,
        httpPort: web,
        tlsPort: websecure,
        profiles: PEBBLE_PROFILES,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }));
    const pebbleLog = 'peer-pebble';
    const pebbleOffset = logSize(pebbleLog);
    const pebblePid = launch(pebbleLog, {
      command: state.bins.pebble,
      args: ['-config', pebbleConfig, '-dnsserver', `${loopback}:${state.ports.bindDns}`],
      env: pebbleDefaultEnv,
      cwd: dir,
    });
    groups.push(pebblePid);
    await waitReady(pebbleLog, pebblePid, async () => (await get(`https://${loopback}:${pebble}/dir`, { ca: readFileSync(state.pki.caCert) })).status === 200, 30_000, pebbleOffset);

    const traefikConfig = join(dir, 'traefik.yml');
    writeFileSync(traefikConfig, stringify({
      global: { checkNewVersion: false, sendAnonymousUsage: false },
      entryPoints: {
        web: { address: `${loopback}:${web}` },
        websecure: { address: `${loopback}:${websecure}`, http: { tls: {} } },
        traefik: { address: `${loopback}:${api}` },
      },
      ping: {},
      log: { level: 'INFO', format: 'common', noColor: true },
      providers: {
        // The stack's Traefik's throttle: both see a new router after the same delay.
        providersThrottleDuration: '100ms',
        file: { directory: dynamicDir, watch: true },
      },
      certificatesResolvers: {
        [RESOLVER]: {
          acme: {
            email: 'bench@example.com',
            storage: join(dir, 'acme.json'),
            caServer: `https://${loopback}:${pebble}/dir`,
            keyType: 'RSA2048',
            httpChallenge: { entryPoint: 'web' },
          },
        },
      },
    }));
    const traefikLog = 'peer-traefik';
    const traefikOffset = logSize(traefikLog);
    const traefikPid = launch(traefikLog, {
      command: state.bins.traefik,
      args: [`--configFile=${traefikConfig}`],
      env: { LEGO_CA_CERTIFICATES: state.pki.caCert },
      cwd: dir,
    });
    groups.push(traefikPid);
    await waitReady(traefikLog, traefikPid, async () => (await get(`http://${loopback}:${api}/ping`)).status === 200, 30_000, traefikOffset);
    backend = await startBackend();
    const backendUrl = `http://${loopback}:${backend.port}`;

    return {
      async once(name: string): Promise<number> {
        const host = `${name}.${stamp}.peer.latency.test`;
        const file = join(dynamicDir, `${name}.yml`);
        const router = { rule: `Host(\`${host}\`)`, entryPoints: ['websecure'], service: name, tls: { certResolver: RESOLVER } };
        const tmp = join(dir, `${name}.yml.tmp`);
        writeFileSync(tmp, stringify({ http: { routers: { [name]: router }, services: { [name]: { loadBalancer: { servers: [{ url: backendUrl }] } } } } }));
        const start = performance.now();
        // A rename, so the file provider never reads half a file.
        renameSync(tmp, file);
        return Math.round((await waitServed(websecure, host, servesName(host), TIMEOUT_MS)) - start);
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
