-- spec/readme_spec.lua: the README's Lua snippets, in order, are one
-- program that runs on SQLite; each `print(...) --> expected` line is
-- checked (`...` in the expectation matches anything).
local README = "README.md"

local function lua_blocks(text)
  local blocks = {}
  for code in text:gmatch("```lua\n(.-)```") do
    if not code:match("^%-%- ormed%.config%.lua") then blocks[#blocks + 1] = code end
  end
  return blocks
end

-- Rewrites `print(args) --> expected` into a checked call.
local function instrument(code)
  local out, checks = {}, 0
  for line in (code .. "\n"):gmatch("(.-)\n") do
    local indent, args, expected = line:match("^(%s*)print(%b())%s*%-%->%s*(.-)%s*$")
    if indent then
      checks = checks + 1
      line = string.format("%s__expect(%q, %d, %s)", indent, expected, checks, args:sub(2, -2))
    end
    out[#out + 1] = line
  end
  return table.concat(out, "\n"), checks
end

local PRELUDE = [[
local function __expect(expected, n, ...)
  local parts = {}
  for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
  local actual = table.concat(parts, " "):gsub("%s+", " ")
  local pattern = "^" .. expected:gsub("%s+", " "):gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
    :gsub("%%%.%%%.%%%.", ".-") .. "$"
  if not actual:find(pattern) then
    error(string.format("README check #%d: expected %q, got %q", n, expected, actual), 2)
  end
  io.write("ok ", n, "\n")
end
]]

describe("README", function()
  it("runs its Lua snippets as one program, with the outputs it shows", function()
    local f = assert(io.open(README))
    local text = f:read("a")
    f:close()
    local blocks = lua_blocks(text)
    assert.is_true(#blocks >= 10)
    local program, checks = instrument(table.concat(blocks, "\n"))
    assert.is_true(checks >= 20)
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local path = dir .. "/readme.lua"
    f = assert(io.open(path, "w"))
    f:write(PRELUDE, program)
    f:close()
    local root = io.popen("pwd"):read("l")
    local cmd = string.format("cd %s && LUA_PATH='%s/lua/?.lua;%s/lua/?/init.lua;;' "
      .. "LUA_CPATH='%s/build/?.so;;' lua5.4 readme.lua 2>&1", dir, root, root, root)
    local p = io.popen(cmd)
    local output = p:read("a")
    local ok = p:close()
    os.execute("rm -rf " .. dir)
    assert(ok, "the README program failed:\n" .. output)
    local passed = select(2, output:gsub("ok %d+\n", ""))
    assert.are.equal(checks, passed)
  end)
end)
