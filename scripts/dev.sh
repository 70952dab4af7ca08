#!/usr/bin/env bash
# Local services for dualsync: installs what is missing and starts PostgreSQL
# and Azurite when they are not already reachable. Used by `make run` and
# `make test`; safe to run again (every step checks first). What it starts is
# recorded in .run/services; `dev.sh stop` (make stop) stops exactly that.
#
# Overrides (the script's test uses them to stay off the shared services):
#   DEV_PG_PORT (5432), DEV_PGDATA (.pgdata), DEV_AZURITE_PORTS ("10000,10001,10002"),
#   DEV_AZURITE_DIR (.azurite), DEV_STATE_DIR (.run); DEV_AZURITE_DEBUG=1 makes
#   Azurite log every request to $DEV_AZURITE_DIR/debug.log (it grows by
#   megabytes a minute under load and slows Azurite, so it is off by default)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
PGHOST_ADDR=127.0.0.1
PGPORT_NUM="${DEV_PG_PORT:-5432}"
PGDATA_DIR="${DEV_PGDATA:-$root/.pgdata}"
IFS=, read -r AZ_BLOB AZ_QUEUE AZ_TABLE <<<"${DEV_AZURITE_PORTS:-10000,10001,10002}"
AZ_DIR="${DEV_AZURITE_DIR:-$root/.azurite}"
STATE_DIR="${DEV_STATE_DIR:-$root/.run}"
STATE="$STATE_DIR/services"

log() { echo "dev.sh: $*" >&2; }

# record KIND ARGS...: remember that this script started KIND (one line per
# kind, replacing an older line of a service that has since gone away).
record() {
	mkdir -p "$STATE_DIR"
	touch "$STATE"
	grep -v "^$1 " "$STATE" >"$STATE.tmp" || true
	echo "$*" >>"$STATE.tmp"
	mv "$STATE.tmp" "$STATE"
	log "$1 keeps running after make run/test end (Ctrl-C stops devhost only); make stop stops it"
}

# pid_is PID WORD: PID runs and its command line mentions WORD (so a reused
# pid is never signalled).
pid_is() { [ -r "/proc/$1/cmdline" ] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$2"; }

as_postgres() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# stop_services stops what the state file lists, i.e. what this script
# started, and nothing else: a service that was already running when it
# looked (the machine's cluster, another project's Azurite) is never listed.
stop_services() {
	if [ ! -s "$STATE" ]; then
		log "nothing to stop: $STATE lists nothing this script started"
		rm -f "$STATE"
		return
	fi
	while read -r kind a b; do
		case "$kind" in
		azurite)
			if pid_is "$a" azurite && pid_is "$a" "$b"; then
				log "stopping Azurite (pid $a, workspace $b)"
				kill -TERM "$a" 2>/dev/null || true
				for _ in $(seq 50); do pid_is "$a" azurite || break; sleep 0.2; done
				if pid_is "$a" azurite; then kill -KILL "$a" 2>/dev/null || true; fi
			else
				log "Azurite pid $a is gone already"
			fi
			;;
		postgres-local)
			if as_postgres "$a/pg_ctl" -D "$b" status >/dev/null 2>&1; then
				log "stopping the project-local PostgreSQL ($b)"
				as_postgres "$a/pg_ctl" -D "$b" -m fast -w stop >/dev/null
			else
				log "the project-local PostgreSQL ($b) is stopped already"
			fi
			;;
		postgres-cluster)
			log "stopping the machine's PostgreSQL cluster $a/$b (this script started it)"
			pg_ctlcluster --skip-systemctl-redirect "$a" "$b" stop || true
			;;
		*) log "ignoring unknown line in $STATE: $kind $a $b" ;;
		esac
	done <"$STATE"
	rm -f "$STATE"
}

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
	# The machine's own cluster on this port, if it is merely stopped.
	if command -v pg_lsclusters >/dev/null; then
		read -r ver name _ < <(pg_lsclusters -h 2>/dev/null | awk -v p="$PGPORT_NUM" '$3 == p && $4 == "down"' | head -1) || true
		if [ -n "${ver:-}" ]; then
			log "starting the machine's PostgreSQL cluster $ver/$name"
			if pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start; then
				record postgres-cluster "$ver" "$name"
			fi
			for _ in $(seq 50); do pg_up && return; sleep 0.2; done
		fi
	fi
	# Otherwise a project-local cluster from the machine's binaries. initdb
	# refuses to run as root, so the cluster belongs to the postgres user.
	bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
	[ -n "$bindir" ] || { log "no PostgreSQL binaries found (apt-get install postgresql)"; exit 1; }
	data="$PGDATA_DIR"
	if [ "$(id -u)" = 0 ]; then
		id postgres >/dev/null 2>&1 || useradd --system --home-dir "$data" postgres
	fi
	if [ ! -f "$data/PG_VERSION" ]; then
		log "creating a project-local PostgreSQL cluster in $data"
		mkdir -p "$data" && chmod 700 "$data"
		[ "$(id -u)" = 0 ] && chown postgres "$data"
		as_postgres "$bindir/initdb" -D "$data" -U postgres --auth=trust >/dev/null
	fi
	log "starting the project-local PostgreSQL on $PGHOST_ADDR:$PGPORT_NUM"
	as_postgres "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -w \
		-o "-c listen_addresses=$PGHOST_ADDR -p $PGPORT_NUM -k /tmp" start >/dev/null
	record postgres-local "$bindir" "$data"
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
	if port_open "$AZ_QUEUE" && port_open "$AZ_TABLE"; then return; fi
	log "starting Azurite on 127.0.0.1:$AZ_BLOB-$AZ_TABLE (workspace $AZ_DIR)"
	mkdir -p "$AZ_DIR"
	# In the background, so that it outlives this script and `make run`;
	# `dev.sh stop` stops it by the pid recorded ($! is node's: exec keeps it).
	local debug=()
	if [ "${DEV_AZURITE_DEBUG:-}" = 1 ]; then debug=(--debug "$AZ_DIR/debug.log"); fi
	nohup node_modules/.bin/azurite --silent --disableTelemetry --location "$AZ_DIR" \
		--blobPort "$AZ_BLOB" --queuePort "$AZ_QUEUE" --tablePort "$AZ_TABLE" \
		"${debug[@]}" >"$AZ_DIR/azurite.log" 2>&1 &
	record azurite "$!" "$AZ_DIR"
	for _ in $(seq 100); do
		port_open "$AZ_QUEUE" && port_open "$AZ_TABLE" && return
		sleep 0.2
	done
	log "Azurite did not start; see $AZ_DIR/azurite.log"
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
stop) stop_services ;;
*) log "usage: dev.sh [deps|postgres|azurite|chromium|all|stop]"; exit 2 ;;
esac
