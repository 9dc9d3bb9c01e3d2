/*
 * misuse.c - libavc must survive API misuse (reliability catalogue B59/B60):
 * NULL handlers, double and unknown removals, sessions without
 * configuration, stopping twice, bad avc_* arguments, values and object
 * definitions the engine refuses. Needs no server.
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
#include "check.h"


/* A custom object in the OMA registry format: multiple instances, a
 * string, an integer and an executable resource. */
static const char test_object_xml[] =
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
    "<LWM2M><Object ObjectType=\"MODefinition\">"
    "<Name>misuse test</Name><ObjectID>3442</ObjectID><ObjectURN>urn:oma:lwm2m:oma:3442</ObjectURN>"
    "<MultipleInstances>Multiple</MultipleInstances><Mandatory>Optional</Mandatory><Resources>"
    "<Item ID=\"110\"><Name>String</Name><Operations>RW</Operations><MultipleInstances>Single</MultipleInstances>"
    "<Mandatory>Mandatory</Mandatory><Type>String</Type></Item>"
    "<Item ID=\"120\"><Name>Integer</Name><Operations>RW</Operations><MultipleInstances>Single</MultipleInstances>"
    "<Mandatory>Optional</Mandatory><Type>Integer</Type></Item>"
    "<Item ID=\"200\"><Name>Reset</Name><Operations>E</Operations><MultipleInstances>Single</MultipleInstances>"
    "<Mandatory>Optional</Mandatory><Type></Type></Item>"
    "</Resources></Object></LWM2M>";

/* The same document defining the built-in Device object. */
static const char device_object_xml[] =
    "<LWM2M><Object><Name>Device</Name><ObjectID>3</ObjectID><MultipleInstances>Single</MultipleInstances>"
    "<Resources><Item ID=\"0\"><Name>M</Name><Operations>R</Operations><MultipleInstances>Single</MultipleInstances>"
    "<Type>String</Type></Item></Resources></Object></LWM2M>";

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

    /* avc.h: values and custom objects, without a session. */
    check(avc_set_value(NULL, "1") == AVC_ERR_BAD_PARAMETER, "avc_set_value(NULL path)");
    check(avc_set_value("/3/x/9", "1") == AVC_ERR_BAD_PARAMETER, "avc_set_value of a malformed path");
    check(avc_set_value("/3/0", "1") == AVC_ERR_BAD_PARAMETER, "avc_set_value of an instance path");
    check(avc_set_value("/3/0/9", "50") == AVC_OK, "avc_set_value(/3/0/9, 50) before a session is remembered");
    check(avc_last_error(NULL, 0) == 0, "success clears the last error");
    check(avc_set_value("/3/0/9", "fifty") == AVC_ERR_BAD_PARAMETER, "avc_set_value of a non-integer battery level");
    n = avc_last_error(buf, sizeof(buf));
    check(n > 0 && strstr(buf, "/3/0/9") != NULL, "avc_last_error names the path");
    check(avc_set_value("/3/0/4", "1") == AVC_ERR_BAD_PARAMETER, "avc_set_value of an executable resource");
    check(avc_set_value("/3/0/9", NULL) == AVC_ERR_BAD_PARAMETER, "NULL removes only a resource instance");
    check(avc_set_value("/3/0/11/1", "5") == AVC_OK, "avc_set_value of an error code instance");
    check(avc_set_value("/3/0/11/1", NULL) == AVC_OK, "avc_set_value(NULL) removes it");
    check(avc_set_value("/3442/0/110", "x") == AVC_ERR_BAD_PARAMETER, "a value of an undefined object is refused");
    {
        const char* battery[] = {"/3/0/9"};
        const char* holes[] = {"/3/0/9", NULL};
        check(avc_send(NULL, 1) == AVC_ERR_BAD_PARAMETER, "avc_send(NULL paths)");
        check(avc_send(battery, 0) == AVC_ERR_BAD_PARAMETER, "avc_send of no paths");
        check(avc_send(holes, 2) == AVC_ERR_BAD_PARAMETER, "avc_send with a NULL path");
        check(avc_send(battery, 1) == AVC_ERR_NOT_PERMITTED, "avc_send without a session");
        n = avc_last_error(buf, sizeof(buf));
        check(n > 0 && strstr(buf, "session") != NULL, "avc_last_error says there is no session");
    }
    check(avc_object_define_xml(NULL, 5) == AVC_ERR_BAD_PARAMETER, "avc_object_define_xml(NULL, 5)");
    check(avc_object_define_xml("<LWM2M><Object>", 15) == AVC_ERR_FORMAT, "avc_object_define_xml of truncated XML");
    n = avc_last_error(buf, sizeof(buf));
    check(n > 0 && strstr(buf, "object definition") != NULL, "avc_last_error explains the bad XML");
    check(avc_object_define_xml("", 0) == AVC_ERR_FORMAT, "avc_object_define_xml of an empty document");
    check(avc_object_define_xml("<html></html>", 13) == AVC_ERR_FORMAT, "avc_object_define_xml of another root element");
    check(avc_object_define_xml(device_object_xml, strlen(device_object_xml)) == AVC_ERR_BAD_PARAMETER,
          "avc_object_define_xml of a built-in object");
    check(avc_object_define_xml(test_object_xml, strlen(test_object_xml)) == AVC_OK, "avc_object_define_xml of object 3442");
    check(avc_object_define_xml(test_object_xml, strlen(test_object_xml)) == AVC_OK, "defining it again replaces it");
    check(avc_set_value("/3442/0/110", "hello") == AVC_OK, "avc_set_value of a defined object's resource");
    check(avc_set_value("/3442/1/120", "7") == AVC_OK, "avc_set_value in a second instance");
    check(avc_set_value("/3442/1/120", "seven") == AVC_ERR_BAD_PARAMETER, "a non-integer for an integer resource");
    check(avc_set_value("/3442/0/200", "1") == AVC_ERR_BAD_PARAMETER, "a value for an executable resource");
    check(avc_set_value("/3442/0/999", "1") == AVC_ERR_BAD_PARAMETER, "a value for an undefined resource");

    /* An invalid server URI. */
    check(avc_config_set("AVC_SERVER_URI", "http://example.com") == AVC_OK, "any URI is stored");
    check(le_avc_StartSession() == LE_FAULT, "StartSession with an http:// URI returns LE_FAULT");

    /* Start and stop without a server listening: nothing answers, the
     * session still starts, stops and restarts. */
    check(avc_config_set("AVC_SERVER_URI", "coap://127.0.0.1:9") == AVC_OK, "set a server nobody answers");
    check(le_avc_StartSession() == LE_OK, "StartSession returns LE_OK");
    check(le_avc_StartSession() == LE_DUPLICATE, "StartSession again returns LE_DUPLICATE");
    check(avc_set_value("/3/0/9", "51") == AVC_OK, "avc_set_value while a session runs");
    check(avc_set_value("/3442/0/110", "while running") == AVC_OK, "avc_set_value of a custom object while a session runs");
    check(avc_set_value("/3/0/9", "x") == AVC_ERR_BAD_PARAMETER, "the running engine refuses a bad value");
    {
        const char* battery[] = {"/3/0/9"};
        const char* bad[] = {"/3/x"};
        const char* security[] = {"/0/0"};
        check(avc_send(battery, 1) == AVC_OK, "avc_send while a session runs is queued");
        check(avc_send(bad, 1) == AVC_ERR_BAD_PARAMETER, "avc_send of a malformed path");
        check(avc_send(security, 1) == AVC_ERR_BAD_PARAMETER, "avc_send of the Security object");
    }
    check(le_avc_StopSession() == LE_OK, "StopSession returns LE_OK");
    check(le_avc_StopSession() == LE_DUPLICATE, "StopSession again returns LE_DUPLICATE");
    check(wait_status(LE_AVC_SESSION_STOPPED, 15000), "LE_AVC_SESSION_STOPPED arrives");
    check(avc_object_define_xml(NULL, 0) == AVC_OK, "avc_object_define_xml(NULL, 0) removes the definitions");
    check(avc_set_value("/3442/0/110", "x") == AVC_ERR_BAD_PARAMETER, "values of removed objects are refused");
    check(le_avc_StartSession() == LE_OK, "StartSession after a stop returns LE_OK (remembered 3442 values are dropped)");
    check(avc_set_value("/3/0/9", "52") == AVC_OK, "avc_set_value in the second session");
    check(le_avc_StopSession() == LE_OK, "StopSession returns LE_OK");
    check(wait_status(LE_AVC_SESSION_STOPPED, 15000), "LE_AVC_SESSION_STOPPED arrives again");

    check(avc_events_enable_poll(0) == AVC_OK, "avc_events_enable_poll(0)");
    check(avc_poll_event(&ev, 10) == AVC_ERR_NOT_PERMITTED, "polling after the queue is off");

    return report();
}
