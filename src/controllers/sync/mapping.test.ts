import { describe, expect, it } from 'vitest';
import { stagingCopyDiffers, stagingCopyOf, updatedStagingCopy } from './mapping.ts';

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
        annotations: { note: 'n', 'broker.platform-mesh.io/consumer-cluster': 'c1', 'broker.platform-mesh.io/consumer-name': 'team/app' },
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
});
