import { describe, expect, it } from 'vitest';
import { MAX_CONDITION_MESSAGE_BYTES, setCondition, timestamp, truncateMessage } from './conditions.ts';

describe('conditions', () => {
  it('write metav1.Time in whole seconds', () => {
    expect(timestamp(new Date('2026-11-25T16:14:32.123Z'))).toBe('2026-11-25T16:14:32Z');
  });

  it('keep lastTransitionTime while the status stays, and move it when the status changes', () => {
    const first = setCondition(
      undefined,
      { type: 'Ready', status: 'False', reason: 'Pending', message: '' },
      new Date('2026-11-25T10:00:00Z'),
    );
    const same = setCondition(
      first,
      { type: 'Ready', status: 'False', reason: 'StillPending', message: 'x' },
      new Date('2026-11-25T11:00:00Z'),
    );
    const flipped = setCondition(same, { type: 'Ready', status: 'True', reason: 'Done', message: '' }, new Date('2026-11-25T12:00:00Z'));
    expect(same[0]).toMatchObject({ reason: 'StillPending', lastTransitionTime: '2026-11-25T10:00:00Z' });
    expect(flipped[0]).toMatchObject({ status: 'True', lastTransitionTime: '2026-11-25T12:00:00Z' });
  });

  it('truncate a huge message with a note saying how much went, within the byte limit', () => {
    const huge = Array.from({ length: 20_000 }, (_, i) => `spec.filters[${i}] (key "k"): expression does not compile`).join('; ');
    const [ready] = setCondition(undefined, { type: 'Ready', status: 'False', reason: 'InvalidFilter', message: huge });
    const bytes = Buffer.byteLength(ready!.message);
    expect(bytes).toBeLessThanOrEqual(MAX_CONDITION_MESSAGE_BYTES);
    expect(bytes).toBeGreaterThan(MAX_CONDITION_MESSAGE_BYTES - 64);
    expect(ready!.message.startsWith('spec.filters[0] (key "k"): expression does not compile; spec.filters[1]')).toBe(true);
    const note = /… \(truncated, (\d+) bytes more\)$/.exec(ready!.message);
    expect(Number(note?.[1])).toBe(Buffer.byteLength(huge) - Buffer.byteLength(ready!.message.slice(0, note!.index)));
    expect(setCondition(undefined, { type: 'Ready', status: 'True', reason: 'Verified', message: 'short' })[0]!.message).toBe('short');
  });

  it('cut multi-byte text at a character boundary', () => {
    const cut = truncateMessage('ü'.repeat(100), 51);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(51);
    expect(cut).toMatch(/^ü+… \(truncated, \d+ bytes more\)$/);
    expect(cut).not.toContain('\uFFFD');
  });
});
