-- bench/cases/scoped.lua: W.RANGES range queries of 20 rows on users with a
-- tenant_id column, tenant-scoped through the data source's scope registry
-- (register_scope(User, fn, "tenant") adds tenant_id = ?).
local T = require("cases.tenant")

return T.case(true)
