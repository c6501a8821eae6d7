-- spec/names_and_urls_spec.lua: catalog lookups with names outside the
-- Basic Multilingual Plane ("😀") answer instead of raising, and a
-- database URL or adapter with a bad port says which port is wrong.
local helper = require("spec.helper")
local orm = require("ormed")

helper.each_driver(function(drv)
  describe("catalog lookups with 4-byte UTF-8 names", function()
    local ds, schema

    setup(function()
      ds = drv:data_source()
      schema = ds:schema()
      drv:create_table(ds, "plain_names", { { "id", "id" }, { "title", "string" } })
    end)

    teardown(function()
      drv:drop_table(ds, "plain_names")
      ds:dispose()
    end)

    it("answers false for names that do not exist", function()
      for _, name in ipairs({ "😀", "tbl_😀", "𝔘" }) do
        assert.is_false(schema:has_table(name))
        assert.is_false(schema:has_column(name, "id"))
        assert.is_false(schema:has_column("plain_names", name))
        assert.is_false(schema:has_index(name, name))
        assert.is_false(schema:has_index("plain_names", name))
        assert.are.same({}, schema:columns(name))
      end
      assert.is_true(schema:has_table("plain_names"))
      assert.is_true(schema:has_column("plain_names", "title"))
      assert.are.same({ "id", "title" }, schema:columns("plain_names"))
      -- table names compare exactly
      assert.is_false(schema:has_table("PLAIN_NAMES"))
    end)

    it("finds a table with such a name where the database allows one", function()
      local ok, err = pcall(drv.create_table, drv, ds, "t😀", { { "id", "id" }, { "c😀", "string" } })
      if drv.name == "mysql" then
        -- MariaDB/MySQL identifiers hold only BMP characters
        assert.is_false(ok)
        assert.are.equal(orm.Error, getmetatable(err))
        assert.is_false(schema:has_table("t😀"))
        return
      end
      assert.is_true(ok, tostring(err))
      assert.is_true(schema:has_table("t😀"))
      assert.is_true(schema:has_column("t😀", "c😀"))
      assert.are.same({ "id", "c😀" }, schema:columns("t😀"))
      drv:drop_table(ds, "t😀")
      assert.is_false(schema:has_table("t😀"))
    end)
  end)

  if drv.name ~= "sqlite" then
    describe("ports in database URLs and adapters", function()
      local schemes = drv.name == "postgres" and { "postgres", "postgresql" } or { "mysql", "mariadb" }
      local Adapter = drv.name == "postgres" and orm.PostgresDriverAdapter or orm.MySqlDriverAdapter

      local function bad_port(f, ...)
        local err = helper.error_of(f, ...)
        assert.are.equal("invalid_argument", err.kind)
        assert.matches("port", err.message)
        assert.is_nil(err.message:find("Sekr1t", 1, true))
        return err
      end

      it("names a port that is not a number", function()
        for _, scheme in ipairs(schemes) do
          local err = bad_port(orm.driver_from_url, scheme .. "://user:Sekr1t@127.0.0.1:abc/db")
          assert.truthy(err.message:find("'abc'", 1, true))
          assert.is_nil(err.message:find("127.0.0.1:abc", 1, true))
          bad_port(orm.driver_from_url, scheme .. "://user:Sekr1t@[::1]:x5/db")
          bad_port(orm.driver_from_url, scheme .. "://user:Sekr1t@localhost:5432x/db")
          bad_port(orm.driver_from_url, scheme .. "://user:Sekr1t@localhost/db?port=abc")
        end
        bad_port(Adapter, { host = "127.0.0.1", port = "abc" })
        bad_port(Adapter, { host = "127.0.0.1", port = 5432.5 })
      end)

      it("refuses a port out of range", function()
        for _, scheme in ipairs(schemes) do
          for _, port in ipairs({ "0", "65536", "99999", "-1" }) do
            local err = bad_port(orm.driver_from_url, scheme .. "://user:Sekr1t@localhost:" .. port .. "/db")
            assert.truthy(err.message:find("'" .. port .. "'", 1, true))
          end
        end
        bad_port(Adapter, { host = "127.0.0.1", port = 0 })
        bad_port(Adapter, { host = "127.0.0.1", port = 70000 })
      end)

      it("keeps host and port apart, and connects on a good port", function()
        for _, scheme in ipairs(schemes) do
          local p = orm.driver_from_url(scheme .. "://u@[::1]:6543/db").params
          assert.are.same({ "::1", 6543 }, { p.host, p.port })
          p = orm.driver_from_url(scheme .. "://u@db.example:65535/db").params
          assert.are.same({ "db.example", 65535 }, { p.host, p.port })
          p = orm.driver_from_url(scheme .. "://u@db.example/db").params
          assert.are.same({ "db.example" }, { p.host, p.port })
        end
        assert.are.equal(1234, Adapter({ host = "h", port = "1234" }).params.port)
        local url_port = tonumber(drv.url:match(":(%d+)/"))
        local ds = orm.DataSource({ name = drv.name .. "_port_ok", driver = orm.driver_from_url(drv.url) }):init()
        assert.are.equal(url_port, ds.driver.params.port)
        assert.are.equal(1, ds:select("SELECT 1 AS one")[1].one)
        ds:dispose()
      end)
    end)
  end
end)
