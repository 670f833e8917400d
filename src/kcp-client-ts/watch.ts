import { StringDecoder } from 'node:string_decoder';
import type { KcpEndpoint } from './endpoint.ts';
import { ApiError } from './errors.ts';
import type { KubeObject, WatchEvent } from './types.ts';

export type WatchStreamOptions = {
  signal: AbortSignal;
  /**
   * Longest silence (no event, no bookmark, no bytes) before the stream counts as stalled;
   * the generator then throws WatchStalledError so the caller can re-watch.
   */
  stallTimeoutMs: number;
  /** Called once the server has accepted the watch (status 2xx), before any event. */
  onOpen?: (() => void) | undefined;
};

export class WatchStalledError extends Error {
  constructor(url: string, ms: number) {
    super(`watch ${url}: no data for ${ms} ms`);
    this.name = 'WatchStalledError';
  }
}

/**
 * Streams the events of one watch request (a URL with `watch=true`) as an async generator.
 * Ends when the server closes the stream; throws ApiError for an ERROR event (410 Gone among them),
 * WatchStalledError on silence, and the abort reason when `signal` aborts.
 */
export async function* watchEvents<T extends KubeObject = KubeObject>(
  endpoint: KcpEndpoint,
  url: string,
  options: WatchStreamOptions,
): AsyncGenerator<WatchEvent<T>> {
  const local = new AbortController();
  const onAbort = (): void => local.abort(options.signal.reason);
  options.signal.addEventListener('abort', onAbort, { once: true });
  // Any bytes (events, bookmarks) re-arm the stall timer; silence past it aborts the request.
  const stalled = new WatchStalledError(url, options.stallTimeoutMs);
  const stallTimer = setTimeout(() => local.abort(stalled), options.stallTimeoutMs);
  stallTimer.unref();
  let body: Awaited<ReturnType<KcpEndpoint['stream']>>;
  try {
    body = await endpoint.stream(url, local.signal);
  } catch (err) {
    clearTimeout(stallTimer);
    options.signal.removeEventListener('abort', onAbort);
    throw translate(err, options, local.signal);
  }
  options.onOpen?.();
  const decoder = new StringDecoder('utf8');
  let buffered = '';
  try {
    for await (const chunk of body) {
      stallTimer.refresh();
      buffered += decoder.write(chunk as Buffer);
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
        if (line === '') continue;
        const event = JSON.parse(line) as { type: string; object: KubeObject & { code?: number; reason?: string; message?: string } };
        if (event.type === 'ERROR') {
          throw new ApiError({
            status: event.object.code ?? 500,
            reason: event.object.reason,
            message: event.object.message ?? 'watch error',
            method: 'WATCH',
            url,
          });
        }
        yield event as WatchEvent<T>;
      }
    }
  } catch (err) {
    throw translate(err, options, local.signal);
  } finally {
    clearTimeout(stallTimer);
    options.signal.removeEventListener('abort', onAbort);
    // Ends the request when the consumer stops early (break, return, throw).
    if (!body.destroyed) body.destroy();
    local.abort();
  }
}

const translate = (err: unknown, options: WatchStreamOptions, local: AbortSignal): unknown => {
  if (options.signal.aborted) return options.signal.reason;
  if (local.aborted && local.reason instanceof WatchStalledError) return local.reason;
  return err;
};
