/*
 * lestore.c - the persistent configuration store on the host's storage
 * (avc_storage_set) instead of files: a corrupt record is replaced by the
 * defaults (no crash), settings are written through the write callback, a
 * failing write is survived (the previous record stays, the next change
 * writes the whole record again), and a new agent loads the record. No
 * server answers (coap://127.0.0.1:9). Run by scripts/test-c.sh, also under
 * AddressSanitizer and valgrind.
 *
 *   cc -std=c99 -Iinclude capi/testdata/lestore.c -Lbuild -lavc -pthread -o build/lestore
 *   env -u AVC_SERVER_URI -u AVC_STATE_DIR LD_LIBRARY_PATH=build build/lestore
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "legato.h"
#include "interfaces.h"
#include "avc.h"
#include "check.h"

/* The "flash": one record, guarded by mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char blob[1 << 16];
static size_t blob_len;
static int reads, writes, write_failures, fail_writes, bad_keys;

static int64_t mem_read(void* user, const char* key, void* buf, size_t size)
{
    int64_t n;
    (void)user;
    pthread_mutex_lock(&mu);
    reads++;
    if (strcmp(key, "state") != 0)
    {
        bad_keys++;
        pthread_mutex_unlock(&mu);
        return -1;
    }
    n = (int64_t)blob_len;
    if (blob_len <= size)
    {
        memcpy(buf, blob, blob_len);
    }
    pthread_mutex_unlock(&mu);
    return n;
}

static int mem_write(void* user, const char* key, const void* data, size_t length)
{
    (void)user;
    pthread_mutex_lock(&mu);
    writes++;
    if (strcmp(key, "state") != 0)
    {
        bad_keys++;
    }
    if (fail_writes || length >= sizeof(blob))
    {
        write_failures++;
        pthread_mutex_unlock(&mu);
        return -1;
    }
    memcpy(blob, data, length);
    blob_len = length;
    blob[blob_len] = 0;
    pthread_mutex_unlock(&mu);
    return 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

/* Waits up to 5 s for the record to contain text. */
static int blob_has(const char* text)
{
    int i, found = 0;
    for (i = 0; i < 500 && !found; i++)
    {
        pthread_mutex_lock(&mu);
        found = strstr(blob, text) != NULL;
        pthread_mutex_unlock(&mu);
        if (!found)
        {
            sleep_ms(10);
        }
    }
    return found;
}

/* Waits up to 5 s for *counter >= n. */
static int reaches(int* counter, int n)
{
    int i, v = 0;
    for (i = 0; i < 500; i++)
    {
        pthread_mutex_lock(&mu);
        v = *counter;
        pthread_mutex_unlock(&mu);
        if (v >= n)
        {
            return 1;
        }
        sleep_ms(10);
    }
    return 0;
}

static int counter(int* c)
{
    int v;
    pthread_mutex_lock(&mu);
    v = *c;
    pthread_mutex_unlock(&mu);
    return v;
}

int main(void)
{
    static const char corrupt[] = "{\"v\":1,\"crc\":12345,\"state\":{\"ctl\":{\"polling\":";
    avc_storage_t st = {mem_read, mem_write};
    avc_storage_t no_write = {mem_read, NULL};
    uint32_t polling = 99;
    uint16_t retry[LE_AVC_NUM_RETRY_TIMERS] = {1, 2, 3, 4, 5, 6, 7, 8};
    uint16_t got[LE_AVC_NUM_RETRY_TIMERS];
    size_t n = LE_AVC_NUM_RETRY_TIMERS;
    int before;

    check(avc_storage_set(&no_write, NULL) == AVC_ERR_BAD_PARAMETER, "avc_storage_set without write -> AVC_ERR_BAD_PARAMETER");

    /* A corrupt record in the flash (cut short by a power loss). */
    memcpy(blob, corrupt, sizeof(corrupt));
    blob_len = strlen(corrupt);

    check(avc_config_set("AVC_SERVER_URI", "coap://127.0.0.1:9") == AVC_OK, "a server nobody answers");
    check(avc_storage_set(&st, NULL) == AVC_OK, "avc_storage_set before the first le_avc call");
    check(counter(&reads) == 0 && counter(&writes) == 0, "nothing is read or written before the agent runs");

    /* The first le_avc call starts the agent: it reads the corrupt record
     * and writes the defaults. */
    check(le_avc_GetPollingTimer(&polling) == LE_OK && polling == 0, "the polling timer is the default (0) after a corrupt record");
    check(reaches(&reads, 1), "the record was read");
    check(blob_has("\"retry\":[15,60,240,480,1440,2880,0,0]"), "the defaults were written in place of the corrupt record");
    check(strncmp(blob, "{\"v\":", 5) == 0, "the new record is the versioned envelope");

    check(le_avc_SetPollingTimer(30) == LE_OK, "SetPollingTimer(30)");
    check(blob_has("\"polling\":30"), "the polling timer is written to the storage");

    /* A failing write: the agent goes on, the previous record stays. */
    pthread_mutex_lock(&mu);
    fail_writes = 1;
    pthread_mutex_unlock(&mu);
    before = counter(&write_failures);
    check(le_avc_SetPollingTimer(45) == LE_OK, "SetPollingTimer(45) while the storage fails -> LE_OK");
    check(reaches(&write_failures, before + 1), "the write was tried and failed");
    check(strstr(blob, "\"polling\":30") != NULL, "the previous record stays");
    check(le_avc_GetPollingTimer(&polling) == LE_OK && polling == 45, "the agent goes on with 45");

    pthread_mutex_lock(&mu);
    fail_writes = 0;
    pthread_mutex_unlock(&mu);
    check(le_avc_SetRetryTimers(retry, LE_AVC_NUM_RETRY_TIMERS) == LE_OK, "SetRetryTimers once the storage works");
    check(blob_has("\"retry\":[1,2,3,4,5,6,7,8]"), "the retry timers are written");
    check(blob_has("\"polling\":45"), "and the whole record with them (the polling timer that failed)");

    /* A new agent (the storage set again) loads the record. */
    before = counter(&reads);
    check(avc_storage_set(&st, (void*)&st) == AVC_OK, "avc_storage_set again");
    check(le_avc_GetRetryTimers(got, &n) == LE_OK && n == LE_AVC_NUM_RETRY_TIMERS && got[7] == 8, "the retry timers read back");
    check(reaches(&reads, before + 1), "the new agent read the record");

    /* Not while a session is started. */
    check(le_avc_StartSession() == LE_OK, "StartSession");
    check(avc_storage_set(&st, NULL) == AVC_ERR_NOT_PERMITTED, "avc_storage_set while a session is started -> AVC_ERR_NOT_PERMITTED");
    check(le_avc_StopSession() == LE_OK, "StopSession");
    check(counter(&bad_keys) == 0, "only the key \"state\" is used");
    check(avc_storage_set(NULL, NULL) == AVC_OK, "avc_storage_set(NULL) goes back to files");
    return report();
}
