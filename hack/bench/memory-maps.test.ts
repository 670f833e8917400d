import { describe, expect, it } from 'vitest';
import { anonymousMemoryOf } from './memory-maps.ts';

// Trimmed /proc/<pid>/smaps: only the header line and the Anonymous field matter.
const mapping = (range: string, perms: string, anonymousKiB: number, path = ''): string =>
  `${range} ${perms} 00000000 00:00 0 ${path}\nRss: ${anonymousKiB} kB\nAnonymous: ${anonymousKiB} kB\n`;

describe('anonymous memory by allocator', () => {
  it('tells the main arena, aligned 64 MiB thread arenas and everything else apart', () => {
    const smaps = [
      mapping('55d0c0000000-55d0c1000000', 'r-xp', 0, '/usr/bin/node'),
      mapping('37173000-38573000', 'rw-p', 10240, '[heap]'),
      // A thread arena: 2 MiB read-write at a 64 MiB boundary, the rest of the 64 MiB reserved.
      mapping('7f8cb4000000-7f8cb4200000', 'rw-p', 2048),
      mapping('7f8cb4200000-7f8cb8000000', '---p', 0),
      // A thread arena in full use.
      mapping('7f8cbc000000-7f8cc0000000', 'rw-p', 1024),
      // V8 pages: 256 KiB, one of them happening to sit on a 64 MiB boundary with no reserve behind it.
      mapping('f2b77600000-f2b77640000', 'rw-p', 256),
      mapping('7f8cc4000000-7f8cc4040000', 'rw-p', 256),
      mapping('7f8cca000000-7f8ce9d80000', 'rwxp', 3072),
    ].join('');
    expect(anonymousMemoryOf(smaps)).toEqual({ mallocMainArenaMiB: 10, mallocThreadArenasMiB: 3, otherAnonymousMiB: 3.5 });
  });
});
