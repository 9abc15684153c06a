/* migrate.h: versioned schema migrations.
 *
 * Migrations are the files sql/migrations/NNN_name.sql, applied in NNN
 * order, each once, recorded in billing.schema_migrations with the file's
 * SHA-256.  The whole upgrade is one transaction under an advisory lock, so
 * two concurrent `acbill migrate` never interleave and a failure leaves the
 * database as it was. */
#ifndef AC_MIGRATE_H
#define AC_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "status.h"

/* Find the directory holding migrations/: $ACBILL_SQL_DIR, else
 * <executable dir>/../share/acbill/sql, else <executable dir>/../sql, else
 * the build-time default.  Writes it into dir (len bytes). */
ac_status migrate_find_sql_dir(char *dir, size_t len, char *err);

/* Apply every migration in sql_dir/migrations not yet applied.  *applied
 * receives how many were applied (0 when the schema was current).  A
 * migration already applied whose file has since changed is reported as a
 * warning, never re-run. */
ac_status migrate_apply(PGconn *conn, const char *sql_dir, int *applied,
                        char *err);

/* AC_OK when the schema is at least at the newest version known to this
 * binary's SQL directory; AC_ECONFIG with "run acbill migrate" otherwise. */
ac_status migrate_check(PGconn *conn, const char *sql_dir, char *err);

#endif
