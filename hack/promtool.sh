#!/usr/bin/env bash
# Runs promtool (Prometheus' rule checker): the one on PATH, or one fetched once into a cache
# folder outside the repository. Debian's prometheus package ships it, so the .deb is downloaded
# (not installed) and only promtool is unpacked. Usage: hack/promtool.sh <promtool arguments>
set -euo pipefail
if command -v promtool >/dev/null; then exec promtool "$@"; fi
version="2.42.0+ds-5+b6"
cache="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/resource-broker/promtool"
if [ ! -x "$cache/promtool" ]; then
  echo ">> fetching promtool (Debian package prometheus, $version preferred) into $cache" >&2
  work="$(mktemp -d)"
  fetched=0
  if ( cd "$work" && { apt-get download "prometheus=$version" >/dev/null 2>&1 || apt-get download prometheus >/dev/null 2>&1; } ); then
    dpkg-deb -x "$work"/prometheus_*.deb "$work/root" && mkdir -p "$cache" && install -m 0755 "$work/root/usr/bin/promtool" "$cache/promtool" && fetched=1
  fi
  rm -rf "$work"
  if [ "$fetched" != 1 ]; then
    echo "cannot download Debian's prometheus package (apt-get download; run apt-get update first?); or put promtool on PATH" >&2
    exit 1
  fi
fi
exec "$cache/promtool" "$@"
