/* env.c: see env.h. */
#include "env.h"

#include <errno.h>
#include <stdlib.h>

const char *env_str(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : NULL;
}

ac_status env_long(const char *name, long min, long max, long *out,
                   char *err)
{
    const char *v = env_str(name);
    char *end;
    long x;

    if (v == NULL)
        return AC_OK;
    errno = 0;
    x = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < min || x > max)
        return ac_fail(err, AC_ECONFIG, "%s=%s: expected a whole number "
                       "from %ld to %ld", name, v, min, max);
    *out = x;
    return AC_OK;
}
