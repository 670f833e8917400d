#!/usr/bin/env bash
# Runs promtool (Prometheus' rule checker), fetched once into a cache folder outside the
# repository: Debian's prometheus package ships it, so the .deb is downloaded (not installed) and
# only promtool is unpacked. Usage: hack/promtool.sh <promtool arguments>
set -euo pipefail
if command -v promtool >/dev/null; then exec promtool "$@"; fi
version="2.42.0+ds-5+b6"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/resource-broker/promtool-${version%%+*}"
if [ ! -x "$cache/promtool" ]; then
  echo ">> fetching promtool (Debian package prometheus $version) into $cache" >&2
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  ( cd "$work" && apt-get download "prometheus=$version" >/dev/null 2>&1 || apt-get download prometheus >/dev/null ) ||
    { echo "cannot download the Debian package prometheus (apt-get download); install promtool on PATH instead" >&2; exit 1; }
  dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
  mkdir -p "$cache"
  install -m 0755 "$work/root/usr/bin/promtool" "$cache/promtool"
fi
exec "$cache/promtool" "$@"
