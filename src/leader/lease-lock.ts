import { setTimeout as sleep } from 'node:timers/promises';
import type { KcpEndpoint } from '../kcp-client-ts/endpoint.ts';
import { isAlreadyExists, isConflict } from '../kcp-client-ts/errors.ts';
import { createKcpClient, unwrap, type KcpClient, type Lease } from '../kcp-client-ts/typed-client.ts';
import type { Logger } from '../logging.ts';

export type LeaseLockOptions = {
  endpoint: KcpEndpoint;
  /** Workspace holding the Lease (the coordination workspace). */
  workspace: string;
  namespace?: string;
  name?: string;
  identity: string;
  leaseDurationSeconds?: number;
  renewDeadlineSeconds?: number;
  retryPeriodSeconds?: number;
  logger: Logger;
};

const micro = (date: Date): string => date.toISOString().replace('Z', '000Z');

/**
 * Leader election over a coordination.k8s.io Lease, as client-go's leaderelection does: take
 * the Lease when it is free or expired, renew it every retry period, and report leadership lost
 * when renewal has failed for the renew deadline. `release()` frees it at shutdown.
 */
export class LeaseLock {
  readonly #options: Required<Omit<LeaseLockOptions, 'logger' | 'endpoint'>> & Pick<LeaseLockOptions, 'logger' | 'endpoint'>;
  readonly #client: KcpClient;
  #leading = false;
  /**
   * Until when this replica may act as leader: the start of its last successful acquire or renew
   * plus the renew deadline, which is shorter than the lease duration other replicas wait. A
   * process paused (SIGSTOP, a long GC) past it finds itself no longer leading the moment it
   * runs again, before any write it had queued is sent. On the monotonic clock: a wall clock
   * stepped back must not extend it.
   */
  #validUntil = 0;
  /**
   * The Lease record as this replica last saw it change, and when (on this process's monotonic
   * clock). Expiry is judged from that moment, never from the renewTime another replica wrote
   * with its own clock (client-go does the same): clock skew between replicas cannot make two leaders.
   */
  #observed: { record: string; at: number } | undefined;
  /** When a round last read or wrote the Lease (monotonic clock): a standby's sign of life. */
  #lastContact = Number.NEGATIVE_INFINITY;

  constructor(options: LeaseLockOptions) {
    this.#options = {
      namespace: 'default',
      name: 'resource-broker',
      leaseDurationSeconds: 15,
      renewDeadlineSeconds: 10,
      retryPeriodSeconds: 2,
      ...options,
    };
    this.#client = createKcpClient(options.endpoint, options.endpoint.workspaceUrl(options.workspace));
  }

  get leading(): boolean {
    return this.#leading && performance.now() < this.#validUntil;
  }

  /**
   * Whether this replica reached the Lease within one lease duration: a standby that does can
   * take over when the leader goes, which is what its readiness reports (leadership itself is
   * the leader_election_master_status metric, as in controller-runtime).
   */
  get inContact(): boolean {
    return performance.now() - this.#lastContact < this.#options.leaseDurationSeconds * 1000;
  }

  /** The Lease's name (in the coordination workspace's `default` namespace). */
  get name(): string {
    return this.#options.name;
  }

  /** Until when a write sent now may still be in flight (an endpoint write deadline). */
  readonly writeDeadline = (): number | undefined =>
    this.#leading ? Math.floor(Date.now() + (this.#validUntil - performance.now())) : undefined;

  /** Why this replica may not write now, or undefined while it leads (an endpoint write fence). */
  readonly fence = (): string | undefined => (this.leading ? undefined : 'this replica does not hold the leader lease');

  /** Resolves once this replica leads; rejects only when `signal` aborts. */
  async acquire(signal: AbortSignal): Promise<void> {
    let lastHolder = '';
    while (!signal.aborted) {
      try {
        const started = performance.now();
        const holder = await this.#tryAcquireOrRenew(this.#roundSignal());
        this.#lastContact = performance.now();
        if (holder === this.#options.identity) {
          this.#leading = true;
          this.#validUntil = started + this.#options.renewDeadlineSeconds * 1000;
          this.#options.logger.info({ identity: holder, lease: this.#options.name }, 'became leader');
          return;
        }
        if (holder !== lastHolder) this.#options.logger.info({ leader: holder }, 'waiting for the leader lease');
        lastHolder = holder;
      } catch (err) {
        if (signal.aborted) break;
        this.#options.logger.warn({ err: String(err) }, 'leader lease: acquire failed');
      }
      await sleep(this.#options.retryPeriodSeconds * 1000, undefined, { signal }).catch(() => undefined);
    }
    throw signal.reason ?? new Error('aborted');
  }

  /** Renews until `signal` aborts (resolves) or renewal fails for the renew deadline (rejects: leadership lost). */
  async keepRenewing(signal: AbortSignal): Promise<void> {
    let lastRenew = performance.now();
    while (!signal.aborted) {
      await sleep(this.#options.retryPeriodSeconds * 1000, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) return;
      try {
        const started = performance.now();
        // A round in flight when the signal comes is let finish (bounded by its own deadline):
        // shutdown then releases the Lease after it, rather than racing an aborted write.
        const holder = await this.#tryAcquireOrRenew(this.#roundSignal());
        this.#lastContact = performance.now();
        if (holder !== this.#options.identity) {
          this.#leading = false;
          throw new Error(`leader lease taken by ${holder}`);
        }
        lastRenew = performance.now();
        this.#validUntil = started + this.#options.renewDeadlineSeconds * 1000;
      } catch (err) {
        if (signal.aborted) return;
        if (!this.leading || performance.now() - lastRenew > this.#options.renewDeadlineSeconds * 1000) {
          this.#leading = false;
          throw new Error(`lost leadership: ${err instanceof Error ? err.message : String(err)}`);
        }
        this.#options.logger.warn({ err: String(err) }, 'leader lease: renew failed, retrying');
      }
    }
  }

  /** Each round's requests end at the renew deadline, whatever else happens. */
  #roundSignal(): AbortSignal {
    return AbortSignal.timeout(this.#options.renewDeadlineSeconds * 1000);
  }

  /** Gives the Lease up so that another replica takes over at once. */
  async release(): Promise<void> {
    if (!this.#leading) return;
    this.#leading = false;
    // Shutdown must not hang on kcp: the lease expires by itself anyway.
    const signal = AbortSignal.timeout(this.#options.renewDeadlineSeconds * 1000);
    try {
      const lease = await this.#get(signal);
      if (lease?.spec?.holderIdentity !== this.#options.identity) return;
      unwrap(
        await this.#client.PUT('/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}', {
          params: { path: { namespace: this.#options.namespace, name: this.#options.name } },
          body: { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 } },
          signal,
        }),
      );
      this.#options.logger.info({ lease: this.#options.name }, 'released leader lease');
    } catch (err) {
      this.#options.logger.warn({ err: String(err) }, 'leader lease: release failed');
    }
  }

  async #get(signal?: AbortSignal): Promise<Lease | undefined> {
    const result = await this.#client.GET('/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}', {
      params: { path: { namespace: this.#options.namespace, name: this.#options.name } },
      ...(signal ? { signal } : {}),
    });
    if (result.response.status === 404) return undefined;
    return unwrap(result);
  }

  /** One round: returns the holder after trying to take or renew the Lease. */
  async #tryAcquireOrRenew(signal: AbortSignal): Promise<string> {
    const { identity, leaseDurationSeconds, namespace, name } = this.#options;
    const now = new Date();
    const lease = await this.#get(signal);
    if (!lease) {
      try {
        unwrap(
          await this.#client.POST('/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases', {
            params: { path: { namespace } },
            body: {
              apiVersion: 'coordination.k8s.io/v1',
              kind: 'Lease',
              metadata: { name, namespace },
              spec: { holderIdentity: identity, leaseDurationSeconds, acquireTime: micro(now), renewTime: micro(now), leaseTransitions: 0 },
            },
            signal,
          }),
        );
        return identity;
      } catch (err) {
        if (isAlreadyExists(err)) return '(another replica)';
        throw err;
      }
    }
    const holder = lease.spec?.holderIdentity ?? '';
    const record = `${holder}\u0000${lease.spec?.renewTime ?? ''}\u0000${lease.spec?.leaseTransitions ?? 0}`;
    if (this.#observed?.record !== record) this.#observed = { record, at: performance.now() };
    const duration = (lease.spec?.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    const expired = holder === '' || this.#observed.at + duration < performance.now();
    if (holder !== identity && !expired) return holder;
    const transitions = (lease.spec?.leaseTransitions ?? 0) + (holder === identity ? 0 : 1);
    try {
      unwrap(
        await this.#client.PUT('/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}', {
          params: { path: { namespace, name } },
          body: {
            ...lease,
            spec: {
              ...lease.spec,
              holderIdentity: identity,
              leaseDurationSeconds,
              renewTime: micro(now),
              ...(holder === identity ? {} : { acquireTime: micro(now), leaseTransitions: transitions }),
            },
          },
          signal,
        }),
      );
      return identity;
    } catch (err) {
      if (isConflict(err)) return holder || '(another replica)';
      throw err;
    }
  }
}
