/**
 * Kubernetes Events on the objects, so `kubectl describe` tells the story.
 * As client-go's recorder does: repeats of the same (object, type, reason,
 * message) within the process are folded into one Event with a rising count,
 * and each object gets at most 25 Events (new or repeated) in a burst, then one
 * every 5 minutes (`EventSpamFilter`), so a retry loop cannot flood etcd.
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

/**
 * client-go's EventSourceObjectSpamFilter: a token bucket per source and
 * involved object (kind, namespace, name, uid), `burst` tokens, refilled one
 * per `refillMs`. An Event that finds the bucket empty is dropped, whatever
 * its reason. The buckets of the least recently seen objects are forgotten
 * beyond `capacity`, as client-go's LRU cache of 4096 does.
 */
export class EventSpamFilter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly burst: number;
  private readonly refillMs: number;
  private readonly capacity: number;

  constructor(opts: { burst?: number; refillMs?: number; capacity?: number } = {}) {
    this.burst = opts.burst ?? 25;
    this.refillMs = opts.refillMs ?? 5 * 60_000;
    this.capacity = opts.capacity ?? 4096;
  }

  /** Takes a token for the object's bucket at `now` (ms); false when it is empty and the Event must be dropped. */
  allow(objectKey: string, now: number): boolean {
    const prior = this.buckets.get(objectKey);
    const bucket = prior ? { tokens: Math.min(this.burst, prior.tokens + (now - prior.at) / this.refillMs), at: now } : { tokens: this.burst, at: now };
    // Re-inserted, so the Map's first key is the least recently seen.
    this.buckets.delete(objectKey);
    this.buckets.set(objectKey, bucket);
    if (this.buckets.size > this.capacity) this.buckets.delete(this.buckets.keys().next().value as string);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }
}

/** The two calls the recorder makes: create an Event, merge-patch its count. */
export type EventWriter = Pick<KubeClient, 'create' | 'mergePatch'>;

interface Recorded {
  name: string;
  namespace: string;
  count: number;
}

export class EventRecorder implements EventSink {
  private readonly client: EventWriter;
  private readonly logger: Logger;
  private readonly component: string;
  private readonly seen = new Map<string, Recorded>();
  private readonly clock: () => Date;
  private readonly spam = new EventSpamFilter();

  constructor(client: EventWriter, logger: Logger, component = 'certroute', clock: () => Date = () => new Date()) {
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
    const object = `${def.plural}/${namespace}/${obj.metadata.name}/${obj.metadata.uid ?? ''}`;
    const at = this.clock();
    if (!this.spam.allow(object, at.getTime())) {
      // Logged at info with its text, so what `kubectl get events` no longer shows is still in the log.
      this.logger.info({ key: `${namespace}/${obj.metadata.name}`, kind: def.kind, type, reason, message: message.slice(0, 1024) }, 'event dropped: too many Events for this object');
      return;
    }
    const key = `${object}/${type}/${reason}/${message}`;
    const now = kubeTime(at);
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
