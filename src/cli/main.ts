/**
 * `certroute <command>`: the controller and the operator's tools. Exit codes
 * scripts can rely on: 0 success, 1 the thing checked is not OK, 2 usage
 * error, 3 cannot reach the cluster.
 */
import { UsageError } from './args.ts';

const HELP = `certroute: TLS certificates for Traefik routes, speaking the cert-manager API

Usage: certroute <command> [flags]

Commands:
  controller   run the controller (reconcilers, HTTP-01 responder, metrics)
  status       show Certificates, and why any is not Ready (CertificateRequest → Order → Challenges)
  renew        request renewal of a Certificate now (same as cmctl renew)
  check        follow a host the way an ACME validator does: DNS, route, responder, TLS

Run 'certroute <command> --help' for the flags of a command.
Exit codes: 0 ok, 1 not ok, 2 usage error, 3 cluster unreachable.
`;

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  controller: async () => (await import('./controller.ts')).run,
  status: async () => (await import('./status.ts')).run,
  renew: async () => (await import('./renew.ts')).run,
  check: async () => (await import('./check.ts')).run,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(HELP);
    return name ? 0 : 2;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`certroute: unknown command "${name}"; run 'certroute --help' for the list\n`);
    return 2;
  }
  try {
    return await (await load())(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`certroute ${name}: ${err.message}\nRun 'certroute ${name} --help' for usage.\n`);
      return 2;
    }
    const e = err as { code?: string; cause?: { code?: string } };
    if (['ECONNREFUSED', 'ENOTFOUND', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT'].includes(e.code ?? e.cause?.code ?? '')) {
      process.stderr.write(`certroute ${name}: cannot reach the Kubernetes API (${(err as Error).message}); check KUBECONFIG\n`);
      return 3;
    }
    process.stderr.write(`certroute ${name}: ${(err as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
