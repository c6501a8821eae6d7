/* drivers/mysql.c: placeholder until the libmysqlclient driver lands. */
#include "orm_driver.h"
static int my_open(const orm_params *p, void **out, orm_error *err)
{
    (void)p;
    *out = NULL;
    return orm_error_set(err, ORM_E_CONNECTION_FAILED, "mysql driver not built yet");
}
static const orm_dialect my_dialect = {"mysql", '`', ORM_PH_QMARK, 0, ORM_UPSERT_ON_DUPLICATE, 65535, "18446744073709551615", "START TRANSACTION"};
const orm_driver orm_mysql_driver = {"mysql", &my_dialect, my_open, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
