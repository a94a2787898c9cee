/**
 * The one rule every route kind shares: what the cert-manager annotations on an object (an
 * IngressRoute, an Ingress, a Gateway) say about the Certificates made for it, and what the user
 * must be told when they cannot be used. Pure functions; the route kinds (`route-kind.ts`) add
 * the names and Secrets each kind declares.
 *
 * It follows cert-manager's certificate-shim (`pkg/controller/certificate-shim`) so that
 * annotations written for cert-manager mean the same here: the issuer comes from
 * `cert-manager.io/issuer` or `cert-manager.io/cluster-issuer` (plus `issuer-kind`/`issuer-group`
 * for external issuers), and the other annotations fill in the spec. Unlike cert-manager, every
 * value is validated here, so a bad annotation becomes a Warning event on the object instead of a
 * Certificate the API server rejects, and it never changes a Certificate that is already serving.
 *
 * Durations are written in Go's canonical form (`2160h0m0s`), as cert-manager writes them, so a
 * Certificate cert-manager created compares equal to the one certroute wants.
 */
import { isIP } from 'node:net';
import type { CertificateSpec, IssuerRef, KubeObject, PrivateKeySpec } from '../api/types.ts';
import { DEFAULT_DURATION_MS, formatGoDuration, tryParseGoDuration } from '../base/duration.ts';
import { DEFAULT_USAGES, USAGE_NAMES } from '../pki/usages.ts';
import { dnsNameProblem } from '../pki/names.ts';

/** No issuer annotation: the object is not ours. The reconciler stops managing it, quietly. */
export const NotAnnotated = 'NotAnnotated';
/** `certroute.io/ignore: "true"`: the user opted this object out. */
export const Ignored = 'Ignored';
/** An Ingress or Gateway of a class Traefik does not serve (see the route kind's class list). */
export const NotServed = 'NotServed';
/** Both issuer annotations, or cluster-issuer with issuer-kind/issuer-group. Blocks. */
export const ConflictingIssuerAnnotations = 'ConflictingIssuerAnnotations';
/** An annotation value that cannot be used. Blocks. */
export const BadAnnotation = 'BadAnnotation';
/** A cert-manager annotation certroute does not implement (e.g. email-sans). Blocks. */
export const UnsupportedAnnotation = 'UnsupportedAnnotation';
/** A `cert-manager.io/` or `certroute.io/` annotation nobody knows: probably a typo. */
export const UnknownAnnotation = 'UnknownAnnotation';
/** A route rule that does not parse. Blocks, so a typo never shrinks a serving certificate. */
export const InvalidRule = 'InvalidRule';
/** HostRegexp, HostSNIRegexp or HostSNI(`*`): no certificate name can be derived. */
export const UnsupportedMatcher = 'UnsupportedMatcher';
/** A matcher name Traefik does not know. */
export const UnknownMatcher = 'UnknownMatcher';
/** A host under `!`: excluded by the rule, so not a certificate name. */
export const NegatedHost = 'NegatedHost';
/** A Host value that is not a DNS name. */
export const InvalidHost = 'InvalidHost';
/** More names than a certificate can hold (100). Blocks: a certificate with some of them would silently drop the rest. */
export const TooManyHosts = 'TooManyHosts';
/** No name at all for the certificate. Blocks. */
export const NoHosts = 'NoHosts';
/** The Secret name is not a valid object name. Blocks. */
export const InvalidSecretName = 'InvalidSecretName';
/** `spec.tls.certResolver` is set too, so Traefik's own ACME resolver also manages these hosts. */
export const CertResolverSet = 'CertResolverSet';
/** An Ingress TLS entry or a Gateway listener that cannot become a Certificate; it is skipped, the others go on (as cert-manager does). */
export const SkippedTlsEntry = 'SkippedTlsEntry';
/** An annotated object declares no TLS at all (no Ingress `spec.tls`, no HTTPS listener with a Secret). */
export const NoTls = 'NoTls';
/** Two Ingress TLS entries name one Secret. Blocks, as in cert-manager: one Certificate per entry. */
export const DuplicateSecretName = 'DuplicateSecretName';

export type ShimReason =
  | typeof ConflictingIssuerAnnotations | typeof BadAnnotation | typeof UnsupportedAnnotation
  | typeof UnknownAnnotation | typeof InvalidRule | typeof UnsupportedMatcher | typeof UnknownMatcher
  | typeof NegatedHost | typeof InvalidHost | typeof NoHosts | typeof InvalidSecretName | typeof CertResolverSet
  | typeof TooManyHosts | typeof SkippedTlsEntry | typeof DuplicateSecretName | typeof NoTls;

export type SkipReason = typeof NotAnnotated | typeof Ignored | typeof NotServed;

/** Reasons that stop the shim from producing any Certificate for the object. */
export const BlockingReasons: ReadonlySet<ShimReason> = new Set<ShimReason>([
  ConflictingIssuerAnnotations, BadAnnotation, UnsupportedAnnotation, InvalidRule, NoHosts, InvalidSecretName, TooManyHosts,
  DuplicateSecretName,
]);

export const ShimAnnotations = {
  issuer: 'cert-manager.io/issuer',
  clusterIssuer: 'cert-manager.io/cluster-issuer',
  issuerKind: 'cert-manager.io/issuer-kind',
  issuerGroup: 'cert-manager.io/issuer-group',
  commonName: 'cert-manager.io/common-name',
  altNames: 'cert-manager.io/alt-names',
  ipSans: 'cert-manager.io/ip-sans',
  duration: 'cert-manager.io/duration',
  renewBefore: 'cert-manager.io/renew-before',
  renewBeforePercentage: 'cert-manager.io/renew-before-percentage',
  usages: 'cert-manager.io/usages',
  privateKeyAlgorithm: 'cert-manager.io/private-key-algorithm',
  privateKeySize: 'cert-manager.io/private-key-size',
  privateKeyEncoding: 'cert-manager.io/private-key-encoding',
  privateKeyRotationPolicy: 'cert-manager.io/private-key-rotation-policy',
  revisionHistoryLimit: 'cert-manager.io/revision-history-limit',
  subjectOrganizations: 'cert-manager.io/subject-organizations',
  subjectOrganizationalUnits: 'cert-manager.io/subject-organizationalunits',
  subjectCountries: 'cert-manager.io/subject-countries',
  secretTemplate: 'cert-manager.io/secret-template',
  ignore: 'certroute.io/ignore',
} as const;

/** cert-manager annotations that would need Certificate fields certroute does not issue. */
const UNSUPPORTED_ANNOTATIONS: Record<string, string> = {
  'cert-manager.io/email-sans': 'ACME CAs do not issue email addresses',
  'cert-manager.io/uri-sans': 'ACME CAs do not issue URI names',
  'cert-manager.io/subject-provinces': 'certroute sets only the organizations, organizational units and countries of the subject',
  'cert-manager.io/subject-localities': 'certroute sets only the organizations, organizational units and countries of the subject',
  'cert-manager.io/subject-streetaddresses': 'certroute sets only the organizations, organizational units and countries of the subject',
  'cert-manager.io/subject-postalcodes': 'certroute sets only the organizations, organizational units and countries of the subject',
  'cert-manager.io/subject-serialnumber': 'certroute sets only the organizations, organizational units and countries of the subject',
};

const KNOWN_ANNOTATIONS = new Set<string>([...Object.values(ShimAnnotations), ...Object.keys(UNSUPPORTED_ANNOTATIONS)]);

export interface ShimWarning {
  reason: ShimReason;
  message: string;
}

/** Collects the warnings of one pass; each `reject` names the annotation, the value and the fix. */
export class Findings {
  readonly warnings: ShimWarning[] = [];

  add(reason: ShimReason, message: string): void {
    this.warnings.push({ reason, message });
  }

  /**
   * Records an annotation whose value cannot be used, which blocks the
   * Certificate. Returns undefined, so a parser can `return findings.reject(…)`
   * in place of the value it could not read.
   */
  reject(key: string, value: string, problem: string, fix: string): undefined {
    this.add(BadAnnotation, `annotation ${key}: ${JSON.stringify(value)} ${problem}; ${fix}`);
    return undefined;
  }

  get blocked(): boolean {
    return this.warnings.some((w) => BlockingReasons.has(w.reason));
  }
}

/**
 * cert-manager's ingress-shim defaults (`--default-issuer-*`, `--auto-certificate-annotations`),
 * which, as there, apply to Ingresses only.
 */
export interface ShimDefaults {
  /** Annotations that, set to a true value, ask for a Certificate from the default issuer (`kubernetes.io/tls-acme`). */
  autoAnnotations: readonly string[];
  /** The issuer when the object names none. */
  issuer?: IssuerRef;
}

/** Go's strconv.ParseBool true values, as cert-manager reads an auto-certificate annotation. */
const GO_TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);

/** The auto-certificate annotation that asks for a Certificate, if any. */
function autoAnnotation(obj: KubeObject, defaults: ShimDefaults | undefined): string | undefined {
  return defaults?.autoAnnotations.find((key) => GO_TRUE.has(obj.metadata.annotations?.[key] ?? ''));
}

type Gate = (obj: KubeObject, kind: string, defaults: ShimDefaults | undefined) => { skip: SkipReason } | ShimWarning | undefined;

const gates: Gate[] = [
  function notAnnotated(obj, _kind, defaults) {
    const a = obj.metadata.annotations ?? {};
    const named = a[ShimAnnotations.issuer] !== undefined || a[ShimAnnotations.clusterIssuer] !== undefined;
    return named || autoAnnotation(obj, defaults) !== undefined ? undefined : { skip: NotAnnotated };
  },
  function ignored(obj, kind) {
    const value = obj.metadata.annotations?.[ShimAnnotations.ignore];
    if (value === undefined || value === 'false') return undefined;
    if (value === 'true') return { skip: Ignored };
    return { reason: BadAnnotation, message: `annotation ${ShimAnnotations.ignore}: ${JSON.stringify(value)} is neither "true" nor "false"; set "true" to opt this ${kind} out, or remove the annotation` };
  },
  function conflictingIssuers(obj) {
    const a = obj.metadata.annotations ?? {};
    const issuer = a[ShimAnnotations.issuer];
    const cluster = a[ShimAnnotations.clusterIssuer];
    if (issuer !== undefined && cluster !== undefined) {
      return { reason: ConflictingIssuerAnnotations, message: `both ${ShimAnnotations.issuer} (${JSON.stringify(issuer)}) and ${ShimAnnotations.clusterIssuer} (${JSON.stringify(cluster)}) are set; keep only the one that names your issuer` };
    }
    if (cluster !== undefined && (a[ShimAnnotations.issuerKind] !== undefined || a[ShimAnnotations.issuerGroup] !== undefined)) {
      return { reason: ConflictingIssuerAnnotations, message: `${ShimAnnotations.issuerKind} and ${ShimAnnotations.issuerGroup} go with ${ShimAnnotations.issuer}, not ${ShimAnnotations.clusterIssuer}; for an external issuer, set ${ShimAnnotations.issuer} to its name instead` };
    }
    return undefined;
  },
];

const OBJECT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function isObjectName(name: string): boolean {
  return name.length <= 253 && OBJECT_NAME.test(name);
}

/** Names the annotations add to every Certificate of the object (`alt-names`, `ip-sans`). */
export interface ExtraNames {
  dnsNames: string[];
  ipAddresses: string[];
}

/**
 * What the annotations say. Read it as:
 * - `skip`: not managed (no issuer annotation, or opted out); do nothing and say nothing.
 * - `fields` absent: blocked; `findings` says why.
 * - otherwise: `fields` and `extraNames` go into every Certificate; `findings` may hold
 *   warnings that do not block.
 */
export type AnnotationResult =
  | { skip: SkipReason }
  | { findings: Findings; fields?: AnnotatedFields; extraNames: ExtraNames };

/** The spec fields the annotations set, split around the names so the spec keeps CertificateSpec's order. */
export interface AnnotatedFields {
  leading: Pick<CertificateSpec, 'issuerRef' | 'commonName'>;
  trailing: SpecFields['trailing'];
}

/** Reads an object's cert-manager annotations once; `kind` names the object in messages. */
export function readAnnotations(obj: KubeObject, kind: string, defaults?: ShimDefaults): AnnotationResult {
  const findings = new Findings();
  for (const gate of gates) {
    const outcome = gate(obj, kind, defaults);
    if (outcome === undefined) continue;
    if ('skip' in outcome) return { skip: outcome.skip };
    findings.add(outcome.reason, outcome.message);
    return { findings, extraNames: { dnsNames: [], ipAddresses: [] } };
  }
  const annotations = obj.metadata.annotations ?? {};
  for (const key of Object.keys(annotations).sort()) {
    const why = UNSUPPORTED_ANNOTATIONS[key];
    if (why !== undefined) {
      findings.add(UnsupportedAnnotation, `annotation ${key} is not supported: ${why}; remove it`);
    } else if (/^(cert-manager|certroute)\.io\//.test(key) && !KNOWN_ANNOTATIONS.has(key)) {
      findings.add(UnknownAnnotation, `annotation ${key} is not one certroute knows, so it has no effect; check its spelling`);
    }
  }
  const issuerRef = issuerFor(annotations, findings, autoAnnotation(obj, defaults), defaults?.issuer);
  const extraNames = extraNamesFor(annotations, findings);
  const fields = specFields(annotations, findings);
  if (issuerRef === undefined) return { findings, extraNames };
  return { findings, fields: { leading: { issuerRef, ...fields.leading }, trailing: fields.trailing }, extraNames };
}

/** `alt-names` (DNS names, lowercased) and `ip-sans`, as cert-manager adds them to every Certificate. */
function extraNamesFor(annotations: Record<string, string>, findings: Findings): ExtraNames {
  const dnsNames = list(annotations, ShimAnnotations.altNames, findings, 'list DNS names separated by commas', (name) => {
    const why = dnsNameProblem(name.toLowerCase());
    return why === undefined ? name.toLowerCase() : { problem: `is not a DNS name: it ${why}` };
  }) ?? [];
  const ipAddresses = list(annotations, ShimAnnotations.ipSans, findings, 'list IPv4 or IPv6 addresses separated by commas', (ip) =>
    isIP(ip) !== 0 ? ip : { problem: 'is not an IP address' }) ?? [];
  return { dnsNames, ipAddresses };
}

/**
 * The issuer the annotations name, else (for an auto-certificate annotation such as
 * kubernetes.io/tls-acme) the default issuer; issuer-kind and issuer-group refine either.
 */
function issuerFor(annotations: Record<string, string>, findings: Findings, auto: string | undefined, fallback: IssuerRef | undefined): IssuerRef | undefined {
  const clusterKey = ShimAnnotations.clusterIssuer;
  const key = annotations[clusterKey] !== undefined ? clusterKey : ShimAnnotations.issuer;
  let ref: IssuerRef;
  if (annotations[key] === undefined && auto !== undefined) {
    if (fallback === undefined) {
      findings.add(BadAnnotation, `annotation ${auto} asks for a certificate from the default issuer, and certroute has none; name the issuer with ${clusterKey} or ${ShimAnnotations.issuer}, or start certroute with --default-issuer-name (chart: shim.defaultIssuer.name)`);
      return undefined;
    }
    ref = { ...fallback };
  } else {
    const name = annotations[key] ?? '';
    if (name.trim() === '') {
      return findings.reject(key, name, 'is empty', `set it to the name of ${key === clusterKey ? 'a ClusterIssuer' : 'an Issuer in this namespace'}`);
    }
    if (!isObjectName(name)) {
      return findings.reject(key, name, 'is not a valid issuer name', 'use the metadata.name of the issuer (lowercase letters, digits, "-" and ".")');
    }
    ref = { name, kind: key === clusterKey ? 'ClusterIssuer' : 'Issuer' };
  }
  const kind = annotations[ShimAnnotations.issuerKind];
  if (kind !== undefined) {
    if (!/^[A-Z][A-Za-z0-9]*$/.test(kind)) return findings.reject(ShimAnnotations.issuerKind, kind, 'is not a resource kind', 'use the Kind of the external issuer, e.g. AWSPCAClusterIssuer');
    ref.kind = kind;
  }
  const group = annotations[ShimAnnotations.issuerGroup];
  if (group !== undefined) {
    if (dnsNameProblem(group) !== undefined || group.startsWith('*')) return findings.reject(ShimAnnotations.issuerGroup, group, 'is not an API group', 'use the API group of the external issuer, e.g. awspca.cert-manager.io');
    ref.group = group;
  }
  return ref;
}


/**
 * A comma-separated annotation, each item normalized by `item` or rejected with the reason it
 * gives; undefined when absent or bad.
 */
function list(annotations: Record<string, string>, key: string, findings: Findings, fix: string, item: (value: string) => string | { problem: string }): string[] | undefined {
  const raw = annotations[key];
  if (raw === undefined) return undefined;
  const values: string[] = [];
  for (const part of raw.split(',').map((s) => s.trim())) {
    if (part === '') return findings.reject(key, raw, 'has an empty item', fix);
    const value = item(part);
    if (typeof value !== 'string') return findings.reject(key, raw, `has ${JSON.stringify(part)}, which ${value.problem}`, fix);
    values.push(value);
  }
  return values;
}

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

type SpecFields = {
  leading: Pick<CertificateSpec, 'commonName'>;
  trailing: Omit<CertificateSpec, 'secretName' | 'issuerRef' | 'commonName' | 'dnsNames' | 'ipAddresses'>;
};

/** Every spec field an annotation sets, in CertificateSpec order. */
function specFields(a: Record<string, string>, findings: Findings): SpecFields {
  const A = ShimAnnotations;
  const leading: SpecFields['leading'] = {};
  const trailing: SpecFields['trailing'] = {};
  const present = (key: string): string | undefined => {
    const value = a[key];
    if (value !== undefined && value.trim() === '') return findings.reject(key, value, 'is empty', 'set a value or remove the annotation');
    return value;
  };

  const commonName = present(A.commonName);
  if (commonName !== undefined) {
    if (commonName.length > 64) findings.reject(A.commonName, commonName, 'is longer than 64 characters, the limit for a common name', 'use a shorter name; all names are in the certificate\'s DNS names anyway');
    else leading.commonName = commonName;
  }

  const durationText = present(A.duration);
  const duration = durationText === undefined ? undefined : tryParseGoDuration(durationText);
  if (durationText !== undefined) {
    if (duration === undefined) findings.reject(A.duration, durationText, 'is not a Go duration', 'write hours, minutes or seconds, such as 2160h for 90 days');
    else if (duration < HOUR_MS) findings.reject(A.duration, durationText, 'is shorter than 1h, the shortest certificate cert-manager allows', 'use at least 1h, such as 2160h for 90 days');
    else trailing.duration = formatGoDuration(duration);
  }

  const renewText = present(A.renewBefore);
  const pctText = present(A.renewBeforePercentage);
  if (renewText !== undefined && pctText !== undefined) {
    findings.reject(A.renewBeforePercentage, pctText, `is set together with ${A.renewBefore} (${JSON.stringify(renewText)})`, 'keep only one of the two');
  } else if (renewText !== undefined) {
    const renew = tryParseGoDuration(renewText);
    const lifetime = duration ?? DEFAULT_DURATION_MS;
    if (renew === undefined) findings.reject(A.renewBefore, renewText, 'is not a Go duration', 'write hours or minutes, such as 720h for 30 days');
    else if (renew < 5 * MINUTE_MS) findings.reject(A.renewBefore, renewText, 'is shorter than 5m', 'use at least 5m, such as 720h for 30 days');
    else if (renew >= lifetime) findings.reject(A.renewBefore, renewText, `is not shorter than the certificate's duration (${formatGoDuration(lifetime)})`, 'use a shorter renew-before or a longer duration');
    else trailing.renewBefore = formatGoDuration(renew);
  } else if (pctText !== undefined) {
    const pct = /^[0-9]+$/.test(pctText) ? Number(pctText) : Number.NaN;
    if (!(pct >= 1 && pct <= 99)) findings.reject(A.renewBeforePercentage, pctText, 'is not a whole number from 1 to 99', 'write a percentage of the duration without "%", such as 33');
    else trailing.renewBeforePercentage = pct;
  }

  const usages = list(a, A.usages, findings, 'use names such as "digital signature", "key encipherment", "server auth", separated by single commas', (u) =>
    USAGE_NAMES.has(u) ? u : { problem: 'is not a key usage' });
  if (a[A.usages] === undefined) trailing.usages = [...DEFAULT_USAGES];
  else if (usages !== undefined) trailing.usages = usages;

  const subject: NonNullable<CertificateSpec['subject']> = {};
  const csv = (key: string, set: (values: string[]) => void) => {
    const raw = present(key);
    if (raw === undefined) return;
    const values = splitCsv(raw);
    if (typeof values === 'string') findings.reject(key, raw, `is not a comma-separated list: ${values}`, 'separate values with commas and put a value containing a comma in double quotes');
    else set(values);
  };
  csv(A.subjectOrganizations, (v) => { subject.organizations = v; });
  csv(A.subjectOrganizationalUnits, (v) => { subject.organizationalUnits = v; });
  csv(A.subjectCountries, (v) => { subject.countries = v; });
  if (Object.keys(subject).length > 0) trailing.subject = subject;

  const privateKey = privateKeyFields(a, present, findings);
  if (Object.keys(privateKey).length > 0) trailing.privateKey = privateKey;

  const template = present(A.secretTemplate);
  if (template !== undefined) {
    const parsed = parseSecretTemplate(template);
    if (typeof parsed === 'string') findings.reject(A.secretTemplate, template, parsed, 'write JSON such as {"labels":{"team":"web"},"annotations":{"example.com/owner":"web"}}');
    else if (parsed.annotations !== undefined || parsed.labels !== undefined) trailing.secretTemplate = parsed;
  }

  const limitText = present(A.revisionHistoryLimit);
  if (limitText !== undefined) {
    const limit = /^[0-9]+$/.test(limitText) ? Number(limitText) : Number.NaN;
    if (!(limit >= 1 && limit <= 2 ** 31 - 1)) findings.reject(A.revisionHistoryLimit, limitText, 'is not a whole number of at least 1', 'set how many CertificateRequests to keep, such as 3');
    else trailing.revisionHistoryLimit = limit;
  }
  return { leading, trailing };
}

function privateKeyFields(a: Record<string, string>, present: (key: string) => string | undefined, findings: Findings): PrivateKeySpec {
  const A = ShimAnnotations;
  const key: PrivateKeySpec = {};
  const algorithm = present(A.privateKeyAlgorithm);
  if (algorithm === 'RSA' || algorithm === 'ECDSA' || algorithm === 'Ed25519') key.algorithm = algorithm;
  else if (algorithm !== undefined) findings.reject(A.privateKeyAlgorithm, algorithm, 'is not a key algorithm', 'use RSA, ECDSA or Ed25519');

  const sizeText = present(A.privateKeySize);
  if (sizeText !== undefined && (algorithm === undefined || key.algorithm !== undefined)) {
    const size = /^[0-9]+$/.test(sizeText) ? Number(sizeText) : Number.NaN;
    const algo = key.algorithm ?? 'RSA';
    if (algo === 'Ed25519') findings.reject(A.privateKeySize, sizeText, 'has no meaning for Ed25519 keys', 'remove it');
    else if (Number.isNaN(size)) findings.reject(A.privateKeySize, sizeText, 'is not a whole number of bits', algo === 'RSA' ? 'use 2048, 3072 or 4096' : 'use 256, 384 or 521');
    else if (algo === 'RSA' && (size < 2048 || size > 8192)) findings.reject(A.privateKeySize, sizeText, 'is not an RSA key size from 2048 to 8192', 'use 2048, 3072 or 4096');
    else if (algo === 'ECDSA' && size !== 256 && size !== 384 && size !== 521) findings.reject(A.privateKeySize, sizeText, 'is not an ECDSA key size', 'use 256, 384 or 521');
    else key.size = size;
  }

  const encoding = present(A.privateKeyEncoding);
  if (encoding === 'PKCS1' || encoding === 'PKCS8') key.encoding = encoding;
  else if (encoding !== undefined) findings.reject(A.privateKeyEncoding, encoding, 'is not a key encoding', 'use PKCS1 or PKCS8');

  const rotation = present(A.privateKeyRotationPolicy);
  if (rotation === 'Never' || rotation === 'Always') key.rotationPolicy = rotation;
  else if (rotation !== undefined) findings.reject(A.privateKeyRotationPolicy, rotation, 'is not a rotation policy', 'use Never or Always');
  return key;
}

/** One line of CSV as Go's encoding/csv reads it (cert-manager's SplitWithEscapeCSV), or why not. */
export function splitCsv(input: string): string[] | string {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (input.charAt(i) === '"') {
      i++;
      for (;;) {
        if (i >= input.length) return 'a quoted value has no closing double quote';
        const c = input.charAt(i);
        if (c === '"' && input.charAt(i + 1) === '"') { field += '"'; i += 2; continue; }
        if (c === '"') { i++; break; }
        field += c;
        i++;
      }
      if (i < input.length && input.charAt(i) !== ',') return `unexpected text after a quoted value at position ${i + 1}`;
    } else {
      const end = input.indexOf(',', i);
      field = input.slice(i, end < 0 ? input.length : end);
      if (field.includes('"')) return 'a double quote appears inside an unquoted value';
      if (/[\r\n]/.test(field)) return 'it spans several lines';
      i = end < 0 ? input.length : end;
    }
    fields.push(field);
    if (i >= input.length) return fields;
    i++;
  }
}

function parseSecretTemplate(text: string): NonNullable<CertificateSpec['secretTemplate']> | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `is not JSON (${(error as Error).message})`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'is not a JSON object';
  const template: NonNullable<CertificateSpec['secretTemplate']> = {};
  for (const [field, map] of Object.entries(value)) {
    if (field !== 'annotations' && field !== 'labels') return `has the field "${field}"; only "annotations" and "labels" are allowed`;
    if (typeof map !== 'object' || map === null || Array.isArray(map)) return `has ${field} that is not an object`;
    const entries = Object.entries(map as Record<string, unknown>);
    if (entries.some(([, v]) => typeof v !== 'string')) return `has ${field} with a value that is not a string`;
    if (field === 'annotations' && entries.some(([k]) => k.startsWith('cert-manager.io/'))) return 'sets cert-manager.io/ annotations, which cert-manager owns';
    if (entries.length > 0) template[field] = Object.fromEntries(entries) as Record<string, string>;
  }
  return template;
}
