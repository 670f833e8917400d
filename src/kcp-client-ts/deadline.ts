/**
 * The reason a signal ended by `end('abort')` carries: one for all, since building a DOMException
 * captures a stack (0.5 s of broker CPU in a 2,000-object status round, when every reconcile made
 * one), and nothing waits on a signal whose work has ended.
 */
const ENDED = Object.freeze(new DOMException('The work this signal bounded ended', 'AbortError'));

/**
 * A signal that aborts at a deadline, or with `parent`, and `end()` to call when the work is
 * done. A cleared timer rather than AbortSignal.timeout: that one stays pending, with every
 * signal it feeds, for the whole deadline after the work ended (1,224 timers and 2,126 signals
 * at rest after a 500-object burst). `end('abort')` also aborts the signal, because Node keeps
 * a signal that still has a listener until it aborts; `end('clear')` leaves it as it is, for a
 * signal a caller may still be reading a body with.
 */
export const deadlineSignal = (
  parent: AbortSignal | undefined,
  ms: number,
  what: string,
): { signal: AbortSignal; end: (how: 'abort' | 'clear') => void } => {
  const expiry = new AbortController();
  const timer = setTimeout(
    () => expiry.abort(new DOMException(`${what} passed: the operation was aborted due to timeout`, 'TimeoutError')),
    Math.max(0, Math.floor(ms)),
  ).unref();
  return {
    signal: parent ? AbortSignal.any([parent, expiry.signal]) : expiry.signal,
    end: (how) => {
      clearTimeout(timer);
      if (how === 'abort') expiry.abort(ENDED);
    },
  };
};
