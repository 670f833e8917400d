/**
 * Splits a process's resident anonymous memory by who allocated it, from /proc/<pid>/smaps:
 * glibc malloc's main arena (`[heap]`), its per-thread arenas, and the rest: V8's heap pages and
 * code, thread stacks, and malloc blocks above the mmap threshold (each a mapping of its own, not
 * told apart from V8's here; with jemalloc preloaded, all of malloc is counted there). Node puts
 * Buffers, TLS and HTTP/2 state and V8's compiler zones in malloc, so this says whether a saving is to be had in V8 flags or in the allocator.
 */

export type AnonymousMemory = {
  mallocMainArenaMiB: number;
  mallocThreadArenasMiB: number;
  otherAnonymousMiB: number;
};

/**
 * The file-backed part: pages of the node binary that ran (code) or were read (read-only data:
 * V8's startup snapshot, ICU's data, built-in JS sources), and shared libraries. These are clean
 * pages the kernel can drop, but RSS counts them; which part grew says what touched them.
 */
export type FileMemory = {
  nodeCodeMiB: number;
  nodeReadOnlyDataMiB: number;
  otherFileMiB: number;
};

type Mapping = { start: bigint; end: bigint; perms: string; path: string; anonymousKiB: number; rssKiB: number };

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
        rssKiB: 0,
      });
      continue;
    }
    const field = /^(Anonymous|Rss):\s+(\d+) kB/.exec(line);
    const current = mappings.at(-1);
    if (field && current) current[field[1] === 'Rss' ? 'rssKiB' : 'anonymousKiB'] = Number(field[2]);
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

const mib = (kib: number): number => Math.round((kib / 1024) * 10) / 10;

/** `binary`: the node executable's path (`/proc/<pid>/exe`). Copied-on-write pages count as anonymous, not here. */
export const fileMemoryOf = (smaps: string, binary: string): FileMemory => {
  let code = 0;
  let readOnly = 0;
  let other = 0;
  for (const mapping of parseMappings(smaps)) {
    if (!mapping.path.startsWith('/')) continue;
    const fileKiB = mapping.rssKiB - mapping.anonymousKiB;
    if (mapping.path !== binary) other += fileKiB;
    else if (mapping.perms.includes('x')) code += fileKiB;
    else readOnly += fileKiB;
  }
  return { nodeCodeMiB: mib(code), nodeReadOnlyDataMiB: mib(readOnly), otherFileMiB: mib(other) };
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
  return { mallocMainArenaMiB: mib(main), mallocThreadArenasMiB: mib(threads), otherAnonymousMiB: mib(other) };
};

/** Which malloc the process runs on: jemalloc when the library is mapped (preloaded), else glibc's. */
export const allocatorOf = (smaps: string): 'jemalloc' | 'glibc' =>
  parseMappings(smaps).some((m) => /\/libjemalloc\.so/.test(m.path)) ? 'jemalloc' : 'glibc';
