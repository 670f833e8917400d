import { existsSync } from 'node:fs';

/**
 * How the `resource-broker run` process is started: by the image (Dockerfile ENTRYPOINT and ENV),
 * by `make run`, by the end-to-end tests and by `make bench`. Everything here was chosen by
 * measurement (README, "Benchmark"), and a unit test keeps the Dockerfile equal to it.
 */

/**
 * V8 flags: a 1 MiB young generation and V8's memory-saving heuristics took the broker's RSS at
 * rest after 500 objects from 278 to 128 MiB, with the same status latency and throughput.
 * (`--optimize-for-size` is not allowed in NODE_OPTIONS, hence on the command line.)
 * Maglev as the top compiler tier (`--max-opt=2`, no TurboFan): TurboFan's own code is never
 * paged in, 2.5 MiB less RSS, with objects per second within the spread of runs. One V8 helper
 * thread (`--v8-pool-size=1`, Node's default is 4) for concurrent GC and compiling: a pod of the
 * broker is given about one core, and each idle thread keeps its stack and allocator cache.
 */
export const BROKER_NODE_FLAGS = ['--max-semi-space-size=1', '--optimize-for-size', '--max-opt=2', '--v8-pool-size=1'];

/**
 * libuv's thread pool with two threads, not four (each idle one keeps its stack): it serves file
 * reads, DNS lookups of a kcp host name and zlib for compressed answers, and the broker has few of
 * each. One slow lookup leaves a thread for the rest; two at once (both connection pools
 * reconnecting to a host whose DNS hangs) hold them up until a lookup ends.
 */
export const BROKER_THREAD_ENV = { UV_THREADPOOL_SIZE: '2' } as const satisfies Record<string, string>;

/**
 * glibc malloc settings. Node keeps Buffers, TLS and HTTP/2 state and V8's compiler scratch space
 * in malloc. After a large block is freed, glibc raises its mmap threshold to that size and its
 * trim threshold to twice it, so memory freed after a burst stays with the process: at rest after
 * 500 objects, 24 of the 40 MiB malloc held were free. A fixed 128 KiB mmap threshold (glibc's
 * default, made fixed by setting it) keeps large blocks in mappings of their own, returned when
 * freed, and keeps arenas trimmed. One arena as well (MALLOC_ARENA_MAX=1) was measured and was not
 * better. Other C libraries ignore this.
 */
export const BROKER_MALLOC_ENV = { MALLOC_MMAP_THRESHOLD_: '131072' } as const satisfies Record<string, string>;

/**
 * jemalloc (Debian's libjemalloc2), preloaded in place of glibc's malloc: at rest after 500
 * objects it held 6 to 15 MiB less than glibc with the setting above, with objects per second
 * and status latency within the spread of runs of one code (README, "Benchmark"). glibc
 * keeps free memory between blocks in use until malloc_trim, which Node cannot call; jemalloc
 * returns it on its own: a background thread purges pages unused for a second (`dirty_decay_ms`)
 * and hands them straight back (`muzzy_decay_ms:0`). One arena and one background thread: the
 * main thread does nearly all the allocating; at 1,000 objects 100 MiB at rest against 101 with
 * two of each, and CPU in the burst 16.7 against 15.0 s (one run each, both within the spread of
 * runs): kept for the thread fewer.
 */
export const BROKER_JEMALLOC_CONF = 'background_thread:true,max_background_threads:1,narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0';

/** Where the image puts the library (a link to the architecture's own path). */
export const IMAGE_JEMALLOC = '/usr/local/lib/libjemalloc.so.2';

const jemallocCandidates = (): string[] => {
  const multiarch = { x64: 'x86_64', arm64: 'aarch64' }[process.arch as string];
  return [IMAGE_JEMALLOC, ...(multiarch ? [`/usr/lib/${multiarch}-linux-gnu/libjemalloc.so.2`] : []), '/usr/lib64/libjemalloc.so.2'];
};

/** Environment of a broker started on this machine: its thread pool and allocator settings. */
export const brokerProcessEnv = (exists: (path: string) => boolean = existsSync): Record<string, string> => ({
  ...BROKER_THREAD_ENV,
  ...brokerMallocEnv(exists),
});

/**
 * The allocator settings for a broker started on this machine (`make run`, the e2e tests, the
 * bench): the image's, jemalloc, where the library is installed; glibc's setting always, which
 * is what runs where it is not. An LD_PRELOAD or MALLOC_CONF of the caller's own environment
 * replaces these (each start site puts its environment after them).
 */
export const brokerMallocEnv = (exists: (path: string) => boolean = existsSync): Record<string, string> => {
  const jemalloc = jemallocCandidates().find(exists);
  return jemalloc ? { ...BROKER_MALLOC_ENV, LD_PRELOAD: jemalloc, MALLOC_CONF: BROKER_JEMALLOC_CONF } : { ...BROKER_MALLOC_ENV };
};
