/**
 * certroute's CRDs on the real local stack, driven by the real kubectl:
 * - cert-manager's documented manifests apply unchanged;
 * - manifests that use a field wrongly, or a cert-manager field certroute does not implement, are
 *   rejected at `kubectl apply`, with an error that names the field and says what to fix.
 *
 * Objects live in the namespaces `sandbox` (the docs' Certificate names it) and
 * `certroute-crds-test`, which are created if missing and never deleted: a bare kube-apiserver
 * has no namespace controller, so a deleted namespace would stay Terminating for good.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { stringify } from 'yaml';
import { kubectlPath, readEnv, type StackEnv } from '../env/stack.ts';
import { applyCrds } from '../helpers/crds.ts';

const ns = 'certroute-crds-test';

let env: StackEnv;
let kubectlBin: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

// kubectl is a heavy process; a few at a time keep a small machine responsive.
let running = 0;
const waiting: Array<() => void> = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= 4) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** Runs the real kubectl against the stack; resolves with the exit code instead of throwing. */
function kubectl(args: string[], input?: string): Promise<Run> {
  return slot(() => new Promise((resolve) => {
    const child = execFile(kubectlBin, ['--kubeconfig', env.kubeconfig, ...args], { maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end(input ?? '');
  }));
}

async function mustKubectl(args: string[], input?: string): Promise<string> {
  const result = await kubectl(args, input);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${result.stderr.trim()}`);
  return result.stdout;
}

function toYaml(objects: object[]): string {
  return objects.map((o) => stringify(o)).join('---\n');
}

test.before(async () => {
  env = readEnv();
  kubectlBin = await kubectlPath();
  await applyCrds(env.kubeconfig);
  await mustKubectl(['apply', '-f', '-'], toYaml(['sandbox', ns].map((name) => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }))));
});

// ---------------------------------------------------------------------------------------------
// cert-manager's documentation, verbatim apart from the ingress class (traefik, not nginx).

/** The ClusterIssuers of cert-manager's ACME docs, for Let's Encrypt staging and production. */
const letsEncryptClusterIssuers = `apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata:
  name: letsencrypt-staging
spec:
  acme:
    # You must replace this email address with your own.
    # Let's Encrypt will use this to contact you about expiring
    # certificates, and issues related to your account.
    email: user@example.com
    server: https://acme-staging-v02.api.letsencrypt.org/directory
    privateKeySecretRef:
      # Secret resource that will be used to store the account's private key.
      name: letsencrypt-staging
    # Add a single challenge solver, HTTP01 using traefik
    solvers:
    - http01:
        ingress:
          class: traefik
---
apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata:
  name: letsencrypt-production
spec:
  acme:
    # You must replace this email address with your own.
    # Let's Encrypt will use this to contact you about expiring
    # certificates, and issues related to your account.
    email: user@example.com
    server: https://acme-v02.api.letsencrypt.org/directory
    privateKeySecretRef:
      # Secret resource that will be used to store the account's private key.
      name: letsencrypt-production
    # Add a single challenge solver, HTTP01 using traefik
    solvers:
    - http01:
        ingress:
          class: traefik
`;

/** The docs' ClusterIssuer with external account binding, spelling the class ingressClassName. */
const eabClusterIssuer = `apiVersion: cert-manager.io/v1
kind: ClusterIssuer
metadata:
  name: my-acme-server-with-eab
spec:
  acme:
    email: user@example.com
    server: https://my-acme-server-with-eab.com/directory
    externalAccountBinding:
      keyID: my-keyID-1
      keySecretRef:
        name: eab-secret
        key: secret
    privateKeySecretRef:
      name: example-issuer-account-key
    solvers:
    - http01:
        ingress:
          ingressClassName: traefik
`;

/** The exhaustive example Certificate of cert-manager's "Certificate resource" page. */
const docsCertificate = `apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: example-com
  namespace: sandbox
spec:
  # Secret names are always required.
  secretName: example-com-tls

  # secretTemplate is optional. If set, these annotations and labels will be
  # copied to the Secret named example-com-tls. These labels and annotations will
  # be re-reconciled if the Certificate's secretTemplate changes. secretTemplate
  # is also enforced, so relevant label and annotation changes on the Secret by a
  # third party will be overwriten by cert-manager to match the secretTemplate.
  secretTemplate:
    annotations:
      my-secret-annotation-1: "foo"
      my-secret-annotation-2: "bar"
    labels:
      my-secret-label: foo

  duration: 2160h # 90d
  renewBefore: 360h # 15d
  subject:
    organizations:
      - jetstack
  # The use of the common name field has been deprecated since 2000 and is
  # discouraged from being used.
  commonName: example.com
  isCA: false
  privateKey:
    algorithm: RSA
    encoding: PKCS1
    size: 2048
  usages:
    - server auth
    - client auth
  # At least one of a DNS Name, URI, or IP address is required.
  dnsNames:
    - example.com
    - www.example.com
  uris:
    - spiffe://cluster.local/ns/sandbox/sa/example
  ipAddresses:
    - 192.168.0.5
  # Issuer references are always required.
  issuerRef:
    name: ca-issuer
    # We can reference ClusterIssuers by changing the kind here.
    # The default value is Issuer (i.e. a locally namespaced Issuer)
    kind: Issuer
    # This is optional since cert-manager will default to this value however
    # if you are using an external issuer, change this to that issuer group.
    group: cert-manager.io
`;

test.serial("cert-manager's Let's Encrypt ClusterIssuers with ingress class traefik apply unchanged", async (t) => {
  try {
    const out = await mustKubectl(['apply', '-f', '-'], letsEncryptClusterIssuers);
    t.regex(out, /clusterissuer\.cert-manager\.io\/letsencrypt-staging (created|configured|unchanged)/);
    t.regex(out, /clusterissuer\.cert-manager\.io\/letsencrypt-production (created|configured|unchanged)/);
    const stored = JSON.parse(await mustKubectl(['get', 'clusterissuer', 'letsencrypt-staging', '-o', 'json'])) as {
      spec: { acme: { solvers: Array<{ http01: { ingress: { class: string } } }> } };
    };
    t.deepEqual(stored.spec.acme.solvers, [{ http01: { ingress: { class: 'traefik' } } }], 'nothing was pruned');
    const table = await mustKubectl(['get', 'ciss', 'letsencrypt-staging', 'letsencrypt-production']);
    t.regex(table.split('\n')[0]!, /^NAME\s+READY\s+AGE$/);
  } finally {
    await kubectl(['delete', '--wait=false', '--ignore-not-found', 'clusterissuer', 'letsencrypt-staging', 'letsencrypt-production']);
  }
});

test.serial("cert-manager's ClusterIssuer with external account binding and ingressClassName applies unchanged", async (t) => {
  try {
    const out = await mustKubectl(['apply', '-f', '-'], eabClusterIssuer);
    t.regex(out, /clusterissuer\.cert-manager\.io\/my-acme-server-with-eab (created|configured|unchanged)/);
  } finally {
    await kubectl(['delete', '--wait=false', '--ignore-not-found', 'clusterissuer', 'my-acme-server-with-eab']);
  }
});

test.serial("cert-manager's documented example Certificate applies unchanged and lists like cert-manager's", async (t) => {
  try {
    const out = await mustKubectl(['apply', '-f', '-'], docsCertificate);
    t.regex(out, /certificate\.cert-manager\.io\/example-com (created|configured|unchanged)/);
    const stored = JSON.parse(await mustKubectl(['get', '-n', 'sandbox', 'certificate', 'example-com', '-o', 'json'])) as { spec: Record<string, unknown> };
    t.deepEqual(Object.keys(stored.spec).sort(), [
      'commonName', 'dnsNames', 'duration', 'ipAddresses', 'isCA', 'issuerRef', 'privateKey', 'renewBefore',
      'secretName', 'secretTemplate', 'subject', 'uris', 'usages',
    ], 'nothing was pruned');
    const table = await mustKubectl(['get', '-n', 'sandbox', 'cert', 'example-com']);
    t.regex(table.split('\n')[0]!, /^NAME\s+READY\s+SECRET\s+AGE$/);
    t.regex(table.split('\n')[1]!, /^example-com\s+example-com-tls\s+\S+$/);
    const wide = await mustKubectl(['get', '-n', 'sandbox', 'certs', 'example-com', '-o', 'wide']);
    t.regex(wide.split('\n')[0]!, /^NAME\s+READY\s+SECRET\s+ISSUER\s+STATUS\s+AGE$/);
    t.regex(wide.split('\n')[1]!, /^example-com\s+example-com-tls\s+ca-issuer\s+\S+$/);
    const category = await mustKubectl(['get', '-n', 'sandbox', 'cert-manager', '-o', 'name']);
    t.true(category.split('\n').includes('certificate.cert-manager.io/example-com'), 'the cert-manager category lists Certificates');
  } finally {
    await kubectl(['delete', '--wait=false', '--ignore-not-found', '-n', 'sandbox', 'certificate', 'example-com']);
  }
});

// ---------------------------------------------------------------------------------------------
// Valid manifests at the edges of the rules, which must not be rejected.

type Obj = Record<string, any>;

function certificate(name: string, spec: Obj): Obj {
  return {
    apiVersion: 'cert-manager.io/v1', kind: 'Certificate', metadata: { name, namespace: ns },
    spec: { secretName: `${name}-tls`, issuerRef: { name: 'some-issuer', kind: 'ClusterIssuer' }, ...spec },
  };
}

function clusterIssuer(name: string, spec: Obj): Obj {
  return { apiVersion: 'cert-manager.io/v1', kind: 'ClusterIssuer', metadata: { name }, spec };
}

function issuer(name: string, spec: Obj): Obj {
  return { apiVersion: 'cert-manager.io/v1', kind: 'Issuer', metadata: { name, namespace: ns }, spec };
}

const acme = (extra: Obj = {}): Obj => ({
  acme: {
    server: 'https://127.0.0.1:14000/dir',
    email: 'ops@example.com',
    privateKeySecretRef: { name: 'acme-account-key' },
    solvers: [{ http01: { ingress: { ingressClassName: 'traefik' } } }],
    ...extra,
  },
});

const accepted: Array<[string, Obj]> = [
  // cert-manager's documentation, "The HTTP-01 solver" for Gateway API users:
  // solvers: [{ http01: { gatewayHTTPRoute: { parentRefs: [{ name: traefik, namespace: traefik, kind: Gateway }] } } }]
  ['a Gateway API HTTP-01 solver, as in cert-manager\'s documentation', clusterIssuer('crds-test-ok-gateway', {
    acme: {
      server: 'https://127.0.0.1:14000/dir', privateKeySecretRef: { name: 'k' },
      solvers: [{ http01: { gatewayHTTPRoute: { parentRefs: [{ name: 'traefik', namespace: 'traefik', kind: 'Gateway' }] } } }],
    },
  })],
  ['a wildcard and a single-label DNS name', certificate('ok-wildcard', { dnsNames: ['*.example.com', 'localhost'] })],
  ['only IP addresses, v4 and v6', certificate('ok-ips', { ipAddresses: ['10.0.0.1', '2001:db8::1'] })],
  ['only a URI', certificate('ok-uri', { uris: ['spiffe://cluster.local/ns/default/sa/app'] })],
  ['renewBeforePercentage instead of renewBefore', certificate('ok-percentage', { dnsNames: ['a.example.com'], duration: '1h', renewBeforePercentage: 10 })],
  ['exactly 1h and 5m in compound Go durations', certificate('ok-durations', { dnsNames: ['a.example.com'], duration: '0h60m', renewBefore: '4m60s' })],
  ['an ECDSA P-384 key and an Ed25519 key without a size', certificate('ok-ecdsa', { dnsNames: ['a.example.com'], privateKey: { algorithm: 'ECDSA', size: 384, encoding: 'PKCS8', rotationPolicy: 'Never' } })],
  ['an Ed25519 key', certificate('ok-ed25519', { dnsNames: ['a.example.com'], privateKey: { algorithm: 'Ed25519' }, revisionHistoryLimit: 3 })],
  ['an issuerRef with only a name', { ...certificate('ok-issuerref', { dnsNames: ['a.example.com'] }), spec: { secretName: 'x', dnsNames: ['a.example.com'], issuerRef: { name: 'local' } } }],
  ['an ACME issuer on an IP and port with caBundle, an empty http01 solver and a certroute wait', clusterIssuer('crds-test-ok-acme', {
    acme: {
      server: 'https://127.0.0.1:14000/dir', privateKeySecretRef: { name: 'k', key: 'tls.key' },
      caBundle: Buffer.from('-----BEGIN CERTIFICATE-----\n').toString('base64'), preferredChain: 'ISRG Root X1',
      disableAccountKeyGeneration: false,
      solvers: [
        { http01: {}, selector: { dnsZones: ['example.com'] } },
        { http01: { ingress: { class: 'traefik', serviceType: 'ClusterIP', podTemplate: { spec: { nodeSelector: { 'kubernetes.io/os': 'linux' } } } }, certroute: { waitInsteadOfSelfCheck: '30s' } } },
      ],
    },
  })],
  ['DNS-01 solvers for Cloudflare and RFC2136', clusterIssuer('crds-test-ok-dns01', acme({
    solvers: [
      { dns01: { cloudflare: { apiTokenSecretRef: { name: 'cf', key: 'token' } } }, selector: { dnsNames: ['*.example.com'] } },
      { dns01: { cloudflare: { email: 'ops@example.com', apiKeySecretRef: { name: 'cf', key: 'key' } } } },
      { dns01: { cnameStrategy: 'None', rfc2136: { nameserver: '[2001:db8::53]:53', tsigKeyName: 'k', tsigAlgorithm: 'HMACSHA256', tsigSecretSecretRef: { name: 't', key: 's' }, protocol: 'TCP' } } },
      { dns01: { cnameStrategy: 'Follow', rfc2136: { nameserver: '192.0.2.53' } } },
    ],
  }))],
  ['both additional output formats, as cert-manager documents them', certificate('ok-formats', { dnsNames: ['a.example.com'], additionalOutputFormats: [{ type: 'CombinedPEM' }, { type: 'DER' }] })],
  ['an RFC 4514 literalSubject alone', certificate('ok-literal', { literalSubject: 'CN=foo,DC=corp,DC=example,DC=com' })],
  ['only email addresses and a UPN otherName', certificate('ok-emails', { emailAddresses: ['a@example.com'], otherNames: [{ oid: '1.3.6.1.4.1.311.20.2.3', utf8Value: 'upn@example.local' }] })],
  ['a CA with name constraints and an ECDSA signature algorithm', certificate('ok-constraints', {
    commonName: 'ca', isCA: true, privateKey: { algorithm: 'ECDSA', size: 384 }, signatureAlgorithm: 'ECDSAWithSHA512',
    nameConstraints: { critical: true, permitted: { dnsDomains: ['example.com'], ipRanges: ['10.0.0.0/8', '2001:db8::/32'], emailAddresses: ['example.com'], uriDomains: ['.example.com'] }, excluded: { dnsDomains: ['bad.example.com'] } },
  })],
  ['encodeUsagesInRequest false', certificate('ok-nousages', { dnsNames: ['a.example.com'], encodeUsagesInRequest: false })],
  ['a CA issuer with OCSP servers and issuing certificate URLs', issuer('ok-ca-aia', { ca: { secretName: 'root-ca', ocspServers: ['http://ocsp.example.com'], issuingCertificateURLs: ['http://ca.example.com/ca.crt'] } })],
  ['a certroute TLS-ALPN-01 solver, with and without entry points', clusterIssuer('crds-test-ok-tls-alpn', acme({
    solvers: [{ certroute: { tlsAlpn01: {} }, selector: { dnsNames: ['tcp.example.com'] } }, { certroute: { tlsAlpn01: { entryPoints: ['websecure', 'tls-edge'] } } }],
  }))],
  ['a SelfSigned issuer', clusterIssuer('crds-test-ok-selfsigned', { selfSigned: {} })],
  ['a CA issuer with CRL distribution points', issuer('ok-ca', { ca: { secretName: 'root-ca', crlDistributionPoints: ['http://crl.example.com/ca.crl'] } })],
];

function ref(o: Obj): string[] {
  return o.metadata.namespace ? ['-n', o.metadata.namespace, o.kind, o.metadata.name] : [o.kind, o.metadata.name];
}

for (const [what, manifest] of accepted) {
  test(`kubectl apply accepts ${what}`, async (t) => {
    try {
      const result = await kubectl(['apply', '-f', '-'], toYaml([manifest]));
      t.is(result.code, 0, result.stderr);
    } finally {
      await kubectl(['delete', '--wait=false', '--ignore-not-found', ...ref(manifest)]);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Bad manifests: each is rejected, and the error names the field and says what to fix.

interface Rejection {
  manifest: Obj;
  /** The field path the error must name, as kubectl prints it. */
  field: string;
  /** A fragment of the message. */
  says: string;
}

const good = { dnsNames: ['a.example.com'] };

const rejected: Array<[string, Rejection]> = [
  ['a Certificate that names no identity', {
    manifest: certificate('bad-identity', {}), field: 'spec', says: 'set spec.commonName or spec.dnsNames',
  }],
  ['a DNS name with capitals', {
    manifest: certificate('bad-dns-case', { dnsNames: ['a.example.com', 'WWW.example.com'] }), field: 'spec.dnsNames[1]', says: 'is not a valid DNS name',
  }],
  ['a DNS name with an empty label', {
    manifest: certificate('bad-dns-label', { dnsNames: ['a..example.com'] }), field: 'spec.dnsNames[0]', says: 'is not a valid DNS name',
  }],
  ['a wildcard that is not the leftmost label', {
    manifest: certificate('bad-dns-wildcard', { dnsNames: ['www.*.example.com'] }), field: 'spec.dnsNames[0]', says: 'optionally starting with "*."',
  }],
  ['a duration in days', {
    manifest: certificate('bad-duration-days', { ...good, duration: '90d' }), field: 'spec.duration', says: 'is not a Go duration',
  }],
  ['a duration under 1h', {
    manifest: certificate('bad-duration-short', { ...good, duration: '59m' }), field: 'spec.duration', says: 'it must be at least 1h',
  }],
  ['a renewBefore under 5m', {
    manifest: certificate('bad-renew-short', { ...good, renewBefore: '299s' }), field: 'spec.renewBefore', says: 'it must be at least 5m',
  }],
  ['a renewBefore as long as the duration', {
    manifest: certificate('bad-renew-long', { ...good, duration: '24h', renewBefore: '1440m' }), field: 'spec.renewBefore', says: 'must be shorter than spec.duration (24h)',
  }],
  ['a renewBefore longer than the default duration', {
    manifest: certificate('bad-renew-default', { ...good, renewBefore: '2200h' }), field: 'spec.renewBefore', says: '2160h, the default',
  }],
  ['both renewBefore and renewBeforePercentage', {
    manifest: certificate('bad-renew-both', { ...good, renewBefore: '360h', renewBeforePercentage: 20 }), field: 'spec.renewBeforePercentage', says: 'mutually exclusive',
  }],
  ['a renewBeforePercentage of 100', {
    manifest: certificate('bad-percentage', { ...good, renewBeforePercentage: 100 }), field: 'spec.renewBeforePercentage', says: 'between 1 and 99',
  }],
  ['a renewBeforePercentage that leaves under 5m', {
    manifest: certificate('bad-percentage-short', { ...good, duration: '1h', renewBeforePercentage: 8 }), field: 'spec.renewBeforePercentage', says: 'comes to less than 5m',
  }],
  ['a secretName that is not a DNS-1123 subdomain', {
    manifest: certificate('bad-secret', { ...good, secretName: 'Example_TLS' }), field: 'spec.secretName', says: 'is not a valid Secret name',
  }],
  ['an issuerRef without a name', {
    manifest: certificate('bad-issuer-missing', { ...good, issuerRef: { kind: 'ClusterIssuer' } }), field: 'spec.issuerRef.name', says: 'Required value',
  }],
  ['an empty issuerRef name', {
    manifest: certificate('bad-issuer-empty', { ...good, issuerRef: { name: '' } }), field: 'spec.issuerRef.name', says: 'must name an Issuer or ClusterIssuer',
  }],
  ['an external issuer group', {
    manifest: certificate('bad-issuer-group', { ...good, issuerRef: { name: 'x', kind: 'AWSPCAIssuer', group: 'awspca.cert-manager.io' } }), field: 'spec.issuerRef.group', says: 'certroute issues only through cert-manager.io',
  }],
  ['an ECDSA key of 2048 bits', {
    manifest: certificate('bad-key-size', { ...good, privateKey: { algorithm: 'ECDSA', size: 2048 } }), field: 'spec.privateKey.size', says: '256, 384 or 521 for ECDSA',
  }],
  ['an unknown key algorithm', {
    manifest: certificate('bad-key-algorithm', { ...good, privateKey: { algorithm: 'DSA' } }), field: 'spec.privateKey.algorithm', says: 'supported values: "RSA", "ECDSA", "Ed25519"',
  }],
  ['a misspelt usage', {
    manifest: certificate('bad-usage', { ...good, usages: ['server auth', 'client-auth'] }), field: 'spec.usages[1]', says: 'Unsupported value: "client-auth"',
  }],
  ['a revisionHistoryLimit of 0', {
    manifest: certificate('bad-history', { ...good, revisionHistoryLimit: 0 }), field: 'spec.revisionHistoryLimit', says: 'must be 1 or more',
  }],
  ['an IP address that is not one', {
    manifest: certificate('bad-ip', { ipAddresses: ['300.1.2.3'] }), field: 'spec.ipAddresses[0]', says: 'is not an IPv4 or IPv6 address',
  }],
  ['a JKS keystore without a password', {
    manifest: certificate('bad-keystores', { ...good, keystores: { jks: { create: true } } }), field: 'spec.keystores.jks', says: 'set exactly one of spec.keystores.jks.password',
  }],
  ['a PKCS#12 keystore with both a password and a password Secret', {
    manifest: certificate('bad-pkcs12', { ...good, keystores: { pkcs12: { create: true, password: 'x', passwordSecretRef: { name: 'p', key: 'k' } } } }), field: 'spec.keystores.pkcs12', says: 'set exactly one of spec.keystores.pkcs12.password',
  }],
  ['a literalSubject beside a commonName', {
    manifest: certificate('bad-literal', { literalSubject: 'CN=a,O=b', commonName: 'a' }), field: 'spec.literalSubject', says: 'spec.literalSubject replaces spec.commonName and spec.subject',
  }],
  ['name constraints on a certificate that is not a CA', {
    manifest: certificate('bad-constraints', { ...good, nameConstraints: { permitted: { dnsDomains: ['example.com'] } } }), field: 'spec.nameConstraints', says: 'only applies to a CA certificate',
  }],
  ['a name constraint IP range that is not CIDR', {
    manifest: certificate('bad-cidr', { ...good, isCA: true, nameConstraints: { excluded: { ipRanges: ['10.0.0.1'] } } }), field: 'spec.nameConstraints.excluded.ipRanges[0]', says: 'is not a CIDR range',
  }],
  ['an ECDSA signature algorithm for an RSA key', {
    manifest: certificate('bad-sigalg', { ...good, signatureAlgorithm: 'ECDSAWithSHA384' }), field: 'spec.signatureAlgorithm', says: 'does not fit the key algorithm RSA',
  }],
  ['an otherName whose oid is not an OID', {
    manifest: certificate('bad-othername', { otherNames: [{ oid: 'upn', utf8Value: 'a@example.com' }] }), field: 'spec.otherNames[0].oid', says: 'is not a dotted OID',
  }],
  ['an additional output format cert-manager does not have', {
    manifest: certificate('bad-formats', { ...good, additionalOutputFormats: [{ type: 'PKCS7' }] }), field: 'spec.additionalOutputFormats[0].type', says: 'supported values: "DER", "CombinedPEM"',
  }],
  ['a field cert-manager does not have either', {
    manifest: certificate('bad-unknown', { ...good, renewBeforeDays: 30 }), field: 'spec.renewBeforeDays', says: 'unknown field',
  }],
  ['an ACME email that is not an address', {
    manifest: clusterIssuer('crds-test-bad-email', acme({ email: 'ops-at-example.com' })), field: 'spec.acme.email', says: 'is not a valid email address',
  }],
  ['an ACME server over plain http', {
    manifest: clusterIssuer('crds-test-bad-http', acme({ server: 'http://acme.example.com/directory' })), field: 'spec.acme.server', says: 'must be an https:// URL',
  }],
  ['an ACME issuer without solvers', {
    manifest: clusterIssuer('crds-test-bad-nosolver', acme({ solvers: [] })), field: 'spec.acme.solvers', says: 'add at least one solver',
  }],
  ['an ACME issuer with no privateKeySecretRef', {
    manifest: clusterIssuer('crds-test-bad-nokey', { acme: { server: 'https://acme.example.com/dir', solvers: [{ http01: {} }] } }), field: 'spec.acme.privateKeySecretRef', says: 'Required value',
  }],
  ['a solver with both http01 and dns01', {
    manifest: clusterIssuer('crds-test-bad-both', acme({ solvers: [{ http01: {}, dns01: { cloudflare: { apiTokenSecretRef: { name: 'cf' } } } }] })), field: 'spec.acme.solvers[0]', says: 'exactly one of http01 or dns01 (or certroute.tlsAlpn01)',
  }],
  ['a solver with both http01 and certroute.tlsAlpn01', {
    manifest: clusterIssuer('crds-test-bad-both-alpn', acme({ solvers: [{ http01: {}, certroute: { tlsAlpn01: {} } }] })), field: 'spec.acme.solvers[0]', says: 'exactly one of http01 or dns01 (or certroute.tlsAlpn01)',
  }],
  ['an ingress solver with both class and ingressClassName', {
    manifest: clusterIssuer('crds-test-bad-class', acme({ solvers: [{ http01: { ingress: { class: 'traefik', ingressClassName: 'traefik' } } }] })), field: 'spec.acme.solvers[0].http01.ingress', says: 'at most one of class, ingressClassName and name',
  }],
  ['a Route53 DNS-01 solver', {
    manifest: clusterIssuer('crds-test-bad-route53', acme({ solvers: [{ dns01: { route53: { region: 'eu-west-1' } } }] })), field: 'spec.acme.solvers[0].dns01.route53', says: 'certroute does not implement dns01.route53',
  }],
  ['a certroute self-check wait over 1h', {
    manifest: clusterIssuer('crds-test-bad-wait', acme({ solvers: [{ http01: { certroute: { waitInsteadOfSelfCheck: '2h' } } }] })), field: 'spec.acme.solvers[0].http01.certroute.waitInsteadOfSelfCheck', says: 'must be a Go duration between 0s and 1h',
  }],
  ['both caBundle and skipTLSVerify', {
    manifest: clusterIssuer('crds-test-bad-tls', acme({ caBundle: Buffer.from('pem').toString('base64'), skipTLSVerify: true })), field: 'spec.acme.skipTLSVerify', says: 'mutually exclusive',
  }],
  ['an issuer that is both ACME and SelfSigned', {
    manifest: clusterIssuer('crds-test-bad-twotypes', { ...acme(), selfSigned: {} }), field: 'spec', says: 'set exactly one issuer type',
  }],
  ['a Vault issuer', {
    manifest: issuer('bad-vault', { vault: { server: 'https://vault.example.com', path: 'pki/sign/x', auth: {} } }), field: 'spec.vault', says: 'certroute has no Vault issuer',
  }],
  ['a Venafi issuer', {
    manifest: clusterIssuer('crds-test-bad-venafi', { venafi: { zone: 'DevOps', cloud: { apiTokenSecretRef: { name: 'v', key: 'k' } } } }), field: 'spec.venafi', says: 'certroute has no Venafi issuer',
  }],
  ['a CA issuer with an invalid secretName', {
    manifest: issuer('bad-ca', { ca: { secretName: 'Root CA' } }), field: 'spec.ca.secretName', says: 'must be a valid Secret name',
  }],
];

for (const [what, { manifest, field, says }] of rejected) {
  test(`kubectl apply rejects ${what}, naming ${field}`, async (t) => {
    const result = await kubectl(['apply', '-f', '-'], toYaml([manifest]));
    if (result.code === 0) await kubectl(['delete', '--wait=false', '--ignore-not-found', ...ref(manifest)]);
    t.not(result.code, 0, `accepted: ${result.stdout}`);
    const stderr = result.stderr.replace(/\s+/g, ' ');
    // Field paths appear as `spec.x: ...` in validation errors and as `"spec.x"` for unknown fields.
    t.true(stderr.includes(`${field}:`) || stderr.includes(`"${field}"`), `stderr does not name ${field}: ${stderr}`);
    t.true(stderr.includes(says), `stderr does not say "${says}": ${stderr}`);
  });
}

test('the spec of a CertificateRequest cannot change after creation', async (t) => {
  const cr = {
    apiVersion: 'cert-manager.io/v1', kind: 'CertificateRequest', metadata: { name: 'immutable', namespace: ns },
    spec: { request: Buffer.from('-----BEGIN CERTIFICATE REQUEST-----\n').toString('base64'), issuerRef: { name: 'x' }, duration: '24h' },
  };
  try {
    await mustKubectl(['apply', '-f', '-'], toYaml([cr]));
    const changed = await kubectl(['apply', '-f', '-'], toYaml([{ ...cr, spec: { ...cr.spec, duration: '48h' } }]));
    t.not(changed.code, 0);
    t.regex(changed.stderr, /spec: Invalid value: .*the spec of a CertificateRequest cannot change after creation/s);
  } finally {
    await kubectl(['delete', '--wait=false', '--ignore-not-found', '-n', ns, 'certificaterequest', 'immutable']);
  }
});
