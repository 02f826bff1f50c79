#!/bin/bash
# Entrypoint of the erpprov PostgreSQL test image (built by build-image.sh).
#
# It mimics the behaviour of the official `postgres` image closely enough for
# the test-suite to treat both images alike:
#   POSTGRES_PASSWORD          required unless POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_USER              superuser name (default: postgres)
#   POSTGRES_DB                database created on first start (default: $POSTGRES_USER)
#   POSTGRES_HOST_AUTH_METHOD  auth method for TCP connections (default: scram-sha-256)
#   POSTGRES_INITDB_ARGS       extra initdb arguments (shell-quoted words)
#   PGDATA                     cluster directory (default: /var/lib/postgresql/data)
#   /docker-entrypoint-initdb.d/*.sql|*.sh  run once, after the first initdb
# Arguments: `postgres [opts...]`, or just `[opts...]` starting with `-`
# (e.g. `-c max_connections=200`), are given to the server; any other command
# is executed as-is, so `docker run IMAGE bash` still works.
set -Eeuo pipefail

: "${PGDATA:=/var/lib/postgresql/data}"
: "${POSTGRES_USER:=postgres}"
: "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
: "${POSTGRES_INITDB_ARGS:=}"
export PGDATA POSTGRES_USER POSTGRES_DB POSTGRES_HOST_AUTH_METHOD POSTGRES_INITDB_ARGS

log() { printf '%s entrypoint: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [ "$#" -eq 0 ] || [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi
if [ "$1" != 'postgres' ]; then
	exec "$@"
fi
shift # the server binary is named explicitly below; "$@" are now its options

run_dir=/var/run/postgresql

if [ "$(id -u)" = 0 ]; then
	# A bind-mounted PGDATA is usually created by dockerd as root:root, and
	# postgres refuses to run as root, so hand the directories over before
	# dropping privileges. Only touch files not already owned by postgres, so
	# that restarting on a large existing cluster stays fast.
	mkdir -p "$PGDATA" "$run_dir"
	chmod 0700 "$PGDATA" 2>/dev/null || :
	chmod 3777 "$run_dir" 2>/dev/null || :
	find "$PGDATA" "$run_dir" \! -user postgres -exec chown postgres:postgres '{}' +
	pg_home="$(getent passwd postgres | cut -d: -f6)"
	# setpriv execs in place (unlike su/runuser, which fork), so the server
	# ends up as PID 1 and receives docker's stop signal directly.
	exec setpriv --reuid=postgres --regid=postgres --init-groups \
		env HOME="$pg_home" USER=postgres LOGNAME=postgres \
		"${BASH_SOURCE[0]}" postgres "$@"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	# Checked before initdb so a misconfigured container fails with a clear
	# message instead of silently creating a cluster nobody can log into.
	if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != 'trust' ]; then
		die "database is uninitialized and superuser password is not specified.
  Set POSTGRES_PASSWORD to a non-empty value, or POSTGRES_HOST_AUTH_METHOD=trust
  to allow all connections without a password (never do that in production)."
	fi

	mkdir -p "$PGDATA" 2>/dev/null || :
	log "initializing database cluster in $PGDATA"
	# shellcheck disable=SC2016 # expanded later, by eval
	initdb_cmd='initdb --pgdata="$PGDATA" --username="$POSTGRES_USER" \
		--auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD"'
	if [ -n "${POSTGRES_PASSWORD:-}" ]; then
		# The password goes through a pipe, never through argv or a file,
		# so it cannot be read from `ps` or left behind on disk.
		# shellcheck disable=SC2016
		initdb_cmd+=' --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD")'
	fi
	# eval keeps the quoting users put into POSTGRES_INITDB_ARGS
	# (e.g. --locale='C.UTF-8'), as the official image does.
	eval "$initdb_cmd $POSTGRES_INITDB_ARGS" >/dev/null

	# Appended rather than edited in place: the last occurrence wins, and the
	# initdb defaults stay visible for anyone debugging the cluster.
	printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
	printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

	# A socket-only temporary server: nothing can connect over TCP before the
	# database and init scripts are in place, so "port answers" means "ready".
	pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p 5432" -w -t 60 start >/dev/null
	psql_cmd=(psql -X -q -v ON_ERROR_STOP=1 --no-password
		--host="$run_dir" --port=5432 --username="$POSTGRES_USER")
	if [ "$POSTGRES_DB" != 'postgres' ]; then
		"${psql_cmd[@]}" --dbname=postgres --set=db="$POSTGRES_DB" \
			<<<'CREATE DATABASE :"db";'
	fi
	for f in /docker-entrypoint-initdb.d/*; do
		[ -e "$f" ] || continue
		case "$f" in
		*.sh)
			log "running $f"
			# shellcheck disable=SC1090 # user-supplied init script
			if [ -x "$f" ]; then "$f"; else . "$f"; fi
			;;
		*.sql)
			log "running $f"
			"${psql_cmd[@]}" --dbname="$POSTGRES_DB" -f "$f"
			;;
		*) log "ignoring $f" ;;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w -t 60 stop >/dev/null
	log "initialization complete"
else
	log "existing cluster found in $PGDATA, skipping initialization"
fi

exec postgres -D "$PGDATA" "$@"
