/* drivers/postgres.c: placeholder until the libpq driver lands. */
#include "orm_driver.h"
static int pg_open(const orm_params *p, void **out, orm_error *err)
{
    (void)p;
    *out = NULL;
    return orm_error_set(err, ORM_E_CONNECTION_FAILED, "postgres driver not built yet");
}
static const orm_dialect pg_dialect = {"postgres", '"', ORM_PH_DOLLAR, 1, ORM_UPSERT_ON_CONFLICT, 65535, NULL, "BEGIN"};
const orm_driver orm_postgres_driver = {"postgres", &pg_dialect, pg_open, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
