# iotledger — everything a newcomer needs is installed or built by these targets.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

GO            ?= go
BIN           := $(CURDIR)/bin
GOLANGCI_VER  := v2.15.0
GOLANGCI_LINT := $(BIN)/golangci-lint-$(GOLANGCI_VER)
TEST_TIMEOUT  ?= 45m
# Integration test packages each start their own Fabric network; two at a
# time keeps a 2-core machine responsive.
TEST_PARALLEL ?= 2

.PHONY: all build dist browser test test-unit lint fmt vet demo bench network-up network-down network-status clean console-assets

all: build

## build: compile the CLI and the chaincode server into ./bin
build:
	$(GO) build -o $(BIN)/ ./cmd/...

## dist: release archives into ./dist — every command of cmd/, static (CGO_ENABLED=0, -trimpath), version and commit stamped, for linux/amd64 and linux/arm64, with README and SHA256SUMS (VERSION=v1.2.0 to name one; PLATFORMS=linux/amd64 for fewer)
dist:
	$(GO) run ./tools/dist -out $(CURDIR)/dist $(if $(VERSION),-version $(VERSION),) $(if $(PLATFORMS),-platforms $(PLATFORMS),)

## test: every test — unit, fuzz seed corpora, and integration tests on real Fabric networks
test: browser
	$(GO) vet ./...
	$(GO) test -count=1 -p $(TEST_PARALLEL) -timeout $(TEST_TIMEOUT) ./...

## browser: Debian's chromium for the console's browser tests, installed when missing (as root)
browser:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || [ -n "$${IOTLEDGER_CHROMIUM:-}" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium package for the browser tests"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	else echo "no chromium: the browser tests will say how to install it (apt-get install chromium, or IOTLEDGER_CHROMIUM)"; fi

## test-unit: only the tests that need no network
test-unit:
	$(GO) test -count=1 -short ./chaincode/... ./client/... ./cmd/...

## lint: gofmt -s, go vet and golangci-lint (installed into ./bin on first use)
lint: $(GOLANGCI_LINT)
	@out=$$(gofmt -s -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt -s needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_VER)
	mv $(BIN)/golangci-lint $(GOLANGCI_LINT)

fmt:
	gofmt -s -w $$(git ls-files '*.go')

## demo: bring a network up, run hubs and simulated devices of two orgs and Org1's web console, show what the ledger does, tear down (KEEP=1 keeps the network and the console; HOSTS=1 runs it in hosts mode)
demo:
	$(GO) run ./cmd/iotledger demo $(if $(KEEP),--keep,) $(if $(HOSTS),--hosts,) $(if $(CONSOLE),--console $(CONSOLE),)

## bench: iotledger against raw Fabric, side by side (QUICK=1 for about a minute)
bench:
	$(GO) run ./cmd/iotledger bench $(if $(QUICK),--quick,)

## network-up / network-down / network-status: a local Fabric v2.5 network without Docker
network-up:
	$(GO) run ./cmd/iotledger network up

network-down:
	$(GO) run ./cmd/iotledger network down

network-status:
	$(GO) run ./cmd/iotledger network status

## console-assets: install the console's npm packages (pinned by console/web/package-lock.json) and copy their files into the embedded assets
CONSOLE_WEB := console/web
console-assets:
	cd $(CONSOLE_WEB) && npm ci --ignore-scripts --no-audit --no-fund
	cp $(CONSOLE_WEB)/node_modules/uplot/dist/uPlot.iife.min.js $(CONSOLE_WEB)/node_modules/uplot/dist/uPlot.min.css $(CONSOLE_WEB)/static/vendor/
	cp $(CONSOLE_WEB)/node_modules/uplot/LICENSE $(CONSOLE_WEB)/static/vendor/uPlot.LICENSE
	cp $(CONSOLE_WEB)/node_modules/protobufjs/dist/protobuf.min.js $(CONSOLE_WEB)/static/vendor/protobuf.min.js
	cp $(CONSOLE_WEB)/node_modules/protobufjs/LICENSE $(CONSOLE_WEB)/static/vendor/protobuf.LICENSE
	cp $(CONSOLE_WEB)/node_modules/long/umd/index.js $(CONSOLE_WEB)/static/vendor/long.js
	cp $(CONSOLE_WEB)/node_modules/long/LICENSE $(CONSOLE_WEB)/static/vendor/long.LICENSE

clean:
	rm -rf $(BIN) $(CURDIR)/dist
