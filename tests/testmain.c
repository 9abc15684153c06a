/* testmain.c: see testmain.h. */
#include "testmain.h"

#include <CUnit/Basic.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

const char *test_acbill_path(void)
{
    const char *p = getenv("ACBILL");
    return p && *p ? p : "bin/acbill";
}

const char *test_src_dir(void)
{
    const char *p = getenv("ACBILL_SRC");
    return p && *p ? p : ".";
}

int test_system(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd)
        return -1;
    fflush(NULL);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

int main(int argc, char **argv)
{
    char *name = basename(argv[0]);
    (void)argc;

    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "%s: cannot initialise CUnit: %s\n", name,
                CU_get_error_msg());
        return 2;
    }
    if (tests_register() != CUE_SUCCESS) {
        fprintf(stderr, "%s: cannot register tests: %s\n", name,
                CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();

    /* Read the counters before the registry is cleaned up (CUnit's
     * basic runner returns success even when tests fail). */
    unsigned ran = CU_get_number_of_tests_run();
    unsigned failed = CU_get_number_of_tests_failed();
    unsigned suites_failed = CU_get_number_of_suites_failed();
    CU_ErrorCode cu_err = CU_get_error();
    printf("\n%s: %u passed, %u failed\n", name, ran - failed,
           failed + suites_failed);
    if (suites_failed)
        printf("%s: %u suite(s) could not be set up\n", name, suites_failed);
    CU_cleanup_registry();
    return (failed || suites_failed || cu_err != CUE_SUCCESS) ? 1 : 0;
}
