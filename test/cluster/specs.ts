/**
 * How each host process of the cluster starts: the control plane (etcd, kube-apiserver,
 * kube-controller-manager, kube-scheduler), the node (containerd, kubelet, kube-proxy) and the
 * public CA outside the cluster (Pebble and challtestsrv). Every file a program writes is under
 * `.cluster/`, every listener is on loopback or on the cluster's own bridge, and every setting
 * that would change the host beyond that is turned off or noted in host.ts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { PEBBLE_PROFILES, pebbleDefaultEnv } from '../env/components.ts';
export { challtestsrvSpec } from '../env/components.ts';
import type { StackPki } from '../env/pki.ts';
import type { LaunchSpec } from '../env/proc.ts';
import { clusterDir, clusterKubeconfig, clusterLogsDir, cniDir, containerdDir, containerdSocket, kubeletDir, network, nodeName } from './paths.ts';

export const clusterComponents = [
  'etcd', 'kube-apiserver', 'containerd', 'kube-controller-manager', 'kube-scheduler', 'kubelet', 'kube-proxy', 'challtestsrv', 'pebble',
] as const;
export type ClusterComponent = (typeof clusterComponents)[number];

export interface ClusterPorts {
  etcdClient: number;
  etcdPeer: number;
  apiserver: number;
  controllerManager: number;
  scheduler: number;
  kubelet: number;
  kubeletHealthz: number;
  proxyHealthz: number;
  proxyMetrics: number;
  pebble: number;
  pebbleManagement: number;
  challtestsrvDns: number;
  challtestsrvManagement: number;
  /** Traefik's `web` and `websecure` host ports. */
  web: number;
  websecure: number;
}

export interface ClusterBinaries {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kubelet: string;
  kubeProxy: string;
  kubectl: string;
  pebble: string;
  challtestsrv: string;
}

const loopback = '127.0.0.1';

function write(file: string, content: string): string {
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, content);
  return file;
}

export function etcdSpec(bins: ClusterBinaries, ports: ClusterPorts): LaunchSpec {
  const client = `http://${loopback}:${ports.etcdClient}`;
  const peer = `http://${loopback}:${ports.etcdPeer}`;
  return {
    command: bins.etcd,
    args: [
      '--name=cluster', `--data-dir=${join(clusterDir, 'etcd')}`,
      `--listen-client-urls=${client}`, `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`, `--initial-advertise-peer-urls=${peer}`, `--initial-cluster=cluster=${peer}`,
      '--unsafe-no-fsync', '--log-level=warn',
    ],
    env: {},
    cwd: clusterDir,
  };
}

/** Metadata for every request: the RBAC test reads the responses the controller got. */
const auditPolicy = { apiVersion: 'audit.k8s.io/v1', kind: 'Policy', omitStages: ['RequestReceived'], rules: [{ level: 'Metadata' }] };

export const auditLog = join(clusterLogsDir, 'audit.log');

export function apiserverSpec(bins: ClusterBinaries, ports: ClusterPorts, pki: StackPki): LaunchSpec {
  const policy = write(join(clusterDir, 'audit-policy.yaml'), stringify(auditPolicy));
  return {
    command: bins.kubeApiserver,
    args: [
      `--etcd-servers=http://${loopback}:${ports.etcdClient}`,
      // On the bridge: pods reach it through the `kubernetes` Service, the host directly.
      `--bind-address=${network.nodeIp}`, `--advertise-address=${network.nodeIp}`, `--secure-port=${ports.apiserver}`,
      `--tls-cert-file=${pki.apiserverCert}`, `--tls-private-key-file=${pki.apiserverKey}`,
      `--client-ca-file=${pki.caCert}`,
      `--kubelet-client-certificate=${pki.adminCert}`, `--kubelet-client-key=${pki.adminKey}`,
      // The node's name resolves nowhere; its InternalIP is the bridge address.
      '--kubelet-preferred-address-types=InternalIP',
      '--authorization-mode=Node,RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.serviceAccountPub}`,
      `--service-account-signing-key-file=${pki.serviceAccountKey}`,
      `--service-cluster-ip-range=${network.serviceCidr}`,
      `--audit-policy-file=${policy}`, `--audit-log-path=${auditLog}`, '--audit-log-maxsize=200',
      `--cert-dir=${join(clusterDir, 'apiserver-certs')}`,
      '--profiling=false',
    ],
    env: {},
    cwd: clusterDir,
  };
}

export function controllerManagerSpec(bins: ClusterBinaries, ports: ClusterPorts, pki: StackPki): LaunchSpec {
  return {
    command: bins.kubeControllerManager,
    args: [
      `--kubeconfig=${clusterKubeconfig}`,
      `--authentication-kubeconfig=${clusterKubeconfig}`, `--authorization-kubeconfig=${clusterKubeconfig}`,
      `--bind-address=${loopback}`, `--secure-port=${ports.controllerManager}`,
      `--cert-dir=${join(clusterDir, 'controller-manager-certs')}`,
      '--leader-elect=false',
      // Each controller with its own ServiceAccount, so RBAC applies to them as in a real cluster.
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${pki.serviceAccountKey}`,
      `--root-ca-file=${pki.caCert}`,
      `--service-cluster-ip-range=${network.serviceCidr}`,
      // host-local IPAM hands out pod addresses; no node CIDRs to allocate.
      '--allocate-node-cidrs=false',
      '--controllers=*,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller',
    ],
    env: {},
    cwd: clusterDir,
  };
}

export function schedulerSpec(bins: ClusterBinaries, ports: ClusterPorts): LaunchSpec {
  return {
    command: bins.kubeScheduler,
    args: [
      `--kubeconfig=${clusterKubeconfig}`,
      `--authentication-kubeconfig=${clusterKubeconfig}`, `--authorization-kubeconfig=${clusterKubeconfig}`,
      `--bind-address=${loopback}`, `--secure-port=${ports.scheduler}`,
      `--cert-dir=${join(clusterDir, 'scheduler-certs')}`,
      '--leader-elect=false',
    ],
    env: {},
    cwd: clusterDir,
  };
}

export function containerdSpec(pauseImage: string): LaunchSpec {
  const q = JSON.stringify;
  const config = `version = 2
root = ${q(join(containerdDir, 'root'))}
state = ${q(join(containerdDir, 'state'))}
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]

[grpc]
  address = ${q(containerdSocket)}

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(join(containerdDir, 'opt'))}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(pauseImage)}
  # Root here lacks CAP_SYS_RESOURCE: without this every sandbox fails with
  # "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = ${q(join(cniDir, 'net.d'))}
`;
  const file = write(join(containerdDir, 'config.toml'), config);
  write(join(cniDir, 'net.d', '10-certroute.conflist'), JSON.stringify(cniConfig(), null, 2) + '\n');
  return { command: '/usr/bin/containerd', args: ['--config', file], env: {}, cwd: containerdDir };
}

/** One bridge with the node's address as gateway, host-local addresses, and host ports. */
function cniConfig(): unknown {
  return {
    cniVersion: '1.0.0',
    name: 'certroute-cluster',
    plugins: [
      {
        type: 'bridge', bridge: network.bridge, isGateway: true, ipMasq: false, hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: network.podCidr, gateway: network.nodeIp }]],
          routes: [{ dst: '0.0.0.0/0' }],
          dataDir: join(cniDir, 'ipam'),
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

export function kubeletSpec(bins: ClusterBinaries, ports: ClusterPorts, pki: StackPki): LaunchSpec {
  const config = {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: network.nodeIp,
    port: ports.kubelet,
    readOnlyPort: 0,
    healthzBindAddress: loopback,
    healthzPort: ports.kubeletHealthz,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: pki.caCert } },
    authorization: { mode: 'Webhook' },
    // cgroup v1 (hybrid) here; kubelet >= 1.35 refuses it unless told. containerd 1.6 cannot
    // report its cgroup driver (RuntimeConfig came in 2.0), so kubelet takes this one.
    failCgroupV1: false,
    cgroupDriver: 'cgroupfs',
    containerRuntimeEndpoint: `unix://${containerdSocket}`,
    clusterDNS: [network.dnsServiceIp],
    clusterDomain: 'cluster.local',
    failSwapOn: false,
    podLogsDir: join(clusterLogsDir, 'pods'),
    volumePluginDir: join(kubeletDir, 'volume-plugins'),
    // A shared machine: only evict when it is really out of room.
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
    imageGCHighThresholdPercent: 100,
    serializeImagePulls: false,
    syncFrequency: '10s',
    fileCheckFrequency: '10s',
    nodeStatusUpdateFrequency: '5s',
    protectKernelDefaults: false,
    rotateCertificates: false,
    serverTLSBootstrap: false,
  };
  const file = write(join(kubeletDir, 'config.yaml'), stringify(config));
  return {
    command: bins.kubelet,
    args: [
      `--config=${file}`, `--kubeconfig=${clusterKubeconfig}`, `--root-dir=${kubeletDir}`,
      `--hostname-override=${nodeName}`, `--node-ip=${network.nodeIp}`,
    ],
    env: {},
    cwd: kubeletDir,
  };
}

export function kubeProxySpec(bins: ClusterBinaries, ports: ClusterPorts): LaunchSpec {
  const config = {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    mode: 'iptables',
    clientConnection: { kubeconfig: clusterKubeconfig },
    hostnameOverride: nodeName,
    clusterCIDR: network.podCidr,
    bindAddress: network.nodeIp,
    healthzBindAddress: `${loopback}:${ports.proxyHealthz}`,
    metricsBindAddress: `${loopback}:${ports.proxyMetrics}`,
    // NodePorts only on the bridge: never on loopback, where other programs of this host listen.
    nodePortAddresses: [`${network.nodeIp}/32`],
    // Pod → Service → pod on one bridge: masquerading makes replies go back through the host.
    iptables: { masqueradeAll: true, localhostNodePorts: false, syncPeriod: '30s', minSyncPeriod: '0s' },
    // Leave the host's conntrack limits and timeouts as they are.
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
  };
  const file = write(join(clusterDir, 'kube-proxy.yaml'), stringify(config));
  return { command: bins.kubeProxy, args: [`--config=${file}`], env: {}, cwd: clusterDir };
}

/**
 * Pebble as a public CA outside the cluster: its ACME API on the bridge, where pods reach it;
 * validations go to 127.0.0.1 (challtestsrv answers every name with it) on Traefik's host ports.
 */
export function pebbleSpec(bins: ClusterBinaries, ports: ClusterPorts, pki: StackPki): LaunchSpec {
  const dir = join(clusterDir, 'pebble');
  const config = {
    pebble: {
      listenAddress: `${network.nodeIp}:${ports.pebble}`,
      managementListenAddress: `${loopback}:${ports.pebbleManagement}`,
      certificate: pki.pebbleCert,
      privateKey: pki.pebbleKey,
      httpPort: ports.web,
      tlsPort: ports.websecure,
      profiles: PEBBLE_PROFILES,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
    },
  };
  const file = write(join(dir, 'pebble-config.json'), JSON.stringify(config, null, 2) + '\n');
  return {
    command: bins.pebble,
    args: ['-config', file, '-dnsserver', `${loopback}:${ports.challtestsrvDns}`],
    env: { ...pebbleDefaultEnv },
    cwd: dir,
  };
}
