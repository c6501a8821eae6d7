/*
 * examples/embed/poll_host.c: a C host that runs ormed queries from its own
 * poll() loop. The Lua code sets a waiter that yields (fd, mode, timeout)
 * back to C; the host runs each query in its own Lua coroutine
 * (lua_newthread), collects the fd every coroutine waits on, poll()s them
 * together and resumes the ready ones, so the queries wait for the server
 * at the same time. Usage: poll_host URL [QUERIES [SECONDS]]: QUERIES
 * coroutines (default 4) each run a statement that sleeps SECONDS (default
 * 0.3) on the server (PostgreSQL or MySQL/MariaDB). Built by `make build/poll_host`
 * (and `make test`) and run by spec/embed_spec.lua.
 */
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#define POLL_HOST_MAX 64

/* The Lua side: a data source with a connection per query, the waiter
 * that hands every wait to the host, and the query each coroutine runs. */
static const char *const poll_host_script =
    "local orm = require('ormed')\n"
    "local url, n, seconds = ...\n"
    "local ds = orm.DataSource{ name = 'poll_host', driver = orm.driver_from_url(url),\n"
    "  pool = { max = n, min = n } }:init()\n"
    "local sql = (url:match('^postgres') and 'SELECT pg_sleep(%g) AS slept, ? AS i'\n"
    "  or 'SELECT SLEEP(%g) AS slept, ? AS i'):format(seconds)\n"
    "-- the waiter contract: called with (fd, mode, timeout) from the coroutine\n"
    "-- that runs the statement; it returns once fd is ready for mode ('r',\n"
    "-- 'w' or 'rw') or timeout seconds (nil: none) have passed. Yielding\n"
    "-- hands the three values to the host, which resumes it when that is so.\n"
    "orm.set_waiter(function(fd, mode, timeout)\n"
    "  return coroutine.yield(fd, mode, timeout)\n"
    "end)\n"
    "function poll_host_query(i)\n"
    "  return tostring(ds:select(sql, { i })[1].i)\n"
    "end\n"
    "function poll_host_finish()\n"
    "  orm.set_waiter(nil)\n"
    "  local s = ds:stats()\n"
    "  ds:dispose()\n"
    "  return s.open, s.in_use\n"
    "end\n";

typedef struct poll_host_task {
    lua_State *co;    /* the coroutine, NULL once it has ended */
    int ref;          /* keeps it alive (registry) */
    int fd;           /* what it waits on */
    short events;     /* POLLIN and/or POLLOUT */
    double deadline;  /* when its wait times out; < 0: never */
} poll_host_task;

/* Seconds on a monotonic clock. */
static double poll_host_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sets package.path / package.cpath from ORMED_ROOT and ORMED_BUILD. */
static void poll_host_paths(lua_State *L, const char *root, const char *build)
{
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;", root, root);
    lua_getfield(L, -2, "path");
    lua_concat(L, 2);
    lua_setfield(L, -2, "path");
    lua_pushfstring(L, "%s/%s/?.so;", root, build);
    lua_getfield(L, -2, "cpath");
    lua_concat(L, 2);
    lua_setfield(L, -2, "cpath");
    lua_pop(L, 1);
}

/* Resumes t's coroutine (nargs values on its stack). A yield from the
 * waiter records what it waits on; an end prints the result or the error.
 * Returns 0, or -1 when the coroutine failed. */
static int poll_host_resume(lua_State *L, poll_host_task *t, int i, int nargs,
                            double t0)
{
    int nres = 0, st = lua_resume(t->co, L, nargs, &nres);
    if (st == LUA_YIELD) { /* the waiter's (fd, mode, timeout) */
        const char *mode;
        if (nres < 2 || !lua_isinteger(t->co, -nres)) {
            fprintf(stderr, "poll_host: query %d yielded something else\n", i);
            return -1;
        }
        t->fd = (int)lua_tointeger(t->co, -nres);
        mode = lua_tostring(t->co, -nres + 1);
        t->events = 0;
        if (mode != NULL && strchr(mode, 'r') != NULL)
            t->events |= POLLIN;
        if (mode != NULL && strchr(mode, 'w') != NULL)
            t->events |= POLLOUT;
        t->deadline = nres >= 3 && lua_isnumber(t->co, -nres + 2)
                          ? poll_host_now() + lua_tonumber(t->co, -nres + 2)
                          : -1;
        lua_pop(t->co, nres);
        return 0;
    }
    if (st == LUA_OK)
        printf("poll_host: query %d -> %s after %.2f s\n", i,
               lua_tostring(t->co, -1), poll_host_now() - t0);
    else /* errors are orm.Error tables: luaL_tolstring uses __tostring */
        fprintf(stderr, "poll_host: query %d failed: %s\n", i,
                luaL_tolstring(t->co, -1, NULL));
    luaL_unref(L, LUA_REGISTRYINDEX, t->ref);
    t->co = NULL;
    return st == LUA_OK ? 0 : -1;
}

/* The loop: poll() every waiting coroutine's fd at once, resume the ready
 * ones (and those whose timeout passed) until every one has ended.
 * Returns the number of failures. */
static int poll_host_loop(lua_State *L, poll_host_task *tasks, int n, double t0,
                          int *polls)
{
    struct pollfd fds[POLL_HOST_MAX];
    int who[POLL_HOST_MAX], failures = 0;
    for (;;) {
        int k = 0, ms = -1, i;
        double now = poll_host_now();
        for (i = 0; i < n; i++) {
            poll_host_task *t = &tasks[i];
            if (t->co == NULL)
                continue;
            fds[k].fd = t->fd;
            fds[k].events = t->events;
            fds[k].revents = 0;
            who[k++] = i;
            if (t->deadline >= 0) {
                int left = (int)ceil((t->deadline - now) * 1000);
                if (left < 0)
                    left = 0;
                if (ms < 0 || left < ms)
                    ms = left;
            }
        }
        if (k == 0)
            return failures;
        if (poll(fds, (nfds_t)k, ms) < 0) {
            perror("poll_host: poll");
            return failures + k;
        }
        (*polls)++;
        now = poll_host_now();
        for (i = 0; i < k; i++) {
            poll_host_task *t = &tasks[who[i]];
            if (fds[i].revents != 0 || (t->deadline >= 0 && now >= t->deadline))
                if (poll_host_resume(L, t, who[i] + 1, 0, t0) != 0)
                    failures++;
        }
    }
}

int main(int argc, char **argv)
{
    const char *root = getenv("ORMED_ROOT") ? getenv("ORMED_ROOT") : ".";
    const char *build = getenv("ORMED_BUILD") ? getenv("ORMED_BUILD") : "build";
    int n = argc > 2 ? atoi(argv[2]) : 4, failures = 0, polls = 0, i;
    double seconds = argc > 3 ? atof(argv[3]) : 0.3, t0;
    poll_host_task tasks[POLL_HOST_MAX];
    lua_State *L;
    if (argc < 2 || n < 1 || n > POLL_HOST_MAX || seconds < 0) {
        fprintf(stderr, "usage: poll_host URL [QUERIES (1-%d) [SECONDS]]\n",
                POLL_HOST_MAX);
        return EXIT_FAILURE;
    }
    L = luaL_newstate();
    if (L == NULL)
        return EXIT_FAILURE;
    luaL_openlibs(L);
    poll_host_paths(L, root, build);
    if (luaL_loadstring(L, poll_host_script) == LUA_OK) {
        lua_pushstring(L, argv[1]);
        lua_pushinteger(L, n);
        lua_pushnumber(L, seconds);
        if (lua_pcall(L, 3, 0, 0) != LUA_OK)
            failures++;
    } else {
        failures++;
    }
    if (failures > 0) {
        fprintf(stderr, "poll_host: %s\n", luaL_tolstring(L, -1, NULL));
        lua_close(L);
        return EXIT_FAILURE;
    }
    t0 = poll_host_now();
    for (i = 0; i < n; i++) { /* start every query: each runs to its first wait */
        poll_host_task *t = &tasks[i];
        t->co = lua_newthread(L);
        t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
        lua_getglobal(t->co, "poll_host_query");
        lua_pushinteger(t->co, i + 1);
        if (poll_host_resume(L, t, i + 1, 1, t0) != 0)
            failures++;
    }
    failures += poll_host_loop(L, tasks, n, t0, &polls);
    printf("poll_host: queries=%d sleep=%.2f total=%.3f polls=%d failures=%d\n",
           n, seconds, poll_host_now() - t0, polls, failures);
    lua_getglobal(L, "poll_host_finish");
    if (lua_pcall(L, 0, 2, 0) != LUA_OK) {
        fprintf(stderr, "poll_host: %s\n", luaL_tolstring(L, -1, NULL));
        failures++;
    } else {
        printf("poll_host: open=%lld in_use=%lld\n", (long long)lua_tointeger(L, -2),
               (long long)lua_tointeger(L, -1));
    }
    lua_close(L);
    return failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
