-- chunk and chunk_by_id on every driver, the way a job queue uses them:
-- fn updates the rows it was given out of the query's filter, and still
-- every row is seen exactly once.
local orm = require("ormed")
local helper = require("spec.helper")

helper.each_driver(function(drv)
  local ds, Job
  local N = 2500

  setup(function()
    ds = drv:data_source()
    drv:create_table(ds, "jobs", { { "id", "id" }, { "state", "string" }, { "name", "string" } })
    Job = orm.model("ChunkJob" .. drv.name, { table = "jobs",
      fields = { id = "integer", state = "string", name = "string" } })
  end)

  teardown(function()
    drv:drop_table(ds, "jobs")
    ds:dispose()
  end)

  before_each(function()
    ds:execute("DELETE FROM jobs")
    local rows = {}
    for i = 1, N do rows[i] = { state = "pending", name = string.format("job%05d", N - i) } end
    ds:table("jobs"):insert(rows)
  end)

  local function mark_done(rows)
    local ids = {}
    for i, r in ipairs(rows) do ids[i] = r.id end
    ds:table("jobs"):where_in("id", ids):update({ state = "done" })
  end

  it("chunk ordered by id sees every pending row while fn moves them out of the filter", function()
    local seen, pages = {}, 0
    local done = ds:table("jobs"):where("state", "pending"):order_by("id"):chunk(100, function(rows)
      pages = pages + 1
      for _, r in ipairs(rows) do
        assert.is_nil(seen[r.id], "a row was handed out twice")
        seen[r.id] = true
      end
      mark_done(rows)
    end)
    assert.is_true(done)
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.are.equal(N, n)
    assert.are.equal(math.ceil(N / 100), pages)
    assert.are.equal(0, ds:table("jobs"):where("state", "pending"):count())
  end)

  it("chunk on a model pages by the primary key", function()
    local n = 0
    Job:query({ connection = ds }):where("state", "pending"):chunk(333, function(jobs)
      n = n + #jobs
      for _, job in ipairs(jobs) do job.state = "done"; job:save() end
    end)
    assert.are.equal(N, n)
    assert.are.equal(0, Job:query({ connection = ds }):where("state", "pending"):count())
  end)

  it("chunk_by_id pages by key whatever the order, and stops when fn returns false", function()
    local n = 0
    ds:table("jobs"):where("state", "pending"):order_by("name", "desc"):chunk_by_id(400, function(rows)
      n = n + #rows
      mark_done(rows)
    end)
    assert.are.equal(N, n)
    local pages = 0
    local r = Job:query({ connection = ds }):chunk_by_id(1000, function() pages = pages + 1; return false end)
    assert.is_false(r)
    assert.are.equal(1, pages)
  end)

  it("chunk on a plain table pages by OFFSET unless ordered by id, and by key only where rows carry it", function()
    local sqls = {}
    local stop = ds:listen(function(ev) sqls[#sqls + 1] = ev.sql end)
    local n = 0
    ds:table("jobs"):chunk(1000, function(rows) n = n + #rows end)          -- no id known: OFFSET
    ds:table("jobs"):select("name"):order_by("id"):chunk(1000, function(rows) n = n + #rows end)
    Job:query({ connection = ds }):select("name"):chunk(1000, function(rows) n = n + #rows end)
    stop()
    assert.are.equal(3 * N, n)
    local keyed = 0
    for _, sql in ipairs(sqls) do if sql:find(" > ", 1, true) then keyed = keyed + 1 end end
    assert.are.equal(0, keyed) -- none of these could page by key
    assert.are.equal("invalid_argument", helper.error_of(function()
      ds:table("jobs"):select("name"):chunk_by_id(10, function() end)
    end).kind)
  end)

  it("chunk honours the query's limit when paging by key", function()
    local n = 0
    ds:table("jobs"):order_by("id"):limit(250):chunk(100, function(rows) n = n + #rows end)
    assert.are.equal(250, n)
  end)

  it("chunk ordered by another column pages with OFFSET, in that order", function()
    local names = {}
    ds:table("jobs"):order_by("name"):limit(300):chunk(128, function(rows)
      for _, r in ipairs(rows) do names[#names + 1] = r.name end
    end)
    assert.are.equal(300, #names)
    for i = 2, #names do assert.is_true(names[i - 1] < names[i]) end
  end)
end)
