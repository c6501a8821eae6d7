-- spec/embed_spec.lua: a C host's own poll() loop (examples/embed/poll_host.c,
-- built by make): its coroutines' queries, each sleeping on the server,
-- wait at the same time through a waiter that yields (fd, mode, timeout)
-- to C, and every one gives its own result. PostgreSQL and MariaDB (SQLite
-- statements never wait on a socket).
local helper = require("spec.helper")

helper.each_driver(function(drv)
  if drv.name == "sqlite" then return end

  it("a C host's poll() loop runs four queries of 0.3 s at the same time", function()
    local build = os.getenv("ORMED_BUILD") or "build"
    local cmd = ("ORMED_ROOT=. ORMED_BUILD=%s %s/poll_host %s 4 0.3 2>&1"):format(
      helper.shell_quote(build), build, helper.shell_quote(drv.url))
    local p = assert(io.popen(cmd))
    local out = p:read("a")
    assert.is_true(p:close(), out)
    local got = {}
    for i, v in out:gmatch("query (%d+) %-> (%S+) after") do got[tonumber(i)] = v end
    assert.are.same({ "1", "2", "3", "4" }, got, out)
    local total = tonumber(out:match("total=([%d.]+)"))
    assert.are.equal("0", out:match("failures=(%d+)"), out)
    -- one after the other they take 1.2 s; together a little over 0.3 s
    assert.is_true(total >= 0.3 and total < 0.7, out)
    assert.is_true(tonumber(out:match("polls=(%d+)")) >= 1, out)
    assert.are.equal("4 0", table.concat({ out:match("open=(%d+) in_use=(%d+)") }, " "), out)
  end)
end)
