/*
 * misuse.c - libavc must survive API misuse (reliability catalogue B59/B60):
 * NULL handlers, double and unknown removals, sessions without
 * configuration, stopping twice, bad avc_* arguments. Needs no server.
 *
 *   cc -std=c99 -Iinclude capi/testdata/misuse.c -Lbuild -lavc -pthread -o build/misuse
 *   LD_LIBRARY_PATH=build build/misuse
 *
 * Prints one line per check and "N passed, N failed"; exits 0 only when
 * every check passed. It clears AVC_SERVER_URI itself.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "legato.h"
#include "interfaces.h"
#include "avc.h"

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

static void handler(le_avc_Status_t status, int32_t total, int32_t progress, void* ctx)
{
    (void)status;
    (void)total;
    (void)progress;
    (void)ctx;
}

/* Polls until an event with the given status arrives, up to timeout_ms. */
static int wait_status(int32_t status, int timeout_ms)
{
    avc_event_t ev;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;)
    {
        long elapsed;
        clock_gettime(CLOCK_MONOTONIC, &now);
        elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (elapsed >= timeout_ms)
        {
            return 0;
        }
        if (avc_poll_event(&ev, (int)(timeout_ms - elapsed)) != AVC_OK)
        {
            return 0;
        }
        if (ev.type == AVC_EVENT_STATUS && ev.status == status)
        {
            return 1;
        }
    }
}

int main(void)
{
    le_avc_StatusEventHandlerRef_t ref;
    le_avc_StatusEventHandlerRef_t ref2;
    char buf[256];
    avc_event_t ev;
    int n;

    unsetenv("AVC_SERVER_URI");
    unsetenv("AVC_LIFETIME");
    setenv("AVC_LOG_LEVEL", "error", 1); /* keep the expected warnings quiet */

    /* Legato personality: handlers. */
    check(le_avc_TryConnectService() == LE_OK, "TryConnectService returns LE_OK");
    le_avc_ConnectService();
    le_avc_SetServerDisconnectHandler(NULL, NULL);
    le_avc_SetServerDisconnectHandler(NULL, (void*)1);
    check(1, "ConnectService / SetServerDisconnectHandler(NULL, (void*)1) do not crash");

    check(le_avc_AddStatusEventHandler(NULL, NULL) == NULL, "AddStatusEventHandler(NULL) returns NULL");
    n = avc_last_error(buf, sizeof(buf));
    check(n > 0 && strstr(buf, "NULL") != NULL, "avc_last_error explains the NULL handler");

    ref = le_avc_AddStatusEventHandler(handler, (void*)1);
    check(ref != NULL, "AddStatusEventHandler returns a non-NULL reference (small-integer context)");
    ref2 = le_avc_AddStatusEventHandler(handler, NULL);
    check(ref2 != NULL && ref2 != ref, "a second handler gets a distinct reference");
    le_avc_RemoveStatusEventHandler(ref);
    le_avc_RemoveStatusEventHandler(ref);
    check(1, "removing a handler twice does not crash");
    le_avc_RemoveStatusEventHandler((le_avc_StatusEventHandlerRef_t)(uintptr_t)0x12345);
    le_avc_RemoveStatusEventHandler(NULL);
    check(1, "removing an unknown or NULL reference does not crash");
    le_avc_RemoveStatusEventHandler(ref2);

    /* Sessions without configuration. */
    check(le_avc_StartSession() == LE_FAULT, "StartSession without AVC_SERVER_URI returns LE_FAULT");
    n = avc_last_error(buf, sizeof(buf));
    check(n > 0 && strstr(buf, "AVC_SERVER_URI") != NULL, "avc_last_error names AVC_SERVER_URI");
    check(le_avc_StopSession() == LE_DUPLICATE, "StopSession when not started returns LE_DUPLICATE");
    check(le_avc_StopSession() == LE_DUPLICATE, "StopSession again returns LE_DUPLICATE");

    /* LE_RESULT_TXT. */
    check(strcmp(LE_RESULT_TXT(LE_OK), "LE_OK") == 0, "LE_RESULT_TXT(LE_OK)");
    check(strcmp(LE_RESULT_TXT(LE_DUPLICATE), "LE_DUPLICATE") == 0, "LE_RESULT_TXT(LE_DUPLICATE)");
    check(strcmp(LE_RESULT_TXT(LE_SUSPENDED), "LE_SUSPENDED") == 0, "LE_RESULT_TXT(LE_SUSPENDED)");
    check(strcmp(LE_RESULT_TXT((le_result_t)-99), "(unknown)") == 0, "LE_RESULT_TXT of an unknown value");
    check(strcmp(LE_RESULT_TXT((le_result_t)7), "(unknown)") == 0, "LE_RESULT_TXT of a positive value");

    /* avc.h: configuration. */
    check(avc_config_set(NULL, "x") == AVC_ERR_BAD_PARAMETER, "avc_config_set(NULL name)");
    check(avc_config_set("AVC_ENDPOINT", NULL) == AVC_ERR_BAD_PARAMETER, "avc_config_set(NULL value)");
    check(avc_config_set("AVC_NOPE", "x") == AVC_ERR_NOT_FOUND, "avc_config_set(unknown name)");
    check(avc_config_set("AVC_LIFETIME", "ten") == AVC_ERR_FORMAT, "avc_config_set(AVC_LIFETIME, \"ten\")");
    check(avc_config_set("AVC_LIFETIME", "120") == AVC_OK, "avc_config_set(AVC_LIFETIME, \"120\")");
    check(avc_config_get("AVC_LIFETIME", buf, sizeof(buf)) == AVC_OK && strcmp(buf, "120") == 0,
          "avc_config_get(AVC_LIFETIME) reads it back");
    check(avc_config_set("AVC_LIFETIME", "") == AVC_OK
          && avc_config_get("AVC_LIFETIME", buf, sizeof(buf)) == AVC_OK && strcmp(buf, "86400") == 0,
          "an empty value restores the default");
    check(avc_config_set("AVC_PSK_KEY", "00112233") == AVC_OK
          && avc_config_get("AVC_PSK_KEY", buf, sizeof(buf)) == AVC_OK && strcmp(buf, "(set)") == 0,
          "avc_config_get never returns AVC_PSK_KEY");
    check(avc_config_set("AVC_PSK_KEY", "xyz") == AVC_ERR_FORMAT, "AVC_PSK_KEY must be hex");
    check(avc_config_set("AVC_ENDPOINT", "a-rather-long-endpoint-name") == AVC_OK
          && avc_config_get("AVC_ENDPOINT", buf, 5) == AVC_ERR_OVERFLOW && strcmp(buf, "a-ra") == 0,
          "avc_config_get truncates and returns AVC_ERR_OVERFLOW");
    check(avc_config_get("AVC_ENDPOINT", NULL, 10) == AVC_ERR_BAD_PARAMETER, "avc_config_get(NULL buf)");
    check(avc_config_get("AVC_ENDPOINT", buf, 0) == AVC_ERR_BAD_PARAMETER, "avc_config_get(size 0)");
    check(avc_config_get(NULL, buf, sizeof(buf)) == AVC_ERR_BAD_PARAMETER, "avc_config_get(NULL name)");
    check(avc_config_get("AVC_NOPE", buf, sizeof(buf)) == AVC_ERR_NOT_FOUND, "avc_config_get(unknown name)");
    check(avc_last_error(NULL, 0) > 0, "avc_last_error(NULL, 0) returns the length");
    check(avc_last_error(NULL, 4) == AVC_ERR_BAD_PARAMETER, "avc_last_error(NULL, 4)");
    check(avc_config_get("AVC_ENDPOINT", buf, sizeof(buf)) == AVC_OK && avc_last_error(NULL, 0) == 0,
          "success clears the last error");

    /* avc.h: strings. */
    check(strcmp(avc_strerror(AVC_ERR_TIMEOUT), "AVC_ERR_TIMEOUT") == 0, "avc_strerror(AVC_ERR_TIMEOUT)");
    check(strcmp(avc_strerror(12345), "AVC_ERR_UNKNOWN") == 0, "avc_strerror(unknown)");
    check(avc_version() != NULL && avc_version()[0] != '\0', "avc_version is not empty");

    /* avc.h: polling. */
    check(avc_poll_event(&ev, 0) == AVC_ERR_NOT_PERMITTED, "polling while the queue is off");
    check(avc_events_enable_poll(1) == AVC_OK, "avc_events_enable_poll(1)");
    check(avc_poll_event(NULL, 0) == AVC_ERR_BAD_PARAMETER, "avc_poll_event(NULL)");
    check(avc_poll_event(&ev, 0) == AVC_ERR_TIMEOUT, "avc_poll_event on an empty queue, no wait");
    check(avc_poll_event(&ev, 50) == AVC_ERR_TIMEOUT, "avc_poll_event on an empty queue, 50 ms");

    /* An invalid server URI. */
    check(avc_config_set("AVC_SERVER_URI", "http://example.com") == AVC_OK, "any URI is stored");
    check(le_avc_StartSession() == LE_FAULT, "StartSession with an http:// URI returns LE_FAULT");

    /* Start and stop without a server listening: nothing answers, the
     * session still starts, stops and restarts. */
    check(avc_config_set("AVC_SERVER_URI", "coap://127.0.0.1:9") == AVC_OK, "set a server nobody answers");
    check(le_avc_StartSession() == LE_OK, "StartSession returns LE_OK");
    check(le_avc_StartSession() == LE_DUPLICATE, "StartSession again returns LE_DUPLICATE");
    check(le_avc_StopSession() == LE_OK, "StopSession returns LE_OK");
    check(le_avc_StopSession() == LE_DUPLICATE, "StopSession again returns LE_DUPLICATE");
    check(wait_status(LE_AVC_SESSION_STOPPED, 15000), "LE_AVC_SESSION_STOPPED arrives");
    check(le_avc_StartSession() == LE_OK, "StartSession after a stop returns LE_OK");
    check(le_avc_StopSession() == LE_OK, "StopSession returns LE_OK");
    check(wait_status(LE_AVC_SESSION_STOPPED, 15000), "LE_AVC_SESSION_STOPPED arrives again");

    check(avc_events_enable_poll(0) == AVC_OK, "avc_events_enable_poll(0)");
    check(avc_poll_event(&ev, 10) == AVC_ERR_NOT_PERMITTED, "polling after the queue is off");

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
