-- spec/model_json_spec.lua: ormed.json, the encoder/decoder behind json fields.
local orm = require("ormed")
local json = require("ormed.json")

describe("ormed.json", function()
  it("is orm.json", function()
    assert.are.equal(json, orm.json)
  end)

  it("encodes scalars", function()
    assert.are.equal("null", json.encode(nil))
    assert.are.equal("null", json.encode(orm.null))
    assert.are.equal("true", json.encode(true))
    assert.are.equal("false", json.encode(false))
    assert.are.equal("42", json.encode(42))
    assert.are.equal("-7", json.encode(-7))
    assert.are.equal("1.5", json.encode(1.5))
    assert.are.equal("2.0", json.encode(2.0))
    assert.are.equal(0.1, json.decode(json.encode(0.1)))
    assert.are.equal(1 / 3, json.decode(json.encode(1 / 3)))
    assert.are.equal('"hi"', json.encode("hi"))
  end)

  it("escapes strings and keeps UTF-8", function()
    assert.are.equal([["a\"b\\c\n\t\u0001"]], json.encode('a"b\\c\n\t\1'))
    assert.are.equal('"héllo ✓"', json.encode("héllo ✓"))
  end)

  it("encodes arrays and objects with sorted keys", function()
    assert.are.equal("[1,2,3]", json.encode({ 1, 2, 3 }))
    assert.are.equal('{"a":1,"b":[true,null],"c":{"d":"x"}}',
      json.encode({ c = { d = "x" }, a = 1, b = { true, orm.null } }))
    assert.are.equal('{"1":"a","x":2}', json.encode({ "a", x = 2 }))
    assert.are.equal("{}", json.encode({}))
    assert.are.equal("[]", json.encode(json.array()))
    assert.are.equal("{}", json.encode(json.object({})))
  end)

  it("refuses what JSON cannot hold", function()
    local t = {}
    t.self = t
    for _, v in ipairs({ t, function() end, 0 / 0, math.huge, "\255\254" }) do
      local ok, err = pcall(json.encode, v)
      assert.is_false(ok)
      assert.are.equal("invalid_argument", err.kind)
    end
    local ok, err = pcall(json.encode, { [true] = 1 })
    assert.is_false(ok)
    assert.matches("object key", err.message)
  end)

  it("decodes scalars and numbers", function()
    assert.are.equal(orm.null, json.decode("null"))
    assert.is_true(json.decode(" true "))
    assert.is_false(json.decode("false"))
    assert.are.equal(12, json.decode("12"))
    assert.are.equal("integer", math.type(json.decode("12")))
    assert.are.equal("float", math.type(json.decode("12.0")))
    assert.are.equal(-0.5, json.decode("-0.5"))
    assert.are.equal(1500.0, json.decode("1.5e3"))
    assert.are.equal(0, json.decode("0"))
  end)

  it("decodes escapes, unicode and surrogate pairs", function()
    assert.are.equal('a"b\\/\b\f\n\r\t', json.decode([["a\"b\\\/\b\f\n\r\t"]]))
    assert.are.equal("é", json.decode([["\u00e9"]]))
    assert.are.equal("€", json.decode([["\u20AC"]]))
    assert.are.equal("😀", json.decode([["\ud83d\ude00"]]))
  end)

  it("decodes nested structures", function()
    local v = json.decode(' { "a" : [1, {"b": null}, []], "c": {} , "d": "x"} ')
    assert.are.same({ 1, { b = orm.null }, {} }, v.a)
    assert.are.same({}, v.c)
    assert.are.equal("x", v.d)
    assert.are.equal("[]", json.encode(v.a[3]))
    assert.are.equal('{"a":[1,{"b":null},[]],"c":{},"d":"x"}', json.encode(v))
  end)

  it("reports bad input with its position", function()
    local bad = { "", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "tru", "\"abc",
      "[1] x", "\"\\x\"", "\"\\ud800\"", "\"\\udc00\"", "\"a\nb\"", "{1:2}", "nul" }
    for _, s in ipairs(bad) do
      local ok, err = pcall(json.decode, s)
      assert.is_false(ok, s)
      assert.are.equal("invalid_argument", err.kind)
      assert.matches("json: .* at position %d+", err.message)
    end
  end)

  it("refuses input nested too deeply", function()
    local ok, err = pcall(json.decode, string.rep("[", 600) .. string.rep("]", 600))
    assert.is_false(ok)
    assert.matches("nested too deeply", err.message)
  end)
end)
