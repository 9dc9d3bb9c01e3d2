/*
 * lestatus.h - le_avc helpers the C update tests share: the name of an
 * le_avc_Status_t, whether a file exists in a directory, and the status
 * log: what a test's status handler saw, in order, with the waits and
 * searches over it. Header-only; include it after serverapi.h (now_ms).
 */
#ifndef AVC_TESTDATA_LESTATUS_H
#define AVC_TESTDATA_LESTATUS_H

#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "le_avc_interface.h"
#include "serverapi.h"

static const char* status_txt(le_avc_Status_t s)
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
    if ((int)s >= 0 && (size_t)s < sizeof(names) / sizeof(names[0]))
    {
        return names[s];
    }
    return "(unknown status)";
}

static int file_exists(const char* dir, const char* name)
{
    char path[640];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return stat(path, &sb) == 0;
}

/* ---- the status log ---------------------------------------------------------- */

#define STATUS_LOG_MAX 512

typedef struct status_entry
{
    le_avc_Status_t status;
    int32_t total;
    int32_t progress;
    long at;                    /* now_ms() when the handler got it */
}
status_entry_t;

/* The statuses the handler saw; guarded by lock. */
static struct
{
    pthread_mutex_t lock;
    pthread_cond_t changed;
    status_entry_t e[STATUS_LOG_MAX];
    int n;
} statuses;

/* Call once in main, before the handler is added. */
static inline void status_log_init(void)
{
    pthread_mutex_init(&statuses.lock, NULL);
    pthread_cond_init(&statuses.changed, NULL);
}

/* Appends one status (from the status handler) and wakes wait_for. */
static inline void status_record(le_avc_Status_t status, int32_t total, int32_t progress)
{
    pthread_mutex_lock(&statuses.lock);
    if (statuses.n < STATUS_LOG_MAX)
    {
        statuses.e[statuses.n].status = status;
        statuses.e[statuses.n].total = total;
        statuses.e[statuses.n].progress = progress;
        statuses.e[statuses.n].at = now_ms();
        statuses.n++;
    }
    pthread_cond_broadcast(&statuses.changed);
    pthread_mutex_unlock(&statuses.lock);
}

/* Waits until status shows up at index from or later; returns its index,
 * or -1 after timeout_ms. */
static inline int wait_for(le_avc_Status_t status, int from, long timeout_ms)
{
    long end = now_ms() + timeout_ms;
    int i = from < 0 ? 0 : from, found = -1;
    pthread_mutex_lock(&statuses.lock);
    for (;;)
    {
        for (; i < statuses.n; i++)
        {
            if (statuses.e[i].status == status)
            {
                found = i;
                break;
            }
        }
        if (found >= 0 || now_ms() >= end)
        {
            break;
        }
        {
            struct timespec deadline;
            clock_gettime(CLOCK_REALTIME, &deadline);
            deadline.tv_nsec += 100 * 1000000L;
            if (deadline.tv_nsec >= 1000000000L)
            {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&statuses.changed, &statuses.lock, &deadline);
        }
    }
    pthread_mutex_unlock(&statuses.lock);
    return found;
}

/* The first index of status at or after from, -1 if none. */
static inline int first_of(le_avc_Status_t status, int from)
{
    int i, found = -1;
    pthread_mutex_lock(&statuses.lock);
    for (i = from < 0 ? 0 : from; i < statuses.n; i++)
    {
        if (statuses.e[i].status == status)
        {
            found = i;
            break;
        }
    }
    pthread_mutex_unlock(&statuses.lock);
    return found;
}

/* How many statuses were recorded so far. */
static inline int seen_count(void)
{
    int n;
    pthread_mutex_lock(&statuses.lock);
    n = statuses.n;
    pthread_mutex_unlock(&statuses.lock);
    return n;
}

/* When the handler got entry i. */
static inline long seen_at(int i)
{
    long at;
    pthread_mutex_lock(&statuses.lock);
    at = statuses.e[i].at;
    pthread_mutex_unlock(&statuses.lock);
    return at;
}

/* Prints the statuses seen, repeats folded: "      statuses: 13 1 2 3". */
static inline void print_statuses(void)
{
    int i;
    pthread_mutex_lock(&statuses.lock);
    printf("      statuses:");
    for (i = 0; i < statuses.n; i++)
    {
        if (i == 0 || statuses.e[i].status != statuses.e[i - 1].status)
        {
            printf(" %d", (int)statuses.e[i].status);
        }
    }
    printf("\n");
    pthread_mutex_unlock(&statuses.lock);
}

#endif
