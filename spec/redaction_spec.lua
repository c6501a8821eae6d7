-- spec/redaction_spec.lua: a connection error never shows the password,
-- and stays readable: the password is redacted where it is given as one
-- (password=..., scheme://user:password@), and a password of 8 bytes or
-- more wherever it occurs, so a short or common password (one letter, the
-- user's own name) no longer turns every matching word into "***".
local helper = require("spec.helper")
local orm = require("ormed")

helper.each_driver(function(drv)
  if drv.name == "sqlite" then return end -- no passwords
  describe("passwords in connection errors", function()
    local base = orm.driver_from_url(drv.url).params
    local Adapter = drv.name == "postgres" and orm.PostgresDriverAdapter or orm.MySqlDriverAdapter
    local n = 0

    -- The connection_failed error of opening a data source with base's
    -- settings changed by `with`.
    local function failure(with)
      local t = { host = base.host, port = base.port, username = base.username,
        password = base.password, database = base.database, socket = base.socket }
      for k, v in pairs(with) do t[k] = v end
      n = n + 1
      local ds = orm.DataSource({ name = drv.name .. "_redact" .. n, driver = Adapter(t),
        manager = orm.ConnectionManager() })
      local err = helper.error_of(ds.init, ds)
      assert.are.equal("connection_failed", err.kind)
      return err.message, tostring(err)
    end

    it("shows the user name when the password is the same word", function()
      local msg = failure({ username = "accept", password = "accept" })
      assert.truthy(msg:find("accept", 1, true), msg)
      assert.is_nil(msg:find("***", 1, true), msg)
    end)

    it("keeps the message readable with a one-letter password", function()
      local msg = failure({ password = "e" })
      assert.truthy(msg:find(base.username, 1, true), msg)
      assert.is_nil(msg:find("***", 1, true), msg)
      local plain = failure({ password = "definitely-wrong-1" })
      -- the same message as with any other wrong password
      assert.are.equal(plain, msg)
    end)

    it("never shows a long password with quotes and spaces, wherever it lands", function()
      local pw = [[it's a "pass word"]]
      -- pasted into the host by mistake: the driver echoes the host name
      local msg, text = failure({ host = "db-" .. pw .. ".invalid", password = pw })
      assert.is_nil(msg:find(pw, 1, true), msg)
      assert.is_nil(text:find(pw, 1, true), text)
      assert.truthy(msg:find("***", 1, true), msg)
      msg = failure({ password = pw })
      assert.is_nil(msg:find(pw, 1, true), msg)
      assert.truthy(msg:find(base.username, 1, true), msg)
    end)

    it("redacts a password given as one, however short", function()
      -- a conninfo fragment or a URL pasted into the database name is echoed
      -- by the server; the real password lets the login through
      local msg = failure({ database = "nodb password=x extra" })
      assert.truthy(msg:find("password=*** extra", 1, true), msg)
      msg = failure({ database = "nodb password='a b\\'c' extra" })
      assert.truthy(msg:find("password=*** extra", 1, true), msg)
      assert.is_nil(msg:find("a b", 1, true), msg)
      msg = failure({ database = "x://someone:q@elsewhere/nodb" })
      assert.truthy(msg:find("://someone:***@elsewhere/nodb", 1, true), msg)
      assert.is_nil(msg:find(":q@", 1, true), msg)
    end)
  end)
end)
