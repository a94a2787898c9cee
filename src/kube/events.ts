/**
 * Kubernetes Events on the objects, so `kubectl describe` tells the story.
 * Repeats of the same (object, type, reason, message) within the process are
 * folded into one Event with a rising count, as client-go's recorder does,
 * so a retry loop cannot flood etcd.
 */
import type { KubeObject, ResourceDef } from '../api/types.ts';
import type { KubeClient } from './client.ts';
import type { Logger } from '../log.ts';
import { kubeTime } from './conditions.ts';

const eventsDef: ResourceDef = { group: '', version: 'v1', plural: 'events', kind: 'Event', namespaced: true };

export type EventType = 'Normal' | 'Warning';

export interface EventSink {
  event(obj: KubeObject, def: ResourceDef, type: EventType, reason: string, message: string): void;
}

interface Recorded {
  name: string;
  namespace: string;
  count: number;
}

export class EventRecorder implements EventSink {
  private readonly client: KubeClient;
  private readonly logger: Logger;
  private readonly component: string;
  private readonly seen = new Map<string, Recorded>();
  private readonly clock: () => Date;

  constructor(client: KubeClient, logger: Logger, component = 'certroute', clock: () => Date = () => new Date()) {
    this.client = client;
    this.logger = logger;
    this.component = component;
    this.clock = clock;
  }

  /** Fire and forget: an Event that cannot be written must never fail a reconcile. */
  event(obj: KubeObject, def: ResourceDef, type: EventType, reason: string, message: string): void {
    void this.record(obj, def, type, reason, message).catch((err: unknown) => {
      this.logger.debug({ key: `${obj.metadata.namespace ?? ''}/${obj.metadata.name}`, kind: def.kind, err: String(err), reason }, 'could not record event');
    });
  }

  private async record(obj: KubeObject, def: ResourceDef, type: EventType, reason: string, message: string): Promise<void> {
    const namespace = obj.metadata.namespace ?? 'default';
    const key = `${def.plural}/${namespace}/${obj.metadata.name}/${obj.metadata.uid ?? ''}/${type}/${reason}/${message}`;
    const now = kubeTime(this.clock());
    const prior = this.seen.get(key);
    if (prior) {
      prior.count++;
      await this.client.mergePatch(eventsDef, prior.namespace, prior.name, { count: prior.count, lastTimestamp: now });
      return;
    }
    if (this.seen.size > 5000) this.seen.clear();
    const name = `${obj.metadata.name}.${Date.now().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
    this.seen.set(key, { name, namespace, count: 1 });
    await this.client.create(eventsDef, {
      metadata: { name, namespace },
      involvedObject: {
        apiVersion: def.group === '' ? def.version : `${def.group}/${def.version}`,
        kind: def.kind,
        name: obj.metadata.name,
        namespace: obj.metadata.namespace,
        uid: obj.metadata.uid,
        resourceVersion: obj.metadata.resourceVersion,
      },
      type,
      reason,
      message: message.slice(0, 1024),
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component: this.component },
      reportingComponent: this.component,
    } as KubeObject);
  }
}
