# dualsync: `make run` serves the app locally, `make test` runs every test.
# Both install what is missing and start PostgreSQL and Azurite when needed.

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)

PRIMARY_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/dualsync_primary?sslmode=disable
FALLBACK_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/dualsync_fallback?sslmode=disable
export PRIMARY_DATABASE_URL FALLBACK_DATABASE_URL

APP := .run/app

.PHONY: run test services build migrate seed app package vet clean

services:
	./scripts/dev.sh all

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

run: seed app
	./bin/devhost -port 7071 $(APP)

test: services
	go vet ./...
	go test -count=1 -timeout 20m ./...

package:
	./scripts/package.sh dist/dualsync.zip

clean:
	rm -rf bin dist .run
