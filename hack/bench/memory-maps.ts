/**
 * Splits a process's resident anonymous memory by who allocated it, from /proc/<pid>/smaps:
 * glibc malloc's main arena (`[heap]`), its per-thread arenas, and the rest: V8's heap pages and
 * code, thread stacks, and malloc blocks above the mmap threshold (each a mapping of its own, not
 * told apart from V8's here). Node puts Buffers, TLS and HTTP/2 state and V8's compiler zones in
 * malloc, so this says whether a saving is to be had in V8 flags or in the allocator.
 */

export type AnonymousMemory = {
  mallocMainArenaMiB: number;
  mallocThreadArenasMiB: number;
  otherAnonymousMiB: number;
};

type Mapping = { start: bigint; end: bigint; perms: string; path: string; anonymousKiB: number };

// glibc reserves each thread arena as one aligned 64 MiB region (HEAP_MAX_SIZE on 64-bit) and
// makes the used front of it read-write; the rest stays reserved (---p) right behind it.
const ARENA_SIZE = 64n * 1024n * 1024n;

const parseMappings = (smaps: string): Mapping[] => {
  const mappings: Mapping[] = [];
  for (const line of smaps.split('\n')) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (header) {
      mappings.push({
        start: BigInt(`0x${header[1]}`),
        end: BigInt(`0x${header[2]}`),
        perms: header[3]!,
        path: header[4]!.trim(),
        anonymousKiB: 0,
      });
      continue;
    }
    const anonymous = /^Anonymous:\s+(\d+) kB/.exec(line);
    const current = mappings.at(-1);
    if (anonymous && current) current.anonymousKiB = Number(anonymous[1]);
  }
  return mappings;
};

const isThreadArena = (mapping: Mapping, next: Mapping | undefined): boolean => {
  if (mapping.path !== '' || mapping.perms !== 'rw-p' || mapping.start % ARENA_SIZE !== 0n) return false;
  const size = mapping.end - mapping.start;
  if (size === ARENA_SIZE) return true;
  return (
    next !== undefined && next.path === '' && next.perms === '---p' && next.start === mapping.end && next.end - mapping.start === ARENA_SIZE
  );
};

export const anonymousMemoryOf = (smaps: string): AnonymousMemory => {
  const mappings = parseMappings(smaps);
  let main = 0;
  let threads = 0;
  let other = 0;
  mappings.forEach((mapping, i) => {
    if (mapping.path === '[heap]') main += mapping.anonymousKiB;
    else if (isThreadArena(mapping, mappings[i + 1])) threads += mapping.anonymousKiB;
    else other += mapping.anonymousKiB;
  });
  const mib = (kib: number): number => Math.round((kib / 1024) * 10) / 10;
  return { mallocMainArenaMiB: mib(main), mallocThreadArenasMiB: mib(threads), otherAnonymousMiB: mib(other) };
};
