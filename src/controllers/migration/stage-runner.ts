// Over 350 lines on purpose: one stage run (validate, mirror, preconditions, record, deploy,
// conditions, record success, clean up) reads best top to bottom; the pure stage logic (CEL,
// templates, validation) is in stages.ts.
import { isDeepStrictEqual } from 'node:util';
import type { ObjectStore } from '../../runtime/store.ts';
import { timestamp } from '../../apis/conditions.ts';
import {
  MANAGED_BY_LABEL,
  MANAGER,
  MIGRATION_NAME_LABEL,
  MIGRATION_STAGE_LABEL,
  OWNER_UID_ANNOTATION,
  RELATED_MIRROR_LABEL,
} from '../../apis/names.ts';
import type { ConfigurationVersion, Migration, MigrationConfiguration, MigrationState, StageObjectRef } from '../../apis/types.ts';
import { UnknownKindError, type ResourceMapping } from '../../kcp-client-ts/discovery.ts';
import { ApiError, isAlreadyExists, isConflict, isNotFound } from '../../kcp-client-ts/errors.ts';
import type { ObjectClient, ResourceClient } from '../../kcp-client-ts/resources.ts';
import { CONFIGMAPS, NAMESPACES, SECRETS, type GroupVersionResource, type KubeObject } from '../../kcp-client-ts/types.ts';
import type { WorkspaceAccess } from '../../kcp-client-ts/workspace-access.ts';
import type { Logger } from '../../logging.ts';
import { TerminalError } from '../../runtime/errors.ts';
import { RecentKeys } from '../../runtime/recent-keys.ts';
import { copiedKeys } from '../related/digest.ts';
import { celEngine } from '../acceptapi/filters.ts';
import {
  isEarlierIncarnation,
  isOwnedBy,
  mirrorRelated,
  type MirrorOwner,
  type MirrorTarget,
  type RelatedKind,
  type RelatedSource,
} from '../related/mirror.ts';
import {
  allTrue,
  anyTrue,
  findConfiguration,
  renderTemplate,
  stageField,
  stageObjectName,
  validateStage,
  type StageVariables,
} from './stages.ts';
import { writeMigrationStatus, type MigrationStatusChange } from './status.ts';

/** The compute workspace as the stage runner uses it (WorkspaceAccess; unit tests hand in a fake). */
export type ComputeWorkspace = Pick<WorkspaceAccess, 'mappingFor'> & {
  client(gvr: GroupVersionResource): ObjectClient & Pick<ResourceClient, 'list'>;
};

/** Longest object name Kubernetes takes. */
const MAX_NAME_LENGTH = 253;

/** What the sync controller does next with a migration. */
export type StageStep =
  | { next: 'cutover' }
  | { next: 'wait'; requeueAfterMs?: number }
  | { next: 'fail'; reason: 'StageTimedOut' | 'FailureConditionMet'; message: string };

export type StageInput = {
  migration: Migration;
  /** The origin and destination staging copies: CEL's `from` and `to`. */
  from: KubeObject;
  to: KubeObject;
  related: { from: RelatedSource[]; to: RelatedSource[] };
};

/** Stage objects and CEL over other workspaces have no watch here: a waiting stage looks again this often. */
const POLL_MS = 2_000;
const WAITING_FOR_DESTINATION = {
  type: 'CutoverCompleted',
  status: 'False',
  reason: 'WaitingForDestination',
  message: 'waiting for the destination copy to report status.status Available',
} as const;

/**
 * Runs the stages of a MigrationConfiguration between the two copies of a migrating object:
 * preconditions, templates deployed to the compute workspace, success and failure conditions,
 * timeouts. Everything it decides is recorded in the Migration's status, so it resumes after a
 * restart; the objects it deploys have deterministic names, so deploying twice changes nothing.
 */
export class MigrationStages {
  readonly #compute: ComputeWorkspace;
  readonly #migrationClient: ObjectClient<Migration>;
  readonly #configurations: ObjectStore<MigrationConfiguration>;
  readonly #logger: Logger;
  readonly #now: () => Date;
  readonly #namespaces = new RecentKeys({ capacity: 1000 });
  /** The compute workspace's Secrets and ConfigMaps, where related resources are mirrored. */
  readonly #computeTarget: MirrorTarget;

  constructor(options: {
    /** Where stage objects and mirrored related resources go. */
    compute: ComputeWorkspace;
    migrationClient: ObjectClient<Migration>;
    configurations: ObjectStore<MigrationConfiguration>;
    logger: Logger;
    now?: () => Date;
  }) {
    this.#compute = options.compute;
    this.#migrationClient = options.migrationClient;
    this.#configurations = options.configurations;
    this.#logger = options.logger;
    this.#now = options.now ?? (() => new Date());
    const client = (kind: RelatedKind): ObjectClient & Pick<ResourceClient, 'list'> =>
      this.#compute.client(kind === 'Secret' ? SECRETS : CONFIGMAPS);
    this.#computeTarget = {
      client,
      find: (kind, namespace, name, signal) => client(kind).find({ namespace, name }, signal),
      labelled: async (kind, labels, signal) => {
        const selector = Object.entries(labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(',');
        return (await client(kind).list({ labelSelector: selector, signal })).items;
      },
    };
  }

  /** Moves a Migration that has not reached cutover one step on; says what the caller does next. */
  async advance(input: StageInput, signal: AbortSignal): Promise<StageStep> {
    const state = input.migration.status?.state ?? 'Pending';
    if (state === 'CutoverInProgress' || state === 'CutoverCompleted') return { next: 'cutover' };
    if (state === 'Pending') return this.#begin(input.migration, signal);
    return this.#runStage(input, state, signal);
  }

  /** Removes every stage object and mirrored related resource of a migration (done, failed or aborted). */
  async cleanup(migration: Migration, signal: AbortSignal): Promise<void> {
    const name = migration.metadata.name ?? '';
    for (const ref of migration.status?.stageObjects ?? []) await this.#deleteStageObject(migration, ref, signal);
    const result = await mirrorRelated({
      sources: [],
      owner: this.#mirrorOwner(migration),
      target: this.#computeTarget,
      placeOf: () => ({ namespace: '', name }),
      signal,
    });
    if (result.deleted > 0) this.#logger.debug({ migration: name, deleted: result.deleted }, 'mirrored related resources removed');
  }

  /** The uid and generation of the MigrationConfiguration this migration runs, as cached (none: undefined). */
  configurationVersion(migration: Migration): ConfigurationVersion | undefined {
    const config = this.#configuration(migration);
    const uid = config?.metadata.uid;
    return config && uid ? { uid, generation: config.metadata.generation ?? 0 } : undefined;
  }

  #configuration(migration: Migration): MigrationConfiguration | undefined {
    const name = migration.status?.configuration;
    return name ? this.#configurations.list((c) => c.metadata.name === name)[0] : undefined;
  }

  #write(migration: Migration, change: MigrationStatusChange, signal: AbortSignal): Promise<Migration | undefined> {
    return writeMigrationStatus(this.#migrationClient, migration, change, signal);
  }

  async #begin(migration: Migration, signal: AbortSignal): Promise<StageStep> {
    const { from, to } = migration.spec;
    const config = findConfiguration(this.#configurations.list(), from.gvk, to.gvk);
    const first = config?.spec.stages?.[0];
    if (!config || !first) {
      const message = config
        ? `MigrationConfiguration ${config.metadata.name} has no stages: straight to cutover`
        : `no MigrationConfiguration for ${from.gvk.kind}.${from.gvk.group}/${from.gvk.version} -> ${to.gvk.kind}.${to.gvk.group}/${to.gvk.version}: straight to cutover`;
      await this.#write(
        migration,
        {
          state: 'CutoverInProgress',
          conditions: [{ type: 'StagesCompleted', status: 'True', reason: 'NoStages', message }, WAITING_FOR_DESTINATION],
        },
        signal,
      );
      return { next: 'cutover' };
    }
    const count = config.spec.stages!.length;
    await this.#write(
      migration,
      {
        state: 'InitialInProgress',
        configuration: config.metadata.name ?? '',
        stage: first.name,
        stageStartTime: this.#timestamp(),
        conditions: [
          {
            type: 'StagesCompleted',
            status: 'False',
            reason: 'StageInProgress',
            message: `stage ${first.name} (1 of ${count}) of MigrationConfiguration ${config.metadata.name}`,
          },
        ],
      },
      signal,
    );
    return { next: 'wait' }; // the status event brings the stage's first run
  }

  async #runStage(input: StageInput, state: MigrationState, signal: AbortSignal): Promise<StageStep> {
    // Stages are CEL: loaded before any is checked, so no evaluation below meets an engine still loading.
    await celEngine.load();
    let { migration } = input; // replaced by what each status write returns
    const name = migration.metadata.name ?? '';
    // The configuration must change: recorded once, not retried until it (or the Migration) does.
    const invalid = async (reason: string, message: string): Promise<never> => {
      await this.#write(migration, { conditions: [{ type: 'StagesCompleted', status: 'False', reason, message }] }, signal);
      throw new TerminalError(`migration ${name}: ${reason}: ${message}`);
    };
    const config = this.#configuration(migration);
    if (!config)
      return invalid(
        'ConfigurationNotFound',
        `MigrationConfiguration ${migration.status?.configuration ?? '(none recorded)'} does not exist any more; recreate it, or delete this Migration to start over`,
      );
    const stages = config.spec.stages ?? [];
    const index = stages.findIndex((s) => s.name === migration.status?.stage);
    if (index < 0) {
      return invalid(
        'UnknownStage',
        `stage "${migration.status?.stage ?? ''}" is not in MigrationConfiguration ${config.metadata.name} (its stages: ${stages.map((s) => s.name).join(', ') || 'none'})`,
      );
    }
    const stage = stages[index]!;
    const problems = validateStage(stage, index);
    if (problems.length > 0)
      return invalid(
        'InvalidStage',
        `MigrationConfiguration ${config.metadata.name}: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`,
      );
    // Objects of an earlier stage whose removal was cut short (a crash, a conflict) go first.
    if ((migration.status?.stageObjects ?? []).some((r) => r.stage !== stage.name)) {
      const rest = await this.#removeStageObjects(migration, (r) => r.stage !== stage.name, signal);
      if (!rest) return { next: 'wait', requeueAfterMs: POLL_MS };
      migration = rest;
    }
    const namespace = stage.namespace ?? 'default';
    await this.#ensureNamespace(namespace, signal);
    const notMirrored = await this.#mirrorRelated(migration, namespace, input.related, signal);

    const elapsedMs = this.#now().getTime() - Date.parse(migration.status?.stageStartTime ?? '');
    const waitFor = async (reason: string, message: string): Promise<StageStep> => {
      if (stage.timeoutSeconds !== undefined && elapsedMs > stage.timeoutSeconds * 1000) {
        return {
          next: 'fail',
          reason: 'StageTimedOut',
          message: `stage ${stage.name} did not succeed within ${stage.timeoutSeconds}s (${stageField(index, '.timeoutSeconds')}); it was waiting: ${message}`,
        };
      }
      await this.#write(migration, { conditions: [{ type: 'StagesCompleted', status: 'False', reason, message }] }, signal);
      const left = stage.timeoutSeconds !== undefined ? stage.timeoutSeconds * 1000 - elapsedMs + 50 : POLL_MS;
      return { next: 'wait', requeueAfterMs: Math.max(50, Math.min(POLL_MS, left)) };
    };
    // A stage must never run on another migration's copies: while a name it needs is held (a
    // concurrent migration of a same-named object), it waits (and times out like any wait).
    if (notMirrored.length > 0) return waitFor('MirrorNameTaken', `stage ${stage.name} waits: ${notMirrored.join('; ')}`);
    const vars: StageVariables = { from: input.from, to: input.to };
    const pre = allTrue(stage.preconditions, stageField(index, '.preconditions'), vars);
    if (pre.kind === 'notBoolean') return invalid('InvalidStage', `${pre.field} \`${pre.expression}\` ${pre.detail}`);
    if (pre.kind === 'false')
      return waitFor('PreconditionsNotMet', `stage ${stage.name} waits for ${pre.field} \`${pre.expression}\`: ${pre.detail}`);

    // Render every template and record what it becomes before deploying anything: whatever the
    // configuration turns into later (edited, deleted), cleanup still finds these objects.
    const planned: { key: string; object: KubeObject; mapping: ResourceMapping; ref: StageObjectRef }[] = [];
    for (const [key, template] of Object.entries(stage.templates ?? {})) {
      const field = stageField(index, `.templates.${key}`);
      let rendered: KubeObject;
      try {
        rendered = renderTemplate(template, vars, field) as KubeObject;
      } catch (err) {
        return waitFor('TemplateNotRendered', err instanceof Error ? err.message : String(err));
      }
      const { apiVersion, kind } = rendered;
      if (typeof apiVersion !== 'string' || typeof kind !== 'string')
        return invalid('InvalidStage', `${field}: apiVersion and kind must render to strings`);
      let mapping: ResourceMapping;
      try {
        mapping = await this.#compute.mappingFor(apiVersion, kind);
      } catch (err) {
        if (err instanceof UnknownKindError) return invalid('InvalidStage', `${field}: ${err.message}`);
        throw err;
      }
      const objectName = stageObjectName(name, key);
      const { namespace: _rendered, ...renderedMetadata } = rendered.metadata ?? {};
      const object: KubeObject = {
        ...rendered,
        metadata: {
          ...renderedMetadata,
          name: objectName,
          ...(mapping.namespaced ? { namespace } : {}),
          // A template (or what it interpolates from a copy) never sets the broker's own keys.
          labels: {
            ...copiedKeys(rendered.metadata?.labels),
            [MIGRATION_NAME_LABEL]: name,
            [MIGRATION_STAGE_LABEL]: stage.name,
            [MANAGED_BY_LABEL]: MANAGER,
          },
          annotations: { ...copiedKeys(rendered.metadata?.annotations), [OWNER_UID_ANNOTATION]: migration.metadata.uid ?? '' },
        },
      };
      planned.push({
        key,
        object,
        mapping,
        ref: { stage: stage.name, apiVersion, kind, name: objectName, ...(mapping.namespaced ? { namespace } : {}) },
      });
    }
    const recorded = migration.status?.stageObjects ?? [];
    const unrecorded = planned.filter((p) => !recorded.some((r) => isDeepStrictEqual(r, p.ref)));
    if (unrecorded.length > 0) {
      const written = await this.#write(migration, { stageObjects: [...recorded, ...unrecorded.map((p) => p.ref)] }, signal);
      if (!written) return { next: 'wait', requeueAfterMs: POLL_MS }; // a conflict: try again on the current Migration
      migration = written;
    }
    // Deployed once, then only read back (as the Go broker does): whoever the stage waits for (an
    // operator, a person) completes it by editing the deployed object, and that edit must stand.
    const deployed: Record<string, KubeObject> = {};
    for (const { key, object, mapping, ref } of planned) {
      let current: KubeObject | undefined;
      try {
        current = await this.#deployOnce(mapping, object, ref, signal);
      } catch (err) {
        // The server refused the manifest itself (invalid field): the configuration must change.
        // Other refusals (401/403 credentials, 429) are retried like any failure.
        if (err instanceof ApiError && (err.status === 400 || err.status === 422)) {
          return invalid('InvalidStage', `${stageField(index, `.templates.${key}`)}: ${err.message}`);
        }
        throw err;
      }
      if (!current) return { next: 'wait', requeueAfterMs: POLL_MS }; // an earlier incarnation's object is being replaced
      if (!isOwnedBy(current, this.#stageObjectOwner(migration))) {
        return waitFor(
          'StageObjectNameTaken',
          `stage ${stage.name} waits: ${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name} exists and was not deployed by this migration`,
        );
      }
      deployed[key] = current;
    }
    const withObjects: StageVariables = { ...vars, ...deployed };
    const failure = anyTrue(stage.failureConditions, stageField(index, '.failureConditions'), withObjects);
    if (failure.kind === 'notBoolean') return invalid('InvalidStage', `${failure.field} \`${failure.expression}\` ${failure.detail}`);
    if (failure.kind === 'true')
      return {
        next: 'fail',
        reason: 'FailureConditionMet',
        message: `stage ${stage.name}: ${failure.field} \`${failure.expression}\` is true`,
      };
    const success = allTrue(stage.successConditions, stageField(index, '.successConditions'), withObjects);
    if (success.kind === 'notBoolean') return invalid('InvalidStage', `${success.field} \`${success.expression}\` ${success.detail}`);
    if (success.kind === 'false')
      return waitFor('StageInProgress', `stage ${stage.name} waits for ${success.field} \`${success.expression}\`: ${success.detail}`);

    // Record the success before deleting the stage's objects: were they deleted first and the
    // write lost (a crash, a conflict), the stage would run again on fresh copies of them and
    // could wait forever for a change someone had made to the deleted ones.
    const reached: MigrationState = stage.progress ? 'InitialCompleted' : state;
    const next = stages[index + 1];
    const advanced = await this.#write(
      migration,
      next
        ? {
            state: reached,
            stage: next.name,
            stageStartTime: this.#timestamp(),
            conditions: [
              {
                type: 'StagesCompleted',
                status: 'False',
                reason: 'StageInProgress',
                message: `stage ${next.name} (${index + 2} of ${stages.length}); ${stage.name} succeeded`,
              },
            ],
          }
        : {
            state: 'CutoverInProgress',
            conditions: [
              {
                type: 'StagesCompleted',
                status: 'True',
                reason: 'AllStagesSucceeded',
                message: `all ${stages.length} stages of MigrationConfiguration ${config.metadata.name} succeeded`,
              },
              WAITING_FOR_DESTINATION,
            ],
          },
      signal,
    );
    if (!advanced) return { next: 'wait', requeueAfterMs: POLL_MS }; // a conflict: judged again on the current Migration
    this.#logger.info({ migration: name, stage: stage.name }, 'migration stage succeeded');
    await this.#removeStageObjects(advanced, (r) => r.stage === stage.name, signal);
    return next ? { next: 'wait' } : { next: 'cutover' };
  }

  /**
   * Copies of both staging copies' related resources in the compute workspace, as `from-<name>`
   * and `to-<name>`, owned by this Migration (label and uid): a name another migration holds is
   * left to it and reported, never overwritten. Names are taken in one order, up to the first one
   * held, so two migrations after the same names never hold one each.
   */
  async #mirrorRelated(migration: Migration, namespace: string, related: StageInput['related'], signal: AbortSignal): Promise<string[]> {
    const all = [...related.from.map((s) => ({ ...s, prefix: 'from-' })), ...related.to.map((s) => ({ ...s, prefix: 'to-' }))];
    const tooLong = all.filter((s) => `${s.prefix}${s.name}`.length > MAX_NAME_LENGTH);
    const sources = all.filter((s) => !tooLong.includes(s));
    const result = await mirrorRelated({
      sources,
      owner: this.#mirrorOwner(migration),
      target: this.#computeTarget,
      placeOf: (source) => ({ namespace, name: `${(source as (typeof sources)[number]).prefix}${source.name}` }),
      inOrderUntilConflict: true,
      signal,
    });
    return [
      ...tooLong.map((s) => `${s.kind} ${s.prefix}${s.name} cannot be mirrored: the name is longer than ${MAX_NAME_LENGTH} characters`),
      ...result.conflicts.map((c) => `${c.kind} ${c.namespace}/${c.name} is held by another owner (another migration's mirror)`),
    ];
  }

  /** Owner of this migration's related copies in the compute workspace. */
  #mirrorOwner(migration: Migration): MirrorOwner {
    return {
      labels: { [MIGRATION_NAME_LABEL]: migration.metadata.name ?? '', [RELATED_MIRROR_LABEL]: 'true' },
      uid: migration.metadata.uid,
    };
  }

  /** Owner of this migration's stage objects (they carry its name and uid, not the mirror label). */
  #stageObjectOwner(migration: Migration): MirrorOwner {
    return { labels: { [MIGRATION_NAME_LABEL]: migration.metadata.name ?? '' }, uid: migration.metadata.uid };
  }

  /** Deletes the recorded stage objects `which` picks, then drops them from the record; undefined after a conflict. */
  async #removeStageObjects(
    migration: Migration,
    which: (ref: StageObjectRef) => boolean,
    signal: AbortSignal,
  ): Promise<Migration | undefined> {
    const recorded = migration.status?.stageObjects ?? [];
    for (const ref of recorded.filter(which)) await this.#deleteStageObject(migration, ref, signal);
    const rest = recorded.filter((r) => !which(r));
    return this.#write(migration, { stageObjects: rest.length > 0 ? rest : null }, signal);
  }

  /** Deletes one recorded stage object (already gone: fine). */
  async #deleteStageObject(migration: Migration, ref: StageObjectRef, signal: AbortSignal): Promise<void> {
    let mapping: ResourceMapping;
    try {
      mapping = await this.#compute.mappingFor(ref.apiVersion, ref.kind);
    } catch (err) {
      if (err instanceof UnknownKindError) return; // the kind is no longer served, so neither is the object
      throw err;
    }
    const client = this.#compute.client(mapping.gvr);
    const at = { namespace: ref.namespace, name: ref.name };
    const current = await client.find(at, signal);
    // Only what this migration deployed (label and uid), and only that object (uid precondition):
    // the name may have been taken by something else since.
    if (!current || !isOwnedBy(current, this.#stageObjectOwner(migration))) return;
    try {
      await client.delete(at, signal, { uid: current.metadata.uid });
    } catch (err) {
      if (!isNotFound(err) && !isConflict(err)) throw err;
    }
  }

  /**
   * The stage object as it is in the compute workspace, created from `object` when missing. An
   * object left by an earlier Migration of the same name (owner label, another uid) is deleted
   * first (undefined: the next pass creates ours).
   */
  async #deployOnce(
    mapping: ResourceMapping,
    object: KubeObject,
    ref: StageObjectRef,
    signal: AbortSignal,
  ): Promise<KubeObject | undefined> {
    const client = this.#compute.client(mapping.gvr);
    const at = { namespace: ref.namespace, name: ref.name };
    let current = await client.find(at, signal);
    if (!current) {
      try {
        return await client.create(object, signal);
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
      }
      current = await client.find(at, signal);
      if (!current) return undefined;
    }
    const owner: MirrorOwner = {
      labels: { [MIGRATION_NAME_LABEL]: object.metadata.labels?.[MIGRATION_NAME_LABEL] ?? '' },
      uid: object.metadata.annotations?.[OWNER_UID_ANNOTATION],
    };
    // Still going (a finalizer holds it): the next pass deploys anew once it is gone. Never let
    // a stage succeed on what is left of an earlier stage's object of the same key.
    if (current.metadata.deletionTimestamp) return undefined;
    const earlierStage =
      isOwnedBy(current, owner) && current.metadata.labels?.[MIGRATION_STAGE_LABEL] !== object.metadata.labels?.[MIGRATION_STAGE_LABEL];
    if (earlierStage || isEarlierIncarnation(current, owner)) {
      await client.delete(at, signal, { uid: current.metadata.uid }).catch((err: unknown) => {
        if (!isNotFound(err) && !isConflict(err)) throw err;
      });
      return undefined;
    }
    return current;
  }

  async #ensureNamespace(namespace: string, signal: AbortSignal): Promise<void> {
    if (this.#namespaces.has(namespace)) return;
    await this.#compute.client(NAMESPACES).createIfAbsent({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } }, signal);
    this.#namespaces.add(namespace);
  }

  #timestamp(): string {
    return timestamp(this.#now());
  }
}
