# gatehouse: `make run` starts the all-in-one demo, `make test` runs every test.
SHELL := /bin/bash
GO ?= go
export PATH := $(CURDIR)/.tools:/usr/local/go/bin:$(PATH)

BUF_VERSION := v1.75.0
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.5.1
# oauth2-proxy is make bench's peer (not a dependency): built from its Go
# module at a pinned version, cached in .tools under its version.
OAUTH2_PROXY_VERSION := v7.15.6
OAUTH2_PROXY := .tools/oauth2-proxy-$(OAUTH2_PROXY_VERSION)
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# GOTAGS: vtprotobuf compiles go-control-plane's generated marshalling code,
# which pkg/grpcutil's codec uses for every ext_authz Check (see codec.go);
# without it gatehouse works the same, only Checks cost more CPU.
GOTAGS := vtprotobuf
# KUBE_ASSETS: etcd and kube-apiserver for the Kubernetes tests, built by
# `make kube-assets` outside the clone so that every later run reuses them.
# The tests skip, saying why, until the folder holds a finished build (.stamp).
KUBE_ASSETS ?= $(HOME)/.cache/gatehouse-kube
export KUBE_ASSETS

.PHONY: all build run test deps test-go test-kube kube-assets chaos lint proto proto-check tools bench fuzz clean compose-docker

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -tags $(GOTAGS) -ldflags "$(LDFLAGS)" -o bin/gatehouse ./cmd/gatehouse

## run: gatehouse all-in-one with the dev identity provider and a demo upstream.
run: build
	deployments/dev/run.sh

## test: every Go test (race detector on), the chaos suite, then the proto
## freshness check and lint. It first installs the Debian packages the tests
## use when missing (.ci/install-deps).
test: deps test-go chaos proto-check lint

deps:
	.ci/install-deps

test-go:
	$(GO) test -race -tags $(GOTAGS) -count=1 -timeout 15m ./...

## compose-docker: docker-compose.yaml on a real Docker engine, no registry needed
## (root): a dockerd of its own, the compose plugin, every image built locally,
## then TestDockerCompose; see deployments/compose/ci.sh.
compose-docker:
	deployments/compose/ci.sh

## kube-assets: build etcd, kube-apiserver (with loopback endpoints allowed)
## and kubectl from the Go module proxy into KUBE_ASSETS. About 20 minutes
## and 2.4 GB of memory cold on 2 cores; seconds when up to date.
kube-assets:
	tools/kube/build.sh $(KUBE_ASSETS)

## test-kube: the tests that run a real Kubernetes control plane (the Ingress
## controller's end-to-end test); they skip when KUBE_ASSETS is not built.
test-kube:
	$(GO) test -race -tags $(GOTAGS) -count=1 -timeout 10m -run '^TestKube(Ingress|Controller)' -v ./cmd/gatehouse ./pkg/ingress ./deployments

## chaos: the chaos suite (cmd/gatehouse/chaos_test.go, build tag chaos): the
## split deployment under a modest load while processes, Redis and the IdP
## fail; zero failed requests and zero lost sessions per scenario. A couple
## of minutes; no race detector (the processes under test are plain builds).
chaos:
	$(GO) test -tags chaos,$(GOTAGS) -count=1 -timeout 10m -run '^TestChaos$$' -v ./cmd/gatehouse

## tools: the protobuf generators at pinned versions, built from Go modules.
tools: .tools/buf .tools/protoc-gen-go .tools/protoc-gen-go-grpc
.tools/buf:
	GOBIN=$(CURDIR)/.tools $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
.tools/protoc-gen-go:
	GOBIN=$(CURDIR)/.tools $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
.tools/protoc-gen-go-grpc:
	GOBIN=$(CURDIR)/.tools $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)

## proto: regenerate the committed Go code from proto/.
proto: tools
	buf generate

## proto-check: fail when the committed generated code is not what `make proto` makes.
proto-check: tools
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	buf generate -o $$tmp && \
	for f in $$(cd $$tmp && find . -name '*.go'); do \
	  cmp -s $$tmp/$$f $$f || { echo "generated code out of date: $$f (run make proto)"; exit 1; }; \
	done && echo "proto: generated code up to date"

lint: tools
	buf lint
	$(GO) vet -tags $(GOTAGS) ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## fuzz: every Fuzz target of every package, FUZZTIME each (the committed
## seeds of each already run in `make test`). New crashers land in the
## package's testdata/fuzz/ and become seeds once committed.
FUZZTIME ?= 30s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$target ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

$(OAUTH2_PROXY):
	@mkdir -p .tools
	tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	GOBIN=$$tmp CGO_ENABLED=0 $(GO) install github.com/oauth2-proxy/oauth2-proxy/v7@$(OAUTH2_PROXY_VERSION) && \
	mv $$tmp/oauth2-proxy $@

## bench: gatehouse against a bare Go reverse proxy and oauth2-proxy (cookie
## and Redis session stores), interleaved; see cmd/gatehouse-bench.
bench: build $(OAUTH2_PROXY)
	$(GO) build -o bin/gatehouse-bench ./cmd/gatehouse-bench && bin/gatehouse-bench -gatehouse bin/gatehouse -oauth2-proxy $(OAUTH2_PROXY) -out bin/bench/results.json $(BENCH_FLAGS)

clean:
	rm -rf bin
