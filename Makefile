# hubfleet — build, generate, test, run.
# `make test` and `make run` are the README's two commands; everything they need is
# installed or built by the targets themselves.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.1.0-dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/hubfleet/hubfleet/pkg/version.Version=$(VERSION) -X github.com/hubfleet/hubfleet/pkg/version.Commit=$(COMMIT)

LOCALBIN ?= $(CURDIR)/bin
CONTROLLER_TOOLS_VERSION ?= v0.23.0
CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen-$(CONTROLLER_TOOLS_VERSION)
# staticcheck 2026.2.2; it has to understand the Go version in go.mod, so move
# it forward together with the go line.
STATICCHECK_VERSION ?= v0.8.2
STATICCHECK ?= $(LOCALBIN)/staticcheck-$(STATICCHECK_VERSION)

# Seconds each fuzz target runs in `make test`.
FUZZTIME ?= 3s

.PHONY: all
all: build

##@ Development

$(CONTROLLER_GEN):
	@mkdir -p $(LOCALBIN)
	@echo "installing controller-gen $(CONTROLLER_TOOLS_VERSION) from the Go module proxy"
	GOBIN=$(LOCALBIN)/.tmp go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	mv $(LOCALBIN)/.tmp/controller-gen $(CONTROLLER_GEN) && rmdir $(LOCALBIN)/.tmp

$(STATICCHECK):
	@mkdir -p $(LOCALBIN)
	@echo "installing staticcheck $(STATICCHECK_VERSION) from the Go module proxy"
	GOBIN=$(LOCALBIN)/.tmp-staticcheck go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(LOCALBIN)/.tmp-staticcheck/staticcheck $(STATICCHECK) && rmdir $(LOCALBIN)/.tmp-staticcheck

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code for the API types.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs and RBAC from markers.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=hubfleet-operator paths=./controllers/... output:rbac:artifacts:config=config/rbac
	hack/gen-chart.sh

.PHONY: verify-generated
verify-generated: generate manifests ## Fail when committed generated files are stale.
	@if [ -n "$$(git status --porcelain -- api config/crd config/rbac charts/hubfleet/templates)" ]; then \
	  echo "generated files are stale: run 'make generate manifests' and commit the result:"; \
	  git status --porcelain -- api config/crd config/rbac charts/hubfleet/templates; git --no-pager diff --stat -- api config/crd config/rbac charts/hubfleet/templates; exit 1; fi
	@echo "generated files are up to date"

.PHONY: fmt
fmt:
	gofmt -l -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## go vet, and gofmt must have nothing to change.
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	go vet ./...

# staticcheck exits 1 both for findings and for code it cannot load, so the
# findings (lines ending in their check, e.g. "(SA1019)") are counted apart
# from anything else it printed.
.PHONY: staticcheck
staticcheck: $(STATICCHECK) ## staticcheck at a pinned version, checks from staticcheck.conf; lists every finding.
	@if out=$$($(STATICCHECK) ./... 2>&1); then echo "staticcheck $(STATICCHECK_VERSION): no findings"; exit 0; fi; \
	n=$$(grep -cE '\([A-Z]+[0-9]+\)$$' <<<"$$out" || true); \
	if [ "$$n" = 0 ]; then echo "staticcheck $(STATICCHECK_VERSION) failed:"; echo "$$out"; exit 1; fi; \
	echo "staticcheck $(STATICCHECK_VERSION): $$n finding(s); fix each, or put '//lint:ignore CHECK reason' on the line above with a real reason."; \
	echo "Why a check fires: $(STATICCHECK) -explain CHECK"; \
	echo "$$out" | sed 's/^/  /'; \
	exit 1

.PHONY: build
build: ## Build bin/hubfleet (static).
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/hubfleet .

.PHONY: docker-build
docker-build: ## Build the image (IMAGE, default hubfleet:dev) from the Dockerfile with a Docker engine; without one use `make image`.
	@if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then \
	  echo "make docker-build needs a running Docker engine ('docker info' failed or docker is not installed)."; \
	  echo "Build the same image without one: make image (writes $(IMAGE_TAR); 'docker load -i' or 'ctr images import' it)"; exit 1; fi
	docker build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMAGE) .

##@ Test

.PHONY: envtest-assets
envtest-assets: ## Build (once, cached) kube-apiserver, etcd and kubectl from source.
	@hack/build-k8s.sh kube-apiserver etcd kubectl >/dev/null

.PHONY: test
test: verify-generated vet staticcheck envtest-assets ## Unit, envtest integration and short fuzz tests.
	KUBEBUILDER_ASSETS="$$(hack/build-k8s.sh kube-apiserver etcd kubectl 2>/dev/null | tail -1)" \
	  go test -count=1 ./... 2>&1 | tee /tmp/hubfleet-test.log
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh

.PHONY: fuzz
fuzz: ## Run every fuzz target for FUZZTIME each.
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh

##@ Run

.PHONY: run
run: ## Bring up a local Kubernetes, deploy the operator and samples, follow the log.
	hack/local-cluster.sh run

# Fragments from hack/mk (local cluster, e2e, images) add their own targets.
-include hack/mk/*.mk

.PHONY: help
help:
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ { printf "  %-20s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
