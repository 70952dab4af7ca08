# dualsync: `make run` serves the app locally, `make test` runs every test
# but the browser test, `make browser-test` runs that one (the dashboard in
# headless Chromium; .ci/run runs both). All install what is missing and
# start PostgreSQL and Azurite when needed.

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)

# Settings come from local.settings.json (the database URLs too): the
# Makefile sets none, so an edit there takes effect. A variable set in the
# environment wins over the file, and devhost and the handler name each one
# that does ("Skipping 'X' from local.settings.json ...").

# Ports: make run PORT=8080 AZURITE_PORTS=20000,20001,20002
PORT ?= 7071
AZURITE_PORTS ?= 10000,10001,10002
DEV_AZURITE_PORTS ?= $(AZURITE_PORTS)
# Tests look for the running Azurite there (internal/testenv).
DUALSYNC_AZURITE_PORTS ?= $(AZURITE_PORTS)
export DEV_AZURITE_PORTS DUALSYNC_AZURITE_PORTS
comma := ,
# UseDevelopmentStorage=true means Azurite's default ports; on others the
# storage settings must name them.
ifneq ($(AZURITE_PORTS),10000,10001,10002)
AZURITE_CONN = DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:$(word 1,$(subst $(comma), ,$(AZURITE_PORTS)))/devstoreaccount1;QueueEndpoint=http://127.0.0.1:$(word 2,$(subst $(comma), ,$(AZURITE_PORTS)))/devstoreaccount1;TableEndpoint=http://127.0.0.1:$(word 3,$(subst $(comma), ,$(AZURITE_PORTS)))/devstoreaccount1;
RUN_ENV = SyncStorage='$(AZURITE_CONN)' AzureWebJobsStorage='$(AZURITE_CONN)'
endif

APP := .run/app

.PHONY: help run test browser-test screenshot services stop build migrate seed app package vet clean bench chaos restore-drill fuzz explore

help: ## this list
	@echo 'make TARGET [PORT=7071] [AZURITE_PORTS=10000,10001,10002]'
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'
	@echo 'Settings: local.settings.json (the environment wins). Ports: devhost on PORT, Azurite on AZURITE_PORTS (blob,queue,table).'

services: ## install what is missing; start PostgreSQL and Azurite unless they answer
	./scripts/dev.sh all

# Stops what `make run` / `make test` started (Azurite, a project-local or
# stopped machine PostgreSQL), as recorded in .run/services; nothing that was
# already running. Ctrl-C on `make run` stops devhost only.
stop: ## stop what make run/test started (never a service that was already running)
	./scripts/dev.sh stop

build: ## bin/handler and bin/devhost
	go build -o bin/handler ./handler
	go build -o bin/devhost ./cmd/devhost

migrate: services build ## apply migrations to both databases (URLs from local.settings.json)
	./bin/handler migrate

seed: migrate ## migrate, then load the sample data where absent
	./bin/handler seed

# The app laid out as the deploy package lays it out (function folders beside
# host.json), so every local run also checks the package's layout.
app: build ## lay the app out as the deploy package does, in .run/app
	rm -rf $(APP) && mkdir -p $(APP)
	cp host.json local.settings.json bin/handler $(APP)/
	cp -r functions/* $(APP)/

# DEVHOST_FLAGS='-keys .run/keys.json' enforces authLevel as Azure does (default: no keys, as Core Tools).
run: seed app ## serve http://localhost:PORT/api/... under devhost (DEVHOST_FLAGS='-keys .run/keys.json' enforces keys)
	$(RUN_ENV) ./bin/devhost -port $(PORT) $(DEVHOST_FLAGS) $(APP)

test: services ## go vet and every test but the browser test
	go vet ./...
	go test -count=1 -timeout 20m ./...

# The dashboard in Debian's headless Chromium (dev.sh installs it when
# missing, which needs root and apt), against the real handler under devhost.
# Its own target so that `make test` needs no browser. The screenshot lands
# in .run/dashboard.png; `make screenshot` refreshes docs/dashboard.png.
BROWSER_TEST := go test -tags browser -count=1 -timeout 15m -run '^TestDashboard' ./e2e

browser-test: services ## the dashboard in headless Chromium
	./scripts/dev.sh chromium
	go vet -tags browser ./e2e
	$(BROWSER_TEST)

screenshot: services ## refresh docs/dashboard.png
	./scripts/dev.sh chromium
	UPDATE_SCREENSHOT=1 $(BROWSER_TEST)

# Timings stay out of `make test`; e.g. make bench BENCH_FLAGS='-duration 5s'
bench: services build ## benchmarks into BENCHMARKS.md (BENCH_FLAGS=...)
	go run ./cmd/bench -out BENCHMARKS.md $(BENCH_FLAGS)

# Fault drills: writers through the API while the primary, the fallback and
# Azurite go down in turn; then storage faults (throttling, lost answers,
# 500 after success, resets, latency) through a proxy in front of Azurite
# during a full run, then, while PATCHes go on, retry-failed, diff and
# verify runs and a retention pass (devhost's queue lease is 20 s there:
# -storagechaos.lease). Each ends with "rows differing: N" (N must be 0).
chaos: services ## fault drills; end with rows differing: 0
	go test -tags chaos -count=1 -timeout 30m -run '^Test(Storage)?Chaos$$' ./e2e -v $(CHAOS_FLAGS) | grep -v '^\s*\['

# Restore drill: the same writers while one database is restored from a
# backup taken mid-load and the other rebuilt empty; ends with
# "violations: 0" and "rows differing: 0".
restore-drill: services ## restore drill; ends with violations: 0 and rows differing: 0
	go test -tags chaos -count=1 -timeout 15m -run TestRestoreChaos ./e2e -v $(CHAOS_FLAGS) | grep -v '^\s*\['

# History explorer (internal/explore): random histories over in-memory
# databases and the real sync engine, checked against README's guarantees;
# needs no services. EXPLORE_FLAGS='-seed 7 -stop 1' and so on.
EXPLORE_N ?= 100000
explore: ## random histories checked against the guarantees; ends with violations: 0
	go run ./cmd/explore -n $(EXPLORE_N) $(EXPLORE_FLAGS)

# Each fuzz target for a minute.
fuzz: ## each fuzz target for a minute
	go test -run='^$$' -fuzz=FuzzDecodeProduct -fuzztime=60s ./internal/domain
	go test -run='^$$' -fuzz=FuzzDecodeUser -fuzztime=60s ./internal/domain
	go test -run='^$$' -fuzz=FuzzDecodeBind -fuzztime=60s ./internal/invoke
	go test -run='^$$' -fuzz=FuzzJSONEncoding -fuzztime=60s ./internal/domain

package: ## dist/dualsync.zip, the deploy package
	./scripts/package.sh dist/dualsync.zip

# Keeps .run/services, so `make stop` still knows what to stop.
clean: ## remove bin, dist and .run/app
	rm -rf bin dist $(APP)
