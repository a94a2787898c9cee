/**
 * Fast checks on the CRD files in `crds/`, without a cluster: each parses, serves the
 * cert-manager group, version and kind it should, has a status subresource and cert-manager's
 * printer columns, and the Issuer and ClusterIssuer schemas have not drifted apart.
 */
import test from 'ava';
import { isDeepStrictEqual } from 'node:util';
import { basename } from 'node:path';
import { USAGE_NAMES } from '../../src/pki/usages.ts';
import { crdFiles, loadCrds, loadManifests, type CrdDocument } from '../helpers/crds.ts';

const expected: Record<string, { group: string; kind: string; scope: CrdDocument['spec']['scope']; shortNames?: string[]; columns: string[] }> = {
  'certificates.cert-manager.io': {
    group: 'cert-manager.io', kind: 'Certificate', scope: 'Namespaced', shortNames: ['cert', 'certs'],
    columns: ['Ready', 'Secret', 'Issuer', 'Status', 'Age'],
  },
  'issuers.cert-manager.io': {
    group: 'cert-manager.io', kind: 'Issuer', scope: 'Namespaced', shortNames: ['iss'],
    columns: ['Ready', 'Status', 'Age'],
  },
  'clusterissuers.cert-manager.io': {
    group: 'cert-manager.io', kind: 'ClusterIssuer', scope: 'Cluster', shortNames: ['ciss'],
    columns: ['Ready', 'Status', 'Age'],
  },
  'certificaterequests.cert-manager.io': {
    group: 'cert-manager.io', kind: 'CertificateRequest', scope: 'Namespaced', shortNames: ['cr', 'crs'],
    columns: ['Approved', 'Denied', 'Ready', 'Issuer', 'Requester', 'Status', 'Age'],
  },
  'orders.acme.cert-manager.io': {
    group: 'acme.cert-manager.io', kind: 'Order', scope: 'Namespaced',
    columns: ['State', 'Issuer', 'Reason', 'Age'],
  },
  'challenges.acme.cert-manager.io': {
    group: 'acme.cert-manager.io', kind: 'Challenge', scope: 'Namespaced',
    columns: ['State', 'Domain', 'Reason', 'Age'],
  },
};

const crds = loadCrds();
const byName = new Map(crds.map(({ crd }) => [crd.metadata.name, crd]));

function v1(crd: CrdDocument) {
  const version = crd.spec.versions.find((v) => v.name === 'v1');
  if (!version) throw new Error(`${crd.metadata.name} has no v1`);
  return version;
}

type Schema = {
  type?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  additionalProperties?: Schema | boolean;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-validations'?: Array<{ rule: string; message?: string; messageExpression?: string }>;
};

function schemaOf(crd: CrdDocument): Schema {
  return v1(crd).schema.openAPIV3Schema as Schema;
}

/** Calls `visit` on every sub-schema with its path, e.g. `.spec.dnsNames[]`. */
function walk(schema: Schema, path: string, visit: (s: Schema, path: string) => void): void {
  visit(schema, path);
  for (const [key, child] of Object.entries(schema.properties ?? {})) walk(child, `${path}.${key}`, visit);
  if (schema.items) walk(schema.items, `${path}[]`, visit);
  if (typeof schema.additionalProperties === 'object') walk(schema.additionalProperties, `${path}{}`, visit);
}

test('crds/ holds exactly one file per kind, each a single apiextensions.k8s.io/v1 CustomResourceDefinition, and the admission policies', (t) => {
  const others = loadManifests().filter(({ doc }) => doc.kind !== 'CustomResourceDefinition');
  t.deepEqual(others.map(({ file, doc }) => `${basename(file)} ${doc.kind} ${doc.metadata.name}`), [
    'certroute.io_admission-policy.yaml ValidatingAdmissionPolicy certroute-acme-spec-writers',
    'certroute.io_admission-policy.yaml ValidatingAdmissionPolicyBinding certroute-acme-spec-writers',
    'certroute.io_admission-policy.yaml ValidatingAdmissionPolicy certroute-certificaterequest-approval',
    'certroute.io_admission-policy.yaml ValidatingAdmissionPolicyBinding certroute-certificaterequest-approval',
  ]);
  t.is(crdFiles().length, Object.keys(expected).length + 1);
  t.is(new Set(crds.map(({ file }) => file)).size, crds.length);
  for (const { file, crd } of crds) {
    t.is(crd.apiVersion, 'apiextensions.k8s.io/v1', basename(file));
    t.is(crd.kind, 'CustomResourceDefinition', basename(file));
  }
  t.deepEqual([...byName.keys()].sort(), Object.keys(expected).sort());
});

for (const [name, want] of Object.entries(expected)) {
  test(`${name} serves ${want.group}/v1 ${want.kind} with a status subresource and cert-manager's printer columns`, (t) => {
    const crd = byName.get(name);
    if (!crd) return t.fail(`missing ${name}`);
    t.is(crd.spec.group, want.group);
    t.is(crd.spec.names.kind, want.kind);
    t.is(crd.spec.scope, want.scope);
    t.is(`${crd.spec.names.plural}.${crd.spec.group}`, name);
    t.deepEqual(crd.spec.names.shortNames, want.shortNames);
    t.true(crd.spec.names.categories?.includes('cert-manager'));
    t.deepEqual(crd.spec.versions.map((v) => v.name), ['v1']);
    const version = v1(crd);
    t.true(version.served);
    t.true(version.storage);
    t.deepEqual(version.subresources?.status, {});
    t.deepEqual(version.additionalPrinterColumns?.map((c) => c.name), want.columns);
    const age = version.additionalPrinterColumns?.find((c) => c.name === 'Age');
    t.deepEqual(age, { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' });
    const schema = schemaOf(crd);
    t.is(schema.type, 'object');
    t.truthy(schema.properties?.spec, 'has a spec');
    t.truthy(schema.properties?.status, 'has a status');
  });
}

test('the Ready printer columns read the Ready condition exactly as cert-manager does', (t) => {
  for (const kind of ['certificates', 'issuers', 'clusterissuers', 'certificaterequests']) {
    const crd = byName.get(`${kind}.cert-manager.io`)!;
    const ready = v1(crd).additionalPrinterColumns?.find((c) => c.name === 'Ready');
    t.is(ready?.jsonPath, '.status.conditions[?(@.type == "Ready")].status', kind);
    const status = v1(crd).additionalPrinterColumns?.find((c) => c.name === 'Status');
    t.is(status?.jsonPath, '.status.conditions[?(@.type == "Ready")].message', kind);
    t.is(status?.priority, 1, kind);
  }
});

test('Issuer and ClusterIssuer have the same schema', (t) => {
  const issuer = schemaOf(byName.get('issuers.cert-manager.io')!);
  const cluster = schemaOf(byName.get('clusterissuers.cert-manager.io')!);
  t.true(isDeepStrictEqual(issuer.properties, cluster.properties));
});

test('no schema preserves unknown fields except the declared-and-rejected ones and opaque copies', (t) => {
  // Allowed: fields that a CEL rule rejects by name, pod/ingress templates and the Gateway API
  // solver (http01.gatewayHTTPRoute) accepted for compatibility, and the Challenge's copy of an
  // Issuer's solver, except the part certroute acts on (http01.certroute), which has a schema of
  // its own.
  const allowed = new Set([
    ...['selector', 'dns01', 'http01.ingress', 'http01.gatewayHTTPRoute'].map((p) => `challenges.acme.cert-manager.io .spec.solver.${p}`),
    ...['issuers', 'clusterissuers'].flatMap((k) => [
      '.spec.vault', '.spec.venafi',
      '.spec.acme.solvers[].http01.gatewayHTTPRoute',
      '.spec.acme.solvers[].http01.ingress.podTemplate.spec',
      ...['acmeDNS', 'akamai', 'azureDNS', 'cloudDNS', 'digitalocean', 'route53', 'webhook'].map((p) => `.spec.acme.solvers[].dns01.${p}`),
    ].map((p) => `${k}.cert-manager.io ${p}`)),
  ]);
  const found: string[] = [];
  for (const { crd } of crds) {
    walk(schemaOf(crd), '', (s, path) => {
      if (s['x-kubernetes-preserve-unknown-fields']) found.push(`${crd.metadata.name} ${path}`);
    });
  }
  t.deepEqual(found.filter((f) => !allowed.has(f)), []);
});

test('every CEL rule has a message that tells the user what to fix', (t) => {
  let rules = 0;
  for (const { crd } of crds) {
    walk(schemaOf(crd), '', (s, path) => {
      for (const v of s['x-kubernetes-validations'] ?? []) {
        rules++;
        const message = v.message ?? v.messageExpression ?? '';
        t.true(message.length > 20, `${crd.metadata.name} ${path}: rule ${v.rule} has no useful message`);
      }
    });
  }
  t.true(rules >= 40, `only ${rules} rules`);
});

test('the Certificate declares cert-manager\'s keystores fields, and no rule rejects a Certificate field as not implemented', (t) => {
  const cert = schemaOf(byName.get('certificates.cert-manager.io')!).properties!.spec!;
  const keystores = cert.properties?.keystores?.properties ?? {};
  t.deepEqual(Object.keys(keystores.pkcs12?.properties ?? {}).sort(), ['create', 'password', 'passwordSecretRef', 'profile']);
  t.deepEqual(Object.keys(keystores.jks?.properties ?? {}).sort(), ['alias', 'create', 'password', 'passwordSecretRef']);
  const messages = (cert['x-kubernetes-validations'] ?? []).map((v) => v.message ?? '');
  t.deepEqual(messages.filter((m) => m.includes('does not implement')), []);
});

test('lists and strings checked by CEL rules carry maxItems and maxLength so their cost is bounded', (t) => {
  const checked = { array: 0, string: 0 };
  for (const { crd } of crds) {
    walk(schemaOf(crd), '', (s, path) => {
      const rules = s['x-kubernetes-validations'] ?? [];
      if (rules.length === 0) return;
      if (s.type === 'string') {
        checked.string++;
        t.truthy((s as { maxLength?: number }).maxLength, `${crd.metadata.name} ${path} has maxLength`);
      }
      if (s.type === 'array') {
        checked.array++;
        t.truthy((s as { maxItems?: number }).maxItems, `${crd.metadata.name} ${path} has maxItems`);
      }
      // A rule on an object that reads one of its lists (`self.dnsNames.all(…)`, not only
      // `has(self.dnsNames)`) costs per item too.
      for (const [name, child] of Object.entries(s.properties ?? {})) {
        const reads = (rule: string) => new RegExp(`self\\.${name}\\b`).test(rule.replaceAll(`has(self.${name})`, ''));
        if (child.type !== 'array' || !rules.some((r) => reads(r.rule))) continue;
        checked.array++;
        t.truthy((child as { maxItems?: number }).maxItems, `${crd.metadata.name} ${path}.${name} has maxItems`);
      }
    });
  }
  t.true(checked.array > 0 && checked.string > 0, `both kinds are checked: ${checked.array} lists, ${checked.string} strings`);
});

test('the usages the Certificate CRD accepts are exactly the ones the code knows, for spec and annotations alike', (t) => {
  for (const kind of ['certificates.cert-manager.io', 'certificaterequests.cert-manager.io']) {
    const usages = schemaOf(byName.get(kind)!).properties!.spec!.properties!.usages!.items as Schema & { enum?: string[] };
    t.deepEqual([...(usages.enum ?? [])].sort(), [...USAGE_NAMES].sort(), kind);
  }
});

test('a Challenge\'s solver.http01.certroute has a schema: waitInsteadOfSelfCheck is a Go duration of at most 1h', (t) => {
  const solver = schemaOf(byName.get('challenges.acme.cert-manager.io')!).properties?.spec?.properties?.solver;
  const certroute = solver?.properties?.http01?.properties?.certroute;
  t.is(solver?.['x-kubernetes-preserve-unknown-fields'], undefined, 'the solver itself is not opaque');
  t.is(solver?.properties?.http01?.['x-kubernetes-preserve-unknown-fields'], undefined, 'nor is http01');
  t.is(certroute?.['x-kubernetes-preserve-unknown-fields'], undefined, 'unknown fields under certroute are pruned');
  t.regex(certroute?.properties?.waitInsteadOfSelfCheck?.['x-kubernetes-validations']?.[0]?.rule ?? '', /duration\(self\) <= duration\('1h'\)/);
});
