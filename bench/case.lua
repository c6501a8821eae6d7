-- bench/case.lua: runs one benchmark case once, in this process, and
-- prints its measurement for bench/run.lua:
--   lua5.4 bench/case.lua DRIVER CASE IMPL
-- DRIVER: sqlite | postgres | mysql; CASE: a file of bench/cases/;
-- IMPL: ormed | base | luasql | climit | luadbi (base: ormed without the
-- feature the case measures, for the cases that compare ormed with
-- itself; ctx.base is then true). Prints `time=<seconds>`, `ops=<n>`,
-- `ok=<true|false>` and `info=<text>`; exits 2 when IMPL has no
-- counterpart for CASE, or CASE does not apply to DRIVER (case.drivers).
-- BENCH_DRY=1 does the setup only (to subtract it from a profile of the
-- whole process).
local dir = (arg[0]:match("^(.*)/[^/]*$") or ".")
package.path = dir .. "/?.lua;" .. package.path
package.cpath = dir .. "/build/?.so;" .. package.cpath

local driver, name, impl = arg[1], arg[2], arg[3]
if not (driver and name and impl) then
  io.stderr:write("usage: lua5.4 bench/case.lua DRIVER CASE IMPL\n")
  os.exit(1)
end

-- Every process loads the same modules, so the heap the garbage collector
-- starts from is alike whichever implementation runs.
require("ormed")
local W = require("workload")
local case = require("cases." .. name)
if case[impl] == nil or (case.drivers and not case.drivers[driver]) then os.exit(2) end

local ctx = W.open(impl == "base" and "ormed" or impl, driver)
ctx.base = impl == "base"
local state = case.setup(ctx)
collectgarbage("collect")
collectgarbage("collect")
if os.getenv("BENCH_DRY") == "1" then
  print("time=0")
  os.exit(0)
end
local t0 = W.now()
local result = case[impl](ctx, state)
local elapsed = W.now() - t0
local ok, info = case.check(ctx, state, result)
print(("time=%.9f"):format(elapsed))
print("ops=" .. tostring(case.ops and case.ops(impl, driver) or 1))
print("ok=" .. tostring(ok))
print("info=" .. tostring(info))
