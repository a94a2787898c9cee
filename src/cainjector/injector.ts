/**
 * The CA injector: keeps the caBundle of annotated webhook configurations, CRD conversion
 * webhooks and APIServices filled from a Certificate, a Secret or the API server's CA, as
 * cert-manager's cainjector does.
 *
 * Its parts are kept apart so that any controller runner can host it: `TargetInformers` (what it
 * watches), `injectorReconciler` (one target per pass, keyed `<plural>/<name>`), and
 * `InjectorIndex` (which targets a Certificate or Secret event concerns). Bad input is reported
 * once per target and problem as an Event, then left alone until the target or its source
 * changes: a refusal is never a retry; it is `done`, or, when the source is a Secret no informer
 * watches, a re-read a minute later that reports nothing new.
 */
import type { X509Certificate } from 'node:crypto';
import type { APIService, CustomResourceDefinition, WebhookConfiguration } from '../api/cainjector.ts';
import { Resources, SecretAnnotations, type Certificate, type KubeObject, type ResourceDef, type Secret } from '../api/types.ts';
import { isConflict, type KubeClient } from '../kube/client.ts';
import type { Informers } from '../kube/controller.ts';
import type { EventSink } from '../kube/events.ts';
import type { Informer } from '../kube/informer.ts';
import { done, requeueAfter, type Outcome } from '../kube/queue.ts';
import type { Logger } from '../log.ts';
import type { InjectorMetrics } from './metrics.ts';
import { describeSource, readCA, sourceKey, sourceOf, type Problem, type Source, type SourceReader } from './sources.ts';
import { splitTargetKey, targetKey, trimTarget, type TargetKind } from './targets.ts';

/** A Secret the informers do not watch (not issued by certroute) is read again this often. */
export const UNWATCHED_SECRET_RECHECK_MS = 60_000;

export class TargetInformers {
  readonly all: ReadonlyArray<Informer<KubeObject>>;
  private readonly byPlural: ReadonlyMap<string, Informer<KubeObject>>;

  constructor(shared: Informers) {
    const inf = <T extends KubeObject>(def: ResourceDef) => shared.for<T>(def, { trim: trimTarget(def) });
    const informers = [
      inf<WebhookConfiguration>(Resources.validatingwebhookconfigurations),
      inf<WebhookConfiguration>(Resources.mutatingwebhookconfigurations),
      inf<CustomResourceDefinition>(Resources.customresourcedefinitions),
      inf<APIService>(Resources.apiservices),
    ] as unknown as Array<Informer<KubeObject>>;
    this.all = informers;
    this.byPlural = new Map(informers.map((i) => [i.def.plural, i]));
  }

  get(plural: string, name: string): KubeObject | undefined {
    return this.byPlural.get(plural)?.get(undefined, name);
  }

  /** Every target that asks for a CA, as queue keys. */
  annotatedKeys(): string[] {
    return this.all.flatMap((i) => i.list().filter((o) => sourceOf(o.metadata.annotations) !== undefined).map((o) => targetKey(i.def, o.metadata.name)));
  }
}

/** Which targets name which Certificate or Secret, kept from the targets' own events. */
export class InjectorIndex {
  private readonly bySource = new Map<string, Set<string>>();
  /** Every target that asks for a CA, with the key of what it names ('' for none or bad input). */
  private readonly byTarget = new Map<string, string>();

  /** Records what the target asks for now; true when it asks, or asked before (so it is looked at once more). */
  update(key: string, source: Source | Problem | undefined): boolean {
    const previous = this.byTarget.get(key);
    if (previous) {
      this.bySource.get(previous)?.delete(key);
      if (this.bySource.get(previous)?.size === 0) this.bySource.delete(previous);
    }
    if (source === undefined) {
      this.byTarget.delete(key);
      return previous !== undefined;
    }
    const next = ('reason' in source ? undefined : sourceKey(source)) ?? '';
    this.byTarget.set(key, next);
    if (next) {
      let set = this.bySource.get(next);
      if (!set) this.bySource.set(next, (set = new Set()));
      set.add(key);
    }
    return true;
  }

  targetsOf(kind: 'Certificate' | 'Secret', namespace: string, name: string): string[] {
    return [...(this.bySource.get(`${kind}/${namespace}/${name}`) ?? [])];
  }
}

export interface InjectorDeps {
  client: Pick<KubeClient, 'find' | 'get' | 'mergePatch'>;
  logger: Logger;
  events: EventSink;
  metrics: InjectorMetrics;
  clock: () => Date;
  targets: Pick<TargetInformers, 'get'>;
  certificates: Pick<Informer<Certificate>, 'get'>;
  /** The Secrets certroute issued (labelled): a change of one of these raises an event; others are re-read. */
  secrets: Pick<Informer<Secret>, 'get'>;
  apiserverCA: X509Certificate[] | undefined;
}

export function injectorReconciler(deps: InjectorDeps): { reconcile: (key: string) => Promise<Outcome>; forget: (key: string) => void } {
  const { client, logger } = deps;
  /** The problem last reported per target: the same one is not reported again. */
  const reported = new Map<string, string>();
  const reader: SourceReader = {
    certificate: (ns, name) => deps.certificates.get(ns, name),
    async secret(ns, name) {
      // The cache of certroute's Secrets keeps parsed facts, not ca.crt: it says whether a change
      // of this Secret raises an event; the CA itself is read from the API server.
      const watched = deps.secrets.get(ns, name) !== undefined;
      const live = await client.find<Secret>(Resources.secrets, ns, name);
      return live ? { secret: live, watched } : undefined;
    },
    apiserverCA: deps.apiserverCA,
  };

  const report = (key: string, target: KubeObject, kind: TargetKind, problem: Problem): Outcome => {
    const said = `${problem.reason}: ${problem.message}`;
    const outcome = problem.recheck ? requeueAfter(UNWATCHED_SECRET_RECHECK_MS) : done;
    if (reported.get(key) === said) return outcome;
    reported.set(key, said);
    deps.events.event(target, kind.def, problem.normal ? 'Normal' : 'Warning', problem.reason, problem.message);
    if (!problem.normal) deps.metrics.refused.inc({ kind: kind.def.kind, name: target.metadata.name, reason: problem.reason });
    logger[problem.normal ? 'info' : 'warn']({ controller: 'cainjector', target: `${kind.def.kind}/${target.metadata.name}`, reason: problem.reason }, problem.message);
    return outcome;
  };

  const reconcile = async (key: string): Promise<Outcome> => {
    const parsed = splitTargetKey(key);
    if (!parsed) return done;
    const { kind, name } = parsed;
    const target = deps.targets.get(kind.def.plural, name);
    const source = target && !target.metadata.deletionTimestamp ? sourceOf(target.metadata.annotations) : undefined;
    if (!target || !source) {
      reported.delete(key);
      return done;
    }
    if ('reason' in source) return report(key, target, kind, source);
    const ca = await readCA(source, reader);
    if ('reason' in ca) return report(key, target, kind, ca);
    let live = target;
    let injection = kind.inject(live, ca.certificates, deps.clock());
    if ('reason' in injection) return report(key, target, kind, injection);
    if (injection.patch) {
      try {
        await client.mergePatch(kind.def, undefined, name, injection.patch);
      } catch (err) {
        if (!isConflict(err)) throw err;
        // The cache is behind the API server: recompute on the live object once, rather than
        // waiting for the watch to catch up and a back-off to pass.
        live = await client.get<KubeObject>(kind.def, undefined, name);
        injection = kind.inject(live, ca.certificates, deps.clock());
        if ('reason' in injection) return report(key, live, kind, injection);
        if (injection.patch) await client.mergePatch(kind.def, undefined, name, injection.patch);
      }
    }
    reported.delete(key);
    if (injection.patch) {
      const from = describeSource(source);
      const fingerprints = ca.certificates.map((c) => c.fingerprint256);
      deps.metrics.injected.inc({ kind: kind.def.kind, name, source_kind: source.kind, source: source.kind === 'APIServer' ? '' : `${source.namespace}/${source.name}` });
      logger.info({ controller: 'cainjector', target: `${kind.def.kind}/${name}`, source: from, into: injection.fields, bundleCertificates: injection.certificates, ca: fingerprints }, 'injected CA');
      deps.events.event(live, kind.def, 'Normal', 'CAInjected', `Injected the CA of ${from} into ${injection.fields}; the bundle holds ${injection.certificates} certificate${injection.certificates === 1 ? '' : 's'}`);
    }
    return ca.unwatched ? requeueAfter(UNWATCHED_SECRET_RECHECK_MS) : done;
  };

  return { reconcile, forget: (key) => reported.delete(key) };
}

/**
 * When to look at which target: its own changes, a change of the Certificate or Secret it
 * names (a Certificate's Secret is matched through its certificate-name annotation, which
 * cert-manager's cainjector also requires).
 */
export function wireInjector(deps: { targets: TargetInformers; certificates: Informer<Certificate>; secrets: Informer<Secret> }, index: InjectorIndex, add: (key: string) => void): void {
  for (const informer of deps.targets.all) {
    informer.on((o, ev) => {
      const key = targetKey(informer.def, o.metadata.name);
      // Most CRDs and APIServices ask for nothing: they are not queued at all.
      if (index.update(key, ev === 'delete' ? undefined : sourceOf(o.metadata.annotations))) add(key);
    });
  }
  deps.certificates.on((c) => {
    for (const key of index.targetsOf('Certificate', c.metadata.namespace ?? '', c.metadata.name)) add(key);
  });
  deps.secrets.on((s) => {
    const ns = s.metadata.namespace ?? '';
    for (const key of index.targetsOf('Secret', ns, s.metadata.name)) add(key);
    const cert = s.metadata.annotations?.[SecretAnnotations.certificateName];
    if (cert) for (const key of index.targetsOf('Certificate', ns, cert)) add(key);
  });
}
