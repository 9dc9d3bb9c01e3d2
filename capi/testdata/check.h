/*
 * check.h - the tiny test harness the C test programs share: check()
 * prints one line per check and counts it; report() prints
 * "N passed, N failed" and returns the exit status.
 */
#ifndef AVC_TESTDATA_CHECK_H
#define AVC_TESTDATA_CHECK_H

#include <stdio.h>

static int passed;
static int failed;

static void check(int ok, const char* what)
{
    if (ok)
    {
        passed++;
        printf("ok    %s\n", what);
    }
    else
    {
        failed++;
        printf("FAIL  %s\n", what);
    }
    fflush(stdout);
}

static int report(void)
{
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

#endif
