/**
 * How the `resource-broker run` process is started: by the image (Dockerfile ENTRYPOINT and ENV),
 * by `make run`, by the end-to-end tests and by `make bench`. Both lists were chosen by
 * measurement (README, "Benchmark"), and a unit test keeps the Dockerfile equal to them.
 */

/**
 * V8 flags: a 1 MiB young generation and V8's memory-saving heuristics took the broker's RSS at
 * rest after 500 objects from 278 to 128 MiB, with the same status latency and throughput.
 * (`--optimize-for-size` is not allowed in NODE_OPTIONS, hence on the command line.)
 */
export const BROKER_NODE_FLAGS = ['--max-semi-space-size=1', '--optimize-for-size'];

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
