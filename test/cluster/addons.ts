/**
 * What runs as pods before any test: CoreDNS, and Traefik deployed the way the official Traefik
 * Helm chart renders it (ServiceAccount, ClusterRole and binding, Deployment, Service,
 * IngressClass), with `web` and `websecure` on host ports. `traefikManifests` also renders the
 * middleware-mode variant: the plugin volume, mount and arguments the certroute chart's NOTES.txt
 * tells a Traefik chart user to add.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { network } from './paths.ts';

type Manifest = KubernetesObject & Record<string, unknown>;

const restricted = {
  pod: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
  container: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
};

export function corednsManifests(image: string): Manifest[] {
  const labels = { 'k8s-app': 'kube-dns' };
  const metadata = { name: 'coredns', namespace: 'kube-system', labels };
  // Port 1053 in the pod: binding 53 as non-root would need a capability.
  const corefile = `.:1053 {
    errors
    health :8080
    ready :8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    cache 30
    loadbalance
    reload
}
`;
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'system:coredns', labels },
      rules: [
        { apiGroups: [''], resources: ['endpoints', 'services', 'pods', 'namespaces'], verbs: ['list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'system:coredns', labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'system:coredns' },
      subjects: [{ kind: 'ServiceAccount', name: 'coredns', namespace: 'kube-system' }],
    },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata, data: { Corefile: corefile } },
    {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata,
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: 'coredns',
            dnsPolicy: 'Default',
            priorityClassName: 'system-cluster-critical',
            securityContext: restricted.pod,
            containers: [{
              name: 'coredns', image, imagePullPolicy: 'Never',
              args: ['-conf', '/etc/coredns/Corefile'],
              ports: [{ name: 'dns', containerPort: 1053, protocol: 'UDP' }, { name: 'dns-tcp', containerPort: 1053, protocol: 'TCP' }],
              livenessProbe: { httpGet: { path: '/health', port: 8080 }, periodSeconds: 10, failureThreshold: 5 },
              readinessProbe: { httpGet: { path: '/ready', port: 8181 }, periodSeconds: 2 },
              resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '170Mi' } },
              securityContext: restricted.container,
              volumeMounts: [{ name: 'config', mountPath: '/etc/coredns', readOnly: true }],
            }],
            volumes: [{ name: 'config', configMap: { name: 'coredns' } }],
          },
        },
      },
    },
    {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'kube-dns', namespace: 'kube-system', labels },
      spec: {
        selector: labels,
        clusterIP: network.dnsServiceIp,
        ports: [
          { name: 'dns', port: 53, targetPort: 1053, protocol: 'UDP' },
          { name: 'dns-tcp', port: 53, targetPort: 1053, protocol: 'TCP' },
        ],
      },
    },
  ] as Manifest[];
}

export interface TraefikPodOptions {
  image: string;
  web: number;
  websecure: number;
  /** Middleware mode: load the certroute plugin from its ConfigMap and attach the Middleware. */
  plugin?: { configMap: string; moduleName: string; pluginName: string; middlewareRef: string };
}

/** Traefik as the official chart deploys it in namespace `traefik`, release `traefik`. */
export function traefikManifests(opts: TraefikPodOptions): Manifest[] {
  const namespace = 'traefik';
  const selector = { 'app.kubernetes.io/name': 'traefik', 'app.kubernetes.io/instance': 'traefik-traefik' };
  const labels = { ...selector, 'app.kubernetes.io/managed-by': 'Helm' };
  const args = [
    '--global.checkNewVersion=false',
    '--global.sendAnonymousUsage=false',
    '--entryPoints.metrics.address=:9100/tcp',
    '--entryPoints.traefik.address=:8080/tcp',
    '--entryPoints.web.address=:8000/tcp',
    '--entryPoints.websecure.address=:8443/tcp',
    '--api.dashboard=true',
    '--ping=true',
    '--metrics.prometheus=true',
    '--metrics.prometheus.entrypoint=metrics',
    '--providers.kubernetescrd',
    '--providers.kubernetescrd.allowEmptyServices=true',
    '--providers.kubernetesingress',
    '--providers.kubernetesingress.allowEmptyServices=true',
    `--providers.kubernetesingress.ingressendpoint.publishedservice=${namespace}/traefik`,
    '--entryPoints.websecure.http.tls=true',
    '--log.level=INFO',
  ];
  const volumes: unknown[] = [{ name: 'data', emptyDir: {} }, { name: 'tmp', emptyDir: {} }, { name: 'plugins', emptyDir: {} }];
  const mounts: unknown[] = [
    { name: 'data', mountPath: '/data' },
    { name: 'tmp', mountPath: '/tmp' },
    { name: 'plugins', mountPath: '/plugins-storage' },
  ];
  if (opts.plugin) {
    // deployment.additionalVolumes, additionalVolumeMounts and additionalArguments, as NOTES.txt gives them.
    volumes.push({ name: 'certroute-challenge-plugin', configMap: { name: opts.plugin.configMap } });
    mounts.push({ name: 'certroute-challenge-plugin', mountPath: `/plugins-local/src/${opts.plugin.moduleName}`, readOnly: true });
    args.push(
      `--experimental.localPlugins.${opts.plugin.pluginName}.moduleName=${opts.plugin.moduleName}`,
      `--entryPoints.web.http.middlewares=${opts.plugin.middlewareRef}`,
      `--entryPoints.websecure.http.middlewares=${opts.plugin.middlewareRef}`,
    );
  }
  const ping = { httpGet: { path: '/ping', port: 8080, scheme: 'HTTP' } };
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'traefik', namespace, labels }, automountServiceAccountToken: false },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'traefik-traefik', labels },
      rules: [
        { apiGroups: [''], resources: ['configmaps', 'nodes', 'services'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
        { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: ['extensions', 'networking.k8s.io'], resources: ['ingressclasses', 'ingresses'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: ['extensions', 'networking.k8s.io'], resources: ['ingresses/status'], verbs: ['update'] },
        {
          apiGroups: ['traefik.io'],
          resources: ['ingressroutes', 'ingressroutetcps', 'ingressrouteudps', 'middlewares', 'middlewaretcps', 'serverstransports', 'serverstransporttcps', 'tlsoptions', 'tlsstores', 'traefikservices'],
          verbs: ['get', 'list', 'watch'],
        },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'traefik-traefik', labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'traefik-traefik' },
      subjects: [{ kind: 'ServiceAccount', name: 'traefik', namespace }],
    },
    {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'traefik', namespace, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: selector },
        // Host ports: a second pod cannot start beside the first on one node, so replace in place.
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } },
        minReadySeconds: 0,
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: 'traefik',
            automountServiceAccountToken: true,
            terminationGracePeriodSeconds: 60,
            hostNetwork: false,
            securityContext: { ...restricted.pod },
            containers: [{
              name: 'traefik', image: opts.image, imagePullPolicy: 'Never',
              args,
              env: [
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
              ],
              ports: [
                { name: 'metrics', containerPort: 9100, protocol: 'TCP' },
                { name: 'traefik', containerPort: 8080, protocol: 'TCP' },
                { name: 'web', containerPort: 8000, hostPort: opts.web, protocol: 'TCP' },
                { name: 'websecure', containerPort: 8443, hostPort: opts.websecure, protocol: 'TCP' },
              ],
              readinessProbe: { ...ping, initialDelaySeconds: 1, periodSeconds: 2, timeoutSeconds: 2, failureThreshold: 1, successThreshold: 1 },
              livenessProbe: { ...ping, initialDelaySeconds: 2, periodSeconds: 10, timeoutSeconds: 2, failureThreshold: 3, successThreshold: 1 },
              resources: { requests: { cpu: '20m', memory: '64Mi' }, limits: { memory: '512Mi' } },
              securityContext: restricted.container,
              volumeMounts: mounts,
            }],
            volumes,
          },
        },
      },
    },
    {
      apiVersion: 'v1', kind: 'Service', metadata: { name: 'traefik', namespace, labels },
      spec: {
        type: 'ClusterIP',
        selector,
        ports: [
          { name: 'web', port: 80, targetPort: 'web', protocol: 'TCP' },
          { name: 'websecure', port: 443, targetPort: 'websecure', protocol: 'TCP' },
        ],
      },
    },
    {
      apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'traefik', labels, annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' } },
      spec: { controller: 'traefik.io/ingress-controller' },
    },
  ] as Manifest[];
}

/** The test application behind Traefik: the backend image as a Deployment and its Service. */
export function backendManifests(namespace: string, name: string, image: string): Manifest[] {
  const labels = { app: name };
  return [
    {
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            securityContext: restricted.pod,
            containers: [{
              name, image, imagePullPolicy: 'Never', args: [':8080'],
              ports: [{ name: 'http', containerPort: 8080 }],
              readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 2 },
              resources: { requests: { cpu: '5m', memory: '16Mi' }, limits: { memory: '64Mi' } },
              securityContext: restricted.container,
            }],
          },
        },
      },
    },
    { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace, labels }, spec: { selector: labels, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } },
  ] as Manifest[];
}
