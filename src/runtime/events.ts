import { randomBytes } from 'node:crypto';
import { clusterOf, type KubeObject } from '../kcp-client-ts/types.ts';
import type { VirtualWorkspace } from '../kcp-client-ts/virtual-workspace.ts';
import type { Logger } from '../logging.ts';
import { encodeKey, objectKeyOf } from './object-key.ts';

export type EventType = 'Normal' | 'Warning';
const EVENT_REASONS = [
  'Assigned',
  'NoMatchingProvider',
  'MigrationStarted',
  'MoveRefused',
  'MigrationCompleted',
  'MigrationFailed',
  'SyncFailed',
  'RelatedResourceConflict',
  'RelatedResourceRefused',
  'DeletionBlocked',
  'ProviderStatusTooLarge',
  'StatusRefused',
  'RelatedResourceNotClaimed',
] as const;
export type EventReason = (typeof EVENT_REASONS)[number];

/**
 * Where Events go: `events` writes them into the consumer's workspace; `log` logs them, for a
 * workspace where no accepted events claim lets the broker write (kcp would refuse, so it is not tried).
 */
export type EventDelivery = 'events' | 'log';

/** Objects whose last Event is remembered (to skip repeats); the oldest are forgotten first. */
const REMEMBERED_OBJECTS = 10_000;
/** How long an Event's write may take before it is given up (Events are best effort). */
const EVENT_WRITE_TIMEOUT_MS = 10_000;
/** Longest Event message written, in characters (what events.k8s.io allows for a note). */
const MAX_MESSAGE = 1024;

const EVENTS = { group: '', version: 'v1', resource: 'events' };

/**
 * Writes core/v1 Events about consumer objects into the consumer's workspace, through the
 * brokered export's virtual workspace (the events permission claim), or logs them where that
 * claim is not made or not accepted. Repeats of the same reason and message for an object are said once.
 */
export class EventRecorder {
  readonly #virtualWorkspace: Pick<VirtualWorkspace, 'client'>;
  readonly #logger: Logger;
  /** Per object, per reason, what was said last (and where): the same thing is said once. */
  readonly #last = new Map<string, SaidLast>();
  readonly #involvedType: { apiVersion: string; kind: string };
  readonly #delivery: (cluster: string) => EventDelivery;

  constructor(options: {
    /** The brokered export's virtual workspace: each consumer's Events go to the shard that holds it. */
    virtualWorkspace: Pick<VirtualWorkspace, 'client'>;
    logger: Logger;
    involvedType: { apiVersion: string; kind: string };
    /** Per consumer workspace; default `events` everywhere. */
    delivery?: (cluster: string) => EventDelivery;
  }) {
    this.#involvedType = options.involvedType;
    this.#delivery = options.delivery ?? (() => 'events');
    this.#virtualWorkspace = options.virtualWorkspace;
    this.#logger = options.logger;
  }

  async record(obj: KubeObject, type: EventType, reason: EventReason, message: string): Promise<void> {
    const cluster = clusterOf(obj);
    const id = idOf(obj);
    if (message.length > MAX_MESSAGE) message = `${message.slice(0, MAX_MESSAGE - 20)}... (truncated)`;
    // Said again where it can now be written (the workspace accepted the events claim).
    const delivery = this.#delivery(cluster);
    const said = digestOf(`${delivery}\u0000${message}`);
    const saidBefore = this.#last.get(id);
    // Per reason, so two reasons taking turns (a truncated status that is also refused) are not said on every pass.
    if (lastSaid(saidBefore, reason) === said) return;
    const saidOf = rememberSaid(saidBefore, reason, said);
    this.#last.delete(id); // re-inserted last: the map is in least-recently-said order
    if (saidOf !== undefined) this.#last.set(id, saidOf);
    if (this.#last.size > REMEMBERED_OBJECTS) this.#last.delete(this.#last.keys().next().value!);
    if (delivery === 'log') {
      const fields = { cluster, namespace: obj.metadata.namespace, name: obj.metadata.name, reason, message };
      if (type === 'Warning')
        this.#logger.warn(fields, 'event for a consumer object, logged: no accepted events claim lets the broker write it');
      else this.#logger.info(fields, 'event for a consumer object, logged: no accepted events claim lets the broker write it');
      return;
    }
    const namespace = obj.metadata.namespace || 'default';
    const now = new Date().toISOString();
    try {
      await this.#virtualWorkspace.client(cluster, EVENTS).create(
        {
          apiVersion: 'v1',
          kind: 'Event',
          metadata: { name: `${obj.metadata.name}.${randomBytes(6).toString('hex')}`, namespace },
          involvedObject: {
            ...this.#involvedType,
            name: obj.metadata.name,
            ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}),
            uid: obj.metadata.uid,
            resourceVersion: obj.metadata.resourceVersion,
          },
          type,
          reason,
          message,
          source: { component: 'resource-broker' },
          reportingComponent: 'resource-broker',
          reportingInstance: 'resource-broker',
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
        // Best effort, and not awaited by the reconcile that says it: bounded, so Events kcp is
        // slow to answer cannot hold the broker's write connections (capped per origin) for long.
        AbortSignal.timeout(EVENT_WRITE_TIMEOUT_MS),
      );
    } catch (err) {
      // Events are best effort: a consumer that did not accept the events claim still gets served.
      // Unless something newer was said for that reason meanwhile. (The same text said again
      // after forget() while this write was failing is then forgotten too, and said once more.)
      const now = this.#last.get(id);
      if (now !== undefined && lastSaid(now, reason) === said) {
        const rest = rememberSaid(now, reason, undefined);
        if (rest === undefined) this.#last.delete(id);
        else this.#last.set(id, rest);
      }
      this.#logger.warn({ cluster, name: obj.metadata.name, reason, err }, 'could not record event');
    }
  }

  /** Forgets what was said about an object (it was deleted). */
  forget(obj: KubeObject): void {
    this.#last.delete(idOf(obj));
  }
}

const idOf = (obj: KubeObject): string => encodeKey(objectKeyOf(obj));

/**
 * What was said last about one object, per reason. One reason (most objects only ever get
 * `Assigned`) as one integer: the reason's index in EVENT_REASONS times 2^27 plus the digest,
 * under 2^31 for up to 16 reasons, which V8 keeps unboxed: 10,000 remembered objects cost a key
 * and an integer each, where a list cost 64 bytes more. Two or more reasons as a list: reason,
 * digest, reason, digest...
 */
type SaidLast = number | (EventReason | number)[];

const DIGEST_RANGE = 2 ** 27;
const REASON_INDEX = new Map<EventReason, number>(EVENT_REASONS.map((reason, index) => [reason, index]));

const listOf = (said: SaidLast | undefined): (EventReason | number)[] => {
  if (said === undefined) return [];
  if (typeof said !== 'number') return said;
  return [EVENT_REASONS[Math.floor(said / DIGEST_RANGE)] ?? 'Assigned', said % DIGEST_RANGE];
};

const lastSaid = (said: SaidLast | undefined, reason: EventReason): number | undefined => {
  const list = listOf(said);
  const at = list.indexOf(reason);
  return at < 0 ? undefined : (list[at + 1] as number);
};

/**
 * `digest` undefined: forgets the reason (its Event was not written, so it is said again next
 * time); undefined when nothing is left to remember.
 */
const rememberSaid = (said: SaidLast | undefined, reason: EventReason, digest: number | undefined): SaidLast | undefined => {
  const list = listOf(said);
  const at = list.indexOf(reason);
  const rest = at < 0 ? list : [...list.slice(0, at), ...list.slice(at + 2)];
  const next = digest === undefined ? rest : [...rest, reason, digest];
  if (next.length === 0) return undefined;
  const index = REASON_INDEX.get(next[0] as EventReason);
  if (next.length > 2 || index === undefined) return next;
  return index * DIGEST_RANGE + (next[1] as number);
};

/**
 * FNV-1a over the text, in 27 bits (see SaidLast). Two different texts for one object and reason
 * sharing a digest would leave the second unsaid: about one chance in 134 million, for an Event,
 * which is best effort anyway.
 */
const digestOf = (text: string): number => {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % DIGEST_RANGE;
};

/** What controllers need of an EventRecorder (unit tests hand in a list). */
export type EventSink = Pick<EventRecorder, 'record' | 'forget'>;
