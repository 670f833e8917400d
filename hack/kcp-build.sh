#!/usr/bin/env bash
# Builds the pinned kcp server, the kcp kubectl plugins, and the cache server and front-proxy of a
# sharded kcp (hack/kcp/sharded-kcp.ts) from the Go module proxy into a cache folder outside the
# repository, each only when missing. Prints the binaries' folder on stdout last.
#
# kcp's go.mod has local replace directives that are cut out of its module zip, so
# hack/tools/kcp is a wrapper module supplying them (README: "How kcp is obtained").
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="$(sed -n "s/^export const KCP_VERSION = '\(.*\)';/\1/p" "$root/hack/kcp/version.ts")"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/resource-broker/kcp-$version"
mkdir -p "$cache"
# Some kcp-dev module versions are served by the proxy but unknown to sum.golang.org (404);
# go.sum, committed, still pins their hashes.
export GONOSUMDB="${GONOSUMDB:-github.com/kcp-dev}" CGO_ENABLED=0 GOFLAGS=-mod=mod

build() { # <module dir> <package> <output name>
  local dir="$1" pkg="$2" out="$cache/$3"
  if [ -x "$out" ]; then return; fi
  echo ">> building $3 ($pkg) into $cache; a cold build takes 10-25 minutes" >&2
  local n=0
  ( cd "$root/hack/tools/$dir" && go build -v -trimpath -o "$out.tmp" "$pkg" 2>&1 ) | while read -r line; do
    n=$((n + 1))
    if [ $((n % 100)) -eq 0 ]; then echo "   $3: $n packages compiled (latest: $line)" >&2; fi
    case "$line" in *error*|*cannot*|*undefined*) echo "$line" >&2 ;; esac
  done
  [ -x "$out.tmp" ] || { echo "build of $3 failed" >&2; exit 1; }
  mv "$out.tmp" "$out"
  echo ">> built $out" >&2
}

build kcp github.com/kcp-dev/kcp/cmd/kcp kcp
# Same module as the server: only a sharded topology (`--shards 2`, sharded e2e) needs these two.
build kcp github.com/kcp-dev/kcp/cmd/cache-server cache-server
build kcp github.com/kcp-dev/kcp/cmd/kcp-front-proxy kcp-front-proxy
build kcp-cli github.com/kcp-dev/cli/cmd/kubectl-kcp kubectl-kcp
build kcp-cli github.com/kcp-dev/cli/cmd/kubectl-ws kubectl-ws
build kcp-cli github.com/kcp-dev/cli/cmd/kubectl-create-workspace kubectl-create-workspace
echo "$cache"
