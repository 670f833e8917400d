import { describe, expect, it } from 'vitest';
import { consumerStatusOf, MAX_STATUS_BYTES, stagingCopyDiffers, stagingCopyOf, updatedStagingCopy } from './mapping.ts';

const TYPE = { apiVersion: 'example.platform-mesh.io/v1alpha1', kind: 'Certificate' };

const consumer = {
  apiVersion: 'example.platform-mesh.io/v1alpha1',
  kind: 'Certificate',
  metadata: {
    name: 'app',
    namespace: 'team',
    uid: 'u1',
    resourceVersion: '7',
    generation: 2,
    creationTimestamp: '2026-01-01T00:00:00Z',
    finalizers: ['broker.platform-mesh.io/finalizer'],
    managedFields: [{}],
    labels: { tier: 'web', 'claimed.internal.apis.kcp.io/x': 'y' },
    annotations: { 'kcp.io/cluster': 'c1', note: 'n' },
  },
  spec: { fqdn: 'app.corp.com' },
  status: { status: 'Available' },
};

describe('staging copy mapping', () => {
  it('copies the consumer without status or server/kcp metadata, naming the consumer', () => {
    const copy = stagingCopyOf(consumer, TYPE);
    expect(copy).toEqual({
      apiVersion: 'example.platform-mesh.io/v1alpha1',
      kind: 'Certificate',
      metadata: {
        name: 'app',
        namespace: 'team',
        labels: { tier: 'web' },
        annotations: { note: 'n', 'broker.platform-mesh.io/consumer-cluster': 'c1', 'broker.platform-mesh.io/consumer-name': 'app' },
      },
      spec: { fqdn: 'app.corp.com' },
    });
  });

  it('replaces every top-level field and drops removed ones on update', () => {
    const current = {
      ...stagingCopyOf(consumer, TYPE),
      metadata: { ...stagingCopyOf(consumer, TYPE).metadata, resourceVersion: '3' },
      extra: { a: 1 },
      status: { status: 'Available' },
    };
    const desired = stagingCopyOf({ ...consumer, spec: { fqdn: 'b.corp.com' } }, TYPE);
    expect(stagingCopyDiffers(current, desired)).toBe(true);
    const updated = updatedStagingCopy(current, desired);
    expect(updated['extra']).toBeUndefined();
    expect(updated['spec']).toEqual({ fqdn: 'b.corp.com' });
    expect(updated.metadata.resourceVersion).toBe('3');
    expect(stagingCopyDiffers({ ...desired, status: { status: 'x' } }, desired)).toBe(false);
  });

  it('rewrites a copy an earlier broker annotated with namespace/name to the name alone', () => {
    const desired = stagingCopyOf(consumer, TYPE);
    const earlier = {
      ...desired,
      metadata: {
        ...desired.metadata,
        resourceVersion: '4',
        annotations: { ...desired.metadata.annotations, 'broker.platform-mesh.io/consumer-name': 'team/app' },
      },
    };
    expect(stagingCopyDiffers(earlier, desired)).toBe(true);
    expect(updatedStagingCopy(earlier, desired).metadata.annotations?.['broker.platform-mesh.io/consumer-name']).toBe('app');
  });
});

describe('consumer status from a provider status', () => {
  it('copies a status that fits whole', () => {
    expect(consumerStatusOf({ metadata: {}, status: { status: 'Ready' } }, consumer)).toEqual({ status: { status: 'Ready' }, dropped: [] });
  });

  it('leaves out the largest fields of an oversized status, names them in a condition, and maps the same input to the same status', () => {
    const provider = {
      metadata: {},
      status: {
        status: 'Ready',
        huge: 'x'.repeat(MAX_STATUS_BYTES),
        big: 'y'.repeat(MAX_STATUS_BYTES / 2),
        small: 'z'.repeat(1000),
        conditions: [{ type: 'Ready', status: 'True' }],
      },
    };
    const first = consumerStatusOf(provider, consumer, new Date('2026-11-26T00:00:00.123Z'));
    expect(first.dropped.map((d) => d.field)).toEqual(['status.huge']);
    const status = first.status as Record<string, unknown>;
    expect(Object.keys(status).sort()).toEqual(['big', 'conditions', 'small', 'status']);
    expect(Buffer.byteLength(JSON.stringify(status))).toBeLessThanOrEqual(MAX_STATUS_BYTES);
    expect(status['conditions']).toEqual([
      { type: 'Ready', status: 'True' },
      {
        type: 'StatusTruncated',
        status: 'True',
        reason: 'ProviderStatusTooLarge',
        message: `the provider's status is larger than ${MAX_STATUS_BYTES} bytes; not copied: status.huge (${MAX_STATUS_BYTES + 2} bytes)`,
        lastTransitionTime: '2026-11-26T00:00:00Z',
      },
    ]);
    // Later, with that status in place, the same provider status maps to the same thing: no rewrite.
    const again = consumerStatusOf(provider, { ...consumer, status }, new Date('2026-11-27T00:00:00Z'));
    expect(again.status).toEqual(status);
  });

  it('drops a status that is one oversized value, naming it', () => {
    const result = consumerStatusOf({ metadata: {}, status: 'x'.repeat(MAX_STATUS_BYTES + 1) }, consumer);
    expect(result).toEqual({ status: undefined, dropped: [{ field: 'status', bytes: MAX_STATUS_BYTES + 3 }] });
  });
});
