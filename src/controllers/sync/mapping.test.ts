import { describe, expect, it } from 'vitest';
import { relatedCopyOf, relatedRefs, stagingCopyDiffers, stagingCopyOf, updatedStagingCopy } from './mapping.ts';

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
    const current = { ...stagingCopyOf(consumer, TYPE), metadata: { ...stagingCopyOf(consumer, TYPE).metadata, resourceVersion: '3' }, extra: { a: 1 }, status: { status: 'Available' } };
    const desired = stagingCopyOf({ ...consumer, spec: { fqdn: 'b.corp.com' } }, TYPE);
    expect(stagingCopyDiffers(current, desired)).toBe(true);
    const updated = updatedStagingCopy(current, desired);
    expect(updated['extra']).toBeUndefined();
    expect(updated['spec']).toEqual({ fqdn: 'b.corp.com' });
    expect(updated.metadata.resourceVersion).toBe('3');
    expect(stagingCopyDiffers({ ...desired, status: { status: 'x' } }, desired)).toBe(false);
  });

  it('reads Secret/ConfigMap related resources, core group spelled "" or "core"', () => {
    const staging = {
      metadata: { name: 'app' },
      status: {
        relatedResources: {
          secret: { name: 'app-tls', gvk: { group: 'core', version: 'v1', kind: 'Secret' } },
          cm: { namespace: 'other', name: 'c', gvk: { group: '', version: 'v1', kind: 'ConfigMap' } },
          db: { name: 'x', gvk: { group: 'db.io', version: 'v1', kind: 'Database' } },
        },
      },
    };
    const { refs, unsupported } = relatedRefs(staging, 'team');
    expect(refs).toEqual([
      { key: 'secret', kind: 'Secret', namespace: 'team', name: 'app-tls' },
      { key: 'cm', kind: 'ConfigMap', namespace: 'other', name: 'c' },
    ]);
    expect(unsupported).toEqual(['db']);
  });

  it('copies a related Secret from a list item (no kind) with kind, data and the owner label', () => {
    const listed = { metadata: { name: 's', namespace: 'team', resourceVersion: '9', labels: { a: 'b' }, annotations: { 'kcp.io/cluster': 'x' } }, data: { k: 'dg==' }, type: 'Opaque' };
    expect(relatedCopyOf(listed, 'Secret', 'owner1')).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 's', namespace: 'team', labels: { a: 'b', 'broker.platform-mesh.io/owner': 'owner1', 'app.kubernetes.io/managed-by': 'resource-broker' }, annotations: {} },
      data: { k: 'dg==' },
      type: 'Opaque',
    });
  });
});
