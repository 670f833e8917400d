import { describe, expect, it } from 'vitest';
import type { ResourceClient } from '../kcp-client-ts/resources.ts';
import type { KubeObject } from '../kcp-client-ts/types.ts';
import { silentLogger } from '../logging.ts';
import { type EventDelivery, EventRecorder } from './events.ts';

type Written = { cluster: string; reason: string; message: string };

const recorder = (delivery: () => EventDelivery = () => 'events') => {
  const written: Written[] = [];
  let failNext = false;
  const events = new EventRecorder({
    virtualWorkspace: {
      client: <T extends KubeObject>(cluster: string) =>
        ({
          create: async (event: KubeObject & { reason: string; message: string }) => {
            if (failNext) {
              failNext = false;
              throw new Error('kcp said no');
            }
            written.push({ cluster, reason: event.reason, message: event.message });
            return event;
          },
        }) as unknown as ResourceClient<T>,
    },
    logger: silentLogger(),
    involvedType: { apiVersion: 'example.io/v1', kind: 'Certificate' },
    delivery,
  });
  return { events, written, failOnce: () => (failNext = true) };
};

const cert = (name: string): KubeObject => ({
  apiVersion: 'example.io/v1',
  kind: 'Certificate',
  metadata: { name, namespace: 'default', annotations: { 'kcp.io/cluster': 'c1' } },
});

describe('EventRecorder', () => {
  it('says a repeat once, per reason, and says a changed message again', async () => {
    const { events, written } = recorder();
    await events.record(cert('a'), 'Warning', 'SyncFailed', 'first');
    await events.record(cert('a'), 'Warning', 'SyncFailed', 'first');
    await events.record(cert('a'), 'Warning', 'StatusRefused', 'other');
    // Two reasons taking turns are each said once.
    await events.record(cert('a'), 'Warning', 'SyncFailed', 'first');
    await events.record(cert('a'), 'Warning', 'StatusRefused', 'other');
    await events.record(cert('b'), 'Warning', 'SyncFailed', 'first');
    await events.record(cert('a'), 'Warning', 'SyncFailed', 'second');
    expect(written.map((w) => `${w.reason}:${w.message}`)).toEqual([
      'SyncFailed:first',
      'StatusRefused:other',
      'SyncFailed:first',
      'SyncFailed:second',
    ]);
  });

  it('says again what could not be written, what was forgotten, and what can now be written', async () => {
    let delivery: EventDelivery = 'log';
    const { events, written, failOnce } = recorder(() => delivery);
    await events.record(cert('a'), 'Normal', 'Assigned', 'placed');
    expect(written).toEqual([]);
    delivery = 'events';
    await events.record(cert('a'), 'Normal', 'Assigned', 'placed');
    expect(written).toHaveLength(1);
    events.forget(cert('a'));
    await events.record(cert('a'), 'Normal', 'Assigned', 'placed');
    expect(written).toHaveLength(2);
    failOnce();
    await events.record(cert('a'), 'Warning', 'SyncFailed', 'x');
    await events.record(cert('a'), 'Warning', 'SyncFailed', 'x');
    expect(written.map((w) => w.reason)).toEqual(['Assigned', 'Assigned', 'SyncFailed']);
  });

  it('keeps what was said for a reason when an older write for it fails, and keeps the other reasons', async () => {
    const attempts: string[] = [];
    const pending: { settle: (ok: boolean) => void }[] = [];
    const events = new EventRecorder({
      virtualWorkspace: {
        client: <T extends KubeObject>() =>
          ({
            create: (event: KubeObject & { reason: string; message: string }) => {
              attempts.push(`${event.reason}:${event.message}`);
              return new Promise((resolve, reject) =>
                pending.push({ settle: (ok) => (ok ? resolve(event) : reject(new Error('kcp said no'))) }),
              );
            },
          }) as unknown as ResourceClient<T>,
      },
      logger: silentLogger(),
      involvedType: { apiVersion: 'example.io/v1', kind: 'Certificate' },
    });
    const said: Promise<void>[] = [];
    const say = (reason: 'SyncFailed' | 'StatusRefused', message: string) =>
      said.push(events.record(cert('a'), 'Warning', reason, message));
    say('SyncFailed', 'm1');
    say('StatusRefused', 'b');
    say('SyncFailed', 'm2');
    // The first write fails after the second message for its reason went out.
    for (const [i, p] of pending.entries()) p.settle(i !== 0);
    await Promise.all(said);
    say('SyncFailed', 'm2');
    say('StatusRefused', 'b');
    await Promise.all(said);
    expect(attempts).toEqual(['SyncFailed:m1', 'StatusRefused:b', 'SyncFailed:m2']);
  });
});
