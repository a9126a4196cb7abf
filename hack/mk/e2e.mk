# End-to-end suite on the local Kubernetes (test/e2e, internal/e2e, docs/e2e.md).
# Included by the main Makefile. internal/e2e/suite takes the local-cluster lock
# (/tmp/hubfleet-cluster.lock), brings the cluster up and builds the image once,
# runs every package against it one at a time (go test -p 1), and brings it down.

E2E_TIMEOUT ?= 40m
E2E_LOG ?= /tmp/hubfleet-e2e.log
# go test -run pattern, e.g. `make e2e E2E_RUN=TestStaticHub`.
E2E_RUN ?= .
# Packages. A package none of whose tests match E2E_RUN costs a second or two
# (the shared cluster's reset), not a cluster of its own.
E2E_PKGS ?= ./test/e2e/...

##@ End-to-end

.PHONY: e2e
e2e: ## End-to-end suite on the local Kubernetes (root): failover, static hub, licenses, isolation.
	go run ./internal/e2e/suite -count=1 -v -timeout $(E2E_TIMEOUT) -run '$(E2E_RUN)' $(E2E_PKGS) 2>&1 | tee $(E2E_LOG)
