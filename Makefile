# dualsync: `make run` serves the app locally, `make test` runs every test
# but the browser test, `make browser-test` runs that one (the dashboard in
# headless Chromium; .ci/run runs both). All install what is missing and
# start PostgreSQL and Azurite when needed.

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)

PRIMARY_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/dualsync_primary?sslmode=disable
FALLBACK_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/dualsync_fallback?sslmode=disable
export PRIMARY_DATABASE_URL FALLBACK_DATABASE_URL

APP := .run/app

.PHONY: run test browser-test screenshot services stop build migrate seed app package vet clean bench chaos fuzz

services:
	./scripts/dev.sh all

# Stops what `make run` / `make test` started (Azurite, a project-local or
# stopped machine PostgreSQL), as recorded in .run/services; nothing that was
# already running. Ctrl-C on `make run` stops devhost only.
stop:
	./scripts/dev.sh stop

build:
	go build -o bin/handler ./handler
	go build -o bin/devhost ./cmd/devhost

migrate: services build
	./bin/handler migrate

seed: migrate
	./bin/handler seed

# The app laid out as the deploy package lays it out (function folders beside
# host.json), so every local run also checks the package's layout.
app: build
	rm -rf $(APP) && mkdir -p $(APP)
	cp host.json local.settings.json bin/handler $(APP)/
	cp -r functions/* $(APP)/

# DEVHOST_FLAGS='-keys .run/keys.json' enforces authLevel as Azure does (default: no keys, as Core Tools).
run: seed app
	./bin/devhost -port 7071 $(DEVHOST_FLAGS) $(APP)

test: services
	go vet ./...
	go test -count=1 -timeout 20m ./...

# The dashboard in Debian's headless Chromium (dev.sh installs it when
# missing, which needs root and apt), against the real handler under devhost.
# Its own target so that `make test` needs no browser. The screenshot lands
# in .run/dashboard.png; `make screenshot` refreshes docs/dashboard.png.
BROWSER_TEST := go test -tags browser -count=1 -timeout 10m -run TestDashboardInBrowser ./e2e

browser-test: services
	./scripts/dev.sh chromium
	go vet -tags browser ./e2e
	$(BROWSER_TEST)

screenshot: services
	./scripts/dev.sh chromium
	UPDATE_SCREENSHOT=1 $(BROWSER_TEST)

# Timings stay out of `make test`; e.g. make bench BENCH_FLAGS='-duration 5s'
bench: services build
	go run ./cmd/bench -out BENCHMARKS.md $(BENCH_FLAGS)

# Fault drill: writers through the API while the primary, the fallback and
# Azurite go down in turn; ends with "rows differing: N" (N must be 0).
chaos: services
	go test -tags chaos -count=1 -timeout 15m -run TestChaos ./e2e -v $(CHAOS_FLAGS) | grep -v '^\s*\['

# Each fuzz target for a minute.
fuzz:
	go test -run='^$$' -fuzz=FuzzDecodeProduct -fuzztime=60s ./internal/domain
	go test -run='^$$' -fuzz=FuzzDecodeUser -fuzztime=60s ./internal/domain
	go test -run='^$$' -fuzz=FuzzDecodeBind -fuzztime=60s ./internal/invoke
	go test -run='^$$' -fuzz=FuzzJSONEncoding -fuzztime=60s ./internal/domain

package:
	./scripts/package.sh dist/dualsync.zip

# Keeps .run/services, so `make stop` still knows what to stop.
clean:
	rm -rf bin dist $(APP)
