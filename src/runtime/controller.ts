import type { KubeObject } from '../kcp-client-ts/types.ts';
import type { Logger } from '../logging.ts';
import type { Informer, InformerEvent } from './informer.ts';
import type { WorkQueue } from './workqueue.ts';

/** One informer a controller watches, and the keys of that controller an event touches. */
export type Watch = {
  informer: Informer<KubeObject>;
  toKeys: (event: InformerEvent<KubeObject>) => Iterable<string>;
};

/** Builds a Watch with the informer's own object type in `toKeys`. */
export const watchOf = <T extends KubeObject>(informer: Informer<T>, toKeys: (event: InformerEvent<T>) => Iterable<string>): Watch =>
  ({ informer, toKeys }) as unknown as Watch;

/**
 * What the manager runs (controller-runtime's shape): a named work queue whose reconcile the
 * controller implements, and the watches that fill it.
 */
export type Controller = {
  readonly name: string;
  readonly queue: WorkQueue;
  watches(): Watch[];
};

type Registered = { controller: Controller; removeHandlers: (() => void)[] };

/**
 * Starts controllers: adds their watch handlers, waits until every informer they watch has
 * synced, then starts their workers, so no reconcile reads a cache that is still filling.
 * Controllers can be added and removed while it runs (brokered resources come and go).
 */
export class ControllerManager {
  readonly #registered = new Map<string, Registered>();
  readonly #logger: Logger;

  constructor(options: { logger: Logger }) {
    this.#logger = options.logger;
  }

  /** Registers the controller's watches and starts it once they have synced (or `signal` aborts). */
  async add(controller: Controller, signal: AbortSignal): Promise<void> {
    if (this.#registered.has(controller.name)) throw new Error(`controller ${controller.name} is already running`);
    const watches = controller.watches();
    const removeHandlers = watches.map(({ informer, toKeys }) =>
      informer.onEvent((event) => {
        for (const key of toKeys(event)) controller.queue.add(key);
      }),
    );
    this.#registered.set(controller.name, { controller, removeHandlers });
    await Promise.all(watches.map((w) => w.informer.waitForSync(signal)));
    if (signal.aborted || !this.#registered.has(controller.name)) return;
    controller.queue.start();
    this.#logger.debug({ controller: controller.name, watches: watches.map((w) => w.informer.name) }, 'controller started');
  }

  /** Removes the controller's handlers and lets its in-flight reconciles finish. */
  async remove(name: string): Promise<void> {
    const registered = this.#registered.get(name);
    if (!registered) return;
    this.#registered.delete(name);
    for (const remove of registered.removeHandlers) remove();
    await registered.controller.queue.shutdown();
  }

  get(name: string): Controller | undefined {
    return this.#registered.get(name)?.controller;
  }

  get queues(): WorkQueue[] {
    return [...this.#registered.values()].map((r) => r.controller.queue);
  }

  /** Stops every controller (in-flight reconciles finish or see their signal abort); `queues` still lists them. */
  async stop(): Promise<void> {
    await Promise.all(this.queues.map((q) => q.shutdown()));
  }
}
