/**
 * The V8 flags `resource-broker run` is started with: by the image's ENTRYPOINT (Dockerfile), by
 * `make run`, by the end-to-end tests and by `make bench`. Chosen by measurement (README,
 * "Benchmark"): a 1 MiB young generation and V8's memory-saving heuristics took the broker's RSS
 * at rest after 500 objects from 278 to 128 MiB, with the same status latency and throughput.
 * (`--optimize-for-size` is not allowed in NODE_OPTIONS, hence on the command line.)
 */
export const BROKER_NODE_FLAGS = ['--max-semi-space-size=1', '--optimize-for-size'];
