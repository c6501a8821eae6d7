#!/usr/bin/env bash
# Runs a command (the spec suite) with throwaway PostgreSQL and MariaDB
# servers on loopback ports, exported as ORMED_TEST_POSTGRES / ORMED_TEST_MYSQL,
# plus a PgBouncer in transaction mode in front of that PostgreSQL
# (ORMED_TEST_PGBOUNCER) and a streaming replica of each server
# (ORMED_TEST_POSTGRES_REPLICA / ORMED_TEST_MYSQL_REPLICA; the folder their
# scripts control them from is ORMED_TEST_REPLICA_DIR, for the specs that
# stop and restart a replica), and stops them afterwards whatever happened. A URL
# already set in the environment selects an existing server instead. With CI=true a server that
# cannot start fails the run; otherwise the specs of that driver fail loudly.
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/ormed-test.XXXXXX)
chmod 755 "$dir"
started_pg=""
started_my=""
started_pgb=""

cleanup() {
  [ -n "$started_pgb" ] && "$here/pgbouncer.sh" stop "$dir" >/dev/null 2>&1
  [ -n "$started_pg" ] && "$here/pg-server.sh" stop "$dir" >/dev/null 2>&1
  [ -n "$started_my" ] && "$here/mysql-server.sh" stop "$dir" >/dev/null 2>&1
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

fail_start() {
  echo "with-servers: could not start $1 (see above)" >&2
  if [ "${CI:-}" = "true" ]; then exit 1; fi
}

want() { case ",${ORMED_TEST_DRIVERS:-sqlite,postgres,mysql}," in *",$1,"*) return 0;; esac; return 1; }

if want postgres && [ -z "${ORMED_TEST_POSTGRES:-}" ]; then
  if url=$("$here/pg-server.sh" start "$dir"); then
    export ORMED_TEST_POSTGRES="$url"; started_pg=1
  else fail_start PostgreSQL; fi
fi
if want postgres && [ -n "${ORMED_TEST_POSTGRES:-}" ] && [ -z "${ORMED_TEST_PGBOUNCER:-}" ]; then
  if url=$("$here/pgbouncer.sh" start "$dir" "$ORMED_TEST_POSTGRES"); then
    export ORMED_TEST_PGBOUNCER="$url"; started_pgb=1
  else fail_start PgBouncer; fi
fi
if want mysql && [ -z "${ORMED_TEST_MYSQL:-}" ]; then
  if url=$("$here/mysql-server.sh" start "$dir"); then
    export ORMED_TEST_MYSQL="$url"; started_my=1
  else fail_start MariaDB; fi
fi
if [ -n "$started_pg" ] && [ -z "${ORMED_TEST_POSTGRES_REPLICA:-}" ]; then
  if url=$("$here/pg-server.sh" replica-start "$dir"); then
    export ORMED_TEST_POSTGRES_REPLICA="$url"
  else fail_start "the PostgreSQL replica"; fi
fi
if [ -n "$started_my" ] && [ -z "${ORMED_TEST_MYSQL_REPLICA:-}" ]; then
  if url=$("$here/mysql-server.sh" replica-start "$dir"); then
    export ORMED_TEST_MYSQL_REPLICA="$url"
  else fail_start "the MariaDB replica"; fi
fi
[ -n "$started_pg$started_my" ] && export ORMED_TEST_REPLICA_DIR="$dir"
export ORMED_TEST_TMP="$dir"
# make asan preloads the sanitizer runtimes into the spec run only, never
# into the servers.
if [ -n "${ORMED_PRELOAD:-}" ]; then
  LD_PRELOAD="$ORMED_PRELOAD" "$@"
else
  "$@"
fi
