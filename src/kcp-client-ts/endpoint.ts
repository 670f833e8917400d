import { createSecureContext, type SecureContext } from 'node:tls';
import type { Dispatcher } from 'undici';
import { Agent, fetch as undiciFetch, request as undiciRequest } from './undici-parts.ts';
import { ApiError } from './errors.ts';
import { deadlineSignal } from './deadline.ts';
import { readKubeconfig, readKubeconfigIsolated } from './kubeconfig.ts';
import { virtualWorkspaceBase, workspaceBase } from './paths.ts';

export type KcpEndpointOptions = {
  /** `https://host:port`, without a path; the kubeconfig's `/clusters/...` suffix is dropped. */
  serverOrigin: string;
  ca?: string | Buffer | undefined;
  cert?: string | Buffer | undefined;
  key?: string | Buffer | undefined;
  bearerToken?: string | undefined;
  insecureSkipTLSVerify?: boolean;
  /** The TLS context built from `ca`, `cert` and `key` already (a fenced endpoint shares its parent's). */
  secureContext?: SecureContext | undefined;
  /**
   * HTTP/2 (default on): every request and watch to the server is a stream on a few shared
   * connections. With HTTP/1.1 each open watch holds a socket of its own.
   */
  allowH2?: boolean;
  /**
   * HTTP/2 PING interval (default 15 s). Every request shares one connection, so aborting a
   * stalled watch is not enough when the connection itself died without a reset (a vanished peer
   * or middlebox): the re-watch would stall on it too. An unanswered PING makes undici drop the
   * connection within two intervals, as client-go does with its HTTP/2 health check.
   */
  pingIntervalMs?: number;
  /** Called once per request with its method and URL (for request metrics); the client stays unaware of them. */
  onRequest?: (method: string, url: string) => void;
  /** Called once per request when its answer (the status code) or its failure (`<error>`, as client-go counts it) is known. */
  onResponse?: (method: string, url: string, code: string) => void;
  /** Share another endpoint's connections (see `fenced`). */
  dispatcher?: Agent;
  /** Share another endpoint's HTTP/1.1 connections for requests with a body (see `fenced`). */
  bodyDispatcher?: Agent;
  /**
   * Asked before every write (any method but GET) is sent: a reason to refuse it, or undefined.
   * A refused write throws WriteFencedError and never reaches the server.
   */
  writeFence?: () => string | undefined;
  /**
   * Until when (ms since the epoch) a write that passed the fence may still be in flight: it is
   * aborted then (a request queued for a connection must not reach the server after the lease
   * it was sent under may have passed to another replica).
   */
  writeDeadline?: () => number | undefined;
  /** Called after each write the server accepted (2xx), with its method and URL. */
  onWrite?: (method: string, url: string) => void;
};

/**
 * HTTP/1.1 connections per kcp origin for requests with a body. Writes are short; more at once
 * than this wait for a connection (each reconcile has its deadline), and kcp on its cores is slower
 * than this many connections at a time (measured: the burst's objects per second unchanged).
 */
const WRITE_CONNECTIONS = 16;
/** How long a write waits for kcp's answer to begin. */
const WRITE_ANSWER_TIMEOUT_MS = 60_000;

/** A write refused before it was sent: this process may not write now (it does not hold the leader lease). */
export class WriteFencedError extends Error {
  constructor(reason: string, method: string, url: string) {
    super(`${method} ${url} not sent: ${reason}`);
    this.name = 'WriteFencedError';
  }
}

export type JsonRequest = {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal | undefined;
};

/**
 * One kcp server as the kubeconfig describes it: TLS material, credentials and a keep-alive
 * undici dispatcher shared by every request to it (any workspace, any virtual workspace).
 */
export class KcpEndpoint {
  readonly serverOrigin: string;
  /** The server URL as the kubeconfig gives it, path included (no trailing slash). */
  readonly serverUrl: string;
  readonly dispatcher: Agent;
  readonly #authorization: string | undefined;
  readonly #options: KcpEndpointOptions;
  readonly #onRequest: (method: string, url: string) => void;
  readonly #ownsDispatcher: boolean;
  readonly #bodyDispatcher: Agent;
  readonly #secureContext: SecureContext;

  constructor(options: KcpEndpointOptions) {
    this.#options = options;
    this.#onRequest = options.onRequest ?? (() => undefined);
    const server = new URL(options.serverOrigin);
    this.serverOrigin = server.origin;
    this.serverUrl = `${server.origin}${server.pathname.replace(/\/+$/, '')}`;
    this.#authorization = options.bearerToken ? `Bearer ${options.bearerToken}` : undefined;
    this.#ownsDispatcher = options.dispatcher === undefined;
    // One TLS context for every connection: given `ca`, `cert` and `key`, tls.connect builds a
    // context per connection (the certificates parsed again, kept until the socket's wrapper is
    // collected, which at rest is late), and a burst of writes opens dozens of connections.
    this.#secureContext = options.secureContext ?? createSecureContext({ ca: options.ca, cert: options.cert, key: options.key });
    const connect = { secureContext: this.#secureContext, rejectUnauthorized: !options.insecureSkipTLSVerify };
    this.dispatcher =
      options.dispatcher ??
      new Agent({
        connect,
        keepAliveTimeout: 30_000,
        // No socket cap: a cap below the number of open watches would queue every other request
        // behind them forever.
        allowH2: options.allowH2 ?? true,
        h2Options: { pingInterval: options.pingIntervalMs ?? 15_000 },
      });
    // Requests with a body go over HTTP/1.1. Node's HTTP/2 client (v24.21) spins its event loop
    // for ever, sending empty DATA frames and growing memory, when a stream is destroyed while
    // its body is still queued (an aborted or early-answered write): the broker then ignored
    // SIGTERM. Writes are few and short; reads and watches keep sharing HTTP/2 connections.
    // At most WRITE_CONNECTIONS per origin: without a cap a burst opened one per concurrent write
    // (about a hundred over three origins at 1,000 objects, 50-120 KiB of TLS state each).
    this.#bodyDispatcher =
      options.bodyDispatcher ??
      new Agent({
        connect,
        keepAliveTimeout: 30_000,
        allowH2: false,
        connections: WRITE_CONNECTIONS,
        // A write kcp does not answer gives its connection back within a minute whoever sent it
        // (undici's default: five), so a few unanswered ones cannot hold the capped pool for long.
        headersTimeout: WRITE_ANSWER_TIMEOUT_MS,
      });
  }

  /**
   * Reads a kubeconfig file (or the default one) and builds the endpoint of its current or named
   * context. `isolated`: read it in a short-lived child process (kubeconfig.ts says why), for
   * long-running commands.
   */
  static async fromKubeconfig(
    options: {
      path?: string | undefined;
      context?: string | undefined;
      token?: string | undefined;
      isolated?: boolean;
      onRequest?: (method: string, url: string) => void;
      onResponse?: (method: string, url: string, code: string) => void;
      allowH2?: boolean;
      pingIntervalMs?: number;
    } = {},
  ): Promise<KcpEndpoint> {
    const target = { path: options.path, context: options.context };
    const credentials = options.isolated ? await readKubeconfigIsolated(target) : await readKubeconfig(target);
    return new KcpEndpoint({
      serverOrigin: credentials.server,
      ca: credentials.ca,
      cert: credentials.cert,
      key: credentials.key,
      bearerToken: options.token ?? credentials.token,
      insecureSkipTLSVerify: credentials.insecureSkipTLSVerify,
      ...(options.onRequest ? { onRequest: options.onRequest } : {}),
      ...(options.onResponse ? { onResponse: options.onResponse } : {}),
      ...(options.allowH2 !== undefined ? { allowH2: options.allowH2 } : {}),
      ...(options.pingIntervalMs !== undefined ? { pingIntervalMs: options.pingIntervalMs } : {}),
    });
  }

  /** The same server and TLS, another identity (a token of the test token file, say). */
  withToken(token: string): KcpEndpoint {
    const { dispatcher: _shared, bodyDispatcher: _sharedBody, ...options } = this.#options;
    return new KcpEndpoint({ ...options, bearerToken: token });
  }

  /**
   * The same server and identity, with every write asked of `writeFence` first (and reported to
   * `onWrite` once accepted). Reads and watches are not fenced and share this endpoint's
   * connections; writes get a capped pool of their own, so a burst of them never makes this
   * endpoint's writes (the lease lock's renewals) wait for a connection.
   */
  fenced(options: Pick<KcpEndpointOptions, 'writeFence' | 'writeDeadline' | 'onWrite'>): KcpEndpoint {
    const { bodyDispatcher: _own, ...shared } = this.#options;
    return new KcpEndpoint({ ...shared, ...options, dispatcher: this.dispatcher, secureContext: this.#secureContext });
  }

  /**
   * Throws WriteFencedError when the fence refuses a write; else the signal the write is sent with
   * (aborted at the write deadline) and `settled`, to call once the answer is in: a write the
   * server answered has landed, so the deadline has nothing left to stop. Not aborted then: the
   * answer's body may still be read with the signal.
   */
  #checkFence(
    method: string,
    url: string,
    signal: AbortSignal | null | undefined,
  ): { signal: AbortSignal | undefined; settled: () => void } {
    const unbounded = { signal: signal ?? undefined, settled: () => {} };
    if (method === 'GET' || method === 'HEAD') return unbounded;
    const refused = this.#options.writeFence?.();
    if (refused !== undefined) throw new WriteFencedError(refused, method, url);
    const deadline = this.#options.writeDeadline?.();
    if (deadline === undefined) return unbounded;
    const bounded = deadlineSignal(signal ?? undefined, deadline - Date.now(), 'The write deadline');
    return { signal: bounded.signal, settled: () => bounded.end('clear') };
  }

  #accepted(method: string, url: string, status: number): void {
    if (method !== 'GET' && method !== 'HEAD' && status >= 200 && status < 300) this.#options.onWrite?.(method, url);
  }

  /** `<server>/clusters/<workspace>`: the base URL of a workspace by path (`root:a:b`) or logical cluster name. */
  workspaceUrl(workspace: string): string {
    return workspaceBase(this.serverOrigin, workspace);
  }

  /** `<vw>/clusters/<cluster>`: the base URL of a logical cluster (or `*`) inside a virtual workspace. */
  virtualWorkspaceUrl(virtualWorkspaceUrl: string, cluster: string): string {
    return virtualWorkspaceBase(virtualWorkspaceUrl, cluster);
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.#authorization ? { authorization: this.#authorization, ...extra } : { ...extra };
  }

  /** Reports the answer's status code, or `<error>` when none came. */
  async #answered<R>(method: string, url: string, pending: Promise<R>, codeOf: (response: R) => number): Promise<R> {
    const report = this.#options.onResponse;
    if (!report) return pending;
    try {
      const response = await pending;
      report(method, url, String(codeOf(response)));
      return response;
    } catch (err) {
      report(method, url, '<error>');
      throw err;
    }
  }

  /** A fetch bound to this endpoint's dispatcher and credentials (for openapi-fetch). */
  readonly fetch = async (input: Request): Promise<Response> => {
    const headers = new Headers(input.headers);
    if (this.#authorization && !headers.has('authorization')) headers.set('authorization', this.#authorization);
    const { signal, settled } = this.#checkFence(input.method, input.url, input.signal);
    let response: Awaited<ReturnType<typeof undiciFetch>>;
    try {
      this.#onRequest(input.method, input.url);
      const body = input.body ? await input.arrayBuffer() : undefined;
      response = await this.#answered(
        input.method,
        input.url,
        undiciFetch(input.url, {
          method: input.method,
          headers: Object.fromEntries(headers),
          body,
          signal,
          dispatcher: body === undefined ? this.dispatcher : this.#bodyDispatcher,
        }),
        (r) => r.status,
      );
    } finally {
      settled();
    }
    this.#accepted(input.method, input.url, response.status);
    return response as unknown as Response;
  };

  /** A JSON request; throws ApiError on a non-2xx answer. */
  async json<T>(req: JsonRequest): Promise<T> {
    const { signal, settled } = this.#checkFence(req.method, req.url, req.signal);
    let response: Dispatcher.ResponseData;
    try {
      this.#onRequest(req.method, req.url);
      response = await this.#answered(
        req.method,
        req.url,
        undiciRequest(req.url, {
          method: req.method,
          dispatcher: req.body === undefined ? this.dispatcher : this.#bodyDispatcher,
          headers: this.headers({
            accept: 'application/json',
            ...(req.body !== undefined ? { 'content-type': req.contentType ?? 'application/json' } : {}),
          }),
          body: req.body !== undefined ? JSON.stringify(req.body) : undefined,
          signal,
        }),
        (r) => r.statusCode,
      );
    } finally {
      settled();
    }
    const text = await response.body.text();
    if (response.statusCode < 200 || response.statusCode >= 300) throw toApiError(req.method, req.url, response.statusCode, text);
    this.#accepted(req.method, req.url, response.statusCode);
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /**
   * A streaming GET (watch); the caller owns the body and detects stalls itself (undici's
   * bodyTimeout does not cover a body that never starts). Throws ApiError on a non-2xx answer.
   */
  async stream(url: string, signal: AbortSignal): Promise<Dispatcher.ResponseData['body']> {
    this.#onRequest('WATCH', url);
    const response = await this.#answered(
      'WATCH',
      url,
      undiciRequest(url, {
        method: 'GET',
        dispatcher: this.dispatcher,
        headers: this.headers({ accept: 'application/json' }),
        signal,
        bodyTimeout: 0,
      }),
      (r) => r.statusCode,
    );
    if (response.statusCode < 200 || response.statusCode >= 300) {
      const text = await response.body.text();
      throw toApiError('GET', url, response.statusCode, text);
    }
    return response.body;
  }

  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.dispatcher.close();
    if (this.#options.bodyDispatcher === undefined) await this.#bodyDispatcher.close();
  }
}

const toApiError = (method: string, url: string, status: number, text: string): ApiError => {
  let reason: string | undefined;
  let message = text.slice(0, 500);
  try {
    const parsed = JSON.parse(text) as { reason?: string; message?: string };
    reason = parsed.reason;
    message = parsed.message ?? message;
  } catch {
    // not a Status object: keep the raw text
  }
  return new ApiError({ status, reason, message, method, url });
};
