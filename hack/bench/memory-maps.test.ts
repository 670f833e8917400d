import { describe, expect, it } from 'vitest';
import { allocatorOf, anonymousMemoryOf, fileMemoryOf } from './memory-maps.ts';

// Trimmed /proc/<pid>/smaps: only the header line and the Rss and Anonymous fields matter.
const mapping = (range: string, perms: string, anonymousKiB: number, path = '', rssKiB = anonymousKiB): string =>
  `${range} ${perms} 00000000 00:00 0 ${path}\nRss: ${rssKiB} kB\nAnonymous: ${anonymousKiB} kB\n`;

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

describe('file-backed memory', () => {
  it("splits the node binary's resident code and read-only data from other files, leaving out copied-on-write pages", () => {
    const smaps = [
      mapping('00400000-00746000', 'r--p', 0, '/opt/node/bin/node', 1024),
      mapping('0074a000-03044000', 'r-xp', 0, '/opt/node/bin/node', 18432),
      mapping('03201000-06b51000', 'r--p', 0, '/opt/node/bin/node', 8192),
      // .data: written to at start, so most of it is anonymous.
      mapping('06b51000-06b70000', 'rw-p', 100, '/opt/node/bin/node', 124),
      mapping('7f3490244000-7f349039a000', 'r-xp', 0, '/usr/lib/x86_64-linux-gnu/libc.so.6', 1024),
      mapping('37173000-38573000', 'rw-p', 10240, '[heap]'),
      mapping('7f8cb4000000-7f8cb4200000', 'rw-p', 2048),
    ].join('');
    expect(fileMemoryOf(smaps, '/opt/node/bin/node')).toEqual({ nodeCodeMiB: 18, nodeReadOnlyDataMiB: 9, otherFileMiB: 1 });
  });
});

describe('allocator', () => {
  it('is jemalloc when its library is mapped, else glibc', () => {
    const libc = mapping('7f3490244000-7f349039a000', 'r-xp', 0, '/usr/lib/x86_64-linux-gnu/libc.so.6', 1024);
    expect(allocatorOf(libc)).toBe('glibc');
    expect(allocatorOf(libc + mapping('7f3491000000-7f3491100000', 'r-xp', 0, '/usr/local/lib/libjemalloc.so.2', 512))).toBe('jemalloc');
  });
});
