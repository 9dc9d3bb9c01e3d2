/*
 * leagree.c - a firmware update under user agreements, end to end: the
 * download and install agreements are enabled, and a status handler
 * accepts each step from inside the handler, as Legato's avcControl
 * sample does (le_avc_AcceptDownload on LE_AVC_DOWNLOAD_PENDING,
 * le_avc_AcceptInstall on LE_AVC_INSTALL_PENDING). `avc server` drives
 * the update: POST /api/clients/{ep}/fota pulls the signed package from
 * its firmware directory over CoAP and executes Update once it is
 * downloaded. The firmware handler is libavc's default one, files under
 * AVC_STATE_DIR/firmware.
 *
 * It checks that DOWNLOAD_PENDING comes before any DOWNLOAD_IN_PROGRESS
 * and that nothing is fetched until the handler accepts (the handler
 * waits a second first; no image file appears meanwhile), that
 * INSTALL_PENDING follows the download and nothing is installed before
 * its acceptance, that the install starts about 2 s after acceptance by
 * closing the session (INSTALL_IN_PROGRESS, SESSION_STOPPED), that after
 * the agent's restart INSTALL_COMPLETE arrives and the session is up
 * again, and that the server then reads the new version from /3/0/3.
 *
 *   cc -std=c99 -Iinclude capi/testdata/leagree.c -Lbuild -lavc -pthread -o build/leagree
 *   LD_LIBRARY_PATH=build build/leagree coap://127.0.0.1:5683 127.0.0.1:8080 \
 *       <state dir> <public key hex> <package version> <image name>
 *
 * The state dir must be new (empty or missing); the image name is the
 * package's file name in the server's -firmware-dir, packed and signed
 * with `avc pack -key` with the key `avc keygen` printed.
 * scripts/test-c.sh runs it, also under AddressSanitizer. Prints one line
 * per check and "N passed, N failed" on stdout (the handler's log lines go
 * to stderr); exits 0 only when every check passed.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "legato.h"
#include "interfaces.h"
#include "avc.h"
#include "check.h"
#include "serverapi.h"
#include "lestatus.h"
#include "statusthread.h"

#define TIMEOUT_MS 30000

/* ---- the statuses the handler saw ------------------------------------------ */

/* What the handler did, beside the status log (lestatus.h); guarded by
 * lock, which is taken before the status log's, never after. */
static struct
{
    pthread_mutex_t lock;
    char firmware_dir[512];     /* AVC_STATE_DIR/firmware: where the handler stores the image */
    /* What the handler did (under lock). */
    int dl_pending_calls;
    int dl_accepts_ok;          /* AcceptDownload returned LE_OK */
    le_result_t dl_accept_rc;
    int dl_accept_index;        /* entries before the accepted DOWNLOAD_PENDING's successor, -1 none */
    long dl_accept_at;
    int nothing_stored_while_pending; /* no image file during the wait before accepting */
    int update_type_ok;         /* le_avc_GetUpdateType said FIRMWARE at DOWNLOAD_PENDING */
    int in_accepts_ok;
    le_result_t in_accept_rc;
    int in_accept_index;
    long in_accept_at;
    int other_thread;           /* a call came on another thread than the first */
} seen;

/* Notes the handler's thread and records the status. */
static void record(le_avc_Status_t status, int32_t total, int32_t progress)
{
    int same = note_status_thread();
    pthread_mutex_lock(&seen.lock);
    seen.other_thread |= !same;
    pthread_mutex_unlock(&seen.lock);
    status_record(status, total, progress);
}

/* The status handler, in the shape of Legato's avcControl sample: log,
 * then accept whatever is pending, right here in the handler. */
static void status_handler(le_avc_Status_t status, int32_t total, int32_t progress, void* ctx)
{
    le_result_t rc;
    (void)ctx;
    if (status != LE_AVC_DOWNLOAD_IN_PROGRESS || progress <= 0 || progress % 25 == 0)
    {
        LE_INFO("status %s (%d) totalNumBytes %d progress %d", status_txt(status), (int)status, (int)total,
                (int)progress);
    }
    record(status, total, progress);

    switch (status)
    {
        case LE_AVC_DOWNLOAD_PENDING:
        {
            le_avc_UpdateType_t type = LE_AVC_UNKNOWN_UPDATE;
            le_result_t trc = le_avc_GetUpdateType(&type);
            int stored;
            /* Take a moment before agreeing: nothing may be fetched
             * meanwhile. */
            sleep_ms(1000);
            stored = file_exists(seen.firmware_dir, "image.part") || file_exists(seen.firmware_dir, "image.bin");
            LE_INFO("download pending (update type %d, %s); accepting", (int)type, LE_RESULT_TXT(trc));
            rc = le_avc_AcceptDownload();
            if (rc != LE_OK)
            {
                LE_ERROR("Failed to accept download (%s)", LE_RESULT_TXT(rc));
            }
            pthread_mutex_lock(&seen.lock);
            seen.dl_pending_calls++;
            seen.dl_accept_rc = rc;
            if (rc == LE_OK)
            {
                seen.dl_accepts_ok++;
                seen.dl_accept_index = seen_count();
                seen.dl_accept_at = now_ms();
                seen.nothing_stored_while_pending = !stored;
                seen.update_type_ok = trc == LE_OK && type == LE_AVC_FIRMWARE_UPDATE;
            }
            pthread_mutex_unlock(&seen.lock);
            break;
        }
        case LE_AVC_INSTALL_PENDING:
            LE_INFO("install pending; accepting");
            rc = le_avc_AcceptInstall();
            if (rc != LE_OK)
            {
                LE_ERROR("Failed to accept install (%s)", LE_RESULT_TXT(rc));
            }
            pthread_mutex_lock(&seen.lock);
            seen.in_accept_rc = rc;
            if (rc == LE_OK)
            {
                seen.in_accepts_ok++;
                seen.in_accept_index = seen_count();
                seen.in_accept_at = now_ms();
            }
            pthread_mutex_unlock(&seen.lock);
            break;
        default:
            break;
    }
}

/* ---- HTTP: a client for the server's API --------------------------------- */

/* Copies the JSON value of "key" in body (a string without its quotes, or
 * a bare value) into out; 0 when absent. */
static int json_field(const char* body, const char* key, char* out, size_t size)
{
    char pat[64];
    const char* v;
    size_t n = 0;
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    v = strstr(body, pat);
    if (v == NULL)
    {
        return 0;
    }
    v += strlen(pat);
    while (*v == ' ')
    {
        v++;
    }
    if (*v == '"')
    {
        v++;
        while (v[n] != 0 && v[n] != '"' && n + 1 < size)
        {
            n++;
        }
    }
    else
    {
        while (v[n] != 0 && v[n] != ',' && v[n] != '}' && n + 1 < size)
        {
            n++;
        }
    }
    memcpy(out, v, n);
    out[n] = 0;
    return 1;
}

/* ---- the update ------------------------------------------------------------ */

int main(int argc, char** argv)
{
    const char *server_uri, *api, *state_dir, *key, *version, *image;
    char ep[64], url[256], json[512], body[4096], id[32] = "", phase[32] = "", want[80], line[256];
    le_avc_StatusEventHandlerRef_t ref;
    bool enabled = false;
    int i, started, pending, in_progress, complete, certified, inst_pending, inst_progress, stopped,
        inst_complete, restarted, conn_pending, failed_any;
    const char* log_level = getenv("AVC_LOG_LEVEL");

    if (argc != 7)
    {
        fprintf(stderr, "usage: %s coap://server host:port-of-http-api state-dir pubkey version image-name\n",
                argv[0]);
        return 2;
    }
    server_uri = argv[1];
    api = argv[2];
    state_dir = argv[3];
    key = argv[4];
    version = argv[5];
    image = argv[6];

    pthread_mutex_init(&seen.lock, NULL);
    status_log_init();
    seen.dl_accept_index = seen.in_accept_index = -1;
    seen.dl_accept_rc = seen.in_accept_rc = LE_NOT_FOUND;
    snprintf(seen.firmware_dir, sizeof(seen.firmware_dir), "%s/firmware", state_dir);

    snprintf(ep, sizeof(ep), "c-leagree-%ld", (long)getpid());
    check(avc_config_set("AVC_LOG_LEVEL", log_level ? log_level : "warn") == AVC_OK, "AVC_LOG_LEVEL set");
    check(avc_config_set("AVC_SERVER_URI", server_uri) == AVC_OK, "AVC_SERVER_URI set");
    check(avc_config_set("AVC_ENDPOINT", ep) == AVC_OK, "AVC_ENDPOINT set");
    check(avc_config_set("AVC_STATE_DIR", state_dir) == AVC_OK, "AVC_STATE_DIR set (the default file firmware handler)");
    check(avc_config_set("AVC_FW_VERSION", "1.0.0") == AVC_OK, "AVC_FW_VERSION set");
    check(avc_config_set("AVC_FW_TRUSTED_KEYS", key) == AVC_OK, "AVC_FW_TRUSTED_KEYS takes the avc keygen key");
    check(avc_config_set("AVC_FW_REQUIRE_SIGNATURE", "true") == AVC_OK, "AVC_FW_REQUIRE_SIGNATURE set");

    check(le_avc_SetUserAgreement(LE_AVC_USER_AGREEMENT_DOWNLOAD, true) == LE_OK,
          "le_avc_SetUserAgreement(DOWNLOAD, true)");
    check(le_avc_SetUserAgreement(LE_AVC_USER_AGREEMENT_INSTALL, true) == LE_OK,
          "le_avc_SetUserAgreement(INSTALL, true)");
    check(le_avc_GetUserAgreement(LE_AVC_USER_AGREEMENT_DOWNLOAD, &enabled) == LE_OK && enabled,
          "le_avc_GetUserAgreement(DOWNLOAD) reads enabled");
    enabled = true;
    check(le_avc_GetUserAgreement(LE_AVC_USER_AGREEMENT_CONNECTION, &enabled) == LE_OK && !enabled,
          "the connection agreement stays disabled");
    ref = le_avc_AddStatusEventHandler(status_handler, NULL);
    check(ref != NULL, "le_avc_AddStatusEventHandler");

    check(le_avc_StartSession() == LE_OK, "le_avc_StartSession");
    started = wait_for(LE_AVC_SESSION_STARTED, 0, TIMEOUT_MS);
    check(started >= 0, "LE_AVC_SESSION_STARTED (registered)");
    check(le_avc_GetUserAgreement(LE_AVC_USER_AGREEMENT_INSTALL, &enabled) == LE_OK && enabled,
          "the running agent has the install agreement enabled");
    check(api_read_until(api, ep, "/3/0/3", "\"1.0.0\"", 10000), "/3/0/3 reads the running version 1.0.0");
    check(le_avc_AcceptInstall() == LE_FAULT, "le_avc_AcceptInstall with nothing pending returns LE_FAULT");

    /* The server starts the update: a pull over coap, then Update. */
    snprintf(url, sizeof(url), "/api/clients/%s/fota", ep);
    snprintf(json, sizeof(json), "{\"image\":\"%s\",\"method\":\"pull\",\"protocol\":\"coap\"}", image);
    check(http(api, "POST", url, json, body, sizeof(body)) == 202 && json_field(body, "id", id, sizeof(id)),
          "server starts the FOTA (POST /api/clients/{ep}/fota: 202 Accepted)");
    printf("      FOTA %s\n", id);

    pending = wait_for(LE_AVC_DOWNLOAD_PENDING, 0, TIMEOUT_MS);
    check(pending >= 0, "LE_AVC_DOWNLOAD_PENDING");
    inst_pending = wait_for(LE_AVC_INSTALL_PENDING, pending < 0 ? 0 : pending, TIMEOUT_MS);
    check(inst_pending >= 0, "LE_AVC_INSTALL_PENDING after the download");
    inst_complete = wait_for(LE_AVC_INSTALL_COMPLETE, inst_pending < 0 ? 0 : inst_pending, TIMEOUT_MS);
    check(inst_complete >= 0, "LE_AVC_INSTALL_COMPLETE after the agent's restart");
    restarted = wait_for(LE_AVC_SESSION_STARTED, inst_pending < 0 ? 0 : inst_pending, TIMEOUT_MS);
    check(restarted >= 0, "LE_AVC_SESSION_STARTED again after the restart");

    pthread_mutex_lock(&seen.lock);
    in_progress = first_of(LE_AVC_DOWNLOAD_IN_PROGRESS, 0);
    complete = first_of(LE_AVC_DOWNLOAD_COMPLETE, 0);
    certified = first_of(LE_AVC_CERTIFICATION_OK, 0);
    inst_progress = first_of(LE_AVC_INSTALL_IN_PROGRESS, 0);
    stopped = inst_progress >= 0 ? first_of(LE_AVC_SESSION_STOPPED, inst_progress) : -1;
    conn_pending = first_of(LE_AVC_CONNECTION_PENDING, 0);
    failed_any = first_of(LE_AVC_DOWNLOAD_FAILED, 0) >= 0 || first_of(LE_AVC_INSTALL_FAILED, 0) >= 0 ||
                 first_of(LE_AVC_CERTIFICATION_KO, 0) >= 0;
    print_statuses();
    check(status_thread_noted() && !seen.other_thread, "every status handler call came on one thread (libavc's dispatcher)");
    check(pending >= 0 && in_progress > pending, "DOWNLOAD_PENDING came before any DOWNLOAD_IN_PROGRESS");
    check(seen.update_type_ok, "le_avc_GetUpdateType in the handler at DOWNLOAD_PENDING: LE_AVC_FIRMWARE_UPDATE");
    snprintf(line, sizeof(line), "le_avc_AcceptDownload from inside the handler -> %s (want LE_OK), once",
             LE_RESULT_TXT(seen.dl_accept_rc));
    check(seen.dl_accepts_ok == 1 && seen.dl_pending_calls == 1, line);
    check(seen.nothing_stored_while_pending,
          "the download did not start before acceptance (no image file after 1 s of DOWNLOAD_PENDING)");
    check(seen.dl_accept_index >= 0 && in_progress >= seen.dl_accept_index,
          "DOWNLOAD_IN_PROGRESS only after the acceptance");
    check(complete > in_progress && (certified < 0 || certified > in_progress),
          "DOWNLOAD_COMPLETE (and CERTIFICATION_OK) after the transfer");
    check(inst_pending > complete, "INSTALL_PENDING after DOWNLOAD_COMPLETE");
    snprintf(line, sizeof(line), "le_avc_AcceptInstall from inside the handler -> %s (want LE_OK)",
             LE_RESULT_TXT(seen.in_accept_rc));
    check(seen.in_accepts_ok == 1, line);
    check(inst_progress >= 0 && inst_progress > inst_pending && inst_progress >= seen.in_accept_index,
          "INSTALL_IN_PROGRESS only after the acceptance");
    check(stopped > inst_progress && inst_complete > stopped,
          "the install closed the session first: INSTALL_IN_PROGRESS, SESSION_STOPPED, INSTALL_COMPLETE");
    if (stopped >= 0 && seen.in_accept_index >= 0)
    {
        long delay = seen_at(stopped) - seen.in_accept_at;
        printf("      session closed %ld ms after AcceptInstall\n", delay);
        check(delay >= 1500 && delay < 10000, "the install started about 2 s after acceptance");
    }
    else
    {
        check(0, "the install started about 2 s after acceptance");
    }
    printf("      LE_AVC_CONNECTION_PENDING %s (the connection agreement is disabled)\n",
           conn_pending >= 0 ? "reported" : "not reported");
    check(!failed_any, "no DOWNLOAD_FAILED, INSTALL_FAILED or CERTIFICATION_KO");
    pthread_mutex_unlock(&seen.lock);

    snprintf(want, sizeof(want), "\"%s\"", version);
    snprintf(line, sizeof(line), "/3/0/3 reads the new version %s through the server", version);
    check(api_read_until(api, ep, "/3/0/3", want, 20000), line);
    check(api_read_until(api, ep, "/5/0/3", "0", 10000), "/5/0/3 reads 0 (Idle)");
    check(api_read_until(api, ep, "/5/0/5", "1", 10000), "/5/0/5 reads 1 (updated successfully)");
    snprintf(url, sizeof(url), "/api/clients/%s/fota/%s", ep, id);
    {
        long end = now_ms() + 10000;
        while (now_ms() < end)
        {
            if (http(api, "GET", url, NULL, body, sizeof(body)) == 200 && json_field(body, "phase", phase, sizeof(phase)) &&
                (strcmp(phase, "done") == 0 || strcmp(phase, "failed") == 0))
            {
                break;
            }
            sleep_ms(100);
        }
        printf("      FOTA phase %s\n", phase);
        check(strcmp(phase, "done") == 0, "the server's FOTA ended done");
    }
    check(le_avc_AcceptInstall() == LE_FAULT && le_avc_AcceptDownload() == LE_FAULT,
          "nothing pending afterwards: Accept returns LE_FAULT");

    i = seen_count();
    check(le_avc_StopSession() == LE_OK, "le_avc_StopSession");
    check(wait_for(LE_AVC_SESSION_STOPPED, i, TIMEOUT_MS) >= 0, "LE_AVC_SESSION_STOPPED");
    le_avc_RemoveStatusEventHandler(ref);
    return report();
}
