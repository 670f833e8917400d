import { describe, expect, it } from 'vitest';
import { setCondition, timestamp } from './conditions.ts';

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
});
