-- spec/connection_names_spec.lua: a connection name must name something:
-- "" and a blank name ("   ") are refused with invalid_argument by every
-- way of making or registering a connection, and nothing is registered.
local helper = require("spec.helper")
local orm = require("ormed")

local BLANKS = { "", "   ", "\t", " \n " }

helper.each_driver(function(drv)
  describe("connection names", function()
    local manager
    local register = orm["register_" .. drv.name .. "_orm_connection"]

    before_each(function()
      manager = orm.ConnectionManager()
    end)

    local function refused(f, ...)
      local err = helper.error_of(f, ...)
      assert.are.equal("invalid_argument", err.kind)
      return err
    end

    it("refuses an empty or blank DataSource name", function()
      for _, name in ipairs(BLANKS) do
        refused(orm.DataSource, { name = name, driver = drv.adapter(), manager = manager })
        refused(orm.OrmConnection, { name = name, driver = drv.adapter(), manager = manager })
      end
      assert.are.same({}, manager:names())
      local err = refused(orm.DataSource, { name = "   ", driver = drv.adapter() })
      assert.truthy(err.message:find('"   "', 1, true))
    end)

    it("refuses an empty or blank ConnectionConfig name", function()
      for _, name in ipairs(BLANKS) do
        refused(orm.ConnectionConfig, { name = name })
      end
    end)

    it("refuses an empty or blank name in the registration helpers", function()
      local database = orm.DatabaseConfig({ driver = drv.name,
        options = drv.url and { url = drv.url } or { memory = true } })
      local builder = function(c) return orm.OrmConnection({ config = c, driver = drv.adapter() }) end
      for _, name in ipairs(BLANKS) do
        refused(register, { name = name, database = database, manager = manager })
        refused(manager.register, manager, name, { name = "ok" }, builder)
        refused(orm.OrmConnectionFactory({ manager = manager }).register,
          orm.OrmConnectionFactory({ manager = manager }), { name = name, builder = builder })
      end
      assert.are.same({}, manager:names())
      -- a real name still works, on this driver
      local h = register({ name = "named", database = database, manager = manager })
      assert.are.equal(drv.name, manager:connection("named"):dialect())
      h:dispose()
    end)

    it("refuses an empty or blank tenant id", function()
      local tenants = orm.TenantManager({ driver = function() return drv.adapter() end,
        manager = manager })
      for _, id in ipairs(BLANKS) do
        refused(tenants.register, tenants, id)
      end
      assert.are.same({}, tenants:list())
      assert.are.same({}, manager:names())
    end)
  end)
end)
