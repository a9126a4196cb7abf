# Local single-node Kubernetes (hack/local-cluster.sh, docs/local-cluster.md) and the
# daemonless image builder (hack/image). Included by the main Makefile; `make run`
# there calls `hack/local-cluster.sh run`.

# The main Makefile sets these; the defaults keep this fragment usable on its own.
LOCALBIN ?= $(CURDIR)/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.1.0-dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS ?= -s -w -X github.com/hubfleet/hubfleet/pkg/version.Version=$(VERSION) -X github.com/hubfleet/hubfleet/pkg/version.Commit=$(COMMIT)

IMAGE ?= hubfleet:dev
IMAGE_TAR ?= $(CURDIR)/dist/hubfleet-image.tar
SMOKE_TIMEOUT ?= 15m

##@ Local cluster

.PHONY: cluster-up
cluster-up: ## Start the local single-node Kubernetes (KUBECONFIG: /tmp/hubfleet-cluster/kubeconfig).
	hack/local-cluster.sh up

.PHONY: cluster-down
cluster-down: ## Stop the local cluster and remove everything it added.
	hack/local-cluster.sh down

.PHONY: cluster-status
cluster-status: ## Processes, memory and node of the local cluster.
	hack/local-cluster.sh status

.PHONY: image
image: ## Build the hubfleet image tarball (dist/hubfleet-image.tar) without a Docker daemon.
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/hubfleet .
	go run ./hack/image -binary $(LOCALBIN)/hubfleet -out $(IMAGE_TAR) -name $(IMAGE) \
	  -label org.opencontainers.image.version=$(VERSION) -label org.opencontainers.image.revision=$(COMMIT)

.PHONY: image-load
image-load: image ## Build the image and import it into the running local cluster.
	hack/local-cluster.sh load $(IMAGE_TAR)

.PHONY: smoke
smoke: ## Smoke test: cluster up from clean, pod Ready, Service, StatefulSet recreate, clean down.
	HUBFLEET_SMOKE=1 go test -count=1 -v -timeout $(SMOKE_TIMEOUT) ./test/smoke/ 2>&1 | tee /tmp/hubfleet-smoke.log
