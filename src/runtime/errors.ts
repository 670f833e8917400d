/**
 * A reconcile error that retrying cannot fix: the configuration or input it read is invalid.
 * The reconciler records it where the user looks (a condition, an Event) before throwing; the
 * work queue logs it once and does not retry the key until an event adds it again (the object,
 * or what it depends on, changed). Everything else a reconcile throws is retried with backoff.
 */
export class TerminalError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TerminalError';
  }
}

/**
 * A reconcile that needs something this process is still preparing (a module loaded on first
 * use). The work queue retries the key once `ready` resolves, without backoff and without a
 * warning; if `ready` rejects, the failure counts as any other (retried with backoff).
 */
export class NotReadyError extends Error {
  readonly ready: Promise<unknown>;
  constructor(what: string, ready: Promise<unknown>) {
    super(`${what} is loading`);
    this.name = 'NotReadyError';
    this.ready = ready;
  }
}
