-- spec/install_spec.lua: ormed installs like a Lua library. A copy of the
-- source tree (the files git knows, as they are now, without build/) is
-- built and installed by `luarocks --lua-version 5.4 --tree DIR make`, with
-- no other flag; then, with only the environment `luarocks path` gives,
-- lua5.4 finds require("ormed") in DIR and DIR/bin/ormed runs. The release
-- rockspec and CHANGELOG.md are checked against the scm rockspec and
-- orm._VERSION.
local orm = require("ormed")

local tmp = os.getenv("ORMED_TEST_TMP") or "/tmp"
local root = io.popen("pwd"):read("l")

local helper = require("spec.helper")
local q, read = helper.shell_quote, helper.read_file

-- Runs cmd in a clean environment (no sanitizer preload, no make or Lua
-- variables of the spec run): its output (stdout and stderr) and exit code.
local CLEAN = "env -u LD_PRELOAD -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u LUA_PATH -u LUA_CPATH "
  .. "-u LUA_PATH_5_4 -u LUA_CPATH_5_4 "

local function run(cmd)
  local p = io.popen(CLEAN .. "sh -c " .. q(cmd .. " 2>&1"))
  local out = p:read("a")
  local _, _, code = p:close()
  return out, code
end

local function rockspec(file)
  local env = {}
  local chunk = assert(loadfile(root .. "/" .. file, "t", env))
  chunk()
  return env
end

describe("installing with luarocks", function()
  local dir, src, tree

  setup(function()
    dir = string.format("%s/ormed_install_%d_%d", tmp, os.time(), math.random(1e6))
    src, tree = dir .. "/src", dir .. "/tree"
    local out, code = run("mkdir -p " .. q(src) .. " && cd " .. q(root)
      .. " && git ls-files -z --cached --others --exclude-standard"
      .. " | xargs -0 -I{} sh -c 'test -e \"{}\" && echo \"{}\"'"
      .. " | tar cf - -T - | tar xf - -C " .. q(src))
    assert(code == 0, out)
  end)

  teardown(function()
    if dir then run("rm -rf " .. q(dir)) end
  end)

  it("builds and installs into a tree with no extra flag; require and the command work", function()
    assert.is_nil(read(src .. "/build/ormed/core.so"), "the copy must start without a build")
    local out, code = run("cd " .. q(src) .. " && luarocks --lua-version 5.4 --tree " .. q(tree) .. " make")
    assert.equal(0, code, out)
    assert.matches("ormed scm%-1 is now installed in " .. tree:gsub("%p", "%%%0"), out)
    -- only what `luarocks path` sets, from a folder with no ormed in it
    local env = "eval \"$(luarocks --lua-version 5.4 --tree " .. q(tree) .. " path)\" && cd " .. q(dir) .. " && "
    out, code = run(env .. "lua5.4 -e " .. q("local orm = require('ormed'); print(orm._VERSION); "
      .. "print(package.searchpath('ormed', package.path)); "
      .. "print(package.searchpath('ormed.core', package.cpath)); "
      .. "print(require('ormed.core') ~= nil)"))
    assert.equal(0, code, out)
    assert.same({ orm._VERSION, tree .. "/share/lua/5.4/ormed/init.lua",
      tree .. "/lib/lua/5.4/ormed/core.so", "true" }, (function()
        local l = {}
        for line in out:gmatch("[^\n]+") do l[#l + 1] = line end
        return l
      end)())
    out, code = run(env .. q(tree .. "/bin/ormed") .. " --help")
    assert.equal(0, code, out)
    assert.matches("usage: ormed <command>", out)
    -- the installed command runs a migration end to end on SQLite
    out, code = run(env .. "printf 'return { connections = { primary = { url = \"sqlite:app.sqlite\" } } }' "
      .. "> ormed.config.lua && " .. q(tree .. "/bin/ormed") .. " make:migration create_things && "
      .. q(tree .. "/bin/ormed") .. " migrate")
    assert.equal(0, code, out)
    assert.matches("Created migrations/%d+_create_things%.lua", out)
    assert.matches("Migrated%s+%d+_create_things", out)
    out, code = run(env .. q(tree .. "/bin/ormed") .. " frobnicate")
    assert.equal(2, code, out)
  end)

  it("has a release rockspec beside the scm one, and a CHANGELOG starting at it", function()
    local scm, rel = rockspec("ormed-scm-1.rockspec"), rockspec("ormed-0.1.0-1.rockspec")
    assert.equal("scm-1", scm.version)
    assert.equal("0.1.0-1", rel.version)
    assert.equal("v0.1.0", rel.source.tag)
    assert.same(scm.build, rel.build)
    assert.same(scm.dependencies, rel.dependencies)
    assert.same(scm.external_dependencies, rel.external_dependencies)
    assert.equal("ormed 0.1.0", orm._VERSION)
    local changelog = assert(read(root .. "/CHANGELOG.md"))
    local versions = {}
    for v in changelog:gmatch("\n## %[?(%d+%.%d+%.%d+)") do versions[#versions + 1] = v end
    assert.equal("0.1.0", versions[#versions])
    local out, code = run("cd " .. q(root) .. " && luarocks --lua-version 5.4 lint ormed-0.1.0-1.rockspec"
      .. " && luarocks --lua-version 5.4 lint ormed-scm-1.rockspec")
    assert.equal(0, code, out)
  end)
end)
