/* testmain.h: the shared main() of every CUnit test program.
 *
 * Each tests/<name>_test.c defines tests_register(), which adds its suites
 * to the CUnit registry and returns CUE_SUCCESS.  testmain.c runs them with
 * the basic runner, prints CUnit's run summary and one plain line
 * "<name>: N passed, N failed", and exits non-zero when any test or suite
 * failed or CUnit itself reported an error. */
#ifndef AC_TESTMAIN_H
#define AC_TESTMAIN_H

#include <CUnit/CUnit.h>

/* Defined by each test program: register its suites. */
CU_ErrorCode tests_register(void);

/* The absolute path of bin/acbill (from $ACBILL, else "bin/acbill"). */
const char *test_acbill_path(void);

/* The source tree's root (from $ACBILL_SRC, else "."), for fixtures. */
const char *test_src_dir(void);

/* Run a shell command; returns its exit status (0-255), or -1 when it
 * could not be run or was killed by a signal. */
int test_system(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
