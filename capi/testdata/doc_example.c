/*
 * doc_example.c - the acceptance program: written only from Legato's le_avc
 * documentation (status handler, StartSession, StopSession), with nothing
 * avc-specific but the build line. Configuration comes from AVC_* variables.
 *
 *   cc -std=c99 -Iinclude capi/testdata/doc_example.c -Lbuild -lavc -pthread -o build/doc_example
 *   AVC_SERVER_URI=coap://127.0.0.1:5683 LD_LIBRARY_PATH=build build/doc_example
 *
 * Exits 0 when the session started and then stopped, each within
 * DOC_EXAMPLE_TIMEOUT seconds (default 20), and 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "legato.h"
#include "interfaces.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int started;
static int stopped;

static void StatusHandler(le_avc_Status_t updateStatus, int32_t totalNumBytes,
                          int32_t progress, void* contextPtr)
{
    (void)contextPtr;
    LE_INFO("status %d (total %d, progress %d)", (int)updateStatus, (int)totalNumBytes, (int)progress);
    pthread_mutex_lock(&lock);
    if (updateStatus == LE_AVC_SESSION_STARTED)
    {
        started = 1;
    }
    else if (updateStatus == LE_AVC_SESSION_STOPPED)
    {
        stopped = 1;
    }
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

/* Waits until *flag is set or the timeout expires; returns *flag. */
static int WaitFor(int* flag, int seconds)
{
    struct timespec deadline;
    int result;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += seconds;
    pthread_mutex_lock(&lock);
    while (!*flag)
    {
        if (pthread_cond_timedwait(&changed, &lock, &deadline) == ETIMEDOUT)
        {
            break;
        }
    }
    result = *flag;
    pthread_mutex_unlock(&lock);
    return result;
}

int main(void)
{
    le_avc_StatusEventHandlerRef_t ref;
    le_result_t result;
    const char* env = getenv("DOC_EXAMPLE_TIMEOUT");
    int timeout = env != NULL && atoi(env) > 0 ? atoi(env) : 20;

    ref = le_avc_AddStatusEventHandler(StatusHandler, NULL);
    if (ref == NULL)
    {
        LE_ERROR("le_avc_AddStatusEventHandler failed");
        return 1;
    }

    result = le_avc_StartSession();
    if (result != LE_OK)
    {
        LE_ERROR("le_avc_StartSession: %s", LE_RESULT_TXT(result));
        return 1;
    }
    if (!WaitFor(&started, timeout))
    {
        LE_ERROR("no LE_AVC_SESSION_STARTED within %d s", timeout);
        le_avc_StopSession();
        return 1;
    }
    LE_INFO("session started");

    result = le_avc_StopSession();
    if (result != LE_OK)
    {
        LE_ERROR("le_avc_StopSession: %s", LE_RESULT_TXT(result));
        return 1;
    }
    if (!WaitFor(&stopped, timeout))
    {
        LE_ERROR("no LE_AVC_SESSION_STOPPED within %d s", timeout);
        return 1;
    }
    LE_INFO("session stopped");

    le_avc_RemoveStatusEventHandler(ref);
    return 0;
}
