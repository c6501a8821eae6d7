-- examples/compensating.lua: a transaction cannot span two databases, so a
-- change that touches both is written as steps with compensating actions:
-- when a later step fails, the earlier ones are undone by hand.
-- On SQLite files (no server). Run with `make example`.
local orm = require("ormed")

for _, f in ipairs({ "orders.sqlite", "ledger.sqlite" }) do os.remove(f) end
local orders = orm.DataSource({ name = "orders", driver = orm.SqliteDriverAdapter.file("orders.sqlite") }):init()
local ledger = orm.DataSource({ name = "ledger", driver = orm.SqliteDriverAdapter.file("ledger.sqlite") }):init()

orders:schema():create_table("orders", function(t)
  t:id(); t:string("customer"); t:integer("amount")
end)
ledger:schema():create_table("entries", function(t)
  t:id(); t:integer("order_id"); t:integer("amount"); t:string("note")
end)

local Order = orm.model("Order", { connection = "orders",
  fields = { id = "integer", customer = "string", amount = "integer" } })
local Entry = orm.model("Entry", { table = "entries", connection = "ledger",
  fields = { id = "integer", order_id = "integer", amount = "integer", note = "string" } })

-- First, what does not work: one transaction around both databases.
local ok, err = pcall(orders.transaction, orders, function()
  local o = Order:create({ customer = "ann", amount = 10 })
  Entry:create({ order_id = o.id, amount = 10, note = "sale" })
end)
print("one transaction over two databases:", ok, err.kind)
print("  ...and it rolled back the order too:", Order:count(), "orders")

-- Instead: each database in its own transaction, and compensation on failure.
local function place_order(customer, amount, fail_after_ledger)
  local order, entry
  local placed, e = pcall(function()
    order = orders:transaction(function() return Order:create({ customer = customer, amount = amount }) end)
    entry = ledger:transaction(function()
      return Entry:create({ order_id = order.id, amount = amount, note = "sale" })
    end)
    if fail_after_ledger then error("payment gateway said no") end
  end)
  if not placed then
    if entry then entry:set_connection("ledger"):delete() end
    if order then order:set_connection("orders"):delete() end
    error(e, 0)
  end
  return order
end

place_order("ann", 25)
local failed, why = pcall(place_order, "bob", 40, true)
print("bob's order:", failed and "placed" or ("compensated (" .. tostring(why):match("[^:]+$") .. ")"))
print(("orders: %d, ledger entries: %d, ledger total: %d"):format(Order:count(), Entry:count(),
  Entry:query():sum("amount")))

orders:dispose()
ledger:dispose()
for _, f in ipairs({ "orders.sqlite", "ledger.sqlite" }) do os.remove(f) end
