#!/usr/bin/env bash
# scripts/pgbouncer.sh: starts and stops a throwaway PgBouncer in transaction
# pooling mode in front of the test PostgreSQL (scripts/pg-server.sh), so the
# specs can check that ormed works behind a pooler that hands one server
# connection to many clients.
#
#   scripts/pgbouncer.sh start DIR PG_URL
#       PG_URL is the server's postgres://user:pw@127.0.0.1:PORT/db. Writes
#       DIR/pgb/pgbouncer.ini (pool_mode = transaction, default_pool_size = 2:
#       two server connections shared by every client), the user list, the
#       log DIR/pgb/pgbouncer.log and the pid file; starts PgBouncer on a free
#       loopback port (as the postgres user when run as root: PgBouncer
#       refuses root), checks a login through it, then prints exactly one
#       line on stdout: postgres://user:pw@127.0.0.1:PGB_PORT/db
#       Everything else goes to stderr. Exits non-zero (with the log's tail)
#       on failure, and then leaves no PgBouncer running.
#   scripts/pgbouncer.sh stop DIR
#       Stops the PgBouncer started from DIR and waits until it is gone.
#       Idempotent: exits 0 when nothing runs.
#
# PGBOUNCER may name the binary (default: pgbouncer on PATH or /usr/sbin).
set -u
LOG_NAME=pgbouncer
. "$(dirname "$0")/lib.sh"

START_TIMEOUT=${PGB_START_TIMEOUT:-30}

log_file() { [ -n "${PGB:-}" ] && echo "$PGB/pgbouncer.log"; }
on_die() { do_stop; }

find_bin() {
    if [ -n "${PGBOUNCER:-}" ]; then
        [ -x "$PGBOUNCER" ] && { echo "$PGBOUNCER"; return 0; }
        return 1
    fi
    command -v pgbouncer 2>/dev/null && return 0
    [ -x /usr/sbin/pgbouncer ] && { echo /usr/sbin/pgbouncer; return 0; }
    return 1
}

pid_running() {
    [ -f "$PGB/pgbouncer.pid" ] || return 1
    kill -0 "$(cat "$PGB/pgbouncer.pid" 2>/dev/null)" 2>/dev/null
}

do_stop() {
    local pid i
    [ -n "${PGB:-}" ] || return 0
    pid_running || return 0
    pid=$(cat "$PGB/pgbouncer.pid")
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    return 0
}

login() {
    PGPASSWORD=$PW PGCONNECT_TIMEOUT=5 psql -X -q -tA -h 127.0.0.1 -p "$PORT" \
        -U "$USER_NAME" -d "$DB" -c 'SELECT 1' >/dev/null 2>&1
}

check_login() { wait_for "$START_TIMEOUT" login; }

do_start() {
    local url=$1 rest hostport
    # postgres://user:pw@host:port/db (what pg-server.sh prints)
    rest=${url#*://}
    USER_NAME=${rest%%:*}
    rest=${rest#*:}
    PW=${rest%%@*}
    rest=${rest#*@}
    hostport=${rest%%/*}
    DB=${rest#*/}
    DB=${DB%%\?*}
    PG_HOST=${hostport%:*}
    PG_PORT=${hostport##*:}
    [ -n "$USER_NAME" ] && [ -n "$PW" ] && [ -n "$DB" ] && [ -n "$PG_PORT" ] ||
        die "cannot read the server URL"
    mkdir -p "$PGB" || die "cannot create $PGB"
    if [ "$(id -u)" = 0 ]; then
        chown postgres:postgres "$PGB" || die "cannot give $PGB to postgres"
    fi
    chmod 700 "$PGB"
    PORT=$(free_port) || die "cannot find a free port"
    printf '"%s" "%s"\n' "$USER_NAME" "$PW" | as_pg tee "$PGB/userlist.txt" >/dev/null
    as_pg chmod 600 "$PGB/userlist.txt"
    as_pg tee "$PGB/pgbouncer.ini" >/dev/null <<EOF
[databases]
$DB = host=$PG_HOST port=$PG_PORT dbname=$DB

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $PGB/userlist.txt
pool_mode = transaction
default_pool_size = 2
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 500
max_db_connections = 2
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = $PGB/pgbouncer.log
pidfile = $PGB/pgbouncer.pid
log_connections = 0
log_disconnections = 0
EOF
    log "starting PgBouncer on 127.0.0.1:$PORT (transaction mode, 2 server connections)"
    as_pg "$BIN" -d -q "$PGB/pgbouncer.ini" >&2 || die "PgBouncer did not start"
    check_login || die "no login through PgBouncer on 127.0.0.1:$PORT"
    log "ready on 127.0.0.1:$PORT"
    printf 'postgres://%s:%s@127.0.0.1:%s/%s\n' "$USER_NAME" "$PW" "$PORT" "$DB"
}

main() {
    case "${1:-}" in
    start) [ $# -eq 3 ] || { echo "usage: $0 start DIR PG_URL" >&2; exit 2; } ;;
    stop) [ $# -eq 2 ] || { echo "usage: $0 stop DIR" >&2; exit 2; } ;;
    *) echo "usage: $0 start DIR PG_URL | stop DIR" >&2; exit 2 ;;
    esac
    mkdir -p "$2" 2>/dev/null
    PGB=$(cd "$2" && pwd)/pgb || exit 1
    case "$1" in
    start)
        BIN=$(find_bin) || { PGB=""; die "pgbouncer not found (apt-get install pgbouncer)"; }
        do_start "$3"
        ;;
    stop) do_stop ;;
    esac
}

main "$@"
