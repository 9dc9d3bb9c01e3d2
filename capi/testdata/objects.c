/*
 * objects.c - custom objects declared field by field (avc_object_define)
 * and the object callbacks (avc_object_set_handlers), against `avc
 * server`: the definition rules and their result codes, then a session in
 * which the server reads a value the host set, writes values (the write
 * callback gets the path and the value, on the status handlers' thread,
 * and may call libavc from there) and executes a resource with arguments
 * (the execute callback gets them).
 *
 *   cc -std=c99 -Iinclude capi/testdata/objects.c -Lbuild -lavc -pthread -o build/objects
 *   LD_LIBRARY_PATH=build build/objects coap://127.0.0.1:5683 127.0.0.1:8080
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

/* What the callbacks and the status handler saw; guarded by lock. */
static struct
{
    pthread_mutex_t lock;
    int started;
    int calls;
    struct
    {
        char kind;          /* 'w' or 'x' */
        char path[64];
        char text[128];     /* the value or the arguments */
        int text_null;
        int on_status_thread;
        int user_ok;
        int set_rc;         /* avc_set_value from inside the write callback */
    } call[MAX_CALLS];
} seen;

static int user_tag;

static void status_handler(le_avc_Status_t status, int32_t total, int32_t progress, void* ctx)
{
    (void)total;
    (void)progress;
    (void)ctx;
    note_status_thread();
    pthread_mutex_lock(&seen.lock);
    if (status == LE_AVC_SESSION_STARTED)
    {
        seen.started = 1;
    }
    pthread_mutex_unlock(&seen.lock);
}

static void record(char kind, void* user, const char* path, const char* text, int set_rc)
{
    pthread_mutex_lock(&seen.lock);
    if (seen.calls < MAX_CALLS)
    {
        int i = seen.calls;
        seen.call[i].kind = kind;
        snprintf(seen.call[i].path, sizeof(seen.call[i].path), "%s", path ? path : "(null)");
        snprintf(seen.call[i].text, sizeof(seen.call[i].text), "%s", text ? text : "");
        seen.call[i].text_null = text == NULL;
        seen.call[i].on_status_thread = on_status_thread();
        seen.call[i].user_ok = user == &user_tag;
        seen.call[i].set_rc = set_rc;
    }
    seen.calls++;
    pthread_mutex_unlock(&seen.lock);
}

static void on_write(void* user, const char* path, const char* value)
{
    int rc = 1;
    if (path != NULL && strcmp(path, "/3450/0/2") == 0)
    {
        /* Not under a libavc lock: the host may answer with a value. */
        rc = avc_set_value("/3450/0/3", value != NULL && strcmp(value, "42") == 0 ? "true" : "false");
    }
    record('w', user, path, value, rc);
}

static void on_execute(void* user, const char* path, const char* args)
{
    record('x', user, path, args, 1);
}

/* Waits until the callbacks were called n times; returns 1 if they were. */
static int wait_calls(int n)
{
    long end = now_ms() + TIMEOUT_MS;
    for (;;)
    {
        int calls;
        pthread_mutex_lock(&seen.lock);
        calls = seen.calls;
        pthread_mutex_unlock(&seen.lock);
        if (calls >= n)
        {
            return 1;
        }
        if (now_ms() > end)
        {
            printf("      %d callback calls, want %d\n", calls, n);
            return 0;
        }
        sleep_ms(20);
    }
}

static const avc_resource_def_t test_resources[] = {
    {1, "Label", AVC_TYPE_STRING, AVC_OP_READ | AVC_OP_WRITE, 0, 1},
    {2, "Level", AVC_TYPE_INTEGER, AVC_OP_READ | AVC_OP_WRITE, 0, 0},
    {3, "Level Is 42", AVC_TYPE_BOOLEAN, AVC_OP_READ, 0, 0},
    {4, "Switch", AVC_TYPE_NONE, AVC_OP_EXECUTE, 0, 0},
    {5, "Samples", AVC_TYPE_INTEGER, AVC_OP_READ | AVC_OP_WRITE, 1, 0},
    {6, "Spare", AVC_TYPE_FLOAT, 0, 0, 0},
};

/* Defines object 3450 with test_resources but resource index i changed to r. */
static avc_result_t define_with(size_t i, avc_resource_def_t r)
{
    avc_resource_def_t res[sizeof(test_resources) / sizeof(test_resources[0])];
    avc_object_def_t def = {3450, "c test object", "1.1", 0, 0, res, sizeof(res) / sizeof(res[0])};
    memcpy(res, test_resources, sizeof(res));
    res[i] = r;
    return avc_object_define(&def, 1);
}

static void definition_rules(void)
{
    avc_object_def_t def = {3450, "c test object", "1.1", 0, 0, test_resources,
                            sizeof(test_resources) / sizeof(test_resources[0])};
    avc_object_def_t builtin = def;
    avc_object_def_t two[2];
    avc_resource_def_t bad;
    char msg[512], err[256];

    check(avc_object_define(NULL, 1) == AVC_ERR_BAD_PARAMETER, "avc_object_define(NULL, 1): AVC_ERR_BAD_PARAMETER");
    check(avc_object_define(&def, 0) == AVC_ERR_BAD_PARAMETER, "avc_object_define(defs, 0): AVC_ERR_BAD_PARAMETER");
    check(avc_object_define(&def, 1025) == AVC_ERR_BAD_PARAMETER, "avc_object_define(defs, 1025): AVC_ERR_BAD_PARAMETER");
    builtin.id = 3;
    check(avc_object_define(&builtin, 1) == AVC_ERR_BAD_PARAMETER, "a built-in object (/3): AVC_ERR_BAD_PARAMETER");
    builtin = def;
    builtin.resources = NULL;
    check(avc_object_define(&builtin, 1) == AVC_ERR_BAD_PARAMETER,
          "resources NULL with resource_count 6: AVC_ERR_BAD_PARAMETER");

    bad = test_resources[1];
    bad.type = 10;
    check(define_with(1, bad) == AVC_ERR_FORMAT, "an unknown type: AVC_ERR_FORMAT");
    bad.type = -1;
    check(define_with(1, bad) == AVC_ERR_FORMAT, "a negative type: AVC_ERR_FORMAT");
    bad = test_resources[1];
    bad.operations = 0x10;
    check(define_with(1, bad) == AVC_ERR_FORMAT, "an unknown operations bit: AVC_ERR_FORMAT");
    bad.operations = AVC_OP_READ | AVC_OP_EXECUTE;
    check(define_with(1, bad) == AVC_ERR_FORMAT, "read and execute together: AVC_ERR_FORMAT");
    bad = test_resources[3];
    bad.type = AVC_TYPE_STRING;
    check(define_with(3, bad) == AVC_ERR_FORMAT, "an executable resource with a type: AVC_ERR_FORMAT");
    bad = test_resources[0];
    bad.type = AVC_TYPE_NONE;
    check(define_with(0, bad) == AVC_ERR_FORMAT, "a readable resource without a type: AVC_ERR_FORMAT");
    avc_last_error(err, sizeof(err));
    snprintf(msg, sizeof(msg), "avc_last_error says why: %s", err);
    check(strstr(err, "without a type") != NULL, msg);
    bad = test_resources[0];
    bad.id = 2;
    check(define_with(0, bad) == AVC_ERR_FORMAT, "a resource defined twice: AVC_ERR_FORMAT");
    bad.id = 65535;
    check(define_with(0, bad) == AVC_ERR_FORMAT, "resource ID 65535: AVC_ERR_FORMAT");
    builtin = def;
    builtin.id = 65535;
    check(avc_object_define(&builtin, 1) == AVC_ERR_FORMAT, "object ID 65535: AVC_ERR_FORMAT");
    builtin = def;
    builtin.version = "1.1>;x";
    check(avc_object_define(&builtin, 1) == AVC_ERR_FORMAT, "version \"1.1>;x\": AVC_ERR_FORMAT");
    check(avc_set_value("/3450/0/1", "x") == AVC_ERR_BAD_PARAMETER, "nothing was defined by the refused calls");

    /* Two objects at once, then removal of all, then the one for the session. */
    two[0] = def;
    two[1] = def;
    two[1].id = 3451;
    two[1].version = NULL;
    two[1].name = NULL;
    two[1].resources = NULL;
    two[1].resource_count = 0;
    check(avc_object_define(two, 2) == AVC_OK, "two objects in one call (NULL name and version, no resources)");
    check(avc_set_value("/3450/0/1", "x") == AVC_OK, "avc_set_value on a field-by-field object");
    check(avc_set_value("/3450/0/2", "x") == AVC_ERR_BAD_PARAMETER, "the engine knows /3450/0/2 is an integer");
    check(avc_set_value("/3450/0/4", "1") == AVC_ERR_BAD_PARAMETER, "and that /3450/0/4 is executable");
    check(avc_object_define(NULL, 0) == AVC_OK, "avc_object_define(NULL, 0) removes every definition");
    check(avc_set_value("/3450/0/1", "y") == AVC_ERR_BAD_PARAMETER, "/3450 is gone");
    check(avc_object_define(&def, 1) == AVC_OK, "object 3450 defined field by field");
    check(avc_object_define(&def, 1) == AVC_OK, "defining it again replaces it");
}

int main(int argc, char** argv)
{
    const char *server_uri, *api;
    const char* log_level = getenv("AVC_LOG_LEVEL");
    char ep[64], url[256], body[4096], line[512];
    avc_object_handlers_t handlers = {on_write, on_execute, NULL};
    le_avc_StatusEventHandlerRef_t ref;
    int n, i;

    if (argc != 3)
    {
        fprintf(stderr, "usage: %s coap://server host:port-of-http-api\n", argv[0]);
        return 2;
    }
    server_uri = argv[1];
    api = argv[2];
    pthread_mutex_init(&seen.lock, NULL);

    check(avc_config_set("AVC_LOG_LEVEL", log_level ? log_level : "warn") == AVC_OK, "AVC_LOG_LEVEL set");
    definition_rules();

    snprintf(ep, sizeof(ep), "c-objects-%ld", (long)getpid());
    check(avc_config_set("AVC_SERVER_URI", server_uri) == AVC_OK, "AVC_SERVER_URI set");
    check(avc_config_set("AVC_ENDPOINT", ep) == AVC_OK, "AVC_ENDPOINT set");
    check(avc_object_set_handlers(&handlers, &user_tag) == AVC_OK, "avc_object_set_handlers");
    check(avc_set_value("/3450/0/1", "set by the host") == AVC_OK, "avc_set_value /3450/0/1 before the session");
    ref = le_avc_AddStatusEventHandler(status_handler, NULL);
    check(ref != NULL, "le_avc_AddStatusEventHandler");
    check(le_avc_StartSession() == LE_OK, "le_avc_StartSession");

    check(api_read_until(api, ep, "/3450/0/1", "\"set by the host\"", TIMEOUT_MS), "the server reads /3450/0/1");

    /* The server writes the Level: the callback gets it, and answers. */
    snprintf(url, sizeof(url), "/api/clients/%s/write/3450/0/2", ep);
    n = http(api, "PUT", url, "{\"value\":\"42\",\"format\":\"text\"}", body, sizeof(body));
    snprintf(line, sizeof(line), "the server writes /3450/0/2 = 42 (HTTP %d: %.200s)", n, body);
    check(n == 200 && strstr(body, "2.04") != NULL, line);
    check(api_read_until(api, ep, "/3450/0/2", "\"42\"", TIMEOUT_MS), "the server reads 42 back");
    check(wait_calls(1), "the write callback was called");
    check(api_read_until(api, ep, "/3450/0/3", "\"1\"", TIMEOUT_MS),
          "the value the callback set (avc_set_value from inside it) reads 1");

    /* A string, then an instance of the multiple resource. */
    snprintf(url, sizeof(url), "/api/clients/%s/write/3450/0/1", ep);
    n = http(api, "PUT", url, "{\"value\":\"from the server\",\"format\":\"text\"}", body, sizeof(body));
    check(n == 200, "the server writes /3450/0/1");
    check(wait_calls(2), "the write callback was called again");

    /* Execute with arguments. */
    snprintf(url, sizeof(url), "/api/clients/%s/execute/3450/0/4", ep);
    n = http(api, "POST", url, "0='on',1", body, sizeof(body));
    snprintf(line, sizeof(line), "the server executes /3450/0/4 with 0='on',1 (HTTP %d: %.200s)", n, body);
    check(n == 200 && strstr(body, "2.04") != NULL, line);
    check(wait_calls(3), "the execute callback was called");
    snprintf(url, sizeof(url), "/api/clients/%s/execute/3450/0/4", ep);
    n = http(api, "POST", url, "", body, sizeof(body));
    check(n == 200, "the server executes /3450/0/4 without arguments");
    check(wait_calls(4), "the execute callback was called again");

    /* A write the engine refuses (read-only) is not reported. */
    snprintf(url, sizeof(url), "/api/clients/%s/write/3450/0/3", ep);
    n = http(api, "PUT", url, "{\"value\":\"0\",\"format\":\"text\"}", body, sizeof(body));
    snprintf(line, sizeof(line), "a write of read-only /3450/0/3 is refused with 4.05 (HTTP %d: %.200s)", n, body);
    check(strstr(body, "4.05") != NULL, line);

    /* Removed: a write is no longer reported. */
    check(avc_object_set_handlers(NULL, NULL) == AVC_OK, "avc_object_set_handlers(NULL, NULL) removes them");
    snprintf(url, sizeof(url), "/api/clients/%s/write/3450/0/2", ep);
    n = http(api, "PUT", url, "{\"value\":\"7\",\"format\":\"text\"}", body, sizeof(body));
    check(n == 200 && strstr(body, "2.04") != NULL, "the server writes /3450/0/2 = 7");
    check(api_read_until(api, ep, "/3450/0/2", "\"7\"", TIMEOUT_MS), "the engine keeps 7");
    sleep_ms(300);

    pthread_mutex_lock(&seen.lock);
    n = seen.calls;
    for (i = 0; i < n && i < MAX_CALLS; i++)
    {
        printf("      call %d: %c %s %s%s\n", i, seen.call[i].kind, seen.call[i].path,
               seen.call[i].text_null ? "(NULL)" : seen.call[i].text, seen.call[i].on_status_thread ? "" : " (other thread)");
    }
    check(n == 4, "four callback calls, none after the removal");
    check(n >= 1 && seen.call[0].kind == 'w' && strcmp(seen.call[0].path, "/3450/0/2") == 0 &&
              !seen.call[0].text_null && strcmp(seen.call[0].text, "42") == 0,
          "write(\"/3450/0/2\", \"42\")");
    check(n >= 1 && seen.call[0].set_rc == AVC_OK, "avc_set_value inside the write callback returned AVC_OK");
    check(n >= 2 && seen.call[1].kind == 'w' && strcmp(seen.call[1].path, "/3450/0/1") == 0 &&
              strcmp(seen.call[1].text, "from the server") == 0,
          "write(\"/3450/0/1\", \"from the server\")");
    check(n >= 3 && seen.call[2].kind == 'x' && strcmp(seen.call[2].path, "/3450/0/4") == 0 &&
              !seen.call[2].text_null && strcmp(seen.call[2].text, "0='on',1") == 0,
          "execute(\"/3450/0/4\", \"0='on',1\")");
    check(n >= 4 && seen.call[3].kind == 'x' && !seen.call[3].text_null && seen.call[3].text[0] == 0,
          "execute(\"/3450/0/4\", \"\") without arguments");
    for (i = 0; i < n && i < MAX_CALLS; i++)
    {
        if (!seen.call[i].on_status_thread || !seen.call[i].user_ok)
        {
            break;
        }
    }
    check(n > 0 && i == n, "every call came on the status handlers' thread, with the user pointer");
    pthread_mutex_unlock(&seen.lock);

    check(le_avc_StopSession() == LE_OK, "le_avc_StopSession");
    le_avc_RemoveStatusEventHandler(ref);
    check(avc_object_define(NULL, 0) == AVC_OK, "definitions removed at the end");
    return report();
}
