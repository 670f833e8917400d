#!/usr/bin/env bash
# Builds helm and kubeconform from the Go module proxy into a cache folder outside the
# repository, each only when missing (a cold build takes about 5 minutes), and downloads the two
# modules whose files the offline schema check reads: the kubernetes module kcp builds against
# (its OpenAPI v3 documents) and prometheus-operator (the ServiceMonitor CRD).
# Prints, one per line: the tools folder, the OpenAPI v3 folder, the ServiceMonitor CRD file.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
helm_version=v3.22.0
kubeconform_version=v0.8.0
prometheus_operator_version=v0.85.0
cache="${XDG_CACHE_HOME:-$HOME/.cache}/resource-broker/chart-tools-helm-$helm_version-kubeconform-$kubeconform_version"
mkdir -p "$cache"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
install() { # <package@version> <binary>
  if [ -x "$cache/$2" ]; then return; fi
  echo ">> building $2 ($1) into $cache" >&2
  GOBIN="$cache" go install -trimpath "$1" >&2
}
install "helm.sh/helm/v3/cmd/helm@$helm_version" helm
install "github.com/yannh/kubeconform/cmd/kubeconform@$kubeconform_version" kubeconform
# The kubernetes module exactly as kcp's build pins it (a kcp-dev fork, by a replace directive).
kube_dir="$(cd "$root/hack/tools/kcp" && GONOSUMDB=github.com/kcp-dev go mod download -json k8s.io/kubernetes | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
prom_dir="$(cd "$cache" && go mod download -json "github.com/prometheus-operator/prometheus-operator@$prometheus_operator_version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
echo "$cache"
echo "$kube_dir/api/openapi-spec/v3"
echo "$prom_dir/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml"
