# End-to-end suite on the local Kubernetes (test/e2e, internal/e2e, docs/e2e.md).
# Included by the main Makefile. The tests take the local-cluster lock themselves
# (/tmp/hubfleet-cluster.lock), bring the cluster up and down, and build the image.

E2E_TIMEOUT ?= 40m
E2E_LOG ?= /tmp/hubfleet-e2e.log
# go test -run pattern, e.g. `make e2e E2E_RUN=TestStaticHub`.
E2E_RUN ?= .
# Packages: each brings the local cluster up and down once, even if -run matches
# none of its tests, so narrow this too when running one test.
E2E_PKGS ?= ./test/e2e/...

##@ End-to-end

.PHONY: e2e
e2e: ## End-to-end suite on the local Kubernetes (root): failover, static hub, licenses, isolation.
	HUBFLEET_E2E=1 go test -p 1 -count=1 -v -timeout $(E2E_TIMEOUT) -run '$(E2E_RUN)' $(E2E_PKGS) 2>&1 | tee $(E2E_LOG)
