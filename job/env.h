/* env.h: settings from the environment (ACBILL_* variables).
 *
 * One reading of a variable for every module: an empty variable is an
 * unset one, and a number is a whole decimal in a stated range. */
#ifndef AC_ENV_H
#define AC_ENV_H

#include "status.h"

/* The value of variable name, or NULL when it is unset or empty. */
const char *env_str(const char *name);

/* Parse variable name as a whole number from min to max into *out; *out
 * is untouched when the variable is unset or empty.  AC_ECONFIG, naming
 * the variable, its value and the range, when it is not such a number. */
ac_status env_long(const char *name, long min, long max, long *out,
                   char *err);

#endif
