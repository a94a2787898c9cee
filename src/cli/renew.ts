/**
 * `certroute renew`: exactly what `cmctl renew` does — set the Certificate's
 * Issuing condition to True with reason ManuallyTriggered — so either tool
 * works against either controller.
 */
import type { Certificate } from '../api/types.ts';
import { Resources } from '../api/types.ts';
import { KubeClient } from '../kube/client.ts';
import { getCondition, setCondition } from '../kube/conditions.ts';
import { parse, UsageError } from './args.ts';

const HELP = `Usage: certroute renew <certificate>... [-n NAMESPACE]
       certroute renew --all [-n NAMESPACE | -A]

Marks Certificates for immediate renewal (Issuing=True, reason ManuallyTriggered).

Flags:
  -n, --namespace NAMESPACE   the namespace (default: the kubeconfig context's, else "default")
  -A, --all-namespaces        with --all: every namespace
  --all                       every Certificate in the namespace
  -h, --help                  this help

Exit codes: 0 all marked, 1 some could not be marked, 2 usage error.
`;

export const MANUALLY_TRIGGERED = 'ManuallyTriggered';

export async function renewCertificate(client: KubeClient, cert: Certificate, now = new Date()): Promise<'marked' | 'already-issuing'> {
  if (getCondition(cert.status?.conditions, 'Issuing')?.status === 'True') return 'already-issuing';
  const conditions = setCondition(cert.status?.conditions, { type: 'Issuing', status: 'True', reason: MANUALLY_TRIGGERED, message: 'Certificate re-issuance manually triggered' }, cert.metadata.generation, now);
  await client.replaceStatus(Resources.certificates, { ...cert, status: { ...cert.status, conditions } });
  return 'marked';
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    namespace: { type: 'string', short: 'n' },
    'all-namespaces': { type: 'boolean', short: 'A' },
    all: { type: 'boolean' },
  }, true);
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (!values.all && positionals.length === 0) throw new UsageError('name a Certificate, or pass --all');
  if (values.all && positionals.length > 0) throw new UsageError('--all takes no names');
  const client = KubeClient.fromDefault();
  const ns = values['all-namespaces'] ? undefined : (values.namespace ?? client.namespace ?? 'default');
  const targets: Certificate[] = values.all
    ? (await client.list<Certificate>(Resources.certificates, ns)).items
    : await Promise.all(positionals.map((name) => client.get<Certificate>(Resources.certificates, ns, name).catch((err: unknown) => {
      // The cause keeps the network error code, which main maps to exit code 3.
      throw new Error(`certificate ${ns}/${name}: ${(err as Error).message.includes('404') ? 'not found' : (err as Error).message}`, { cause: err });
    })));
  let failed = 0;
  for (const cert of targets) {
    const id = `${cert.metadata.namespace}/${cert.metadata.name}`;
    try {
      const result = await renewCertificate(client, cert);
      process.stdout.write(result === 'marked' ? `Manually triggered issuance of Certificate ${id}\n` : `Certificate ${id} is already being issued\n`);
    } catch (err) {
      failed++;
      process.stderr.write(`Certificate ${id}: could not trigger renewal: ${(err as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}
