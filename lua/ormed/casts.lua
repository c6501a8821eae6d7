-- ormed.casts: the field types of models. Each cast has
--   read(v)            a value as a driver returned it -> the Lua value
--   write(v, field)    a Lua value assigned by the user -> the checked Lua
--                      value kept on the instance (raises invalid_argument)
--   db(v, dialect)     a checked Lua value -> the value to bind
--   stored(v)          a checked Lua value -> what read() expects back
-- so a field reads the same on SQLite, PostgreSQL and MySQL: booleans are
-- booleans, json is a table, date is "YYYY-MM-DD", datetime is ISO 8601 UTC
-- "YYYY-MM-DDTHH:MM:SS[.ffffff]Z", blob is a byte string.
local core = require("ormed.core")
local errors = require("ormed.errors")
local json = require("ormed.json")

local null = core.null

local casts = {}

local function identity(v) return v end

local function bad(field, want, v)
  errors.raise("invalid_argument", "field '%s' expects %s, got %s (%s)", field, want,
    tostring(v), type(v))
end

-- {==== boolean ====}
-- The stored forms a boolean field reads; any other value is read as it
-- was stored (a string the field cannot read is not taken for false).
local BOOLEAN = { ["1"] = true, t = true, ["true"] = true, y = true, yes = true, on = true,
  ["0"] = false, f = false, ["false"] = false, n = false, no = false, off = false }

casts.boolean = {
  read = function(v)
    local tv = type(v)
    if tv == "boolean" then return v end
    if tv == "number" then return v ~= 0 end
    local b = BOOLEAN[tostring(v):lower()]
    if b == nil then return v end
    return b
  end,
  write = function(v, field)
    if type(v) == "boolean" then return v end
    if v == 0 or v == 1 then return v == 1 end
    bad(field, "a boolean", v)
  end,
  db = identity,
  stored = identity,
}

-- {==== numbers ====}
-- A stored value a number field cannot read ("abc") is read as it was
-- stored, never as nil.
casts.integer = {
  read = function(v)
    if math.type(v) == "integer" then return v end
    local n = tonumber(v)
    if n == nil then return v end
    return math.tointeger(n) or n
  end,
  write = function(v, field)
    local n = math.tointeger(type(v) == "string" and tonumber(v) or v)
    if n == nil then bad(field, "an integer", v) end
    return n
  end,
  db = identity,
  stored = identity,
}

casts.number = {
  read = function(v)
    if type(v) == "number" then return v end
    return tonumber(v) or v
  end,
  write = function(v, field)
    local n = type(v) == "number" and v or (type(v) == "string" and tonumber(v))
    if not n then bad(field, "a number", v) end
    return n
  end,
  db = identity,
  stored = identity,
}

-- {==== strings ====}
local function read_string(v)
  if type(v) == "string" then return v end
  return tostring(v)
end

casts.string = {
  read = read_string,
  write = function(v, field)
    local tv = type(v)
    if tv == "string" then return v end
    if tv == "number" then return tostring(v) end
    bad(field, "a string", v)
  end,
  db = identity,
  stored = identity,
}
casts.text = casts.string

casts.blob = {
  read = read_string,
  write = function(v, field)
    if type(v) == "string" then return v end
    if core.is_blob(v) then return tostring(v) end
    bad(field, "a byte string", v)
  end,
  db = function(v) return core.blob(v) end,
  stored = identity,
}

-- {==== json ====}
casts.json = {
  read = function(v)
    if type(v) == "string" then return json.decode(v) end
    return v
  end,
  write = function(v, field)
    local ok, err = pcall(json.encode, v)
    if not ok then bad(field, "a JSON value (" .. tostring(err.message or err) .. ")", v) end
    return v
  end,
  db = function(v) return json.encode(v) end,
  stored = function(v) return json.encode(v) end,
}

-- {==== dates ====}

local DAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

-- True when year y, month mo, day d (strings of digits) is a date of the
-- Gregorian calendar.
local function date_exists(y, mo, d)
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo < 1 or mo > 12 or d < 1 then return false end
  local leap = y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)
  return d <= ((mo == 2 and leap) and 29 or DAYS[mo])
end

-- "YYYY-MM-DD[ T]HH:MM:SS[.f][Z|+HH:MM]" -> parts, or nil (also for a
-- date or time of day that does not exist: 2024-02-30, 24:00:00).
local function parse_datetime(s)
  local y, mo, d, h, mi, sec, rest = s:match("^(%d%d%d%d)-(%d%d)-(%d%d)[T ](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then
    y, mo, d = s:match("^(%d%d%d%d)-(%d%d)-(%d%d)$")
    if not y or not date_exists(y, mo, d) then return nil end
    return { y, mo, d, "00", "00", "00", "" }
  end
  if not date_exists(y, mo, d) or tonumber(h) > 23 or tonumber(mi) > 59 or tonumber(sec) > 59 then
    return nil
  end
  local frac, zone = rest:match("^%.(%d+)(.*)$")
  if not frac then frac, zone = "", rest end
  if zone ~= "" and zone ~= "Z" and not zone:match("^[-+]00:?0?0?$") then
    return nil -- an offset other than UTC: refused rather than guessed
  end
  return { y, mo, d, h, mi, sec, (frac:gsub("0+$", "")) }
end

local function format_datetime(p, sep, zone)
  local frac = p[7] ~= "" and ("." .. p[7]) or ""
  return string.format("%s-%s-%s%s%s:%s:%s%s%s", p[1], p[2], p[3], sep, p[4], p[5], p[6], frac, zone)
end

-- An ISO 8601 UTC string from a number of seconds since the epoch.
function casts.iso_from_epoch(t)
  local whole = math.floor(t)
  local s = os.date("!%Y-%m-%dT%H:%M:%S", whole)
  local frac = t - whole
  if frac > 0 then
    s = s .. (string.format("%.6f", frac):sub(2):gsub("0+$", ""))
  end
  return s .. "Z"
end

local function normalize_datetime(v)
  if type(v) == "number" then return casts.iso_from_epoch(v) end
  if type(v) ~= "string" then return nil end
  local p = parse_datetime(v)
  return p and format_datetime(p, "T", "Z")
end

casts.datetime = {
  read = function(v)
    return normalize_datetime(v) or v
  end,
  write = function(v, field)
    local s = normalize_datetime(v)
    if not s then bad(field, "an ISO 8601 UTC datetime or epoch seconds", v) end
    return s
  end,
  db = function(v, dialect)
    local f = core.dialect(dialect)
    if f == nil or (f.datetime_sep == "T" and f.datetime_zone == "Z") then return v end
    return format_datetime(parse_datetime(v), f.datetime_sep, f.datetime_zone)
  end,
  stored = identity,
}

local function normalize_date(v)
  if type(v) == "number" then return os.date("!%Y-%m-%d", math.floor(v)) end
  if type(v) ~= "string" then return nil end
  local p = parse_datetime(v)
  return p and string.format("%s-%s-%s", p[1], p[2], p[3])
end

casts.date = {
  read = function(v)
    return normalize_date(v) or v
  end,
  write = function(v, field)
    local s = normalize_date(v)
    if not s then bad(field, "a date (YYYY-MM-DD) or epoch seconds", v) end
    return s
  end,
  db = identity,
  stored = identity,
}

-- The cast of a field type name (raises invalid_argument for others).
function casts.get(type_name, model_name, field)
  local c = casts[type_name]
  if type(c) ~= "table" or not c.read then
    errors.raise("invalid_argument",
      "model %s: field '%s' has unknown type '%s' (integer, number, string, text, boolean, "
      .. "json, date, datetime, blob)", model_name, field, tostring(type_name))
  end
  return c
end

-- The value to bind for v (a checked Lua value or nil) under cast c.
function casts.to_db(c, v, dialect)
  if v == nil or v == null then return null end
  if c == nil then return v end
  return c.db(v, dialect)
end

return casts
