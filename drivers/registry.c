/*
 * drivers/registry.c: finds a built-in driver by name.
 */
#include <string.h>

#include "orm_driver.h"

static const struct {
    const char *name;
    const orm_driver *driver;
} registry_names[] = {
    {"sqlite", &orm_sqlite_driver},     {"sqlite3", &orm_sqlite_driver},
    {"postgres", &orm_postgres_driver}, {"postgresql", &orm_postgres_driver},
    {"pg", &orm_postgres_driver},       {"mysql", &orm_mysql_driver},
    {"mariadb", &orm_mysql_driver},
};

const orm_driver *orm_driver_find(const char *name)
{
    size_t i;
    if (name == NULL)
        return NULL;
    for (i = 0; i < sizeof registry_names / sizeof registry_names[0]; i++)
        if (strcmp(registry_names[i].name, name) == 0)
            return registry_names[i].driver;
    return NULL;
}
