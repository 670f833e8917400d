import { clusterOf, type KubeObject } from '../../src/kcp-client-ts/types.ts';
import type { EventReason, EventSink, EventType } from '../../src/runtime/events.ts';

export type RecordedEvent = { object: string; type: EventType; reason: EventReason; message: string };

/** An EventSink that keeps what it is told (`cluster/namespace/name` of the object), repeats included. */
export class RecordingEvents implements EventSink {
  readonly recorded: RecordedEvent[] = [];

  async record(obj: KubeObject, type: EventType, reason: EventReason, message: string): Promise<void> {
    this.recorded.push({ object: `${clusterOf(obj)}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`, type, reason, message });
  }

  forget(): void {}

  /** The events of one reason. */
  of(reason: EventReason): RecordedEvent[] {
    return this.recorded.filter((e) => e.reason === reason);
  }
}
