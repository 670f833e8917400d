import type { Condition } from './types.ts';

/** A metav1.Time: RFC 3339 in whole seconds. */
export const timestamp = (now = new Date()): string => now.toISOString().replace(/\.\d+Z$/, 'Z');

/** Sets a condition, keeping lastTransitionTime when the status did not change. Returns a new list. */
export const setCondition = (
  conditions: Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
  now = new Date(),
): Condition[] => {
  const list = conditions ?? [];
  const old = list.find((c) => c.type === next.type);
  const lastTransitionTime = old && old.status === next.status ? old.lastTransitionTime : timestamp(now);
  return [...list.filter((c) => c.type !== next.type), { ...next, lastTransitionTime }].sort((a, b) => a.type.localeCompare(b.type));
};

export const conditionTrue = (conditions: Condition[] | undefined, type: string): boolean =>
  conditions?.some((c) => c.type === type && c.status === 'True') ?? false;
