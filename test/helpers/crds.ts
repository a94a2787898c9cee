/**
 * certroute's CRDs, read from `crds/` (the single source the chart and the tests share), and
 * `applyCrds`, which installs them on a cluster with the real kubectl and waits until the
 * apiserver serves every kind. Tests that need the cert-manager API call `applyCrds` first; it is
 * idempotent and safe to call from several test files at once.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { kubectlPath } from '../env/stack.ts';

export const crdDir = resolve(import.meta.dirname, '..', '..', 'crds');

/** Field manager for server-side apply of the CRDs. */
export const crdFieldManager = 'certroute-crds';

/** The CRD files, sorted by name. */
export function crdFiles(): string[] {
  return readdirSync(crdDir)
    .filter((name) => name.endsWith('.yaml'))
    .sort()
    .map((name) => join(crdDir, name));
}

// A deliberately loose shape: tests check the parts they care about.
export interface CrdDocument {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: {
    group: string;
    scope: 'Namespaced' | 'Cluster';
    names: { kind: string; plural: string; singular?: string; shortNames?: string[]; categories?: string[] };
    versions: Array<{
      name: string;
      served: boolean;
      storage: boolean;
      subresources?: { status?: object };
      additionalPrinterColumns?: Array<{ name: string; type: string; jsonPath: string; priority?: number }>;
      schema: { openAPIV3Schema: Record<string, unknown> };
    }>;
  };
}

/** Every document in `crds/`, parsed; throws on a YAML error, naming the file. */
export function loadManifests(): Array<{ file: string; doc: { apiVersion: string; kind: string; metadata: { name: string } } & Record<string, unknown> }> {
  return crdFiles().flatMap((file) => {
    const docs = parseAllDocuments(readFileSync(file, 'utf8'));
    return docs.map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
      return { file, doc: doc.toJS() as { apiVersion: string; kind: string; metadata: { name: string } } };
    });
  });
}

/** Every CRD in `crds/` (the admission policy beside them is not one). */
export function loadCrds(): Array<{ file: string; crd: CrdDocument }> {
  return loadManifests().filter(({ doc }) => doc.kind === 'CustomResourceDefinition').map(({ file, doc }) => ({ file, crd: doc as unknown as CrdDocument }));
}

/** `metadata.name` of every CRD, e.g. `certificates.cert-manager.io`. */
export function crdNames(): string[] {
  return loadCrds().map(({ crd }) => crd.metadata.name);
}

function run(bin: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    execFile(bin, args, { maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`kubectl ${args.slice(2).join(' ')} failed: ${stderr.trim() || error.message}`, { cause: error }));
      else resolvePromise({ stdout, stderr });
    });
  });
}

/**
 * Applies every CRD in `crds/` to the cluster of `kubeconfig` with the real kubectl (server-side
 * apply, so repeated and concurrent calls converge) and waits until each is Established.
 */
export async function applyCrds(kubeconfig: string, opts: { timeoutSeconds?: number } = {}): Promise<void> {
  const kubectl = await kubectlPath();
  const base = ['--kubeconfig', kubeconfig];
  await run(kubectl, [...base, 'apply', '--server-side', '--force-conflicts', `--field-manager=${crdFieldManager}`, '-f', crdDir]);
  await run(kubectl, [...base, 'wait', '--for=condition=Established', `--timeout=${opts.timeoutSeconds ?? 60}s`, ...crdNames().map((n) => `crd/${n}`)]);
}
