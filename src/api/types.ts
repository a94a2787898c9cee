/**
 * The cert-manager v1 API subset certroute serves, typed once here so every
 * module shares one shape. Field names are cert-manager's on purpose: existing
 * manifests, dashboards and `cmctl` must keep working unchanged.
 */

export const CERT_MANAGER_GROUP = 'cert-manager.io';
export const ACME_GROUP = 'acme.cert-manager.io';
export const VERSION = 'v1';

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
}

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  observedGeneration?: number;
}

export interface IssuerRef {
  name: string;
  kind?: string;
  group?: string;
}

export type PrivateKeyAlgorithm = 'RSA' | 'ECDSA' | 'Ed25519';

export interface PrivateKeySpec {
  algorithm?: PrivateKeyAlgorithm;
  size?: number;
  encoding?: 'PKCS1' | 'PKCS8';
  rotationPolicy?: 'Never' | 'Always';
}

export interface CertificateSpec {
  secretName: string;
  issuerRef: IssuerRef;
  commonName?: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  uris?: string[];
  duration?: string;
  renewBefore?: string;
  renewBeforePercentage?: number;
  emailAddresses?: string[];
  otherNames?: OtherName[];
  usages?: string[];
  isCA?: boolean;
  subject?: X509Subject;
  /** RFC 4514 subject, as written; exclusive with subject and commonName. */
  literalSubject?: string;
  signatureAlgorithm?: SignatureAlgorithm;
  nameConstraints?: NameConstraints;
  privateKey?: PrivateKeySpec;
  secretTemplate?: { annotations?: Record<string, string>; labels?: Record<string, string> };
  revisionHistoryLimit?: number;
  additionalOutputFormats?: Array<{ type: 'CombinedPEM' | 'DER' }>;
  keystores?: CertificateKeystores;
  encodeUsagesInRequest?: boolean;
}

export interface X509Subject {
  organizations?: string[];
  organizationalUnits?: string[];
  countries?: string[];
  localities?: string[];
  provinces?: string[];
  streetAddresses?: string[];
  postalCodes?: string[];
  serialNumber?: string;
}

/** A UTF8String otherName SAN, such as a Microsoft UPN (1.3.6.1.4.1.311.20.2.3). */
export interface OtherName {
  oid: string;
  utf8Value: string;
}

export type SignatureAlgorithm =
  | 'SHA256WithRSA' | 'SHA384WithRSA' | 'SHA512WithRSA'
  | 'ECDSAWithSHA256' | 'ECDSAWithSHA384' | 'ECDSAWithSHA512'
  | 'PureEd25519';

export interface NameConstraintItems {
  dnsDomains?: string[];
  ipRanges?: string[];
  emailAddresses?: string[];
  uriDomains?: string[];
}

export interface NameConstraints {
  critical?: boolean;
  permitted?: NameConstraintItems;
  excluded?: NameConstraintItems;
}

export interface CertificateKeystores {
  pkcs12?: { create: boolean; profile?: 'LegacyRC2' | 'LegacyDES' | 'Modern2023'; password?: string; passwordSecretRef?: SecretKeySelector };
  jks?: { create: boolean; alias?: string; password?: string; passwordSecretRef?: SecretKeySelector };
}

export interface CertificateStatus {
  conditions?: Condition[];
  notBefore?: string;
  notAfter?: string;
  renewalTime?: string;
  revision?: number;
  nextPrivateKeySecretName?: string;
  failedIssuanceAttempts?: number;
  lastFailureTime?: string;
  acme?: CertificateAcmeStatus;
}

/** What the ACME server said about the certificate in the Secret. */
export interface CertificateAcmeStatus {
  /** certroute: the profile the certificate was issued under. */
  profile?: string;
  /** ACME Renewal Information (RFC 9773), in cert-manager's shape plus `selectedTime`. */
  ari?: AriStatus;
}

export interface AriStatus {
  certID: string;
  suggestedWindow: { start: string; end: string };
  /** The moment picked at random inside the window; renewalTime unless renewBefore is earlier. */
  selectedTime: string;
  explanationURL?: string;
  lastChecked?: string;
  nextCheck?: string;
}

export interface Certificate extends KubeObject {
  spec: CertificateSpec;
  status?: CertificateStatus;
}

export interface CertificateRequestSpec {
  /** Base64 of the PEM CSR, as cert-manager stores it. */
  request: string;
  issuerRef: IssuerRef;
  duration?: string;
  usages?: string[];
  isCA?: boolean;
  username?: string;
}

export interface CertificateRequestStatus {
  conditions?: Condition[];
  /** Base64 of the PEM chain. */
  certificate?: string;
  ca?: string;
  failureTime?: string;
}

export interface CertificateRequest extends KubeObject {
  spec: CertificateRequestSpec;
  status?: CertificateRequestStatus;
}

export interface SecretKeySelector {
  name: string;
  key?: string;
}

export interface Http01Solver {
  ingress?: { class?: string; ingressClassName?: string; name?: string };
  /** cert-manager's Gateway API solver: accepted, answered by the one responder (see `unsupportedNote`). */
  gatewayHTTPRoute?: Record<string, unknown>;
  /** certroute extension: wait this long instead of self-checking. */
  certroute?: { waitInsteadOfSelfCheck?: string };
}

/** cert-manager's dns01 solver, for the providers certroute implements. */
export interface Dns01Solver {
  cnameStrategy?: 'None' | 'Follow';
  rfc2136?: {
    nameserver: string;
    tsigKeyName?: string;
    tsigAlgorithm?: string;
    tsigSecretSecretRef?: SecretKeySelector;
    protocol?: 'TCP' | 'UDP';
  };
  cloudflare?: {
    email?: string;
    apiTokenSecretRef?: SecretKeySelector;
    apiKeySecretRef?: SecretKeySelector;
  };
}

/**
 * certroute extension: TLS-ALPN-01 (RFC 8737), which cert-manager's solver schema has no key for.
 * The responder answers on its own TLS port; a per-challenge IngressRouteTCP sends it the
 * challenged name's handshakes that offer neither h2 nor http/1.1.
 */
export interface TlsAlpn01Solver {
  /** Traefik entry points of the challenge route; default `websecure` (the one port 443 reaches). */
  entryPoints?: string[];
}

export interface AcmeSolver {
  selector?: { dnsNames?: string[]; dnsZones?: string[]; matchLabels?: Record<string, string> };
  http01?: Http01Solver;
  dns01?: Dns01Solver;
  /** certroute extensions; cert-manager's own CRDs would refuse this key. */
  certroute?: { tlsAlpn01?: TlsAlpn01Solver };
}

export interface AcmeIssuerSpec {
  server: string;
  email?: string;
  privateKeySecretRef: SecretKeySelector;
  caBundle?: string;
  skipTLSVerify?: boolean;
  externalAccountBinding?: { keyID: string; keySecretRef: SecretKeySelector; keyAlgorithm?: string };
  preferredChain?: string;
  disableAccountKeyGeneration?: boolean;
  /** cert-manager's: ask the CA for the Certificate's duration (notAfter in newOrder). */
  enableDurationFeature?: boolean;
  /** The certificate profile asked for in newOrder; one of the directory's meta.profiles. */
  profile?: string;
  solvers?: AcmeSolver[];
}

export interface IssuerSpec {
  acme?: AcmeIssuerSpec;
  selfSigned?: { crlDistributionPoints?: string[] };
  ca?: { secretName: string; crlDistributionPoints?: string[]; ocspServers?: string[]; issuingCertificateURLs?: string[] };
}

export interface IssuerStatus {
  conditions?: Condition[];
  acme?: { uri?: string; lastRegisteredEmail?: string; lastPrivateKeyHash?: string };
}

export interface Issuer extends KubeObject {
  spec: IssuerSpec;
  status?: IssuerStatus;
}

export type OrderState = 'valid' | 'ready' | 'pending' | 'processing' | 'invalid' | 'expired' | 'errored';

export interface OrderSpec {
  request: string;
  issuerRef: IssuerRef;
  commonName?: string;
  dnsNames?: string[];
  ipAddresses?: string[];
  duration?: string;
  profile?: string;
}

export interface AcmeChallengeRef {
  url: string;
  token: string;
  type: string;
}

export interface AcmeAuthorization {
  url: string;
  identifier?: string;
  wildcard?: boolean;
  initialState?: string;
  challenges?: AcmeChallengeRef[];
}

export interface OrderStatus {
  url?: string;
  finalizeURL?: string;
  certificate?: string;
  state?: OrderState;
  reason?: string;
  authorizations?: AcmeAuthorization[];
  failureTime?: string;
  /** certroute: the profile the CA put the order under. */
  profile?: string;
  /** certroute: the ARI identifier of the certificate the order replaces, as sent in newOrder. */
  replaces?: string;
}

export interface Order extends KubeObject {
  spec: OrderSpec;
  status?: OrderStatus;
}

export type ChallengeState = 'valid' | 'ready' | 'pending' | 'processing' | 'invalid' | 'expired' | 'errored';

export interface ChallengeSpec {
  url: string;
  authorizationURL: string;
  dnsName: string;
  wildcard?: boolean;
  type: 'HTTP-01' | 'DNS-01' | 'TLS-ALPN-01';
  token: string;
  key: string;
  solver: AcmeSolver;
  issuerRef: IssuerRef;
}

/** certroute: the TXT record a DNS-01 solver wrote (the name after CNAMEs, and its zone). */
export interface PresentedRecord {
  fqdn: string;
  zone: string;
}

export interface ChallengeStatus {
  processing?: boolean;
  presented?: boolean;
  presentedRecord?: PresentedRecord;
  reason?: string;
  state?: ChallengeState;
}

export interface Challenge extends KubeObject {
  spec: ChallengeSpec;
  status?: ChallengeStatus;
}

export interface Secret extends KubeObject {
  type?: string;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

/** The Secret annotations cert-manager writes and dashboards key on. */
export const SecretAnnotations = {
  certificateName: 'cert-manager.io/certificate-name',
  issuerName: 'cert-manager.io/issuer-name',
  issuerKind: 'cert-manager.io/issuer-kind',
  issuerGroup: 'cert-manager.io/issuer-group',
  commonName: 'cert-manager.io/common-name',
  altNames: 'cert-manager.io/alt-names',
  ipSans: 'cert-manager.io/ip-sans',
  uriSans: 'cert-manager.io/uri-sans',
  emailSans: 'cert-manager.io/email-sans',
  subjectOrganizations: 'cert-manager.io/subject-organizations',
  subjectOrganizationalUnits: 'cert-manager.io/subject-organizationalunits',
  subjectCountries: 'cert-manager.io/subject-countries',
  subjectProvinces: 'cert-manager.io/subject-provinces',
  subjectLocalities: 'cert-manager.io/subject-localities',
  subjectStreetAddresses: 'cert-manager.io/subject-streetaddresses',
  subjectPostalCodes: 'cert-manager.io/subject-postalcodes',
  subjectSerialNumber: 'cert-manager.io/subject-serialnumber',
} as const;

/** Label cert-manager puts on Secrets it manages; certroute caches only these. */
export const MANAGED_LABEL = 'controller.cert-manager.io/fao';

export const CertificateRequestAnnotations = {
  certificateName: 'cert-manager.io/certificate-name',
  revision: 'cert-manager.io/certificate-revision',
  privateKeySecretName: 'cert-manager.io/private-key-secret-name',
} as const;

/** A kind as the controller addresses it through the API. */
export interface ResourceDef {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

export const Resources = {
  certificates: { group: CERT_MANAGER_GROUP, version: VERSION, plural: 'certificates', kind: 'Certificate', namespaced: true },
  certificaterequests: { group: CERT_MANAGER_GROUP, version: VERSION, plural: 'certificaterequests', kind: 'CertificateRequest', namespaced: true },
  issuers: { group: CERT_MANAGER_GROUP, version: VERSION, plural: 'issuers', kind: 'Issuer', namespaced: true },
  clusterissuers: { group: CERT_MANAGER_GROUP, version: VERSION, plural: 'clusterissuers', kind: 'ClusterIssuer', namespaced: false },
  orders: { group: ACME_GROUP, version: VERSION, plural: 'orders', kind: 'Order', namespaced: true },
  challenges: { group: ACME_GROUP, version: VERSION, plural: 'challenges', kind: 'Challenge', namespaced: true },
  secrets: { group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true },
  ingressroutes: { group: 'traefik.io', version: 'v1alpha1', plural: 'ingressroutes', kind: 'IngressRoute', namespaced: true },
  ingresses: { group: 'networking.k8s.io', version: 'v1', plural: 'ingresses', kind: 'Ingress', namespaced: true },
  gateways: { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'gateways', kind: 'Gateway', namespaced: true },
  httproutes: { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'httproutes', kind: 'HTTPRoute', namespaced: true },
  ingressroutetcps: { group: 'traefik.io', version: 'v1alpha1', plural: 'ingressroutetcps', kind: 'IngressRouteTCP', namespaced: true },
  leases: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true },
  // The CA injector's targets.
  validatingwebhookconfigurations: { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'validatingwebhookconfigurations', kind: 'ValidatingWebhookConfiguration', namespaced: false },
  mutatingwebhookconfigurations: { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'mutatingwebhookconfigurations', kind: 'MutatingWebhookConfiguration', namespaced: false },
  customresourcedefinitions: { group: 'apiextensions.k8s.io', version: 'v1', plural: 'customresourcedefinitions', kind: 'CustomResourceDefinition', namespaced: false },
  apiservices: { group: 'apiregistration.k8s.io', version: 'v1', plural: 'apiservices', kind: 'APIService', namespaced: false },
} as const satisfies Record<string, ResourceDef>;

export interface IngressRouteRoute {
  match: string;
  kind?: string;
  priority?: number;
  services?: Array<{ name: string; namespace?: string; port?: number | string; kind?: string }>;
  middlewares?: Array<{ name: string; namespace?: string }>;
}

/** Traefik's TCP router object, as the TLS-ALPN-01 solver writes it. */
export interface IngressRouteTcp extends KubeObject {
  spec: {
    entryPoints?: string[];
    routes: Array<{ match: string; priority?: number; services: Array<{ name: string; namespace?: string; port: number }> }>;
    tls?: { passthrough?: boolean };
  };
}

export interface IngressRoute extends KubeObject {
  spec: {
    entryPoints?: string[];
    routes: IngressRouteRoute[];
    tls?: { secretName?: string; options?: { name: string; namespace?: string }; certResolver?: string; domains?: Array<{ main?: string; sans?: string[] }> };
  };
}

/** `networking.k8s.io/v1` Ingress: what the shim reads. */
export interface Ingress extends KubeObject {
  spec: {
    ingressClassName?: string;
    tls?: Array<{ hosts?: string[]; secretName?: string }>;
    rules?: Array<{ host?: string }>;
  };
}

/** `gateway.networking.k8s.io/v1` Gateway: what the shim and the challenge HTTPRoute read. */
export interface GatewayListener {
  name: string;
  hostname?: string;
  port: number;
  protocol: string;
  tls?: {
    mode?: string;
    certificateRefs?: Array<{ group?: string; kind?: string; name: string; namespace?: string }>;
  };
  allowedRoutes?: { namespaces?: { from?: string; selector?: unknown } };
}

export interface Gateway extends KubeObject {
  spec: { gatewayClassName: string; listeners: GatewayListener[] };
}

export interface HTTPRouteParentRef {
  group?: string;
  kind?: string;
  namespace?: string;
  name: string;
  sectionName?: string;
}

/** `gateway.networking.k8s.io/v1` HTTPRoute, as far as the challenge route writes one. */
export interface HTTPRoute extends KubeObject {
  spec: {
    parentRefs?: HTTPRouteParentRef[];
    hostnames?: string[];
    rules?: Array<{
      matches?: Array<{ path?: { type?: string; value?: string } }>;
      backendRefs?: Array<{ group?: string; kind?: string; name: string; namespace?: string; port?: number; weight?: number }>;
    }>;
  };
  status?: { parents?: Array<{ parentRef: HTTPRouteParentRef; controllerName?: string; conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> }> };
}
