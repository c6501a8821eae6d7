#!/usr/bin/env bash
# scripts/pg-server.sh: starts and stops a throwaway PostgreSQL server for the
# test suite, on a free loopback TCP port, with its data in a folder we own.
#
#   scripts/pg-server.sh start DIR
#       Creates DIR/pg (owned by the postgres user when run as root) with the
#       cluster in DIR/pg/data, the unix socket in DIR/pg, the log in
#       DIR/pg/server.log and the port in DIR/pg/port; starts the server on
#       127.0.0.1 (scram-sha-256 over TCP, trust on the socket), creates the
#       superuser role ormed/ormed_pw and the database ormed_test owned by it,
#       checks a password login over TCP, then prints exactly one line on
#       stdout:  postgres://ormed:ormed_pw@127.0.0.1:PORT/ormed_test
#       Everything else goes to stderr. If a server from DIR already runs, it
#       is reused. Exits non-zero (with the server log's tail) on failure, and
#       then leaves no server running.
#   scripts/pg-server.sh replica-start DIR
#       Starts (creating it on first use) a streaming replica of the server
#       running from DIR: `pg_basebackup -R` of it into DIR/pgr/data (over
#       the unix socket, as the postgres user: initdb's pg_hba trusts local
#       replication; wal_level = replica and max_wal_senders are defaults),
#       a hot standby on another loopback port (kept across restarts), then
#       prints its URL the same way.
#   scripts/pg-server.sh replica-stop DIR
#       Stops that replica (replica-start resumes it).
#   scripts/pg-server.sh stop DIR
#       Stops the server started from DIR (and its replica; pg_ctl -m
#       immediate) and waits until they are gone. Idempotent: exits 0 when
#       nothing runs.
#
# PG_BIN may name the folder holding initdb/pg_ctl/psql; by default the
# newest /usr/lib/postgresql/*/bin is used.
set -u
LOG_NAME=pg-server
. "$(dirname "$0")/lib.sh"

USER_NAME=ormed
USER_PW=ormed_pw
DB_NAME=ormed_test
START_TIMEOUT=${PG_START_TIMEOUT:-60}

log_file() { [ -n "${PGDIR:-}" ] && echo "$PGDIR/server.log"; }

find_bindir() {
    local d
    if [ -n "${PG_BIN:-}" ]; then
        [ -x "$PG_BIN/pg_ctl" ] && { echo "$PG_BIN"; return 0; }
        return 1
    fi
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    if [ -n "$d" ] && [ -x "$d/pg_ctl" ]; then
        echo "$d"
        return 0
    fi
    d=$(command -v pg_ctl 2>/dev/null) || return 1
    dirname "$d"
}

pg_ctl_() { as_pg "$BIN/pg_ctl" -D "$PGDIR/data" "$@"; }

running() {
    [ -f "$PGDIR/data/postmaster.pid" ] || return 1
    pg_ctl_ status >/dev/null 2>&1
}

# psql over the unix socket as the bootstrap superuser (trust auth).
psql_local() {
    PGCONNECT_TIMEOUT=10 as_pg timeout 120 "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGDIR" -p "$PORT" \
        -U postgres -d postgres "$@"
}

do_stop() {
    running || return 0
    pg_ctl_ -m immediate -w -t 60 stop >&2 || return 1
    return 0
}

init_cluster() {
    local locale_opt
    [ -f "$PGDIR/data/PG_VERSION" ] && return 0
    log "initialising $PGDIR/data"
    locale_opt=--no-locale
    if locale -a 2>/dev/null | grep -qixE 'c\.utf-?8'; then
        locale_opt=--locale=C.UTF-8
    fi
    if ! as_pg timeout 300 "$BIN/initdb" -D "$PGDIR/data" -U postgres -E UTF8 "$locale_opt" \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync \
        >"$PGDIR/initdb.log" 2>&1; then
        cat "$PGDIR/initdb.log" >&2
        rm -rf "$PGDIR/data"
        die "initdb failed (or took more than 300s)"
    fi
    # Single quotes in the socket path are doubled for postgresql.conf.
    {
        echo ""
        echo "# added by scripts/pg-server.sh"
        echo "listen_addresses = '127.0.0.1'"
        echo "unix_socket_directories = '${PGDIR//\'/\'\'}'"
        echo "fsync = off"
        echo "synchronous_commit = off"
        echo "full_page_writes = off"
        echo "max_connections = 200"
        echo "shared_buffers = 64MB"
        echo "timezone = 'UTC'"
        echo "log_min_messages = warning"
    } | as_pg tee -a "$PGDIR/data/postgresql.conf" >/dev/null ||
        die "cannot write $PGDIR/data/postgresql.conf"
}

# Starts the server on $1; returns 0 once it answers, 2 when the port was
# taken, 1 on any other failure.
launch() {
    local port=$1
    as_pg truncate -s 0 "$PGDIR/server.log" 2>/dev/null
    if pg_ctl_ -l "$PGDIR/server.log" -w -t "$START_TIMEOUT" -o "-p $port" start >&2; then
        return 0
    fi
    if grep -qiE 'could not (bind|create listen)|address already in use' "$PGDIR/server.log"; then
        do_stop
        return 2
    fi
    do_stop
    return 1
}

setup_role() {
    local have_db
    psql_local <<EOF || return 1
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$USER_NAME') THEN
        CREATE ROLE $USER_NAME LOGIN SUPERUSER PASSWORD '$USER_PW';
    ELSE
        ALTER ROLE $USER_NAME LOGIN SUPERUSER PASSWORD '$USER_PW';
    END IF;
END
\$\$;
EOF
    have_db=$(psql_local -tA -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'") || return 1
    if [ "$have_db" != 1 ]; then
        psql_local -c "CREATE DATABASE $DB_NAME OWNER $USER_NAME ENCODING 'UTF8' TEMPLATE template0" || return 1
    fi
    return 0
}

# A password login over TCP, the way the tests connect.
tcp_login() {
    PGPASSWORD=$USER_PW PGCONNECT_TIMEOUT=5 "$BIN/psql" -X -q -tA \
        -h 127.0.0.1 -p "$PORT" -U "$USER_NAME" -d "$DB_NAME" \
        -c 'SELECT 1' >/dev/null 2>&1
}

check_tcp() { wait_for "$START_TIMEOUT" tcp_login; }

do_start() {
    mkdir -p "$DIR" || die "cannot create $DIR"
    DIR=$(cd "$DIR" && pwd) || die "cannot enter $DIR"
    PGDIR=$DIR/pg
    if [ $((${#PGDIR} + 20)) -gt 107 ]; then
        die "$DIR is too long for a unix socket path; use a shorter folder"
    fi
    mkdir -p "$PGDIR" || die "cannot create $PGDIR"
    if [ "$(id -u)" = 0 ]; then
        chmod 755 "$DIR" || die "cannot make $DIR traversable"
        chown postgres:postgres "$PGDIR" || die "cannot give $PGDIR to postgres"
        as_pg test -w "$PGDIR" ||
            die "the postgres user cannot reach $PGDIR (a parent folder is not traversable); use a folder under /tmp"
    fi
    chmod 700 "$PGDIR"
    cd "$DIR" || die "cannot enter $DIR"

    if running && [ -f "$PGDIR/port" ]; then
        PORT=$(cat "$PGDIR/port")
        log "reusing the server already running from $DIR (port $PORT)"
    else
        do_stop
        init_cluster
        start_on_free_port postgres || die "postgres did not start"
        echo "$PORT" | as_pg tee "$PGDIR/port" >/dev/null
    fi
    if ! setup_role >&2; then
        do_stop
        die "creating role $USER_NAME and database $DB_NAME failed"
    fi
    if ! check_tcp; then
        do_stop
        die "no password login over 127.0.0.1:$PORT"
    fi
    log "ready on 127.0.0.1:$PORT (socket dir $PGDIR)"
    printf 'postgres://%s:%s@127.0.0.1:%s/%s\n' "$USER_NAME" "$USER_PW" "$PORT" "$DB_NAME"
}

do_replica_start() {
    local primary_port
    DIR=$(cd "$DIR" && pwd) || die "cannot enter $DIR"
    PGDIR=$DIR/pg
    running || die "no server runs from $DIR (start it first)"
    primary_port=$(cat "$PGDIR/port") || die "no port file in $PGDIR"
    PGDIR=$DIR/pgr
    cd "$DIR" || die "cannot enter $DIR"
    if running && [ -f "$PGDIR/port" ]; then
        PORT=$(cat "$PGDIR/port")
    else
        do_stop
        if [ ! -f "$PGDIR/data/PG_VERSION" ]; then
            mkdir -p "$PGDIR" || die "cannot create $PGDIR"
            [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGDIR"
            chmod 700 "$PGDIR"
            log "pg_basebackup of 127.0.0.1:$primary_port into $PGDIR/data"
            if ! as_pg timeout 300 "$BIN/pg_basebackup" -h "$DIR/pg" -p "$primary_port" -U postgres \
                -D "$PGDIR/data" -R -X stream --checkpoint=fast --no-sync >"$PGDIR/basebackup.log" 2>&1; then
                cat "$PGDIR/basebackup.log" >&2
                as_pg rm -rf "$PGDIR/data"
                die "pg_basebackup failed"
            fi
            {
                echo "# the replica's own socket folder (scripts/pg-server.sh replica-start)"
                echo "unix_socket_directories = '${PGDIR//\'/\'\'}'"
            } | as_pg tee -a "$PGDIR/data/postgresql.conf" >/dev/null ||
                die "cannot write $PGDIR/data/postgresql.conf"
        fi
        start_on_free_port "the replica" "$PGDIR/port" || die "the replica did not start"
        echo "$PORT" | as_pg tee "$PGDIR/port" >/dev/null
    fi
    if ! check_tcp; then
        do_stop
        die "no password login on the replica over 127.0.0.1:$PORT"
    fi
    log "replica ready on 127.0.0.1:$PORT"
    printf 'postgres://%s:%s@127.0.0.1:%s/%s\n' "$USER_NAME" "$USER_PW" "$PORT" "$DB_NAME"
}

main() {
    case "${1:-}" in start | stop | replica-start | replica-stop) ;; *) set -- ;; esac
    if [ $# -ne 2 ]; then
        echo "usage: $0 start|stop|replica-start|replica-stop DIR" >&2
        exit 2
    fi
    DIR=$2
    BIN=$(find_bindir) || die "PostgreSQL binaries not found (apt-get install postgresql)"
    case "$1" in
    start) do_start ;;
    replica-start) do_replica_start ;;
    replica-stop)
        [ -d "$DIR/pgr" ] || exit 0
        DIR=$(cd "$DIR" && pwd)
        PGDIR=$DIR/pgr
        cd "$DIR" || exit 0
        do_stop || die "could not stop the replica from $DIR"
        ;;
    stop)
        [ -d "$DIR/pg" ] || exit 0
        DIR=$(cd "$DIR" && pwd)
        cd "$DIR" || exit 0
        if [ -d "$DIR/pgr" ]; then
            PGDIR=$DIR/pgr
            do_stop || log "could not stop the replica from $DIR"
        fi
        PGDIR=$DIR/pg
        do_stop || die "could not stop the server from $DIR"
        ;;
    esac
}

main "$@"
