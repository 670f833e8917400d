import { describe, expect, it } from 'vitest';
import type { Migration } from '../../apis/types.ts';
import { ApiError } from '../../kcp-client-ts/errors.ts';
import type { ResourceClient } from '../../kcp-client-ts/resources.ts';
import { writeMigrationStatus } from './status.ts';

const signal = new AbortController().signal;
const migration: Migration = {
  apiVersion: 'coord.broker.platform-mesh.io/v1alpha1',
  kind: 'Migration',
  metadata: { name: 'migration-1', resourceVersion: '7' },
  spec: {
    assignment: 'a',
    name: 'vm',
    fromStagingWorkspace: 'from',
    stagingWorkspace: 'to',
    from: { gvk: { group: 'g', version: 'v1', kind: 'VM' }, providerCluster: 'p1', acceptAPIName: 'x', apiExportName: 'vms' },
    to: { gvk: { group: 'g', version: 'v1', kind: 'VM' }, providerCluster: 'p2', acceptAPIName: 'y', apiExportName: 'vms' },
  },
};

/** Records status writes; answers each with the object written, or with the given error. */
const fakeClient = (answer?: Error): { client: Pick<ResourceClient<Migration>, 'updateStatus'>; written: Migration[] } => {
  const written: Migration[] = [];
  const client = {
    updateStatus: async (object: Migration): Promise<Migration> => {
      written.push(object);
      if (answer) throw answer;
      return { ...object, metadata: { ...object.metadata, resourceVersion: '8' } };
    },
  } satisfies Pick<ResourceClient<Migration>, 'updateStatus'>;
  return { client, written };
};

const ref = { stage: 'prepare', apiVersion: 'v1', kind: 'ServiceAccount', namespace: 'default', name: 'migration-1-sa' };

describe('writeMigrationStatus', () => {
  it('returns the written Migration, and writes nothing when nothing changes', async () => {
    const { client, written } = fakeClient();
    const after = await writeMigrationStatus(client, migration, { state: 'InitialInProgress', stageObjects: [ref] }, signal);
    expect(after?.metadata.resourceVersion).toBe('8');
    expect(after?.status?.stageObjects).toEqual([ref]);
    expect(await writeMigrationStatus(client, after!, { state: 'InitialInProgress', stageObjects: [ref] }, signal)).toBe(after);
    expect(written).toHaveLength(1);
  });

  it('clears stageObjects with null and keeps them when the change does not mention them', async () => {
    const { client } = fakeClient();
    const withRef = await writeMigrationStatus(client, migration, { stageObjects: [ref] }, signal);
    const kept = await writeMigrationStatus(client, withRef!, { stage: 'next' }, signal);
    expect(kept?.status?.stageObjects).toEqual([ref]);
    const cleared = await writeMigrationStatus(client, kept!, { stageObjects: null }, signal);
    expect(cleared?.status).not.toHaveProperty('stageObjects');
  });

  it('returns undefined on a conflict and throws any other error', async () => {
    const conflict = new ApiError({ status: 409, reason: 'Conflict', message: 'modified', method: 'PUT', url: 'u' });
    expect(await writeMigrationStatus(fakeClient(conflict).client, migration, { state: 'Failed' }, signal)).toBeUndefined();
    const forbidden = new ApiError({ status: 403, reason: 'Forbidden', message: 'no', method: 'PUT', url: 'u' });
    await expect(writeMigrationStatus(fakeClient(forbidden).client, migration, { state: 'Failed' }, signal)).rejects.toThrow(
      /403 Forbidden/,
    );
  });
});
