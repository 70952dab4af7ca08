#!/usr/bin/env bash
# Local services for dualsync: installs what is missing and starts PostgreSQL
# and Azurite when they are not already reachable. Used by `make run` and
# `make test`; safe to run again (every step checks first).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
PGHOST_ADDR=127.0.0.1
PGPORT_NUM=5432

log() { echo "dev.sh: $*" >&2; }

deps() {
	if [ ! -x node_modules/.bin/azurite ]; then
		log "installing npm packages (azurite)"
		npm ci --no-audit --no-fund >/dev/null
	fi
	go mod download
}

pg_up() { pg_isready -q -h "$PGHOST_ADDR" -p "$PGPORT_NUM" 2>/dev/null; }

postgres() {
	if pg_up; then return; fi
	# The machine's own cluster, if it has one that is merely stopped.
	if command -v pg_ctlcluster >/dev/null && [ -n "$(ls /etc/postgresql 2>/dev/null)" ]; then
		log "starting the machine's PostgreSQL cluster"
		pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
		for _ in $(seq 50); do pg_up && return; sleep 0.2; done
	fi
	# Otherwise a project-local cluster from the machine's binaries. initdb
	# refuses to run as root, so the cluster belongs to the postgres user.
	bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
	[ -n "$bindir" ] || { log "no PostgreSQL binaries found (apt-get install postgresql)"; exit 1; }
	data="$root/.pgdata"
	as=()
	if [ "$(id -u)" = 0 ]; then
		id postgres >/dev/null 2>&1 || useradd --system --home-dir "$data" postgres
		as=(runuser -u postgres --)
	fi
	if [ ! -f "$data/PG_VERSION" ]; then
		log "creating a project-local PostgreSQL cluster in $data"
		mkdir -p "$data" && chmod 700 "$data"
		[ "$(id -u)" = 0 ] && chown postgres "$data"
		"${as[@]}" "$bindir/initdb" -D "$data" -U postgres --auth=trust >/dev/null
	fi
	log "starting the project-local PostgreSQL on $PGHOST_ADDR:$PGPORT_NUM"
	"${as[@]}" "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w \
		-o "-c listen_addresses=$PGHOST_ADDR -p $PGPORT_NUM -k /tmp" start >/dev/null
	pg_up || { log "PostgreSQL did not start; see $data/server.log"; exit 1; }
}

databases() {
	for db in dualsync_primary dualsync_fallback; do
		if ! psql -h "$PGHOST_ADDR" -p "$PGPORT_NUM" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" postgres | grep -q 1; then
			log "creating database $db"
			psql -h "$PGHOST_ADDR" -p "$PGPORT_NUM" -U postgres -qc "CREATE DATABASE $db" postgres
		fi
	done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

azurite() {
	if port_open 10001 && port_open 10002; then return; fi
	log "starting Azurite on 127.0.0.1:10000-10002 (workspace .azurite/)"
	mkdir -p .azurite
	nohup node_modules/.bin/azurite --silent --disableTelemetry --location .azurite \
		--debug .azurite/debug.log >.azurite/azurite.log 2>&1 &
	for _ in $(seq 100); do
		port_open 10001 && port_open 10002 && return
		sleep 0.2
	done
	log "Azurite did not start; see .azurite/azurite.log"
	exit 1
}

# chromium is the headless browser of the dashboard's browser test (make
# browser-test): Debian's package, never a browser downloaded by a tool.
chromium() {
	if [ -x /usr/bin/chromium ]; then return; fi
	if [ "$(id -u)" != 0 ]; then
		log "chromium is missing; as root: apt-get install chromium"
		exit 1
	fi
	log "installing chromium (apt-get)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends chromium >/dev/null
	[ -x /usr/bin/chromium ] || { log "apt-get installed no /usr/bin/chromium"; exit 1; }
}

case "${1:-all}" in
deps) deps ;;
postgres) postgres; databases ;;
azurite) azurite ;;
chromium) chromium ;;
all) deps; postgres; databases; azurite ;;
*) log "usage: dev.sh [deps|postgres|azurite|chromium|all]"; exit 2 ;;
esac
