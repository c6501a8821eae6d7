# ormed: build, test and install the Lua ORM engine (see README.md).

LUA      ?= lua5.4
BUSTED   ?= $(LUA) /usr/bin/busted
PREFIX   ?= /usr/local
# Where `make install` puts the Lua modules, ormed/core.so and the command:
# the luarocks layout under PREFIX. luarocks passes its own (see the rockspec).
LUADIR   ?= $(PREFIX)/share/lua/5.4
LIBDIR   ?= $(PREFIX)/lib/lua/5.4
BINDIR   ?= $(PREFIX)/bin
# Lua's headers: luarocks passes LUA_INCDIR; pkg-config lua5.4 otherwise.
LUA_INCDIR ?=
BUILD    ?= build
PKGS      = lua5.4 sqlite3 libpq mysqlclient
DEBS      = lua5.4 liblua5.4-dev lua-busted libsqlite3-dev libpq-dev \
            default-libmysqlclient-dev postgresql mariadb-server pkg-config \
            lua-sql-sqlite3 lua-sql-postgres lua-sql-mysql lua-check pgbouncer \
            luarocks lua-cjson lua-ldoc lua-discount lua-dbi-sqlite3 lua-cqueues lua-luv \
            lua-socket socat

CFLAGS   ?= -O2 -g
WARN      = -Wall -Wextra -Werror
ALLCFLAGS = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -fPIC $(WARN) \
            -Isrc $(if $(LUA_INCDIR),-I$(LUA_INCDIR)) $(shell pkg-config --cflags $(PKGS)) $(CFLAGS)
LDLIBS    = $(shell pkg-config --libs sqlite3 libpq mysqlclient) -lpthread -lm

SRCS      = $(wildcard src/*.c drivers/*.c)
OBJS      = $(SRCS:%.c=$(BUILD)/obj/%.o)
HDRS      = $(wildcard src/*.h drivers/*.h)
MODULE    = $(BUILD)/ormed/core.so
SPECS    ?= spec

LUA_ENV   = LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/?.lua;;" \
            LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;"

.PHONY: all deps test asan asan-run example embed embed-poll bench bench-json install clean lint docs

all: $(MODULE)

$(MODULE): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -o $@ $(OBJS) $(LDFLAGS) $(LDLIBS)

$(BUILD)/obj/%.o: %.c $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -c -o $@ $<

deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "all Debian packages present"; fi

# A C host that shares one pool between threads (spec/pool_threads_spec.lua).
$(BUILD)/pool_threads: spec/c/pool_threads.c $(OBJS)
	$(CC) $(ALLCFLAGS) -o $@ spec/c/pool_threads.c $(filter-out $(BUILD)/obj/src/lua_%.o,$(OBJS)) \
	  $(LDFLAGS) $(LDLIBS)

# A C host that runs queries from its own poll() loop through the waiter
# (examples/embed/poll_host.c; spec/embed_spec.lua runs it on both servers).
$(BUILD)/poll_host: examples/embed/poll_host.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -o $@ examples/embed/poll_host.c $(LDFLAGS) $(shell pkg-config --libs lua5.4) -lm

test: all $(BUILD)/pool_threads $(BUILD)/poll_host
	ORMED_BUILD=$(BUILD) $(LUA_ENV) BUSTED="$(BUSTED)" scripts/with-servers.sh $(BUSTED) $(BUSTED_ARGS) $(SPECS)

asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" all build-asan/pool_threads build-asan/poll_host
	$(MAKE) BUILD=build-asan asan-run

asan-run:
	ORMED_BUILD=$(BUILD) ORMED_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LSAN_OPTIONS=suppressions=$(CURDIR)/spec/lsan.supp:print_suppressions=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(LUA_ENV) scripts/with-servers.sh $(BUSTED) $(BUSTED_ARGS) $(SPECS)

# make bench: the performance table of ARCHITECTURE.md (method and results:
# bench/RESULTS.md). BENCH_DRIVERS=sqlite runs SQLite only, without servers;
# BENCH_REPS sets the repetitions per case (default 5); CASES (or
# BENCH_CASES) a comma list of bench/cases/ to run, e.g.
# `make bench BENCH_DRIVERS=postgres,mysql CASES=find_waiter,find_replicas`.
BENCH_DRIVERS ?= sqlite,postgres,mysql
CASES         ?=
BENCH_CASES   ?= $(CASES)
BENCH_SRCS    = $(wildcard bench/*.c)
BENCH_MODULE  = bench/build/climit.so

$(BENCH_MODULE): $(BENCH_SRCS) bench/climit.h Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -shared -o $@ $(BENCH_SRCS) $(LDFLAGS) $(LDLIBS)

bench: all $(BENCH_MODULE)
	$(LUA_ENV) BENCH_DRIVERS="$(BENCH_DRIVERS)" ORMED_TEST_DRIVERS="$(BENCH_DRIVERS)" BENCH_CASES="$(BENCH_CASES)" \
	  scripts/with-servers.sh $(LUA) bench/run.lua

# make bench-json: ormed.json against lua-cjson (bench/json.lua; results and
# the decision in bench/RESULTS.md). About ten seconds, no server.
bench-json: all
	$(LUA_ENV) $(LUA) bench/json.lua

EXAMPLES  = quickstart.lua multi_db.lua tenants.lua compensating.lua models.lua

example: all
	@cd examples && for e in $(EXAMPLES); do \
	  echo "== examples/$$e"; $(LUA_ENV) $(LUA) $$e || exit 1; done

embed: all
	$(CC) $(ALLCFLAGS) -o $(BUILD)/host examples/embed/host.c $(shell pkg-config --libs lua5.4)
	ORMED_ROOT=$(CURDIR) $(BUILD)/host

# make embed-poll: the poll() loop host on throwaway PostgreSQL and MariaDB
# servers (four queries sleeping 0.3 s each, waiting at the same time).
embed-poll: all $(BUILD)/poll_host
	ORMED_ROOT=$(CURDIR) ORMED_BUILD=$(BUILD) ORMED_TEST_DRIVERS=postgres,mysql scripts/with-servers.sh \
	  sh -c '$(BUILD)/poll_host "$$ORMED_TEST_POSTGRES" && $(BUILD)/poll_host "$$ORMED_TEST_MYSQL"'

lint:
	luacheck lua spec examples bench

# make docs: the HTML API reference in build/docs/ (LDoc, config.ld), from
# the doc comments (---) of lua/ormed/; any LDoc warning fails it.
docs:
	ldoc --fatalwarnings .

# make install [PREFIX=/usr/local] [DESTDIR=...]; luarocks runs it with its
# LUADIR, LIBDIR and BINDIR (ormed-*.rockspec). The command learns where its
# modules are from the @LUADIR@ / @LIBDIR@ it is given here.
install: all
	install -d $(DESTDIR)$(LUADIR)/ormed $(DESTDIR)$(LIBDIR)/ormed $(DESTDIR)$(BINDIR)
	install -m 644 lua/ormed/*.lua $(DESTDIR)$(LUADIR)/ormed/
	install -m 755 $(MODULE) $(DESTDIR)$(LIBDIR)/ormed/core.so
	sed -e 's|@LUADIR@|$(LUADIR)|' -e 's|@LIBDIR@|$(LIBDIR)|' bin/ormed > $(DESTDIR)$(BINDIR)/ormed
	chmod 755 $(DESTDIR)$(BINDIR)/ormed

clean:
	rm -rf build build-asan
