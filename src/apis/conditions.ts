import { byCodeUnit } from './order.ts';
import type { Condition } from './types.ts';

/** A metav1.Time: RFC 3339 in whole seconds. */
export const timestamp = (now = new Date()): string => now.toISOString().replace(/\.\d+Z$/, 'Z');

/**
 * The longest condition message written, in UTF-8 bytes. metav1.Condition allows 32768
 * characters, but a message is for a person reading `kubectl describe` or `resource-broker
 * explain`; an object carries several conditions, and every status write (some on every
 * reconcile) resends them all. Untrusted input ends up in messages (a provider's 20,000 invalid
 * filters, a consumer's 1 MiB value): 4 KiB still holds the problems of all 32 filters an
 * AcceptAPI may have, and keeps any status far below the request and etcd limits, so a write
 * never fails with ResourceExhausted and is retried for ever.
 */
export const MAX_CONDITION_MESSAGE_BYTES = 4096;

/** Cuts a message to at most `maxBytes` UTF-8 bytes (at a character boundary) with a note saying how much went. */
export const truncateMessage = (message: string, maxBytes = MAX_CONDITION_MESSAGE_BYTES): string => {
  const bytes = Buffer.from(message, 'utf8');
  if (bytes.length <= maxBytes) return message;
  // The note's length depends on the count it carries; the count has at most as many digits as the total.
  const room = maxBytes - Buffer.byteLength(`… (truncated, ${bytes.length} bytes more)`);
  let cut = Math.max(0, room);
  while (cut > 0 && (bytes[cut]! & 0xc0) === 0x80) cut--; // not inside a multi-byte character
  return `${bytes.subarray(0, cut).toString('utf8')}… (truncated, ${bytes.length - cut} bytes more)`;
};

/**
 * Sets a condition, keeping lastTransitionTime when the status did not change. Returns a new
 * list. A message over MAX_CONDITION_MESSAGE_BYTES is truncated with a note.
 */
export const setCondition = (
  conditions: Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
  now = new Date(),
): Condition[] => {
  const list = conditions ?? [];
  const old = list.find((c) => c.type === next.type);
  const lastTransitionTime = old && old.status === next.status ? old.lastTransitionTime : timestamp(now);
  const message = typeof next.message === 'string' ? truncateMessage(next.message) : next.message;
  return [...list.filter((c) => c.type !== next.type), { ...next, message, lastTransitionTime }].sort((a, b) => byCodeUnit(a.type, b.type));
};

export const conditionTrue = (conditions: Condition[] | undefined, type: string): boolean =>
  conditions?.some((c) => c.type === type && c.status === 'True') ?? false;
