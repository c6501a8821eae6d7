# scripts/lib.sh: what the throwaway-server scripts (pg-server.sh,
# mysql-server.sh, pgbouncer.sh) share; sourced, never run. Logging, dying
# with the tail of the server's log, running as the postgres user, a free
# loopback port, waiting for a command to succeed, and starting a server on
# a free port.
#
# The sourcing script sets LOG_NAME (the prefix of its messages) and defines
#   log_file   prints the log whose tail `die` shows (nothing: none yet)
#   on_die     (optional) what to stop before exiting
#   launch P   (for start_on_free_port) starts the server on port P: 0 once
#              it answers, 2 when the port was taken, 1 on any other failure

# The tools of these scripts are not under test: never run them with the
# sanitizer runtime `make asan` preloads for Lua (initdb's `postgres -V`
# hangs under it).
unset LD_PRELOAD ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS

log() { printf '%s: %s\n' "$LOG_NAME" "$*" >&2; }

# Logs the message and the last lines of the server's log, stops what
# on_die stops, and exits 1.
die() {
    local f
    log "$*"
    f=$(log_file 2>/dev/null)
    if [ -n "$f" ] && [ -f "$f" ]; then
        log "last lines of $f:"
        tail -n 25 "$f" >&2
    fi
    if declare -F on_die >/dev/null; then on_die; fi
    exit 1
}

# Runs a command as the postgres user when we are root (PostgreSQL and
# PgBouncer refuse to run as root), as ourselves otherwise.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# A loopback TCP port nobody listens on.
free_port() {
    local port
    if command -v python3 >/dev/null 2>&1; then
        python3 - <<'EOF' && return 0
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
    fi
    # No python3: a random high port nobody answers on.
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    return 1
}

# wait_for SECONDS CMD...: runs CMD every 0.1 s until it succeeds (returns
# 0), or SECONDS have passed (returns 1).
wait_for() {
    local limit=$(($1 * 10)) waited=0
    shift
    until "$@"; do
        [ "$waited" -ge "$limit" ] && return 1
        sleep 0.1
        waited=$((waited + 1))
    done
    return 0
}

# start_on_free_port WHAT [PORT_FILE]: `launch PORT` on a free port, up to
# five ports while the port was taken; the first try reuses the port in
# PORT_FILE when it exists (a restarted replica keeps its URL). Sets PORT;
# returns launch's last result.
start_on_free_port() {
    local what=$1 keep=${2:-} attempt rc=1
    for attempt in 1 2 3 4 5; do
        if [ "$attempt" = 1 ] && [ -n "$keep" ] && [ -f "$keep" ]; then
            PORT=$(cat "$keep")
        else
            PORT=$(free_port) || die "cannot find a free port"
        fi
        log "starting $what on 127.0.0.1:$PORT (attempt $attempt)"
        launch "$PORT"
        rc=$?
        [ "$rc" -eq 2 ] || break
        log "port $PORT was taken, trying another"
    done
    return "$rc"
}
