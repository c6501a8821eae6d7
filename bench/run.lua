-- bench/run.lua: the runner of `make bench`. Runs every case of
-- bench/cases/ for ormed, LuaSQL and the C limit, each repetition in its
-- own process (bench/case.lua), interleaving the three, and prints one
-- table per driver with the medians, the ratios and the targets of
-- ARCHITECTURE.md (judged on SQLite, shown for information elsewhere).
-- A case that compares ormed with itself (a `base` implementation: the
-- same calls without the feature measured, and `target.base`, the ratio
-- allowed) gets a second table, ormed / base, judged on every driver: on
-- the median of the ratios the case measured in one process (`paired=` in
-- its info, see W.paired) when it gives one, else on the medians' ratio.
--
-- Environment: BENCH_DRIVERS (default sqlite,postgres,mysql; a server
-- driver runs when ORMED_TEST_POSTGRES / ORMED_TEST_MYSQL is set),
-- BENCH_REPS (default 5), BENCH_CASES (comma list, default all; `make
-- bench CASES=find_waiter,find_replicas` runs those only),
-- BENCH_OUT (also write the tables, as Markdown, to this file).
local dir = (arg[0]:match("^(.*)/[^/]*$") or ".")
local lua = arg[-1] or "lua5.4"

local CASES = { "insert", "select", "models", "find", "eager", "nplus1", "compile",
  "compile_model", "pool", "unscoped", "scoped", "find_waiter", "find_replicas" }
local IMPLS = { "ormed", "base", "luasql", "climit", "luadbi" }

local function env_list(name, default)
  local v = os.getenv(name)
  local out = {}
  for item in (v and v ~= "" and v or default):gmatch("[^,%s]+") do out[#out + 1] = item end
  return out
end

local REPS = tonumber(os.getenv("BENCH_REPS")) or 5
local drivers = env_list("BENCH_DRIVERS", "sqlite,postgres,mysql")
local cases = env_list("BENCH_CASES", table.concat(CASES, ","))

-- {==== running ====}

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- One process: { time, ops, ok, info }, or nil when impl has no
-- counterpart; raises when the process fails.
local function run_one(driver, case, impl)
  local cmd = table.concat({ shell_quote(lua), shell_quote(dir .. "/case.lua"), driver, case,
    impl }, " ") .. " 2>&1; echo \"exit=$?\""
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  local r = {}
  for k, v in out:gmatch("(%w+)=([^\n]*)") do r[k] = v end
  if r.exit == "2" then return nil end
  if r.exit ~= "0" or not r.time then
    error(("bench: %s %s %s failed:\n%s"):format(driver, case, impl, out), 0)
  end
  return { time = tonumber(r.time), ops = tonumber(r.ops) or 1, ok = r.ok == "true",
    info = r.info }
end

local function median(list)
  table.sort(list)
  local n = #list
  if n % 2 == 1 then return list[(n + 1) // 2] end
  return (list[n // 2] + list[n // 2 + 1]) / 2
end

-- value of one measurement in the case's unit.
local function value(meta, m)
  if meta.unit == "us/op" then return m.time * 1e6 / m.ops end
  return m.time * 1e3
end

-- { impl = { median, min, max, info, ok } } for one case on one driver.
local function measure(driver, case, meta)
  local samples, last, paired = {}, {}, {}
  for _ = 1, REPS do
    for _, impl in ipairs(IMPLS) do
      if samples[impl] ~= false then
        local m = run_one(driver, case, impl)
        if m == nil then
          samples[impl] = false
        else
          samples[impl] = samples[impl] or {}
          table.insert(samples[impl], value(meta, m))
          last[impl] = m
          for key, p in (m.info or ""):gmatch("(paired[%w_]*)=([%d.]+)") do
            paired[impl] = paired[impl] or {}
            paired[impl][key] = paired[impl][key] or {}
            table.insert(paired[impl][key], tonumber(p))
          end
          if not m.ok then
            error(("bench: %s %s %s gave a wrong result (%s)"):format(driver, case, impl,
              tostring(m.info)), 0)
          end
        end
      end
    end
  end
  io.stderr:write(("bench: %s %s done\n"):format(driver, case))
  local out = {}
  for impl, list in pairs(samples) do
    if list then
      local lo, hi = math.huge, -math.huge
      for _, v in ipairs(list) do lo, hi = math.min(lo, v), math.max(hi, v) end
      local p = {}
      for key, ps in pairs(paired[impl] or {}) do p[key] = median(ps) end
      -- paired: the ratio measured in one process; paired_<x>: against x
      out[impl] = { median = median(list), min = lo, max = hi, info = last[impl].info,
        paired = p.paired, paired_limit = p.paired_limit, paired_dbi = p.paired_dbi }
    end
  end
  return out
end

-- {==== targets (ARCHITECTURE.md, judged on SQLite) ====}

local function ratio(a, b)
  if a == nil or b == nil or b == 0 then return nil end
  return a / b
end

local TARGETS = {
  insert = { text = "<= 1.3x limit, >= 3x faster than LuaSQL", met = function(r)
    return r.ol <= 1.3 and r.lo >= 3 end },
  select = { text = "<= 1.15x limit, faster than LuaSQL", met = function(r)
    return r.ol <= 1.15 and r.lo > 1 end },
  models = { text = "<= 1.4x limit", met = function(r) return r.ol <= 1.4 end },
  -- on SQLite, judged on the ratios measured in one process (paired_limit,
  -- paired_dbi: ormed against the C limit and LuaDBI, alternating)
  find = { text = "<= 1.5x limit (servers 1.2x), >= 2x faster than LuaSQL, faster than LuaDBI",
    met = function(r, _, driver)
      local ol, dbi = r.paired_limit or r.ol, r.paired_dbi and 1 / r.paired_dbi or r.dbi
      if r.paired_limit then
        r.note = ("paired: ormed/limit = %.2fx, ormed/LuaDBI = %.2fx"):format(r.paired_limit,
          r.paired_dbi or 0)
      end
      return ol <= (driver == "sqlite" and 1.5 or 1.2) and r.lo >= 2
        and (dbi == nil or dbi > 1) end },
  eager = { text = "2 queries, >= 10x faster than N+1", met = function(r, all)
    local n1 = all.nplus1 and all.nplus1.ormed
    r.note = n1 and ("N+1/eager = %.2fx; %s"):format(n1.median / r.o, r.info or "") or r.info
    return n1 ~= nil and (r.info or ""):find("queries=2", 1, true) ~= nil
      and n1.median / r.o >= 10 end },
  scoped = { always = true, text = "(info) scoped vs unscoped", met = function(r, all)
    local u = all.unscoped and all.unscoped
    if u and u.ormed then
      r.note = ("scoped/unscoped = %.2fx"):format(r.o / u.ormed.median)
      local c = all.scoped.climit
      if c and u.climit then -- the database's own share: the same two statements in C
        r.note = r.note .. (", C limit scoped/unscoped = %.2fx"):format(c.median / u.climit.median)
      end
    end
    return nil end },
  -- judged on the ratio measured in one process (paired) when there is one
  compile = { always = true, text = "<= 2.5x formatting the SQL by hand", met = function(r)
    local x = r.paired or (r.lo and 1 / r.lo)
    if not x then return nil end
    r.note = ("ormed/by hand = %.2fx%s"):format(x, r.paired and " paired" or "")
    return x <= 2.5 end },
  compile_model = { always = true, text = "<= 1.2x the plain query", met = function(r, all)
    local p = all.compile and all.compile.ormed
    local x = r.paired or (p and r.o / p.median)
    if not x then return nil end
    r.note = ("model/plain = %.2fx%s"):format(x, r.paired and " paired" or "")
    return x <= 1.2 end },
}

-- {==== output ====}

local function fmt(v, unit)
  if v == nil then return "-" end
  if unit == "us/op" then return ("%.2f"):format(v) end
  return ("%.1f"):format(v)
end

local function fmt_ratio(v)
  return v and ("%.2f"):format(v) or "-"
end

local function table_for(driver, results, metas)
  local lines = {
    ("### %s (median of %d runs, one process each)"):format(driver, REPS), "",
    "| case | unit | ormed | LuaSQL | C limit | ormed/limit | LuaSQL/ormed | LuaDBI | target | met? |",
    "|---|---|---:|---:|---:|---:|---:|---:|---|---|",
  }
  local rows = 0
  for _, case in ipairs(cases) do
    local res, meta = results[case], metas[case]
    if res and (res.luasql or res.climit or res.luadbi) then
      rows = rows + 1
      local o, l, c, d = res.ormed, res.luasql, res.climit, res.luadbi
      local r = { o = o and o.median, paired = o and o.paired,
        paired_limit = o and o.paired_limit, paired_dbi = o and o.paired_dbi,
        ol = ratio(o and o.median, c and c.median),
        lo = ratio(l and l.median, o and o.median), info = o and o.info,
        dbi = ratio(d and d.median, o and o.median) }
      local t, met = TARGETS[case], nil
      local text = "-"
      if t then
        text = t.text
        if r.ol or t.always or case == "eager" then met = t.met(r, results, driver) end
        if r.note then text = text .. " (" .. r.note .. ")" end
      end
      local verdict = met == nil and "" or (met and "yes" or "**no**")
      if driver ~= "sqlite" and met ~= nil then verdict = "(" .. (met and "yes" or "no") .. ")" end
      lines[#lines + 1] = ("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |"):format(
        meta.label, meta.unit, fmt(o and o.median, meta.unit), fmt(l and l.median, meta.unit),
        fmt(c and c.median, meta.unit), fmt_ratio(r.ol), fmt_ratio(r.lo),
        fmt(d and d.median, meta.unit), text, verdict)
    end
  end
  if rows == 0 then return nil end
  return table.concat(lines, "\n")
end

-- The table of the cases that compare ormed with itself, or nil.
local function base_table_for(driver, results, metas)
  local lines = {
    ("### %s: ormed against itself (median of %d runs, one process each)"):format(driver, REPS),
    "", "| case | unit | ormed | base | ormed/base | paired | target | met? | info (last run) |",
    "|---|---|---:|---:|---:|---:|---|---|---|",
  }
  local any = false
  for _, case in ipairs(cases) do
    local res, meta = results[case], metas[case]
    local o, b = res and res.ormed, res and res.base
    if o and b and meta.target then
      any = true
      local r = ratio(o.median, b.median)
      local judged = o.paired or r
      lines[#lines + 1] = ("| %s | %s | %s | %s | %s | %s | %s | %s | %s |"):format(meta.label,
        meta.unit, fmt(o.median, meta.unit), fmt(b.median, meta.unit), fmt_ratio(r),
        fmt_ratio(o.paired), meta.target.text, judged <= meta.target.base and "yes" or "**no**",
        tostring(o.info))
    end
  end
  return any and table.concat(lines, "\n") or nil
end

-- {==== main ====}

package.path = dir .. "/?.lua;" .. package.path
package.cpath = dir .. "/build/?.so;" .. package.cpath
local W = require("workload")

local outputs = {}
for _, driver in ipairs(drivers) do
  if driver ~= "sqlite" and not W.url(driver) then
    io.stderr:write(("bench: no %s server (ORMED_TEST_%s unset), skipped\n"):format(driver,
      driver:upper()))
  else
    local results, metas = {}, {}
    for _, case in ipairs(cases) do
      metas[case] = require("cases." .. case)
      results[case] = measure(driver, case, metas[case])
    end
    for _, make in ipairs({ table_for, base_table_for }) do
      local text = make(driver, results, metas)
      if text then
        print(text)
        print()
        outputs[#outputs + 1] = text
      end
    end
  end
end

local path = os.getenv("BENCH_OUT")
if path and path ~= "" then
  local f = assert(io.open(path, "w"))
  f:write(table.concat(outputs, "\n\n"), "\n")
  f:close()
end
