#!/usr/bin/env bash
# scripts/mysql-server.sh: starts and stops a throwaway MariaDB server for the
# test suite, on a free loopback TCP port, with its data in a folder we own.
#
#   scripts/mysql-server.sh start DIR
#       Creates DIR/mysql (data), starts mariadbd (socket DIR/mysql.sock, pid
#       DIR/mysql.pid, log DIR/mysql.err, port in DIR/mysql.port), creates the
#       user ormed/ormed_pw (all privileges, from 127.0.0.1 and localhost) and
#       the database ormed_test (utf8mb4), then prints exactly one line on
#       stdout:  mysql://ormed:ormed_pw@127.0.0.1:PORT/ormed_test
#       Everything else goes to stderr. If a server from DIR already runs, it
#       is reused. Exits non-zero (with the error log's tail) on failure, and
#       then leaves no server running.
#       The server writes a binary log (--log-bin, --server-id=1, GTIDs) so
#       that a replica can follow it.
#   scripts/mysql-server.sh replica-start DIR
#       Starts (creating it on first use) a streaming replica of the server
#       running from DIR: a second mariadbd (data DIR/mysqlr, socket
#       DIR/mysqlr.sock, --server-id=2) following it with
#       CHANGE MASTER TO ... MASTER_USE_GTID=slave_pos; waits until it has
#       caught up, then prints its URL the same way.
#   scripts/mysql-server.sh replica-stop DIR
#       Stops that replica (its replication position is kept: replica-start
#       resumes it).
#   scripts/mysql-server.sh stop DIR
#       Stops the server started from DIR (and its replica) and waits until
#       they are gone. Idempotent: exits 0 when nothing runs.
set -u
LOG_NAME=mysql-server
. "$(dirname "$0")/lib.sh"

USER_NAME=ormed
USER_PW=ormed_pw
DB_NAME=ormed_test
START_TIMEOUT=${MYSQL_START_TIMEOUT:-60}
# The server's files are DIR/$N.*: "mysql" for the primary, "mysqlr" for its
# replica; ROLE_OPTS are the options that differ between them.
N=mysql
ROLE_OPTS=(--log-bin=mysql-bin --server-id=1 --binlog-format=ROW)
STOP_TIMEOUT=${MYSQL_STOP_TIMEOUT:-60}

log_file() { [ -n "${DIR:-}" ] && echo "$DIR/$N.err"; }

find_bin() {
    local name
    for name in "$@"; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
        for d in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
            if [ -x "$d/$name" ]; then
                echo "$d/$name"
                return 0
            fi
        done
    done
    return 1
}

# The pid of the running server, or nothing.
running_pid() {
    local pid
    [ -f "$DIR/$N.pid" ] || return 1
    pid=$(cat "$DIR/$N.pid" 2>/dev/null) || return 1
    case "$pid" in '' | *[!0-9]*) return 1 ;; esac
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

admin() {
    "$ADMIN" --no-defaults --socket="$DIR/$N.sock" --user=root \
        --connect-timeout=5 "$@"
}

client() {
    "$CLIENT" --no-defaults --socket="$DIR/$N.sock" --user=root \
        --connect-timeout=5 --batch --skip-column-names "$@"
}

gone() { ! kill -0 "$1" 2>/dev/null; }

wait_gone() { wait_for "$STOP_TIMEOUT" gone "$1"; }

do_stop() {
    local pid
    pid=$(running_pid) || { rm -f "$DIR/$N.pid"; return 0; }
    admin shutdown >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null
    if ! wait_gone "$pid"; then
        log "server $pid did not stop in ${STOP_TIMEOUT}s, killing it"
        kill -KILL "$pid" 2>/dev/null
        wait_gone "$pid" || return 1
    fi
    rm -f "$DIR/$N.pid" "$DIR/$N.sock"
    return 0
}

install_db() {
    if [ -d "$DIR/$N/mysql" ]; then
        [ -f "$DIR/$N.installed" ] && return 0
        # made by an earlier version of this script, which left no marker
        if grep -q 'get-involved' "$DIR/$N-install.log" 2>/dev/null; then
            : >"$DIR/$N.installed"
            return 0
        fi
    fi
    log "initialising $DIR/$N"
    rm -rf "$DIR/$N" # a half-made data folder from an interrupted run
    mkdir -p "$DIR/$N" || die "cannot create $DIR/$N"
    if ! "$INSTALL_DB" --no-defaults --datadir="$DIR/$N" "${RUN_AS[@]}" \
        --auth-root-authentication-method=normal --skip-test-db \
        --skip-name-resolve --innodb-log-file-size=16M \
        --character-set-server=utf8mb4 >"$DIR/$N-install.log" 2>&1; then
        cat "$DIR/$N-install.log" >&2
        rm -rf "$DIR/$N"
        die "mariadb-install-db failed"
    fi
    : >"$DIR/$N.installed"
}

# Starts mariadbd on $1; returns 0 once it answers, 2 when the port was
# taken, 1 on any other failure.
launch() {
    local port=$1 pid
    : >"$DIR/$N.err"
    nohup "$MARIADBD" --no-defaults --datadir="$DIR/$N" \
        --socket="$DIR/$N.sock" --port="$port" --bind-address=127.0.0.1 \
        "${RUN_AS[@]}" --pid-file="$DIR/$N.pid" --log-error="$DIR/$N.err" \
        --skip-name-resolve "${ROLE_OPTS[@]}" \
        --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 \
        --innodb-log-file-size=16M --innodb-buffer-pool-size=64M \
        --innodb-fast-shutdown=1 --loose-innodb-use-native-aio=0 \
        --sync-frm=0 --performance-schema=0 --max-connections=500 \
        --max-allowed-packet=64M --character-set-server=utf8mb4 \
        --collation-server=utf8mb4_general_ci \
        </dev/null >>"$DIR/$N.err" 2>&1 &
    pid=$!
    if ! wait_for "$START_TIMEOUT" answers "$pid"; then
        log "server did not answer within ${START_TIMEOUT}s"
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 1
    fi
    if gone "$pid"; then
        wait "$pid" 2>/dev/null
        grep -qiE 'address already in use|bind on tcp' "$DIR/$N.err" && return 2
        return 1
    fi
    echo "$port" >"$DIR/$N.port"
    return 0
}

# Done waiting for the server process $1: it answers a ping, or it is gone.
answers() { gone "$1" || admin ping >/dev/null 2>&1; }

setup_user() {
    client <<EOF
CREATE USER IF NOT EXISTS '$USER_NAME'@'127.0.0.1' IDENTIFIED BY '$USER_PW';
CREATE USER IF NOT EXISTS '$USER_NAME'@'localhost' IDENTIFIED BY '$USER_PW';
GRANT ALL PRIVILEGES ON *.* TO '$USER_NAME'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO '$USER_NAME'@'localhost';
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\`
    CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
FLUSH PRIVILEGES;
EOF
}

do_start() {
    local port
    MARIADBD=$(find_bin mariadbd mysqld) || die "mariadbd not found (apt-get install mariadb-server)"
    INSTALL_DB=$(find_bin mariadb-install-db mysql_install_db) || die "mariadb-install-db not found"
    DIR=$(realpath -m "$DIR") || die "bad folder $DIR"
    if [ ${#DIR} -gt 90 ]; then
        die "$DIR is too long for a unix socket path; use a shorter folder"
    fi
    mkdir -p "$DIR" || die "cannot create $DIR"
    RUN_AS=()
    [ "$(id -u)" = 0 ] && RUN_AS=(--user=root)

    if running_pid >/dev/null && admin ping >/dev/null 2>&1 && [ -f "$DIR/$N.port" ]; then
        port=$(cat "$DIR/$N.port")
        log "reusing the server already running from $DIR (port $port)"
    else
        # interrupted half-way: leave no server behind
        trap 'do_stop; exit 130' INT TERM HUP
        do_stop
        install_db
        if ! start_on_free_port mariadbd; then
            do_stop
            die "mariadbd did not start"
        fi
        port=$PORT
    fi
    if ! setup_user >&2; then
        do_stop
        die "creating user $USER_NAME and database $DB_NAME failed"
    fi
    trap - INT TERM HUP
    log "ready on 127.0.0.1:$port (socket $DIR/$N.sock)"
    printf 'mysql://%s:%s@127.0.0.1:%s/%s\n' "$USER_NAME" "$USER_PW" "$port" "$DB_NAME"
}

# Runs $@ as the replica (N=mysqlr).
as_replica() {
    N=mysqlr
    ROLE_OPTS=(--server-id=2 --skip-log-bin --relay-log=mysqlr-relay)
    "$@"
}

do_replica_start() {
    local pport pos
    DIR=$(realpath -m "$DIR") || die "bad folder $DIR"
    running_pid >/dev/null || die "no server runs from $DIR (start it first)"
    pport=$(cat "$DIR/mysql.port") || die "no port file for the server in $DIR"
    RUN_AS=()
    [ "$(id -u)" = 0 ] && RUN_AS=(--user=root)
    pos=$(client -e 'SELECT @@gtid_binlog_pos') || die "cannot read the primary's GTID position"
    as_replica replica_up "$pport" "$pos"
}

replica_up() {
    local pport=$1 pos=$2 port rc fresh=""
    MARIADBD=$(find_bin mariadbd mysqld) || die "mariadbd not found"
    INSTALL_DB=$(find_bin mariadb-install-db mysql_install_db) || die "mariadb-install-db not found"
    if running_pid >/dev/null && admin ping >/dev/null 2>&1 && [ -f "$DIR/$N.port" ]; then
        port=$(cat "$DIR/$N.port")
    else
        trap 'do_stop; exit 130' INT TERM HUP
        do_stop
        [ -f "$DIR/$N.installed" ] || fresh=1
        install_db
        if ! start_on_free_port "the replica" "$DIR/$N.port"; then
            do_stop
            die "the replica did not start"
        fi
        port=$PORT
        if [ -n "$fresh" ]; then
            client <<EOF || { do_stop; die "CHANGE MASTER on the replica failed"; }
CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$pport,
    MASTER_USER='$USER_NAME', MASTER_PASSWORD='$USER_PW',
    MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;
EOF
        fi
        client -e 'START SLAVE' >/dev/null 2>&1
        trap - INT TERM HUP
    fi
    # Caught up with the primary (its users and database included)?
    rc=$(client -e "SELECT MASTER_GTID_WAIT('$pos', $START_TIMEOUT)") || rc=-1
    if [ "$rc" != 0 ]; then
        client -e 'SHOW SLAVE STATUS\G' >&2
        do_stop
        die "the replica did not catch up with the primary"
    fi
    log "replica ready on 127.0.0.1:$port (socket $DIR/$N.sock)"
    printf 'mysql://%s:%s@127.0.0.1:%s/%s\n' "$USER_NAME" "$USER_PW" "$port" "$DB_NAME"
}

main() {
    case "${1:-}" in start | stop | replica-start | replica-stop) ;; *) set -- ;; esac
    if [ $# -ne 2 ]; then
        echo "usage: $0 start|stop|replica-start|replica-stop DIR" >&2
        exit 2
    fi
    DIR=$2
    ADMIN=$(find_bin mariadb-admin mysqladmin) || die "mariadb-admin not found (apt-get install mariadb-client)"
    CLIENT=$(find_bin mariadb mysql) || die "mariadb client not found (apt-get install mariadb-client)"
    case "$1" in
    start) do_start ;;
    replica-start) do_replica_start ;;
    replica-stop)
        [ -d "$DIR" ] || exit 0
        DIR=$(cd "$DIR" && pwd)
        as_replica do_stop || die "could not stop the replica from $DIR"
        ;;
    stop)
        [ -d "$DIR" ] || exit 0
        DIR=$(cd "$DIR" && pwd)
        as_replica do_stop || log "could not stop the replica from $DIR"
        N=mysql
        do_stop || die "could not stop the server from $DIR"
        ;;
    esac
}

main "$@"
