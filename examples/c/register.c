/*
 * register.c - register to an LwM2M server with libavc's le_avc API, stay
 * registered until SIGINT or SIGTERM, then de-register. Written against
 * Legato's le_avc API only; configuration comes from AVC_* variables
 * (AVC_SERVER_URI is required). See README.md for the build line.
 *
 * Prints one line per status, e.g. "status: LE_AVC_SESSION_STARTED (13)".
 * Exits 0 after a clean stop, 1 when the session cannot be started or does
 * not stop within 15 s.
 */
#define _XOPEN_SOURCE 700 /* SA_ONSTACK */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "legato.h"
#include "interfaces.h"

/* Seconds to wait for LE_AVC_SESSION_STOPPED after le_avc_StopSession. */
#define STOP_TIMEOUT_S 15

static volatile sig_atomic_t quit;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int stopped;

static const char* StatusName(le_avc_Status_t status)
{
    static const char* const names[] = {
        "LE_AVC_NO_UPDATE", "LE_AVC_DOWNLOAD_PENDING", "LE_AVC_DOWNLOAD_IN_PROGRESS",
        "LE_AVC_DOWNLOAD_COMPLETE", "LE_AVC_DOWNLOAD_FAILED", "LE_AVC_INSTALL_PENDING",
        "LE_AVC_INSTALL_IN_PROGRESS", "LE_AVC_INSTALL_COMPLETE", "LE_AVC_INSTALL_FAILED",
        "LE_AVC_UNINSTALL_PENDING", "LE_AVC_UNINSTALL_IN_PROGRESS", "LE_AVC_UNINSTALL_COMPLETE",
        "LE_AVC_UNINSTALL_FAILED", "LE_AVC_SESSION_STARTED", "LE_AVC_SESSION_BS_STARTED",
        "LE_AVC_SESSION_STOPPED", "LE_AVC_SESSION_FAILED", "LE_AVC_REBOOT_PENDING",
        "LE_AVC_CONNECTION_PENDING", "LE_AVC_AUTH_STARTED", "LE_AVC_AUTH_FAILED",
        "LE_AVC_CERTIFICATION_OK", "LE_AVC_CERTIFICATION_KO", "LE_AVC_DOWNLOAD_TIMEOUT",
        "LE_AVC_DOWNLOAD_ABORTED",
    };
    if ((int)status >= 0 && (size_t)status < sizeof(names) / sizeof(names[0]))
    {
        return names[status];
    }
    return "(unknown)";
}

/* Runs on libavc's dispatcher thread. */
static void StatusHandler(le_avc_Status_t updateStatus, int32_t totalNumBytes,
                          int32_t progress, void* contextPtr)
{
    (void)totalNumBytes;
    (void)progress;
    (void)contextPtr;
    printf("status: %s (%d)\n", StatusName(updateStatus), (int)updateStatus);
    fflush(stdout);
    if (updateStatus == LE_AVC_SESSION_STOPPED)
    {
        pthread_mutex_lock(&lock);
        stopped = 1;
        pthread_cond_broadcast(&changed);
        pthread_mutex_unlock(&lock);
    }
}

static void OnSignal(int sig)
{
    (void)sig;
    quit = 1;
}

int main(void)
{
    struct sigaction sa;
    struct timespec tick = { 0, 100 * 1000 * 1000 };
    struct timespec deadline;
    le_avc_StatusEventHandlerRef_t ref;
    le_result_t result;
    int ok;

    /* The Go runtime inside libavc needs SA_ONSTACK on every handler. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = OnSignal;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    ref = le_avc_AddStatusEventHandler(StatusHandler, NULL);
    result = le_avc_StartSession();
    if (result != LE_OK)
    {
        LE_ERROR("le_avc_StartSession: %s", LE_RESULT_TXT(result));
        return 1;
    }

    while (!quit)
    {
        nanosleep(&tick, NULL);
    }

    /* A session that ended by itself (LE_DUPLICATE) has already stopped. */
    result = le_avc_StopSession();
    if (result != LE_OK && result != LE_DUPLICATE)
    {
        LE_ERROR("le_avc_StopSession: %s", LE_RESULT_TXT(result));
        return 1;
    }
    ok = 1;
    if (result == LE_OK)
    {
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += STOP_TIMEOUT_S;
        pthread_mutex_lock(&lock);
        while (!stopped)
        {
            if (pthread_cond_timedwait(&changed, &lock, &deadline) == ETIMEDOUT)
            {
                break;
            }
        }
        ok = stopped;
        pthread_mutex_unlock(&lock);
        if (!ok)
        {
            LE_ERROR("no LE_AVC_SESSION_STOPPED within %d s", STOP_TIMEOUT_S);
        }
    }
    le_avc_RemoveStatusEventHandler(ref);
    return ok ? 0 : 1;
}
