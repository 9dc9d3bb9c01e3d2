/*
 * stress.c - concurrent use of libavc from several threads (reliability
 * catalogue B60): handlers added and removed while statuses are being
 * dispatched, handlers that remove themselves or call back into libavc,
 * sessions started and stopped from several threads, pollers, config
 * reads and writes. Needs no server (it uses one nobody answers).
 *
 *   cc -std=c99 -Iinclude capi/testdata/stress.c -Lbuild -lavc -pthread -o build/stress
 *   LD_LIBRARY_PATH=build build/stress
 *
 * Best run against a race-detector build as well:
 *   go build -race -buildmode=c-archive -o build/race/libavc.a ./capi
 *   cc -no-pie -std=c99 -Iinclude capi/testdata/stress.c build/race/libavc.a -pthread -o build/stress-race
 *
 * Exits 0 when every session ended with LE_AVC_SESSION_STOPPED and nothing
 * crashed or hung (a watchdog aborts after 120 s).
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "legato.h"
#include "interfaces.h"
#include "avc.h"

#define THREADS 4
#define ROUNDS 200

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long calls;

static void Counting(le_avc_Status_t s, int32_t t, int32_t p, void* ctx)
{
    (void)s;
    (void)t;
    (void)p;
    (void)ctx;
    pthread_mutex_lock(&lock);
    calls++;
    pthread_mutex_unlock(&lock);
}

/* Removes itself the first time it runs; ctx points at its reference. */
static void SelfRemoving(le_avc_Status_t s, int32_t t, int32_t p, void* ctx)
{
    le_avc_StatusEventHandlerRef_t* ref = (le_avc_StatusEventHandlerRef_t*)ctx;
    le_avc_StatusEventHandlerRef_t r;
    (void)s;
    (void)t;
    (void)p;
    pthread_mutex_lock(&lock);
    r = *ref;
    *ref = NULL;
    pthread_mutex_unlock(&lock);
    if (r != NULL)
    {
        le_avc_RemoveStatusEventHandler(r);
    }
}

/* Calls back into libavc from the dispatcher thread. */
static void Reentrant(le_avc_Status_t s, int32_t t, int32_t p, void* ctx)
{
    char buf[64];
    (void)s;
    (void)t;
    (void)p;
    (void)ctx;
    avc_config_get("AVC_ENDPOINT", buf, sizeof(buf));
    le_avc_StopSession(); /* LE_OK or LE_DUPLICATE, both fine */
}

static void* Churn(void* arg)
{
    int i;
    (void)arg;
    for (i = 0; i < ROUNDS; i++)
    {
        le_avc_StatusEventHandlerRef_t r = le_avc_AddStatusEventHandler(Counting, (void*)(uintptr_t)i);
        le_avc_StatusEventHandlerRef_t* self = (le_avc_StatusEventHandlerRef_t*)malloc(sizeof(*self));
        char buf[32];
        pthread_mutex_lock(&lock);
        *self = NULL;
        pthread_mutex_unlock(&lock);
        {
            le_avc_StatusEventHandlerRef_t sr = le_avc_AddStatusEventHandler(SelfRemoving, self);
            pthread_mutex_lock(&lock);
            *self = sr;
            pthread_mutex_unlock(&lock);
        }
        if (i % 3 == 0)
        {
            le_avc_StartSession();
        }
        else if (i % 3 == 1)
        {
            le_avc_StopSession();
        }
        snprintf(buf, sizeof(buf), "stress-%d", i % 7);
        avc_config_set("AVC_ENDPOINT", buf);
        avc_config_get("AVC_LIFETIME", buf, sizeof(buf));
        le_avc_RemoveStatusEventHandler(r);
        le_avc_RemoveStatusEventHandler(r);
        /* The self-removing handler may still be registered: remove it
         * here unless it removed itself. Either way it no longer touches
         * *self afterwards (a removal from another thread waits for a call
         * in progress; a handler that removed itself is done with ctx). */
        {
            le_avc_StatusEventHandlerRef_t sr;
            pthread_mutex_lock(&lock);
            sr = *self;
            *self = NULL;
            pthread_mutex_unlock(&lock);
            if (sr != NULL)
            {
                le_avc_RemoveStatusEventHandler(sr);
            }
            free(self);
        }
    }
    return NULL;
}

static void* Poller(void* arg)
{
    avc_event_t ev;
    int i;
    (void)arg;
    for (i = 0; i < ROUNDS; i++)
    {
        avc_poll_event(&ev, 1);
    }
    return NULL;
}

static void* Watchdog(void* arg)
{
    (void)arg;
    sleep(120);
    fprintf(stderr, "stress: hung for 120 s\n");
    abort();
    return NULL;
}

int main(void)
{
    pthread_t churn[THREADS], poller, watchdog;
    le_avc_StatusEventHandlerRef_t reentrant;
    avc_event_t ev;
    int i;
    struct timespec t0, t1;

    avc_config_set("AVC_LOG_LEVEL", "error");
    avc_config_set("AVC_SERVER_URI", "coap://127.0.0.1:9");
    avc_events_enable_poll(1);
    pthread_create(&watchdog, NULL, Watchdog, NULL);
    reentrant = le_avc_AddStatusEventHandler(Reentrant, NULL);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_create(&poller, NULL, Poller, NULL);
    for (i = 0; i < THREADS; i++)
    {
        pthread_create(&churn[i], NULL, Churn, NULL);
    }
    for (i = 0; i < THREADS; i++)
    {
        pthread_join(churn[i], NULL);
    }
    pthread_join(poller, NULL);
    le_avc_RemoveStatusEventHandler(reentrant);

    /* Whatever happened, a final start and stop must end in STOPPED. */
    le_avc_StopSession();
    avc_events_enable_poll(0);
    avc_events_enable_poll(1);
    if (le_avc_StartSession() != LE_OK || le_avc_StopSession() != LE_OK)
    {
        printf("stress: FAIL: final start/stop refused\n");
        return 1;
    }
    for (;;)
    {
        if (avc_poll_event(&ev, 15000) != AVC_OK)
        {
            printf("stress: FAIL: no final LE_AVC_SESSION_STOPPED\n");
            return 1;
        }
        if (ev.status == LE_AVC_SESSION_STOPPED)
        {
            break;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    pthread_mutex_lock(&lock);
    printf("stress: ok (%d threads x %d rounds, %ld handler calls, %.2f s)\n", THREADS, ROUNDS, calls,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    pthread_mutex_unlock(&lock);
    return 0;
}
