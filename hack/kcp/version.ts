/**
 * The kcp release the project builds and tests against. v0.32.3 cannot be built from the Go
 * module proxy here (its staging module virtual-workspace-framework is not served); v0.30.0 is
 * the newest release whose every module is (see README, "How kcp is obtained").
 */
export const KCP_VERSION = 'v0.30.0';
