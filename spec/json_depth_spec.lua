-- spec/json_depth_spec.lua: json fields have one nesting limit on both
-- sides (orm.json.MAX_DEPTH arrays/objects): a value nested deeper is
-- refused with invalid_argument before anything is written, so every row
-- a model stored can be read back through the model, on every driver.
local helper = require("spec.helper")
local orm = require("ormed")

-- depth nested arrays around 1 ([[...[1]...]]), or objects when `obj`.
local function nested(depth, obj)
  local v = 1
  for _ = 1, depth do v = obj and { k = v } or { v } end
  return v
end

local function depth_of(v)
  local d = 0
  while type(v) == "table" do
    d = d + 1
    v = v[1] or v.k
  end
  return d
end

describe("ormed.json depth", function()
  it("encodes exactly what it decodes", function()
    local max = orm.json.MAX_DEPTH
    assert.are.equal(512, max)
    for _, obj in ipairs({ false, true }) do
      local text = orm.json.encode(nested(max, obj))
      assert.are.equal(max, depth_of(orm.json.decode(text)))
      local err = helper.error_of(orm.json.encode, nested(max + 1, obj))
      assert.are.equal("invalid_argument", err.kind)
      assert.matches("nested too deeply", err.message)
      err = helper.error_of(orm.json.decode, "[" .. text .. "]")
      assert.are.equal("invalid_argument", err.kind)
      assert.matches("nested too deeply", err.message)
    end
  end)
end)

helper.each_driver(function(drv)
  describe("json fields nested deeply", function()
    local ds, Doc

    setup(function()
      ds = drv:data_source()
      drv:create_table(ds, "deep_docs", { { "id", "id" }, { "body", "json" } })
      Doc = orm.model("DeepDoc", { table = "deep_docs", connection = ds.name,
        fields = { id = "integer", body = "json" } })
    end)

    teardown(function()
      drv:drop_table(ds, "deep_docs")
      ds:dispose()
    end)

    before_each(function()
      ds:table("deep_docs"):delete()
    end)

    local function rows()
      return #ds:select("SELECT id FROM deep_docs")
    end

    it("refuses a value nested deeper than the limit before writing it", function()
      local max = orm.json.MAX_DEPTH
      local err = helper.error_of(Doc.create, Doc, { body = nested(max + 1) })
      assert.are.equal("invalid_argument", err.kind)
      assert.matches("nested too deeply", err.message)
      assert.are.equal(0, rows())
      local doc = Doc:create({ body = { a = 1 } })
      err = helper.error_of(function() doc.body = nested(max + 1, true) end)
      assert.are.equal("invalid_argument", err.kind)
      -- grown too deep in place: refused by save, the row keeps its value
      local again = Doc:find(doc.id)
      again.body.a = nested(max)
      err = helper.error_of(Doc.methods.save, again)
      assert.are.equal("invalid_argument", err.kind)
      assert.matches("nested too deeply", err.message)
      assert.are.same({ a = 1 }, Doc:find(doc.id).body)
      assert.are.equal(1, rows())
    end)

    it("reads back what it stored, however deep within the limit", function()
      -- MariaDB's JSON columns (CHECK json_valid) hold at most 31 levels
      local max = drv.name == "mysql" and 31 or orm.json.MAX_DEPTH
      for _, obj in ipairs({ false, true }) do
        local deep = Doc:create({ body = nested(max, obj) })
        assert.are.equal(max, depth_of(Doc:find(deep.id).body))
      end
      local doc = Doc:create({ body = { k = 1 } })
      local again = Doc:find(doc.id)
      again.body.k = nested(max - 1)
      assert.is_true(Doc.methods.save(again))
      assert.are.equal(max, depth_of(Doc:find(doc.id).body))
      assert.are.equal(3, rows())
      if drv.name == "mysql" then
        -- deeper: the server refuses it, and nothing is written
        local err = helper.error_of(Doc.create, Doc, { body = nested(max + 1) })
        assert.are.equal(orm.Error, getmetatable(err))
        assert.are.equal("23000", err.sqlstate)
        assert.are.equal(3, rows())
      end
    end)
  end)
end)
