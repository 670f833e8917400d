# resource-broker developer entry points. Node 24 comes from hack/node.sh when the machine's is older.
SHELL := /bin/bash
NODE_BIN := $(shell hack/node.sh)
export PATH := $(NODE_BIN):$(PATH)
# Node 24 strips TypeScript types natively; silence its one-time notice about it.
export NODE_OPTIONS := --disable-warning=ExperimentalWarning

.PHONY: help deps kcp codegen verify-codegen typecheck lint format monitoring chart unit e2e test example bench run build clean

help: ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.installed ## install npm packages

kcp: ## build kcp and the kubectl plugins into the cache (only when missing)
	@hack/kcp-build.sh

codegen: deps kcp ## re-read kcp's OpenAPI into schemas/ and regenerate src/kcp-client-ts/generated
	node hack/codegen.ts

verify-codegen: deps ## fail when the generated client is stale
	node hack/codegen.ts --check

typecheck: deps ## tsc over src, test and hack
	npx tsc -p tsconfig.json

lint: deps ## biome (format and lint), knip (unused exports, files, dependencies), no import cycles between src/ folders
	npx biome check .
	npx knip
	node hack/check-imports.ts

format: deps ## rewrite files to the biome format and apply its safe fixes
	npx biome check --write .

monitoring: ## promtool checks the alert rules and runs their unit tests (deploy/prometheus)
	hack/promtool.sh check rules deploy/prometheus/alerts.yaml
	cd deploy/prometheus && ../../hack/promtool.sh test rules alerts.test.yaml

chart: deps ## helm lint, and helm template validated offline against the Kubernetes schemas (helm and kubeconform built when missing)
	node hack/chart/check.ts

unit: deps ## unit tests (no kcp)
	npx vitest run --project unit

e2e: deps kcp ## end-to-end tests against a real kcp started for the run
	npx vitest run --project e2e

test: deps kcp lint typecheck verify-codegen monitoring chart ## everything: lint, typecheck, alert rules, chart, unit and end-to-end tests
	npx vitest run

run: deps kcp ## start a local kcp, bootstrap it, and run the broker on it (Ctrl-C stops both)
	node hack/run-local.ts

example: deps kcp ## the README walkthrough, its own sh blocks, on a local kcp started by make run (fails if any command fails)
	node hack/readme-example.ts

bench: deps kcp ## benchmark against a real kcp; prints one JSON line last
	node hack/bench/bench.ts $(BENCH_ARGS)

build: deps ## compile to dist/
	npx tsc -p tsconfig.build.json

clean: ## remove build output and test results
	rm -rf dist test-results
