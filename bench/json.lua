-- bench/json.lua: ormed.json against lua-cjson (Debian's lua-cjson) on the
-- payloads json fields typically hold. `make bench-json` runs it (about ten
-- seconds, no server); the figures and the decision are in bench/RESULTS.md.
--
-- Each figure is the median of BENCH_REPS (default 5) timed runs of a loop
-- of encodes or decodes of one payload, in microseconds per call:
--   * ormed.json (pure Lua);
--   * cjson alone, which keeps none of ormed's semantics (keys unsorted,
--     14 significant digits, [] written as {}, every number a double);
--   * for decoding, cjson with what it would take to give ormed's result
--     exactly: refuse texts cjson reads differently (raw control
--     characters, empty arrays, invalid UTF-8), cjson.null to orm.null,
--     arrays marked, integral doubles back to integers, and the Lua
--     decoder again when an integral number may have been written as a
--     float ("12.0", "1e2") or is past 2^53. A prototype: ormed.json does
--     not use it (see bench/RESULTS.md).
local core = require("ormed.core")
local json = require("ormed.json")
local ok_cjson, cjson = pcall(require, "cjson")
if not ok_cjson then
  io.stderr:write("bench/json: lua-cjson is not installed (make deps installs it)\n")
  os.exit(1)
end

local REPS = tonumber(os.getenv("BENCH_REPS")) or 5
local null = core.null

-- {==== payloads ====}

-- A user's settings: a small flat object with a list (about 150 bytes).
local settings = { theme = "dark", locale = "en-GB", page_size = 25, beta = false,
  notifications = { email = true, sms = false, digest = "weekly" }, tags = { "admin", "ops" } }

-- A profile: a nested object of about 750 bytes with text, numbers and nulls.
local profile = {
  id = 123456789, name = "Ann Example", email = "ann@example.org", bio = string.rep("Lua & SQL. ", 20),
  address = { street = "1 Main St", city = "Zürich", zip = "8001", country = "CH", geo = { 47.3769, 8.5417 } },
  phones = { { kind = "work", number = "+41 44 000 00 00" }, { kind = "home", number = null } },
  score = 97.5, visits = 4211, verified = true, manager_id = null,
  preferences = settings, labels = { "vip", "early-adopter", "beta", "newsletter" },
}

-- An event log: a list of 200 small objects (about 20 KB).
local function event_log(ms)
  local events = {}
  for i = 1, 200 do
    events[i] = { id = i, type = i % 3 == 0 and "click" or "view", at = "2026-11-30T05:00:00Z",
      user_id = 1000 + i, path = "/items/" .. i, ms = ms(i), meta = { ref = null, ab = "b" } }
  end
  return events
end

-- The same payloads without any decimal number (what cjson can be used
-- for without a second decode).
local profile_ints = {}
for k, v in pairs(profile) do profile_ints[k] = v end
profile_ints.score, profile_ints.address = 97, { street = "1 Main St", city = "Zürich", zip = "8001" }

local PAYLOADS = {
  { name = "settings", n = 20000, variants = { { name = "integers only", value = settings } } },
  { name = "profile", n = 4000, variants = { { name = "with decimals", value = profile },
    { name = "integers only", value = profile_ints } } },
  { name = "event list of 200", n = 100, variants = {
    { name = "with decimals", value = event_log(function(i) return i * 1.25 end) },
    { name = "integers only", value = event_log(function(i) return i * 5 end) } } },
}

-- {==== cjson with ormed's decoding semantics (prototype) ====}

local ARRAY_MT = getmetatable(json.array())
local exact = cjson.new()
exact.decode_invalid_numbers(false)
exact.decode_max_depth(512)
local cnull, tointeger, TWO53 = cjson.null, math.tointeger, 2 ^ 53

-- state[1]: an integral number was met; state[2]: one past 2^53.
local function adapt(v, state)
  if v == cnull then return null end
  local tv = type(v)
  if tv == "number" then
    local i = tointeger(v)
    if i then
      state[1] = true
      if i >= TWO53 or i <= -TWO53 then state[2] = true end
      return i
    end
    return v
  elseif tv == "table" then
    for k, x in pairs(v) do v[k] = adapt(x, state) end
    if #v > 0 then setmetatable(v, ARRAY_MT) end
  end
  return v
end

local function cjson_exact(s)
  if s:find("[%z\1-\31]") or s:find("[]", 1, true) or s:find("[ ", 1, true) or not utf8.len(s) then
    return json.decode(s)
  end
  local ok, v = pcall(exact.decode, s)
  if not ok then return json.decode(s) end
  local state = {}
  v = adapt(v, state)
  if state[2] or (state[1] and s:find("%d[%.eE]")) then return json.decode(s) end
  return v
end

-- cjson cannot take orm.null (a userdata of ormed's): swap it for cjson.null.
local function to_cjson(v)
  if v == null then return cjson.null end
  if type(v) == "table" then
    local t = {}
    for k, x in pairs(v) do t[k] = to_cjson(x) end
    return t
  end
  return v
end

-- {==== timing ====}

local function median(list)
  table.sort(list)
  return list[(#list + 1) // 2]
end

local function time(n, fn, arg)
  local runs = {}
  for r = 1, REPS do
    collectgarbage("collect")
    local t0 = core.clock()
    for _ = 1, n do fn(arg) end
    runs[r] = (core.clock() - t0) / n * 1e6
  end
  return median(runs)
end

-- The prototype must give the Lua decoder's result on every payload.
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then return math.type(a) == math.type(b) and a == b end
  if type(a) ~= "table" then return a == b end
  if getmetatable(a) ~= getmetatable(b) then return false end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

print(string.format("bench/json: ormed.json against lua-cjson %s, %s, medians of %d runs, µs per call",
  cjson._VERSION or "?", _VERSION, REPS))
print("| payload | operation | ormed.json | cjson alone | cjson, ormed's result | "
  .. "ormed / cjson alone | ormed / cjson with ormed's result |")
print("|---|---|---:|---:|---:|---:|---:|")
for _, p in ipairs(PAYLOADS) do
  for _, v in ipairs(p.variants) do
    local text = json.encode(v.value)
    assert(same(json.decode(text), cjson_exact(text)), "the prototype differs on " .. v.name)
    local label = string.format("%s, %s (%d B)", p.name, v.name, #text)
    local enc_lua = time(p.n, json.encode, v.value)
    local enc_cjson = time(p.n, cjson.encode, to_cjson(v.value))
    print(string.format("| %s | encode | %.1f | %.1f | — | %.1f× | — |", label,
      enc_lua, enc_cjson, enc_lua / enc_cjson))
    local dec_lua = time(p.n, json.decode, text)
    local dec_cjson = time(p.n, cjson.decode, text)
    local dec_exact = time(p.n, cjson_exact, text)
    print(string.format("| %s | decode | %.1f | %.1f | %.1f | %.1f× | %.1f× |", label,
      dec_lua, dec_cjson, dec_exact, dec_lua / dec_cjson, dec_lua / dec_exact))
  end
end
