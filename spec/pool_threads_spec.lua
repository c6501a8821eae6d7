-- spec/pool_threads_spec.lua: one pool shared by the threads of a C host
-- (spec/c/pool_threads.c, built by make): every checkout is served, no
-- connection is lent twice, and every row written arrives.
local orm = require("ormed")

describe("the pool shared between host threads", function()
  it("serves 8 threads from 3 connections without losing a write", function()
    local build = os.getenv("ORMED_BUILD") or "build"
    local db = os.tmpname()
    os.remove(db)
    local p = assert(io.popen(build .. "/pool_threads " .. db .. " 2>&1"))
    local out = p:read("a")
    assert.is_true(p:close(), out)
    local t = {}
    for k, v in out:gmatch("([%w_]+)=(%d+)") do t[k] = tonumber(v) end
    assert.are.equal(0, t.failures, out)
    assert.are.equal(8 * 50, t.queries)
    assert.is_true(t.open <= 3 and t.open >= 1, out)
    assert.are.equal(0, t.in_use)
    assert.is_true(t.waits > 0, "8 threads on 3 connections never waited: " .. out)
    local ds = orm.DataSource({ name = "threads_check", driver = orm.SqliteDriverAdapter.file(db) }):init()
    assert.are.equal(400, ds:select("SELECT COUNT(*) AS n FROM hits")[1].n)
    assert.are.equal(8, ds:select("SELECT COUNT(DISTINCT thread) AS n FROM hits")[1].n)
    ds:dispose()
    os.remove(db)
  end)
end)
