import { createRequire } from 'node:module';
import type * as Undici from 'undici';

/*
 * The parts of undici this client uses, each from its own file. undici's index also loads its
 * mock agents, HTTP caches, proxy agents, interceptors, WebSocket and EventSource: 61 more files,
 * 700 KiB of source that stays on the heap with their functions, none of which the broker runs.
 * undici is pinned exactly in package.json because these paths are not its public API;
 * undici-parts.test.ts fails should one move, before anything ships.
 */
const load = createRequire(import.meta.url);

export const Agent = load('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
export type Agent = Undici.Agent;

const { fetch: fetchImpl } = load('undici/lib/web/fetch/index.js') as { fetch: typeof Undici.fetch };
export const fetch: typeof Undici.fetch = (input, init) => fetchImpl(input, init);

const requestOn = load('undici/lib/api/api-request.js') as (
  this: Undici.Dispatcher,
  options: Undici.Dispatcher.RequestOptions,
) => Promise<Undici.Dispatcher.ResponseData>;

/** undici's `request(url, options)`, for a dispatcher of the caller's (there is no global one here). */
export const request = (
  url: string,
  options: { dispatcher: Undici.Dispatcher } & Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path'>,
): Promise<Undici.Dispatcher.ResponseData> => {
  const { dispatcher, ...rest } = options;
  const parsed = new URL(url);
  return requestOn.call(dispatcher, { ...rest, origin: parsed.origin, path: `${parsed.pathname}${parsed.search}` });
};

/**
 * Makes this undici's fetch, Request, Headers, Response and FormData the process's globals (what
 * undici's `install` does for these five). openapi-fetch builds every request from the global
 * Request and Headers, and Node's own are a second, bundled copy of undici, loaded on first use
 * beside this one (about 2 MiB).
 */
export const installFetchGlobals = (): void => {
  globalThis.fetch = fetch as unknown as typeof globalThis.fetch;
  globalThis.Headers = (load('undici/lib/web/fetch/headers.js') as { Headers: typeof globalThis.Headers }).Headers;
  globalThis.Request = (load('undici/lib/web/fetch/request.js') as { Request: typeof globalThis.Request }).Request;
  globalThis.Response = (load('undici/lib/web/fetch/response.js') as { Response: typeof globalThis.Response }).Response;
  globalThis.FormData = (load('undici/lib/web/fetch/formdata.js') as { FormData: typeof globalThis.FormData }).FormData;
};
