--- ormed.json: a small, strict JSON encoder and decoder for json fields.
--   json.encode(v) -> text    json.decode(text) -> value
-- JSON null is orm.null (so lists keep their length and objects their
-- keys); objects are encoded with sorted keys, so equal tables give equal
-- text. A table is a JSON array when its keys are exactly 1..#t; an empty
-- table is an object unless marked with json.array({}); decoded arrays
-- carry that mark, so `[]` round-trips. Errors are orm.Error values of
-- kind invalid_argument. Both directions refuse values nested more than
-- json.MAX_DEPTH arrays/objects deep, so whatever encode accepts, decode
-- reads back.
-- @module ormed.json
local core = require("ormed.core")
local errors = require("ormed.errors")

local null = core.null

-- The deepest nesting of arrays and objects encode and decode accept.
local MAX_DEPTH = 512

local json = { null = null, MAX_DEPTH = MAX_DEPTH }

local ARRAY = { __name = "ormed.json.array" }
local OBJECT = { __name = "ormed.json.object" }

--- Marks t (a new table when nil) as a JSON array; returns it.
function json.array(t)
  return setmetatable(t or {}, ARRAY)
end

--- Marks t (a new table when nil) as a JSON object; returns it.
function json.object(t)
  return setmetatable(t or {}, OBJECT)
end

-- {==== encoding ====}

local ESCAPES = {
  ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t",
}

local function escape_char(c)
  return ESCAPES[c] or string.format("\\u%04x", c:byte())
end

local function encode_string(s)
  if not utf8.len(s) then
    errors.raise("invalid_argument", "json: cannot encode a string that is not valid UTF-8")
  end
  return '"' .. s:gsub('[%c"\\]', escape_char) .. '"'
end

local function encode_number(n)
  if math.type(n) == "integer" then return string.format("%d", n) end
  if n ~= n or n == math.huge or n == -math.huge then
    errors.raise("invalid_argument", "json: cannot encode %s", tostring(n))
  end
  if n == math.floor(n) and math.abs(n) < 1e15 then return string.format("%.1f", n) end
  local s = string.format("%.14g", n)
  if tonumber(s) ~= n then s = string.format("%.17g", n) end
  return s
end

-- True when t's keys are exactly 1..#t (and it is not marked an object).
local function is_array(t)
  local mt = getmetatable(t)
  if mt == OBJECT then return false end
  local n = #t
  if n == 0 then return mt == ARRAY end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local encode_value

local function encode_array(t, out, seen, depth)
  out[#out + 1] = "["
  for i = 1, #t do
    if i > 1 then out[#out + 1] = "," end
    encode_value(t[i], out, seen, depth)
  end
  out[#out + 1] = "]"
end

local function key_string(k)
  local tk = type(k)
  if tk == "string" then return k end
  if tk == "number" then return encode_number(k) end
  errors.raise("invalid_argument", "json: an object key must be a string or number, got %s", tk)
end

local function encode_object(t, out, seen, depth)
  local keys, map = {}, {}
  for k in pairs(t) do
    local s = key_string(k)
    if map[s] ~= nil then
      errors.raise("invalid_argument", "json: the key '%s' appears twice (as a number and a string)", s)
    end
    map[s] = k
    keys[#keys + 1] = s
  end
  table.sort(keys)
  out[#out + 1] = "{"
  for i, s in ipairs(keys) do
    if i > 1 then out[#out + 1] = "," end
    out[#out + 1] = encode_string(s)
    out[#out + 1] = ":"
    encode_value(t[map[s]], out, seen, depth)
  end
  out[#out + 1] = "}"
end

-- depth: how many arrays/objects enclose v.
function encode_value(v, out, seen, depth)
  local tv = type(v)
  if v == nil or v == null then
    out[#out + 1] = "null"
  elseif tv == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif tv == "number" then
    out[#out + 1] = encode_number(v)
  elseif tv == "string" then
    out[#out + 1] = encode_string(v)
  elseif tv == "table" then
    if seen[v] then errors.raise("invalid_argument", "json: cannot encode a table that contains itself") end
    if depth >= MAX_DEPTH then
      errors.raise("invalid_argument", "json: nested too deeply (more than %d levels of "
        .. "arrays and objects)", MAX_DEPTH)
    end
    seen[v] = true
    if is_array(v) then encode_array(v, out, seen, depth + 1) else encode_object(v, out, seen, depth + 1) end
    seen[v] = nil
  else
    errors.raise("invalid_argument", "json: cannot encode a value of type %s", tv)
  end
end

--- JSON text for v (nil and orm.null give "null").
function json.encode(v)
  local out = {}
  encode_value(v, out, {}, 0)
  return table.concat(out)
end

-- {==== decoding ====}

local decode_value

local function fail(s, pos, what)
  local line = select(2, s:sub(1, pos):gsub("\n", "")) + 1
  errors.raise("invalid_argument", "json: %s at position %d (line %d)", what, pos, line)
end

local function skip(s, pos)
  return s:find("[^ \t\r\n]", pos) or #s + 1
end

local UNESCAPE = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f",
  n = "\n", r = "\r", t = "\t" }

-- Reads the 4 hex digits of a \u escape at pos; returns code, next pos.
local function hex4(s, pos)
  local h = s:match("^%x%x%x%x", pos)
  if not h then fail(s, pos, "bad \\u escape") end
  return tonumber(h, 16), pos + 4
end

local function decode_unicode(s, pos)
  local code
  code, pos = hex4(s, pos)
  if code >= 0xD800 and code <= 0xDBFF then
    if s:sub(pos, pos + 1) ~= "\\u" then fail(s, pos, "lone high surrogate") end
    local low
    low, pos = hex4(s, pos + 2)
    if low < 0xDC00 or low > 0xDFFF then fail(s, pos - 4, "bad low surrogate") end
    code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
  elseif code >= 0xDC00 and code <= 0xDFFF then
    fail(s, pos - 4, "lone low surrogate")
  end
  return utf8.char(code), pos
end

local function decode_string(s, pos)
  local parts, i = {}, pos + 1
  while true do
    local j = s:find('["\\%c]', i)
    if not j then fail(s, pos, "unterminated string") end
    parts[#parts + 1] = s:sub(i, j - 1)
    local c = s:sub(j, j)
    if c == '"' then
      local str = table.concat(parts)
      if not utf8.len(str) then fail(s, pos, "string is not valid UTF-8") end
      return str, j + 1
    elseif c == "\\" then
      local e = s:sub(j + 1, j + 1)
      if e == "u" then
        parts[#parts + 1], i = decode_unicode(s, j + 2)
      elseif UNESCAPE[e] then
        parts[#parts + 1], i = UNESCAPE[e], j + 2
      else
        fail(s, j, "bad escape")
      end
    else
      fail(s, j, "control character in string")
    end
  end
end

-- A number per the JSON grammar: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?
local function decode_number(s, pos)
  local i = pos
  if s:sub(i, i) == "-" then i = i + 1 end
  local int = s:match("^0", i) or s:match("^[1-9]%d*", i)
  if not int then fail(s, pos, "bad number") end
  i = i + #int
  local frac = s:match("^%.%d+", i)
  if frac then i = i + #frac end
  local exp = s:match("^[eE][-+]?%d+", i)
  if exp then i = i + #exp end
  if s:match("^[%.eE%d]", i) then fail(s, pos, "bad number") end
  return tonumber(s:sub(pos, i - 1)), i
end

local function decode_array(s, pos, depth)
  local t, n = json.array(), 0
  pos = skip(s, pos + 1)
  if s:sub(pos, pos) == "]" then return t, pos + 1 end
  while true do
    local v
    v, pos = decode_value(s, pos, depth)
    n = n + 1
    t[n] = v
    pos = skip(s, pos)
    local c = s:sub(pos, pos)
    if c == "]" then return t, pos + 1 end
    if c ~= "," then fail(s, pos, "expected ',' or ']'") end
    pos = skip(s, pos + 1)
  end
end

local function decode_object(s, pos, depth)
  local t = {}
  pos = skip(s, pos + 1)
  if s:sub(pos, pos) == "}" then return t, pos + 1 end
  while true do
    if s:sub(pos, pos) ~= '"' then fail(s, pos, "expected a string key") end
    local k
    k, pos = decode_string(s, pos)
    pos = skip(s, pos)
    if s:sub(pos, pos) ~= ":" then fail(s, pos, "expected ':'") end
    t[k], pos = decode_value(s, skip(s, pos + 1), depth)
    pos = skip(s, pos)
    local c = s:sub(pos, pos)
    if c == "}" then return t, pos + 1 end
    if c ~= "," then fail(s, pos, "expected ',' or '}'") end
    pos = skip(s, pos + 1)
  end
end

local LITERALS = { t = { "true", true }, f = { "false", false }, n = { "null", null } }

function decode_value(s, pos, depth)
  local c = s:sub(pos, pos)
  if c == "{" or c == "[" then
    if depth >= MAX_DEPTH then
      fail(s, pos, string.format("nested too deeply (more than %d levels of arrays and objects)",
        MAX_DEPTH))
    end
    return (c == "{" and decode_object or decode_array)(s, pos, depth + 1)
  elseif c == '"' then
    return decode_string(s, pos)
  elseif c == "-" or c:match("%d") then
    return decode_number(s, pos)
  end
  local lit = LITERALS[c]
  if lit and s:sub(pos, pos + #lit[1] - 1) == lit[1] then
    return lit[2], pos + #lit[1]
  end
  fail(s, pos, c == "" and "unexpected end of input" or "unexpected character '" .. c .. "'")
end

--- The value of JSON text s (null gives orm.null).
function json.decode(s)
  errors.check(type(s) == "string", "json.decode expects a string, got %s", type(s))
  local v, pos = decode_value(s, skip(s, 1), 0)
  pos = skip(s, pos)
  if pos <= #s then fail(s, pos, "trailing characters") end
  return v
end

return json
