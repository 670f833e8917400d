/** Exponential backoff with full jitter: a random delay in [base*2^n / 2, base*2^n], capped. */
export const backoffDelay = (failures: number, options: { initialMs: number; maxMs: number }, random = Math.random): number => {
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** Math.max(0, failures - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
};
