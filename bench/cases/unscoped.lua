-- bench/cases/unscoped.lua: W.RANGES range queries of 20 rows on users with a
-- tenant_id column, not scoped (compare bench/cases/scoped.lua).
local T = require("cases.tenant")

return T.case(false)
