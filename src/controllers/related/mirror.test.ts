import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryApi } from '../../../test/fakes/memory-api.ts';
import { relatedSource } from '../../../test/fakes/related.ts';
import { MANAGED_BY_LABEL, MANAGER, OWNER_LABEL, OWNER_UID_ANNOTATION, SOURCE_HASH_ANNOTATION } from '../../apis/names.ts';
import { ApiError } from '../../kcp-client-ts/errors.ts';
import type { DeletePreconditions } from '../../kcp-client-ts/resources.ts';
import { CLUSTER_ANNOTATION, CONFIGMAPS, SECRETS, type KubeObject } from '../../kcp-client-ts/types.ts';
import type { Informer } from '../../runtime/informer.ts';
import { relatedDigestOf } from './digest.ts';
import { mirrorRelated, type MirrorOwner, type MirrorTarget, type RelatedKind, type RelatedSource } from './mirror.ts';

const signal = new AbortController().signal;
const C = 'consumer-1';
const owner: MirrorOwner = { labels: { [OWNER_LABEL]: 'owner-1' }, uid: 'uid-of-owner' };
const gvrOf = (kind: RelatedKind) => (kind === 'Secret' ? SECRETS : CONFIGMAPS);

let reads = 0;
const source = (kind: RelatedKind, name: string, payload: Record<string, unknown>): RelatedSource => {
  const object = {
    apiVersion: 'v1',
    kind,
    metadata: {
      name,
      namespace: 'default',
      uid: 'uid-in-staging',
      resourceVersion: '7',
      labels: { team: 'payments' },
      annotations: { [CLUSTER_ANNOTATION]: 'ws-staging', note: 'from the provider' },
    },
    ...payload,
  };
  const inHand = relatedSource(kind, object);
  return {
    ...inHand,
    read: (s) => {
      reads++;
      return inHand.read(s);
    },
  };
};

/** The consumer workspace: a cache of Secrets/ConfigMaps (label-selected like the broker's, or showing all) over a MemoryApi. */
const targetOver = (api: MemoryApi, options: { selector?: string } = {}) => {
  // Label-selected caches keep digests, as the broker's do.
  const cacheOptions = { clusters: [C], ...(options.selector ? { labelSelector: options.selector, transform: relatedDigestOf } : {}) };
  const caches: Record<RelatedKind, Informer> = {
    Secret: api.informer(SECRETS, cacheOptions),
    ConfigMap: api.informer(CONFIGMAPS, cacheOptions),
  };
  const deletes: { name: string; preconditions: DeletePreconditions | undefined }[] = [];
  const updates: KubeObject[] = [];
  const target: MirrorTarget = {
    client: (kind) => {
      const client = api.client(C, gvrOf(kind));
      return {
        ...client,
        update: (obj, s) => {
          updates.push(obj);
          return client.update(obj, s);
        },
        delete: (t, s, preconditions) => {
          deletes.push({ name: t.name, preconditions });
          return client.delete(t, s, preconditions);
        },
      };
    },
    find: async (kind, namespace, name) => caches[kind].store.get({ cluster: C, namespace, name }),
    labelled: async (kind, labels) =>
      caches[kind].store.list((o) => Object.entries(labels).every(([k, v]) => o.metadata.labels?.[k] === v)),
  };
  return { target, deletes, updates };
};

const mirror = (target: MirrorTarget, sources: RelatedSource[]) =>
  mirrorRelated({ sources, owner, target, placeOf: (s) => ({ namespace: 'default', name: s.name }), signal });

describe('mirrorRelated', () => {
  let api: MemoryApi;
  beforeEach(() => {
    api = new MemoryApi();
    reads = 0;
  });

  it('creates copies carrying the owner labels, the owner uid and the payload, without kcp metadata', async () => {
    const { target } = targetOver(api, { selector: `${MANAGED_BY_LABEL}=${MANAGER}` });
    const secret = source('Secret', 'tls', { type: 'kubernetes.io/tls', data: { 'tls.crt': 'Y3J0' } });
    const config = source('ConfigMap', 'settings', { data: { mode: 'fast' } });

    expect(await mirror(target, [secret, config])).toEqual({ conflicts: [], deleted: 0 });

    expect(api.log()).toEqual([`create ${C}/secrets default/tls`, `create ${C}/configmaps default/settings`]);
    const copy = api.get(C, SECRETS, 'default', 'tls')!;
    expect(copy.metadata.labels).toEqual({ team: 'payments', [OWNER_LABEL]: 'owner-1', [MANAGED_BY_LABEL]: MANAGER });
    expect(copy.metadata.annotations).toEqual({
      note: 'from the provider',
      [OWNER_UID_ANNOTATION]: 'uid-of-owner',
      [SOURCE_HASH_ANNOTATION]: secret.contentHash,
      [CLUSTER_ANNOTATION]: C,
    });
    expect(copy['type']).toBe('kubernetes.io/tls');
    expect(copy['data']).toEqual({ 'tls.crt': 'Y3J0' });
    expect(api.get(C, CONFIGMAPS, 'default', 'settings')?.['data']).toEqual({ mode: 'fast' });

    // A second pass finds them equal on hashes: it reads no source and writes nothing.
    const readsBefore = reads;
    await mirror(target, [secret, config]);
    expect(api.writes).toHaveLength(2);
    expect(reads).toBe(readsBefore);
  });

  it('reads a source the cache has no hash of, and writes nothing when the copy is current', async () => {
    const { target, updates } = targetOver(api, { selector: `${MANAGED_BY_LABEL}=${MANAGER}` });
    const secret = source('Secret', 'tls', { data: { 'tls.crt': 'Y3J0' } });
    await mirror(target, [secret]);
    const writes = api.writes.length;
    reads = 0;
    await mirror(target, [{ ...secret, contentHash: '' }]); // the staging cache keeps only Secrets a copy named when they arrived
    expect(reads).toBe(1);
    expect(api.writes).toHaveLength(writes);
    expect(updates).toEqual([]);
  });

  it('keeps no data in the cache, and rewrites a copy someone altered though its recorded hash is unchanged', async () => {
    const { target } = targetOver(api, { selector: `${MANAGED_BY_LABEL}=${MANAGER}` });
    const secret = source('Secret', 'tls', { data: { 'tls.crt': 'Y3J0' } });
    await mirror(target, [secret]);
    const cached = api.informer(SECRETS, { clusters: [C], transform: relatedDigestOf }).store.list()[0]!;
    expect(cached['data']).toBeUndefined();
    expect(cached.metadata.annotations?.['note']).toBeUndefined();

    const copy = api.get(C, SECRETS, 'default', 'tls')!;
    api.put(C, SECRETS, { ...copy, data: { 'tls.crt': 'Zm9yZ2Vk' } }); // annotations (and the recorded hash) untouched
    await mirror(target, [secret]);
    expect(api.get(C, SECRETS, 'default', 'tls')?.['data']).toEqual({ 'tls.crt': 'Y3J0' });
    api.put(C, SECRETS, {
      ...api.get(C, SECRETS, 'default', 'tls')!,
      metadata: { ...copy.metadata, labels: { ...copy.metadata.labels, extra: 'x' } },
    });
    await mirror(target, [secret]);
    expect(api.get(C, SECRETS, 'default', 'tls')?.metadata.labels?.['extra']).toBeUndefined();
  });

  it.each([
    ['has no labels', {}, {}],
    ['belongs to another owner', { [OWNER_LABEL]: 'owner-2', [MANAGED_BY_LABEL]: MANAGER }, { [OWNER_UID_ANNOTATION]: 'uid-of-owner' }],
  ])('reports a name taken by an object that %s as a conflict and leaves it byte for byte', async (_, labels, annotations) => {
    const { target } = targetOver(api); // the cache shows every Secret
    const theirs = api.put(C, SECRETS, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'tls', namespace: 'default', labels, annotations },
      data: { mine: 'eA==' },
    });

    const result = await mirror(target, [source('Secret', 'tls', { data: { 'tls.crt': 'Y3J0' } })]);

    expect(result.conflicts).toEqual([{ kind: 'Secret', namespace: 'default', name: 'tls' }]);
    expect(api.writes).toEqual([]);
    expect(JSON.stringify(api.get(C, SECRETS, 'default', 'tls'))).toBe(JSON.stringify(theirs));
  });

  it('reports a conflict when the cache does not show the object and create answers AlreadyExists', async () => {
    const { target } = targetOver(api, { selector: `${MANAGED_BY_LABEL}=${MANAGER}` }); // only labelled objects cached
    const theirs = api.put(C, SECRETS, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'tls', namespace: 'default' },
      data: { mine: 'eA==' },
    });
    const attempts = api.attempts;

    const result = await mirror(target, [source('Secret', 'tls', { data: { 'tls.crt': 'Y3J0' } })]);

    expect(result.conflicts).toEqual([{ kind: 'Secret', namespace: 'default', name: 'tls' }]);
    expect(api.attempts).toBe(attempts + 1); // the create, refused
    expect(api.writes).toEqual([]);
    expect(JSON.stringify(api.get(C, SECRETS, 'default', 'tls'))).toBe(JSON.stringify(theirs));
  });

  it("updates its own copy with the cached resourceVersion, so another writer's change is not overwritten", async () => {
    const { target, updates } = targetOver(api, { selector: `${MANAGED_BY_LABEL}=${MANAGER}` });
    await mirror(target, [source('Secret', 'tls', { data: { v: 'MQ==' } })]);
    const cached = api.get(C, SECRETS, 'default', 'tls')!;

    // Someone edits the copy; the cache has not seen it yet.
    api.lagging = true;
    api.put(C, SECRETS, { ...cached, data: { v: 'edited' } });
    await expect(mirror(target, [source('Secret', 'tls', { data: { v: 'Mg==' } })])).rejects.toMatchObject({ status: 409 });
    expect(updates.at(-1)?.metadata).toMatchObject({ uid: cached.metadata.uid, resourceVersion: cached.metadata.resourceVersion });
    expect(api.get(C, SECRETS, 'default', 'tls')?.['data']).toEqual({ v: 'edited' });

    // With the cache caught up, the next pass rewrites it.
    api.flush();
    await mirror(target, [source('Secret', 'tls', { data: { v: 'Mg==' } })]);
    expect(api.get(C, SECRETS, 'default', 'tls')?.['data']).toEqual({ v: 'Mg==' });
    expect(api.log({ verb: 'update' })).toEqual([`update ${C}/secrets default/tls`]);
  });

  it('replaces a copy whose update the server refuses (a field that cannot change), instead of retrying it forever', async () => {
    const { target, deletes } = targetOver(api, { selector: `${MANAGED_BY_LABEL}=${MANAGER}` });
    await mirror(target, [source('Secret', 'tls', { type: 'Opaque', immutable: true, data: { v: 'MQ==' } })]);
    const first = api.get(C, SECRETS, 'default', 'tls')!;
    api.failNextWrite(
      { verb: 'update', resource: 'secrets' },
      new ApiError({
        status: 422,
        reason: 'Invalid',
        message: 'data: Forbidden: field is immutable when `immutable` is set',
        method: 'PUT',
        url: 'memory://',
      }),
    );
    const changed = source('Secret', 'tls', { type: 'Opaque', immutable: true, data: { v: 'Mg==' } });
    await mirror(target, [changed]);
    expect(deletes).toEqual([{ name: 'tls', preconditions: { uid: first.metadata.uid, resourceVersion: first.metadata.resourceVersion } }]);
    await mirror(target, [changed]);
    expect(api.get(C, SECRETS, 'default', 'tls')?.['data']).toEqual({ v: 'Mg==' });
  });

  it('deletes only the copies of this owner nobody publishes any more, with uid and resourceVersion preconditions', async () => {
    const { target, deletes } = targetOver(api, { selector: `${MANAGED_BY_LABEL}=${MANAGER}` });
    await mirror(target, [
      source('Secret', 'keep', { data: {} }),
      source('Secret', 'old', { data: {} }),
      source('ConfigMap', 'old-cm', { data: {} }),
    ]);
    api.put(C, SECRETS, {
      metadata: {
        name: 'previous-owner',
        namespace: 'default',
        labels: { [OWNER_LABEL]: 'owner-1', [MANAGED_BY_LABEL]: MANAGER },
        annotations: { [OWNER_UID_ANNOTATION]: 'uid-old' },
      },
    });
    const other = api.put(C, SECRETS, {
      metadata: { name: 'other-owner', namespace: 'default', labels: { [OWNER_LABEL]: 'owner-2', [MANAGED_BY_LABEL]: MANAGER } },
    });
    const old = api.get(C, SECRETS, 'default', 'old')!;
    const previousStored = api.get(C, SECRETS, 'default', 'previous-owner')!;
    const oldCm = api.get(C, CONFIGMAPS, 'default', 'old-cm')!;

    const result = await mirror(target, [source('Secret', 'keep', { data: {} })]);

    // The earlier incarnation's copy (same owner labels, another uid) goes too; another owner's stays.
    expect(result).toEqual({ conflicts: [], deleted: 3 });
    expect(api.log({ verb: 'delete' }).sort()).toEqual(
      [`delete ${C}/secrets default/old`, `delete ${C}/secrets default/previous-owner`, `delete ${C}/configmaps default/old-cm`].sort(),
    );
    expect(deletes).toEqual(
      expect.arrayContaining([
        { name: 'old', preconditions: { uid: old.metadata.uid, resourceVersion: old.metadata.resourceVersion } },
        {
          name: 'previous-owner',
          preconditions: { uid: previousStored.metadata.uid, resourceVersion: previousStored.metadata.resourceVersion },
        },
        { name: 'old-cm', preconditions: { uid: oldCm.metadata.uid, resourceVersion: oldCm.metadata.resourceVersion } },
      ]),
    );
    expect(
      api
        .list(C, SECRETS)
        .map((s) => s.metadata.name)
        .sort(),
    ).toEqual(['keep', 'other-owner']);
    expect(api.get(C, SECRETS, 'default', 'other-owner')).toEqual(other);
  });

  it('does not delete a copy that changed between the read and the delete', async () => {
    const { target } = targetOver(api, { selector: `${MANAGED_BY_LABEL}=${MANAGER}` });
    await mirror(target, [source('Secret', 'old', { data: {} })]);
    const copy = api.get(C, SECRETS, 'default', 'old')!;

    // Someone takes the object over (drops the broker's labels); the cache still shows the copy as it was.
    api.lagging = true;
    const taken = api.put(C, SECRETS, { ...copy, metadata: { ...copy.metadata, labels: { team: 'payments' } }, data: { now: 'bWluZQ==' } });
    await mirror(target, []);
    expect(api.writes.filter((w) => w.verb === 'delete')).toEqual([]);
    expect(api.get(C, SECRETS, 'default', 'old')).toEqual(taken);

    // Once the cache shows the change, the object is no longer the owner's: left alone for good.
    api.flush();
    expect(await mirror(target, [])).toEqual({ conflicts: [], deleted: 0 });
    expect(api.get(C, SECRETS, 'default', 'old')).toEqual(taken);
  });

  it('replaces the copy an earlier object of the same identity left (owner labels, another uid): deleted with preconditions, then made anew', async () => {
    const { target, deletes } = targetOver(api);
    api.put(C, SECRETS, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'tls',
        namespace: 'default',
        labels: { [OWNER_LABEL]: 'owner-1', [MANAGED_BY_LABEL]: MANAGER },
        annotations: { [OWNER_UID_ANNOTATION]: 'uid-old' },
      },
      data: { old: 'eA==' },
    });
    const sources = [source('Secret', 'tls', { data: { 'tls.crt': 'Y3J0' } })];

    const first = await mirror(target, sources);
    expect(first.conflicts).toEqual([]);
    expect(deletes).toHaveLength(1);
    expect(api.get(C, SECRETS, 'default', 'tls')).toBeUndefined();

    await mirror(target, sources);
    const copy = api.get(C, SECRETS, 'default', 'tls')!;
    expect(copy.metadata.annotations?.[OWNER_UID_ANNOTATION]).toBe('uid-of-owner');
    expect(copy['data']).toEqual({ 'tls.crt': 'Y3J0' });
  });
});
