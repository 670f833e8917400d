import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import type { ReadyWorkspace } from '../../src/kcp-client-ts/workspaces.ts';
import { createKcpClient, unwrap } from '../../src/kcp-client-ts/typed-client.ts';
import { eventually } from '../harness/eventually.ts';
import { BrokerProcess, freePort, runCli, runCliFor } from '../harness/broker-process.ts';
import { BrokerWorld, statusOf } from '../harness/broker-world.ts';
import { kcpEnv } from '../harness/kcp-env.ts';
import { LoopbackProxy } from '../harness/loopback-proxy.ts';

describe('the resource-broker CLI', () => {
  it('prints help and version, and exits 2 with one line naming the bad flag', async () => {
    const help = await runCli(['run', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--coordination');
    expect(help.stdout).toContain('[$RB_COORDINATION_WORKSPACE]');
    expect((await runCli(['version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    const unknown = await runCli(['run', '--no-such-flag']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("'--no-such-flag'");
    const badFormat = await runCli(['run', '--log-format', 'xml']);
    expect(badFormat.code).toBe(2);
    expect(badFormat.stderr.trim().split('\n')).toHaveLength(1);
    expect(badFormat.stderr).toContain('--log-format must be json, pretty or auto');
    expect((await runCli(['frobnicate'])).code).toBe(2);
  });

  it('exits 1 with what to fix when kcp is unreachable or not bootstrapped', async () => {
    const port = await freePort();
    const kubeconfig = join(tmpdir(), `unreachable-${port}.kubeconfig`);
    await writeFile(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:${port}"}}]\nusers: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n`,
    );
    const unreachable = await runCli(['run', '--kubeconfig', kubeconfig, '--log-level', 'error']);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain(`cannot reach kcp at https://127.0.0.1:${port}`);
    const missing = await runCli([
      'run',
      '--kubeconfig',
      inject('kcp').kubeconfig,
      '--coordination',
      'root:does-not-exist:broker',
      '--log-level',
      'error',
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('root:does-not-exist:broker');
    expect((await runCli(['run', '--kubeconfig', '/nonexistent/kubeconfig'])).stderr).toContain('cannot load kubeconfig');
  });
});

describe('running the broker: readiness, leader election, graceful shutdown', () => {
  let world: BrokerWorld;
  let consumer: ReadyWorkspace;
  const processes: BrokerProcess[] = [];
  const lease = async (): Promise<{ holder: string; transitions: number }> => {
    const client = createKcpClient(world.endpoint, world.endpoint.workspaceUrl(world.paths.coordination));
    const l = unwrap(
      await client.GET('/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}', {
        params: { path: { namespace: 'default', name: 'resource-broker' } },
      }),
    );
    return { holder: l.spec?.holderIdentity ?? '', transitions: l.spec?.leaseTransitions ?? 0 };
  };
  const replica = (): BrokerProcess => {
    const p = new BrokerProcess(inject('kcp').kubeconfig, world.paths, {
      RB_LEADER_ELECT_LEASE_DURATION: '4',
      RB_LEADER_ELECT_RENEW_DEADLINE: '3',
      RB_LEADER_ELECT_RETRY_PERIOD: '1',
    });
    processes.push(p);
    return p;
  };

  beforeAll(async () => {
    world = await BrokerWorld.create('ops', (await kcpEnv()).endpoint);
    [, consumer] = await Promise.all([world.provider('internalca', ['certificates']), world.consumer('consumer', ['certificates'])]);
    await world.accept('internalca', 'certs', { api: 'certificates' });
  });

  afterAll(async () => {
    for (const p of processes) await p.stop('SIGKILL');
    await world?.cleanup();
  });

  it('is not ready before its caches sync, ready after; one replica leads, the other takes over when it is killed', async () => {
    const first = replica();
    await first.start();
    const codes: number[] = [];
    await eventually(
      async () => {
        const code = await first.readyz();
        if (code !== 0) codes.push(code);
        expect(code).toBe(200);
      },
      { intervalMs: 20, timeoutMs: 60_000 },
    );
    expect(codes[0]).toBe(503);
    expect(await first.metric('resource_broker_leader')).toBe(1);
    await world.waitAcceptAPIReady('internalca', 'certs');

    const second = replica();
    await second.start();
    await eventually(async () => expect(second.logs.some((l) => l.includes('waiting for the leader lease'))).toBe(true));
    // A standby is Ready (a rolling update can go on) and says it does not lead.
    await eventually(async () => expect(await second.readyz()).toBe(200));
    expect(await second.metric('leader_election_master_status')).toBe(0);
    const certs = world.objects(consumer.path, 'certificates');
    await certs.create(world.newObject('certificates', 'before', { fqdn: 'before.example.org' }));
    await eventually(async () => expect(statusOf(await certs.get({ namespace: 'default', name: 'before' }))).toBe('Available'));
    const providerCluster = (await world.assignmentOf(consumer, 'certificates', 'before'))?.status?.providerCluster;
    const metrics = await (await fetch(`http://127.0.0.1:${first.metricsPort}/metrics`)).text();
    expect(metrics).toContain(`resource_broker_objects{provider="${providerCluster}"} 1`);
    // The families every controller dashboard reads, after real reconciles against kcp.
    expect(metrics).toMatch(/^controller_runtime_reconcile_total\{controller="sync-certificates[^"]*",result="success"\} [1-9]/m);
    expect(metrics).toMatch(/^workqueue_adds_total\{name="sync-certificates[^"]*",controller="sync-certificates[^"]*"\} [1-9]/m);
    expect(metrics).toMatch(/^workqueue_queue_duration_seconds_count\{name="sync-certificates[^"]*",controller="[^"]*"\} [1-9]/m);
    expect(metrics).toMatch(/^rest_client_requests_total\{code="201",method="POST",host="127\.0\.0\.1:\d+"\} [1-9]/m);
    expect(metrics).toMatch(/^leader_election_master_status\{name="resource-broker"\} 1$/m);
    expect(metrics).toMatch(/^process_resident_memory_bytes \d+/m);
    // kcp requests by resource: the placement decision is recorded as an Assignment.
    expect(metrics).toMatch(/^resource_broker_kcp_requests_total\{[^}]*verb="POST"[^}]*resource="assignments"[^}]*\} [1-9]/m);
    expect(await second.metric('leader_election_master_status')).toBe(0);

    const explained = await runCliFor(
      inject('kcp').kubeconfig,
      world.paths,
      'explain',
      '--workspace',
      consumer.path,
      '--resource',
      'certificates.example.platform-mesh.io',
      '--namespace',
      'default',
      '--name',
      'before',
      '--output',
      'json',
    );
    expect(explained.code).toBe(0);
    const explanation = JSON.parse(explained.stdout) as {
      acceptAPIs: { name: string; matched: boolean }[];
      assignment?: { phase?: string; acceptAPI?: string };
    };
    expect(explanation.acceptAPIs).toEqual([expect.objectContaining({ name: 'certs', matched: true })]);
    expect(explanation.assignment).toMatchObject({ phase: 'Bound', acceptAPI: 'certs' });
    // The AcceptAPI's load arrives in its status within a report period (15 s), and explain shows it.
    await eventually(
      async () => {
        const again = await runCliFor(
          inject('kcp').kubeconfig,
          world.paths,
          'explain',
          '--workspace',
          consumer.path,
          '--resource',
          'certificates.example.platform-mesh.io',
          '--namespace',
          'default',
          '--name',
          'before',
        );
        expect(again.stdout).toMatch(/\[export [^\]]*, serves [1-9]\d*\]/);
      },
      { timeoutMs: 45_000, intervalMs: 2_000 },
    );

    const { transitions } = await lease();
    await first.stop('SIGKILL');
    await eventually(async () => expect(await second.serving()).toBe(true), { timeoutMs: 60_000 });
    expect((await lease()).transitions).toBe(transitions + 1);
    await certs.create(world.newObject('certificates', 'after', { fqdn: 'after.example.org' }));
    await eventually(async () => expect(statusOf(await certs.get({ namespace: 'default', name: 'after' }))).toBe('Available'));
    const before = await certs.get({ namespace: 'default', name: 'before' });
    await certs.update({ ...before, spec: { fqdn: 'before2.example.org' } });
    const staging = await world.stagingClusterOf(consumer, 'certificates', 'before');
    await eventually(async () =>
      expect(
        (
          await world
            .inCluster(staging, { group: 'example.platform-mesh.io', version: 'v1alpha1', resource: 'certificates' })
            .get({ namespace: 'default', name: 'before' })
        )['spec'],
      ).toEqual({ fqdn: 'before2.example.org' }),
    );
  });

  it('shuts down on SIGTERM: exit 0, lease released, and a restart converges with nothing left half-done', async () => {
    const leader = processes.find((p) => p.child?.exitCode === null && p.child.signalCode === null)!;
    const certs = world.objects(consumer.path, 'certificates');
    // Work in flight while the signal arrives.
    await Promise.all(
      Array.from({ length: 5 }, (_, i) => certs.create(world.newObject('certificates', `burst-${i}`, { fqdn: `burst-${i}.example.org` }))),
    );
    expect(await leader.stop('SIGTERM')).toBe(0);
    expect(leader.hasLog('released leader lease')).toBe(true);
    expect((await lease()).holder).toBe('');

    const next = replica();
    await next.start();
    await eventually(
      async () => {
        for (let i = 0; i < 5; i++) expect(statusOf(await certs.get({ namespace: 'default', name: `burst-${i}` }))).toBe('Available');
      },
      { timeoutMs: 90_000 },
    );
    const assignments = (await world.assignments().list()).items.filter((a) => a.spec.consumerCluster === consumer.cluster);
    expect(assignments.map((a) => a.spec.name).sort()).toEqual(['after', 'before', 'burst-0', 'burst-1', 'burst-2', 'burst-3', 'burst-4']);
    expect(assignments.every((a) => a.status?.phase === 'Bound')).toBe(true);
  });

  it('is not ready while kcp does not answer its watches, and ready (and serving) again once kcp does', async () => {
    for (const p of processes) if (p.child?.exitCode === null && p.child.signalCode === null) await p.stop('SIGTERM');
    const direct = await readFile(inject('kcp').kubeconfig, 'utf8');
    const kcpPort = /server: *"?https:\/\/127\.0\.0\.1:(\d+)/.exec(direct)?.[1];
    expect(kcpPort).toBeDefined();
    const proxy = new LoopbackProxy({ targetPort: Number(kcpPort) });
    await proxy.start();
    try {
      const kubeconfig = join(tmpdir(), `through-proxy-${proxy.port}.kubeconfig`);
      await writeFile(kubeconfig, direct.replaceAll(`127.0.0.1:${kcpPort}`, `127.0.0.1:${proxy.port}`));
      const broker = new BrokerProcess(kubeconfig, world.paths, { RB_LEADER_ELECT: 'false' });
      processes.push(broker);
      await broker.start();
      await eventually(async () => expect(await broker.readyz()).toBe(200), { timeoutMs: 60_000 });

      proxy.refuse = true;
      proxy.dropConnections();
      await eventually(async () => expect(await broker.readyz()).toBe(503), { timeoutMs: 30_000 });

      proxy.refuse = false;
      await eventually(async () => expect(await broker.readyz()).toBe(200), { timeoutMs: 60_000 });
      const certs = world.objects(consumer.path, 'certificates');
      await certs.create(world.newObject('certificates', 'after-outage', { fqdn: 'after-outage.example.org' }));
      await eventually(async () => expect(statusOf(await certs.get({ namespace: 'default', name: 'after-outage' }))).toBe('Available'));
    } finally {
      await proxy.stop();
    }
  });
});
