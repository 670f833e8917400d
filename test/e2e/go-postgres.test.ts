/**
 * The Go project's postgres example (platform-mesh/platform-mesh,
 * operators/resource-broker/examples/broker-postgres: README.md, run.bash, postgres.yaml,
 * migrationconfiguration.yaml, and the CRD config/example/crd/example.platform-mesh.io_postgres.yaml),
 * its manifests applied unchanged: from the project's own fixtures in the same shapes
 * (test/fixtures/go-project/broker-postgres/), or with RB_UPSTREAM_EXAMPLES set, the published files.
 *
 * What the Go example runs on kind clusters, this test plays:
 * - run.bash `kcp::apiexport`: the CRD becomes an APIResourceSchema (`kubectl kcp crd snapshot
 *   --prefix current`, crdSnapshot here) and the platform's APIExport `postgres` claiming
 *   secrets, events and namespaces with every verb.
 * - each provider (kropg, cnpg): the empty APIExport `postgres` of run.bash; its api-syncagent
 *   publishes the Postgres schema into it and, for the related Secret `credentials`, a Secrets
 *   claim; kro (kropg) or CloudNativePG (cnpg) then writes `status.status` and
 *   `status.relatedResources.credentials` and creates that Secret (key `uri`) next to the copy.
 * - compute: the broker runs with `--compute-kubeconfig` (the example's platform kind cluster,
 *   where the pg-dump Job runs). Here that cluster is a kcp workspace reached through its own
 *   kubeconfig; kcp serves no batch/v1, so the test creates a `jobs.batch` CustomResourceDefinition
 *   there, and plays the Job controller by setting `status.succeeded`.
 *
 * One deviation of setting, not of the manifests: the postgres README's first heredoc (each
 * provider binds `acceptapis`, accepting the Secrets claim read-only) is the same text as the
 * certificates README's first heredoc, so with RB_UPSTREAM_EXAMPLES that published file is applied.
 */
import { holdExclusive } from '../harness/exclusive.ts';
import { KubeConfig } from '@kubernetes/client-node';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_PATHS, type BrokerPaths } from '../../src/apis/paths.ts';
import {
  ACCEPTAPI_GVR,
  ASSIGNMENT_GVR,
  MIGRATION_GVR,
  MIGRATIONCONFIGURATION_GVR,
  STAGINGWORKSPACE_GVR,
  type AcceptAPI,
  type Assignment,
  type Condition,
  type Migration,
  type StagingWorkspace,
} from '../../src/apis/types.ts';
import { bootstrap } from '../../src/broker/bootstrap.ts';
import { Applier } from '../../src/kcp-client-ts/apply.ts';
import { APIBINDINGS, type APIBindingObject } from '../../src/kcp-client-ts/bindings.ts';
import type { KcpEndpoint } from '../../src/kcp-client-ts/endpoint.ts';
import { ResourceClient } from '../../src/kcp-client-ts/resources.ts';
import { SECRETS, type GroupVersionResource, type KubeObject } from '../../src/kcp-client-ts/types.ts';
import { Workspaces, type ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { createLogger } from '../../src/logging.ts';
import { Informer } from '../../src/runtime/informer.ts';
import { BrokerProcess } from '../harness/broker-process.ts';
import { decodeSecret, statusOf } from '../harness/broker-world.ts';
import { eventually } from '../harness/eventually.ts';
import { never } from '../harness/go-frame.ts';
import { crdSnapshot, goManifest } from '../harness/go-manifests.ts';
import { kcpEnv, uniqueName } from '../harness/kcp-env.ts';

const FOREVER = 60_000;
const PREFIX = 'pm__operators__resource-broker__';
const EXAMPLE = `${PREFIX}examples__broker-postgres__`;
const POSTGRES: GroupVersionResource = { group: 'example.platform-mesh.io', version: 'v1alpha1', resource: 'postgres' };
const JOBS: GroupVersionResource = { group: 'batch', version: 'v1', resource: 'jobs' };
const EVENTS: GroupVersionResource = { group: '', version: 'v1', resource: 'events' };
const APIEXPORTS: GroupVersionResource = { group: 'apis.kcp.io', version: 'v1alpha2', resource: 'apiexports' };
const NAME = 'pg-from-consumer';

/** One manifest of the example: the project's fixture, or with RB_UPSTREAM_EXAMPLES the published file. */
const example = (fixture: string, upstreamFile: string): KubeObject => goManifest(join('broker-postgres', fixture), upstreamFile);

/** Compute serves no batch/v1 (it is a kcp workspace): a Job CRD with any spec and status, status a subresource. */
const JOBS_CRD: KubeObject = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'jobs.batch' },
  spec: {
    group: 'batch',
    names: { kind: 'Job', listKind: 'JobList', plural: 'jobs', singular: 'job' },
    scope: 'Namespaced',
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
      },
    ],
  },
};

const conditionOf = (obj: { status?: { conditions?: Condition[] } } | undefined, type: string): Condition | undefined =>
  obj?.status?.conditions?.find((c) => c.type === type);
const specOf = (obj: KubeObject): Record<string, unknown> => (obj['spec'] ?? {}) as Record<string, unknown>;
const uriOf = (provider: string): string => `postgresql://app:apppass@broker-${provider}-control-plane:5432/app`;
type EnvVar = { name: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } };
const jobEnv = (job: KubeObject): EnvVar[] =>
  ((job['spec'] as { template: { spec: { containers: { env?: EnvVar[] }[] } } }).template.spec.containers[0]?.env ?? []) as EnvVar[];

/**
 * The manifests name the platform workspace `root:platform`, so this platform lives there
 * (go-scenarios.test.ts's certificates example does the same; files run one after another).
 */
describe("the Go project's broker-postgres example, its manifests applied unchanged", () => {
  const paths: BrokerPaths = DEFAULT_PATHS;
  let endpoint: KcpEndpoint;
  let workspaces: Workspaces;
  let applier: Applier;
  let broker: BrokerProcess | undefined;
  let releasePlatform: (() => Promise<void>) | undefined;
  let computeKubeconfig = '';
  const owned: { parent: string; name: string }[] = [];
  let kropg: ReadyWorkspace;
  let cnpg: ReadyWorkspace;
  let consumer: ReadyWorkspace;
  let cluster: ReadyWorkspace;
  const watchers = new AbortController();
  /** Every status the consumer's Postgres had, and every event of its Secret, in order. */
  const seenStatuses: (string | undefined)[] = [];
  const secretEvents: string[] = [];

  const inWorkspace = (workspace: string, gvr: GroupVersionResource): ResourceClient<KubeObject> =>
    new ResourceClient({ endpoint, baseUrl: endpoint.workspaceUrl(workspace), gvr });
  const coordination = <T extends KubeObject>(gvr: GroupVersionResource): ResourceClient<T> =>
    new ResourceClient<T>({ endpoint, baseUrl: endpoint.workspaceUrl(paths.coordination), gvr });
  /** kubectl apply, retried as run.bash's kubectl::apply does (kcp refuses to bind a fresh export for a moment). */
  const apply = (workspace: string, obj: KubeObject): Promise<unknown> =>
    eventually(() => applier.apply(workspace, obj), { timeoutMs: FOREVER, intervalMs: 500 });
  const waitBound = (workspace: string, name: string): Promise<unknown> =>
    eventually(
      async () => {
        const b = (await inWorkspace(workspace, APIBINDINGS).get({ name })) as APIBindingObject;
        if (b.status?.phase !== 'Bound') throw new Error(`APIBinding ${name} in ${workspace}: ${b.status?.phase}`);
      },
      { timeoutMs: FOREVER },
    );
  /** A resource is served (CRDs and bindings are, a moment after they are created or Bound). */
  const waitServed = (workspace: string, gvr: GroupVersionResource): Promise<unknown> =>
    eventually(() => inWorkspace(workspace, gvr).list({ limit: 1 }), { timeoutMs: FOREVER, intervalMs: 200 });

  /** Waits until root:platform is deleted (kcp deletes a workspace tree level by level). */
  const platformGone = (timeoutMs: number): Promise<void> =>
    eventually(
      async () => {
        if (await workspaces.get('root', 'platform')) throw new Error('root:platform still exists');
      },
      { timeoutMs, intervalMs: 500 },
    );

  /** run.bash `kcp::apiexport`: the CRD's snapshot and an APIExport named after its plural, with these claims. */
  const platformExport = async (crd: KubeObject, claims: string[]): Promise<void> => {
    const schema = crdSnapshot(crd, 'current');
    await apply(paths.home, schema);
    const spec = crd['spec'] as { group: string; names: { plural: string } };
    await apply(paths.home, {
      apiVersion: 'apis.kcp.io/v1alpha2',
      kind: 'APIExport',
      metadata: { name: spec.names.plural },
      spec: {
        resources: [{ group: spec.group, name: spec.names.plural, schema: schema.metadata.name, storage: { crd: {} } }],
        permissionClaims: claims.map((resource) => ({ group: '', resource, verbs: ['*'] })),
      },
    });
  };

  /** What api-syncagent does for a provider: publish the Postgres schema in its export, with the claim its related Secret needs. */
  const publishPostgresApi = async (provider: ReadyWorkspace, crd: KubeObject): Promise<void> => {
    const schema = crdSnapshot(crd, 'syncagent');
    await apply(provider.path, schema);
    const exports = inWorkspace(provider.path, APIEXPORTS);
    await eventually(async () => {
      const current = await exports.get({ name: 'postgres' });
      await exports.update({
        ...current,
        spec: {
          ...specOf(current),
          resources: [{ group: POSTGRES.group, name: POSTGRES.resource, schema: schema.metadata.name, storage: { crd: {} } }],
          permissionClaims: [{ group: '', resource: 'secrets', verbs: ['*'] }],
        },
      });
    });
  };

  const assignmentOf = async (): Promise<Assignment | undefined> =>
    (await coordination<Assignment>(ASSIGNMENT_GVR).list()).items.find(
      (a) => a.spec.consumerCluster === consumer.cluster && a.spec.name === NAME,
    );
  const stagingWorkspacesOnProvider = async (provider: ReadyWorkspace): Promise<StagingWorkspace[]> =>
    (await coordination<StagingWorkspace>(STAGINGWORKSPACE_GVR).list()).items.filter(
      (s) => s.spec.consumerCluster === consumer.cluster && s.spec.providerCluster === provider.cluster,
    );
  /** The staging workspace serving the consumer's Postgres on a provider. */
  const stagingOf = (provider: ReadyWorkspace): Promise<string> =>
    eventually(
      async () => {
        const [sw] = await stagingWorkspacesOnProvider(provider);
        if (!sw?.status?.clusterName) throw new Error(`no staging workspace on ${provider.path} yet`);
        return sw.status.clusterName;
      },
      { timeoutMs: 90_000 },
    );

  /**
   * The provider's part (kro/CloudNativePG behind api-syncagent): once the copy asks for `tier`,
   * a Secret with the connection uri next to it, then Available with that Secret as `credentials`.
   */
  const provide = async (staging: string, tier: string, provider: string): Promise<void> => {
    const copies = inWorkspace(staging, POSTGRES);
    const copy = await eventually(
      async () => {
        const c = await copies.get({ namespace: 'default', name: NAME });
        expect(specOf(c)['tier']).toBe(tier);
        return c;
      },
      { timeoutMs: FOREVER },
    );
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    await inWorkspace(staging, SECRETS).create({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { namespace: 'default', name: NAME },
      data: { host: b64(`broker-${provider}-control-plane`), username: b64('app'), dbname: b64('app'), uri: b64(uriOf(provider)) },
    });
    await eventually(
      async () => {
        const current = await copies.get({ namespace: 'default', name: NAME });
        await copies.updateStatus({
          ...current,
          status: {
            status: 'Available',
            relatedResources: {
              credentials: { gvk: { group: 'core', version: 'v1', kind: 'Secret' }, name: NAME, namespace: 'default' },
            },
          },
        });
      },
      { timeoutMs: FOREVER },
    );
    expect(copy.metadata.annotations?.['broker.platform-mesh.io/consumer-name']).toBe(NAME);
  };

  beforeAll(async () => {
    // root:platform is named by the manifests: one file at a time publishes it (waiting for the
    // other's, then for its deletion, may take minutes: hence this hook's 10 min).
    releasePlatform = await holdExclusive('root-platform');
    ({ endpoint } = await kcpEnv());
    workspaces = new Workspaces({ endpoint });
    applier = new Applier({ endpoint });
    // Another file's root:platform may still be on its way out.
    const leftover = await workspaces.get('root', 'platform');
    if (leftover?.metadata?.deletionTimestamp) await platformGone(120_000);
    const logger = createLogger({ level: process.env['BROKER_LOG_LEVEL'] ?? 'warn', format: 'json' });
    owned.push({ parent: 'root', name: 'platform' });
    // run.bash _setup: the platform workspace with the broker's workspaces and the acceptapis export; no example APIs.
    await bootstrap({ endpoint, paths, logger, examples: false });
    const names = {
      kropg: uniqueName('kropg'),
      cnpg: uniqueName('cnpg'),
      consumer: uniqueName('consumer'),
      cluster: uniqueName('platform-cluster'),
    };
    for (const name of Object.values(names)) owned.push({ parent: 'root', name });
    [kropg, cnpg, consumer, cluster] = await Promise.all([
      workspaces.ensure('root', names.kropg),
      workspaces.ensure('root', names.cnpg),
      workspaces.ensure('root', names.consumer),
      workspaces.ensure('root', names.cluster),
    ]);
    // The compute cluster: serves batch/v1 Jobs, reached by its own kubeconfig (same credentials, its server URL).
    await apply(cluster.path, JOBS_CRD);
    await waitServed(cluster.path, JOBS);
    const config = new KubeConfig();
    config.loadFromFile(inject('kcp').kubeconfig);
    const server = `${new URL(config.getCurrentCluster()!.server).origin}/clusters/${cluster.path}`;
    config.clusters = config.clusters.map((c) => ({ ...c, server }));
    computeKubeconfig = join(tmpdir(), `compute-${cluster.cluster}.kubeconfig`);
    await writeFile(computeKubeconfig, config.exportConfig());
    // run.bash: "Setting up Postgres APIExport for consumers" (secrets '*', events '*', namespaces '*')
    await platformExport(example('postgres-crd.yaml', `${PREFIX}config__example__crd__example.platform-mesh.io_postgres.yaml`), [
      'secrets',
      'events',
      'namespaces',
    ]);
    broker = new BrokerProcess(inject('kcp').kubeconfig, paths, { RB_LEADER_ELECT: 'false', RB_COMPUTE_KUBECONFIG: computeKubeconfig });
    await broker.start();
  }, 600_000);

  afterAll(async () => {
    watchers.abort();
    await broker?.stop();
    if (workspaces) {
      // Not waited for: a file that publishes root:platform next waits for it itself, at its start.
      for (const { parent, name } of owned.reverse()) await workspaces.delete(parent, name).catch(() => undefined);
    }
    if (computeKubeconfig) await rm(computeKubeconfig, { force: true });
    await endpoint?.close();
    await releasePlatform?.();
  });

  it('places pg-from-consumer on kropg, migrates it to cnpg for tier production through the pg-dump Job stage, and deletes it', async () => {
    const crd = example('postgres-crd.yaml', `${PREFIX}config__example__crd__example.platform-mesh.io_postgres.yaml`);
    // run.bash _provider_setup: the provider's (empty) APIExport `postgres`; api-syncagent publishes into it
    const providerExport = example('provider-apiexport.yaml', `${EXAMPLE}run.bash__provider-apiexport-postgres.yaml`);
    expect(providerExport['spec']).toBeUndefined();
    for (const provider of [kropg, cnpg]) {
      await apply(provider.path, providerExport);
      await publishPostgresApi(provider, crd);
    }
    // README "Providers accept the API": bind acceptapis in both, then the AcceptAPIs (tier dev, tier production)
    const bindAcceptAPIs = example(
      'provider-apibinding-acceptapis.yaml',
      `${PREFIX}examples__broker-certificates__README.md__heredoc1_internalca-apibinding-acceptapis.yaml`,
    );
    for (const provider of [kropg, cnpg]) await apply(provider.path, bindAcceptAPIs);
    await waitBound(kropg.path, 'acceptapis');
    await waitBound(cnpg.path, 'acceptapis');
    await apply(kropg.path, example('kropg-acceptapi.yaml', `${EXAMPLE}README.md__heredoc2_kropg-acceptapi.yaml`));
    await apply(cnpg.path, example('cnpg-acceptapi.yaml', `${EXAMPLE}README.md__heredoc3_cnpg-acceptapi.yaml`));
    for (const provider of [kropg, cnpg]) {
      // README: kubectl wait acceptapi/postgres.example.platform-mesh.io --for=condition=Ready
      await eventually(
        async () => {
          const a = (await inWorkspace(provider.path, ACCEPTAPI_GVR).get({ name: 'postgres.example.platform-mesh.io' })) as AcceptAPI;
          expect(conditionOf(a, 'Ready')?.status, `${provider.path}: ${JSON.stringify(a.status)}`).toBe('True');
        },
        { timeoutMs: 90_000 },
      );
    }
    // README "MigrationConfiguration": into the broker (coordination) workspace
    const configuration = example('migrationconfiguration.yaml', `${EXAMPLE}migrationconfiguration.yaml`);
    await apply(paths.coordination, configuration);
    expect(await coordination(MIGRATIONCONFIGURATION_GVR).get({ name: 'migrate-postgres' })).toBeDefined();

    // README "Consumer orders a Postgres": bind postgres (heredoc 4), then postgres.yaml (tier dev)
    await apply(consumer.path, example('consumer-apibinding.yaml', `${EXAMPLE}README.md__heredoc4_consumer-apibinding-postgres.yaml`));
    await waitBound(consumer.path, 'postgres');
    await waitServed(consumer.path, POSTGRES);
    const pgs = inWorkspace(consumer.path, POSTGRES);
    const consumerSecrets = inWorkspace(consumer.path, SECRETS);
    const pgInformer = new Informer<KubeObject>({ name: 'test postgres', source: pgs });
    pgInformer.onEvent((e) => {
      if (e.object.metadata.name === NAME && e.type !== 'deleted') seenStatuses.push(statusOf(e.object));
    });
    const secretInformer = new Informer<KubeObject>({ name: 'test secrets', source: consumerSecrets });
    secretInformer.onEvent((e) => {
      if (e.object.metadata.name === NAME) secretEvents.push(e.type);
    });
    void pgInformer.run(watchers.signal);
    void secretInformer.run(watchers.signal);
    await Promise.all([pgInformer.waitForSync(), secretInformer.waitForSync()]);
    await apply(consumer.path, example('postgres.yaml', `${EXAMPLE}postgres.yaml`));

    // tier dev: kropg serves it; kropg's provider publishes the connection Secret
    const assignment = await eventually(
      async () => {
        const a = await assignmentOf();
        expect(a?.status?.providerCluster).toBe(kropg.cluster);
        return a!;
      },
      { timeoutMs: FOREVER },
    );
    const kropgStaging = await stagingOf(kropg);
    await provide(kropgStaging, 'dev', 'kropg');
    // README: "after a while the connection secret lands in the consumer workspace"
    await eventually(
      async () => {
        expect(statusOf(await pgs.get({ namespace: 'default', name: NAME }))).toBe('Available');
        expect(decodeSecret(await consumerSecrets.get({ namespace: 'default', name: NAME }), 'uri')).toBe(uriOf('kropg'));
      },
      { timeoutMs: FOREVER },
    );

    // README "Migration with data transfer": kubectl patch postgres pg-from-consumer -p '{"spec":{"tier":"production"}}'
    await pgs.mergePatch({ namespace: 'default', name: NAME }, { spec: { tier: 'production' } });
    const migration = await eventually(
      async () => {
        const m = (await coordination<Migration>(MIGRATION_GVR).list()).items.find((x) => x.spec.assignment === assignment.metadata.name);
        expect(m?.spec.to.providerCluster).toBe(cnpg.cluster);
        return m!;
      },
      { timeoutMs: FOREVER },
    );
    expect(migration.spec.from.providerCluster).toBe(kropg.cluster);
    const migrationName = migration.metadata.name ?? '';
    // Before cnpg is Available the stage waits for its precondition and deploys nothing.
    await eventually(
      async () => {
        const m = await coordination<Migration>(MIGRATION_GVR).get({ name: migrationName });
        expect(m.status?.stage).toBe('pg-dump');
        expect(conditionOf(m, 'StagesCompleted')?.reason).toBe('PreconditionsNotMet');
      },
      { timeoutMs: FOREVER },
    );
    const jobs = inWorkspace(cluster.path, JOBS);
    expect((await jobs.list({ namespace: 'default' })).items).toEqual([]);

    await provide(await stagingOf(cnpg), 'production', 'cnpg');
    // The pg-dump Job is deployed to the compute cluster, its Secret names resolved to the mirrors.
    const job = await eventually(
      async () => {
        const [found] = (await jobs.list({ namespace: 'default', labelSelector: 'broker.platform-mesh.io/migration-stage=pg-dump' })).items;
        expect(found).toBeDefined();
        return found!;
      },
      { timeoutMs: FOREVER },
    );
    expect(job.metadata.name).toBe(`${migrationName}-dump`);
    expect(job.metadata.labels?.['broker.platform-mesh.io/migration-name']).toBe(migrationName);
    expect(jobEnv(job).map((e) => [e.name, e.valueFrom?.secretKeyRef])).toEqual([
      ['FROM_URI', { name: `from-${NAME}`, key: 'uri' }],
      ['TO_URI', { name: `to-${NAME}`, key: 'uri' }],
    ]);
    expect((job['spec'] as { template: { spec: { containers: { image: string }[] } } }).template.spec.containers[0]?.image).toBe(
      'postgres:16',
    );
    const computeSecrets = inWorkspace(cluster.path, SECRETS);
    expect(decodeSecret(await computeSecrets.get({ namespace: 'default', name: `from-${NAME}` }), 'uri')).toBe(uriOf('kropg'));
    expect(decodeSecret(await computeSecrets.get({ namespace: 'default', name: `to-${NAME}` }), 'uri')).toBe(uriOf('cnpg'));
    // Nothing went to the broker's default compute workspace.
    expect((await inWorkspace(paths.compute, SECRETS).list({ namespace: 'default' })).items.map((s) => s.metadata.name)).not.toContain(
      `from-${NAME}`,
    );

    // Until the Job succeeds the migration waits on its success condition: kropg still serves the consumer.
    await eventually(
      async () => {
        const m = await coordination<Migration>(MIGRATION_GVR).get({ name: migrationName });
        expect(m.status?.state).toBe('InitialInProgress');
        expect(conditionOf(m, 'StagesCompleted')?.reason).toBe('StageInProgress');
        expect(conditionOf(m, 'StagesCompleted')?.message).toContain('dump.status.succeeded');
      },
      { timeoutMs: FOREVER },
    );
    await never(
      async () =>
        (await coordination<Migration>(MIGRATION_GVR).find({ name: migrationName })) === undefined ||
        (await assignmentOf())?.status?.providerCluster !== kropg.cluster ||
        decodeSecret(await consumerSecrets.get({ namespace: 'default', name: NAME }), 'uri') !== uriOf('kropg'),
      6_000,
      'the migration must not cut over before the pg-dump Job succeeded',
    );

    // The Job controller's part: the Job succeeded.
    await jobs.mergePatch({ namespace: 'default', name: job.metadata.name ?? '', subresource: 'status' }, { status: { succeeded: 1 } });
    await eventually(
      async () => {
        expect(await coordination<Migration>(MIGRATION_GVR).find({ name: migrationName })).toBeUndefined();
        const a = await assignmentOf();
        expect(a?.status?.providerCluster).toBe(cnpg.cluster);
        expect(decodeSecret(await consumerSecrets.get({ namespace: 'default', name: NAME }), 'uri')).toBe(uriOf('cnpg'));
      },
      { timeoutMs: FOREVER },
    );
    expect(statusOf(await pgs.get({ namespace: 'default', name: NAME }))).toBe('Available');
    // README: "Once the Migration has completed the instance in the kropg provider is deleted"
    await eventually(
      async () => {
        expect(await stagingWorkspacesOnProvider(kropg)).toEqual([]);
        expect(
          await inWorkspace(kropgStaging, POSTGRES)
            .find({ namespace: 'default', name: NAME })
            .catch(() => undefined),
        ).toBeUndefined();
      },
      { timeoutMs: FOREVER },
    );
    // The stage's Job and the mirrored credentials are gone from the compute cluster.
    await eventually(
      async () => {
        expect((await jobs.list({ namespace: 'default' })).items).toEqual([]);
        const left = (await computeSecrets.list({ namespace: 'default' })).items.map((s) => s.metadata.name);
        expect(left).not.toContain(`from-${NAME}`);
        expect(left).not.toContain(`to-${NAME}`);
      },
      { timeoutMs: FOREVER },
    );
    // Make-before-break: once Available, the consumer never saw another status, and its Secret was never deleted.
    const firstAvailable = seenStatuses.indexOf('Available');
    expect(firstAvailable).toBeGreaterThanOrEqual(0);
    expect(seenStatuses.slice(firstAvailable).filter((s) => s !== 'Available')).toEqual([]);
    expect(secretEvents).not.toContain('deleted');

    // The consumer was told, through the events claim it accepted.
    await eventually(
      async () => {
        const reasons = (await inWorkspace(consumer.path, EVENTS).list({ namespace: 'default' })).items
          .filter((e) => (e['involvedObject'] as { name?: string } | undefined)?.name === NAME)
          .map((e) => e['reason']);
        expect(reasons).toEqual(expect.arrayContaining(['Assigned', 'MigrationStarted', 'MigrationCompleted']));
      },
      { timeoutMs: FOREVER },
    );

    // run.bash _cleanup: deleting the consumer's Postgres cascades through the broker
    await pgs.delete({ namespace: 'default', name: NAME });
    await eventually(async () => expect(await pgs.find({ namespace: 'default', name: NAME })).toBeUndefined(), { timeoutMs: FOREVER });
    await eventually(
      async () => {
        expect(await assignmentOf()).toBeUndefined();
        expect(await stagingWorkspacesOnProvider(cnpg)).toEqual([]);
        expect(await consumerSecrets.find({ namespace: 'default', name: NAME })).toBeUndefined();
      },
      { timeoutMs: FOREVER },
    );
  });
});
