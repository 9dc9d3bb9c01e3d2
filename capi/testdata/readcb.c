/*
 * readcb.c - read callbacks (AVC_OP_READ_CB and the read member of
 * avc_object_handlers_t) against `avc server`: the server reads resources
 * whose values the host gives on demand; the read callback is called on
 * the status handlers' thread with each path, sets the value with
 * avc_set_value, and the server gets that value. Without a read callback
 * the engine answers at once with the value it has.
 *
 *   cc -std=c99 -Iinclude capi/testdata/readcb.c -Lbuild -lavc -pthread -o build/readcb
 *   LD_LIBRARY_PATH=build build/readcb coap://127.0.0.1:5683 127.0.0.1:8080
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "legato.h"
#include "interfaces.h"
#include "avc.h"
#include "check.h"
#include "serverapi.h"
#include "statusthread.h"

#define TIMEOUT_MS 15000
#define MAX_CALLS 16

/* What the read callback and the status handler saw; guarded by lock. */
static struct
{
    pthread_mutex_t lock;
    int calls;
    struct
    {
        char path[64];
        int on_status_thread;
        int user_ok;
        int set_rc;
    } call[MAX_CALLS];
} seen;

static int user_tag;

static void status_handler(le_avc_Status_t status, int32_t total, int32_t progress, void* ctx)
{
    (void)status;
    (void)total;
    (void)progress;
    (void)ctx;
    note_status_thread();
}

/* Each read gets the next reading: 20.5, 21.5, ... for the temperature,
 * and the call count for the samples. */
static void on_read(void* user, const char* path)
{
    char value[32];
    int n, rc = 1;
    pthread_mutex_lock(&seen.lock);
    n = seen.calls;
    pthread_mutex_unlock(&seen.lock);
    if (path != NULL && strcmp(path, "/3460/0/1") == 0)
    {
        snprintf(value, sizeof(value), "%d.5", 20 + n);
        rc = avc_set_value(path, value);
    }
    else if (path != NULL && strcmp(path, "/3460/0/3") == 0)
    {
        snprintf(value, sizeof(value), "%d", 100 + n);
        rc = avc_set_value("/3460/0/3/0", value);
    }
    pthread_mutex_lock(&seen.lock);
    if (seen.calls < MAX_CALLS)
    {
        int i = seen.calls;
        snprintf(seen.call[i].path, sizeof(seen.call[i].path), "%s", path ? path : "(null)");
        seen.call[i].on_status_thread = on_status_thread();
        seen.call[i].user_ok = user == &user_tag;
        seen.call[i].set_rc = rc;
    }
    seen.calls++;
    pthread_mutex_unlock(&seen.lock);
}

static int calls(void)
{
    int n;
    pthread_mutex_lock(&seen.lock);
    n = seen.calls;
    pthread_mutex_unlock(&seen.lock);
    return n;
}

static const avc_resource_def_t sensor_resources[] = {
    {1, "Temperature", AVC_TYPE_FLOAT, AVC_OP_READ | AVC_OP_READ_CB, 0, 1},
    {2, "Label", AVC_TYPE_STRING, AVC_OP_READ, 0, 0},
    {3, "Samples", AVC_TYPE_INTEGER, AVC_OP_READ | AVC_OP_READ_CB, 1, 0},
};

static void definition_rules(void)
{
    avc_resource_def_t res[3];
    avc_object_def_t def = {3460, "c sensor", "1.0", 0, 0, res, 3};
    memcpy(res, sensor_resources, sizeof(res));
    res[1].operations = AVC_OP_READ_CB;
    check(avc_object_define(&def, 1) == AVC_ERR_FORMAT, "AVC_OP_READ_CB without AVC_OP_READ: AVC_ERR_FORMAT");
    res[1].operations = AVC_OP_READ | 0x10u;
    check(avc_object_define(&def, 1) == AVC_ERR_FORMAT, "an unknown operations bit (0x10): AVC_ERR_FORMAT");
    memcpy(res, sensor_resources, sizeof(res));
    check(avc_object_define(&def, 1) == AVC_OK, "object 3460 with read-callback resources defined");
}

int main(int argc, char** argv)
{
    const char *server_uri, *api;
    const char* log_level = getenv("AVC_LOG_LEVEL");
    char ep[64], url[256], body[4096], got[128], line[512];
    avc_object_handlers_t handlers = {NULL, NULL, on_read};
    le_avc_StatusEventHandlerRef_t ref;
    long start;
    int n, i, ok;

    if (argc != 3)
    {
        fprintf(stderr, "usage: %s coap://server host:port-of-http-api\n", argv[0]);
        return 2;
    }
    server_uri = argv[1];
    api = argv[2];
    pthread_mutex_init(&seen.lock, NULL);

    check(avc_config_set("AVC_LOG_LEVEL", log_level ? log_level : "warn") == AVC_OK, "AVC_LOG_LEVEL set");
    check(avc_config_set("AVC_READ_TIMEOUT", "0") == AVC_ERR_FORMAT, "AVC_READ_TIMEOUT 0: AVC_ERR_FORMAT");
    check(avc_config_set("AVC_READ_TIMEOUT", "10") == AVC_OK, "AVC_READ_TIMEOUT 10");
    definition_rules();

    snprintf(ep, sizeof(ep), "c-readcb-%ld", (long)getpid());
    check(avc_config_set("AVC_SERVER_URI", server_uri) == AVC_OK, "AVC_SERVER_URI set");
    check(avc_config_set("AVC_ENDPOINT", ep) == AVC_OK, "AVC_ENDPOINT set");
    check(avc_object_set_handlers(&handlers, &user_tag) == AVC_OK, "avc_object_set_handlers with a read callback");
    check(avc_set_value("/3460/0/1", "1.5") == AVC_OK, "the stored temperature 1.5");
    check(avc_set_value("/3460/0/2", "lab") == AVC_OK, "the stored label");
    check(avc_set_value("/3460/0/3/0", "7") == AVC_OK, "the stored sample 7");
    ref = le_avc_AddStatusEventHandler(status_handler, NULL);
    check(ref != NULL, "le_avc_AddStatusEventHandler");
    check(le_avc_StartSession() == LE_OK, "le_avc_StartSession");

    check(api_read_until(api, ep, "/3460/0/2", "\"lab\"", TIMEOUT_MS), "a resource without a read callback reads its stored value");
    check(calls() == 0, "without calling the read callback");

    ok = api_read(api, ep, "/3460/0/1", got, sizeof(got));
    snprintf(line, sizeof(line), "the server reads /3460/0/1: the callback's 20.5 (got %s)", got);
    check(ok && strcmp(got, "\"20.5\"") == 0, line);
    ok = api_read(api, ep, "/3460/0/1", got, sizeof(got));
    snprintf(line, sizeof(line), "and again: 21.5, a new reading (got %s)", got);
    check(ok && strcmp(got, "\"21.5\"") == 0, line);

    /* An instance read asks for both read-callback resources. */
    snprintf(url, sizeof(url), "/api/clients/%s/read/3460/0?format=senml-json", ep);
    n = http(api, "GET", url, NULL, body, sizeof(body));
    snprintf(line, sizeof(line), "the server reads /3460/0 with the callbacks' values (HTTP %d: %.300s)", n, body);
    check(n == 200 && strstr(body, "22.5") != NULL && strstr(body, "103") != NULL && strstr(body, "lab") != NULL, line);

    pthread_mutex_lock(&seen.lock);
    n = seen.calls;
    for (i = 0; i < n && i < MAX_CALLS; i++)
    {
        printf("      call %d: read %s%s\n", i, seen.call[i].path, seen.call[i].on_status_thread ? "" : " (other thread)");
    }
    check(n == 4, "four read callback calls");
    check(n >= 4 && strcmp(seen.call[0].path, "/3460/0/1") == 0 && strcmp(seen.call[1].path, "/3460/0/1") == 0 &&
              strcmp(seen.call[2].path, "/3460/0/1") == 0 && strcmp(seen.call[3].path, "/3460/0/3") == 0,
          "read(\"/3460/0/1\") twice, then /3460/0/1 and /3460/0/3 for the instance");
    for (i = 0; i < n && i < MAX_CALLS; i++)
    {
        if (!seen.call[i].on_status_thread || !seen.call[i].user_ok || seen.call[i].set_rc != AVC_OK)
        {
            break;
        }
    }
    check(n > 0 && i == n, "every call on the status handlers' thread, with the user pointer; avc_set_value in it returned AVC_OK");
    pthread_mutex_unlock(&seen.lock);

    /* Without a read callback the engine answers at once with what it has. */
    check(avc_object_set_handlers(NULL, NULL) == AVC_OK, "avc_object_set_handlers(NULL, NULL) removes the callback");
    start = now_ms();
    ok = api_read(api, ep, "/3460/0/1", got, sizeof(got));
    snprintf(line, sizeof(line), "then a read gets the last value, 22.5 (got %s)", got);
    check(ok && strcmp(got, "\"22.5\"") == 0, line);
    snprintf(line, sizeof(line), "at once, not after AVC_READ_TIMEOUT (%ld ms)", now_ms() - start);
    check(now_ms() - start < 5000, line);
    check(calls() == 4, "and no callback call");

    check(le_avc_StopSession() == LE_OK, "le_avc_StopSession");
    le_avc_RemoveStatusEventHandler(ref);
    check(avc_object_define(NULL, 0) == AVC_OK, "definitions removed at the end");
    return report();
}
