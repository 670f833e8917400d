/** A failed call to the Kubernetes/kcp API, carrying the server's Status when it sent one. */
export class ApiError extends Error {
  readonly status: number;
  readonly reason: string | undefined;
  /** What the server said, without the request (safe to show to the party whose write it was). */
  readonly serverMessage: string;
  readonly method: string;
  readonly url: string;

  constructor(options: { status: number; reason?: string; message: string; method: string; url: string }) {
    super(`${options.method} ${options.url}: ${options.status} ${options.reason ?? ''} ${options.message}`.replace(/\s+/g, ' ').trim());
    this.name = 'ApiError';
    this.status = options.status;
    this.reason = options.reason;
    this.serverMessage = options.message;
    this.method = options.method;
    this.url = options.url;
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof ApiError && err.status === 404;
export const isConflict = (err: unknown): boolean => err instanceof ApiError && err.status === 409;
export const isForbidden = (err: unknown): err is ApiError => err instanceof ApiError && err.status === 403;
export const isAlreadyExists = (err: unknown): boolean => err instanceof ApiError && err.status === 409 && err.reason === 'AlreadyExists';
/** 410 Gone: the resourceVersion asked for is older than what the server keeps. */
export const isGone = (err: unknown): boolean =>
  err instanceof ApiError && (err.status === 410 || err.reason === 'Expired' || err.reason === 'Gone');

/**
 * The server refused the object itself, not the moment: invalid (422), too large for the request
 * (413) or for storage (etcd's "request is too large"). Sending it again changes nothing.
 */
export const isRefusedObject = (err: unknown): boolean =>
  err instanceof ApiError &&
  (err.status === 422 ||
    err.status === 413 ||
    err.reason === 'RequestEntityTooLarge' ||
    /etcdserver: request is too large|trying to send message larger than max/.test(err.serverMessage));
