import { describe, expect, it } from 'vitest';
import { assignmentName, nameHash } from './names.ts';

// Names are stored in kcp: a broker that computed them differently after an upgrade would no
// longer find the Assignments, workspaces and mirrors it made. These values were computed with
// the first formula (the hex digest's first 20 characters); the second was read off a real broker.
describe('persisted names', () => {
  it('stay what earlier versions computed', () => {
    expect(nameHash('a', 'b')).toBe('59b271ae1bbcb1d31d41');
    expect(
      assignmentName(
        'gsvauhriyuzau33k',
        { group: 'example.platform-mesh.io', version: 'v1alpha1', resource: 'certificates' },
        'default',
        'warm-0',
      ),
    ).toBe('assignment-480da078d8a61ad054cf');
  });
});
