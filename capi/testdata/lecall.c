/*
 * lecall.c - an eCall-like program holds off a firmware update: it takes
 * an install block (le_avc_BlockInstall) before the update, as a program
 * does for the length of an emergency call, and leaves the user
 * agreements disabled, so the agent accepts every step on its own.
 * `avc server` drives the update through its HTTP API: it writes the
 * Package URI /5/0/1 (the signed package from its firmware directory,
 * over CoAP) and, once the package is downloaded, executes Update
 * /5/0/2. The firmware handler is libavc's default one, files under
 * AVC_STATE_DIR/firmware.
 *
 * It checks that the download runs without asking, that after the
 * Execute nothing is installed for as long as the block is held (5 s:
 * /5/0/3 stays 2, no INSTALL_IN_PROGRESS, the session stays up, no image
 * is recorded as installed), and that after le_avc_UnblockInstall the
 * install happens at the next 3-minute retry of the blocked install
 * (api-reference §2: BLOCKED_DEFER_TIME), not at once: INSTALL_IN_PROGRESS
 * about 180 s after the Execute, then SESSION_STOPPED, and after the
 * agent's restart INSTALL_COMPLETE, with /3/0/3 reading the new version.
 * It runs for a little over three minutes.
 *
 *   cc -std=c99 -Iinclude capi/testdata/lecall.c -Lbuild -lavc -pthread -o build/lecall
 *   LD_LIBRARY_PATH=build build/lecall coap://127.0.0.1:5683 127.0.0.1:8080 \
 *       <state dir> <public key hex> <package version> <package URI>
 *
 * The state dir must be new (empty or missing); the package URI names the
 * package in the server's -firmware-dir (coap://host:port/fw/<name>),
 * packed and signed with `avc pack -key` with the key `avc keygen`
 * printed. scripts/test-c.sh runs it in the background while the other C
 * tests run. Prints one line per check and "N passed, N failed" on stdout
 * (the status log goes to stderr); exits 0 only when every check passed.
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

#define TIMEOUT_MS 30000

/* The status handler: logs and records; it accepts nothing (the
 * agreements are disabled: the agent accepts on its own). */
static void status_handler(le_avc_Status_t status, int32_t total, int32_t progress, void* ctx)
{
    (void)ctx;
    if (status != LE_AVC_DOWNLOAD_IN_PROGRESS || progress <= 0 || progress % 25 == 0)
    {
        LE_INFO("status %s (%d) totalNumBytes %d progress %d", status_txt(status), (int)status, (int)total,
                (int)progress);
    }
    status_record(status, total, progress);
}

/* ---- HTTP: a client for the server's API --------------------------------- */

/* ---- the update ------------------------------------------------------------ */

/* How long the program holds the block after the Execute. */
#define HOLD_MS 5000
/* The blocked install is retried this long after the Execute
 * (BLOCKED_DEFER_TIME, 3 minutes). */
#define RETRY_MS 180000L

int main(int argc, char** argv)
{
    const char *server_uri, *api, *state_dir, *key, *version, *pkg_uri;
    char ep[64], url[256], json[512], body[4096], want[80], line[256], fw_dir[600], got[128];
    le_avc_StatusEventHandlerRef_t ref;
    le_avc_BlockRequestRef_t block;
    bool enabled = true;
    int mark, dl_pending, dl_complete, inst_pending, inst_progress, stopped, inst_complete, restarted, failed_any;
    int stayed, reads, in_session;
    long exec_at, unblock_at, waited;
    const char* log_level = getenv("AVC_LOG_LEVEL");

    if (argc != 7)
    {
        fprintf(stderr, "usage: %s coap://server host:port-of-http-api state-dir pubkey version package-uri\n",
                argv[0]);
        return 2;
    }
    server_uri = argv[1];
    api = argv[2];
    state_dir = argv[3];
    key = argv[4];
    version = argv[5];
    pkg_uri = argv[6];
    snprintf(fw_dir, sizeof(fw_dir), "%s/firmware", state_dir);

    status_log_init();

    snprintf(ep, sizeof(ep), "c-lecall-%ld", (long)getpid());
    check(avc_config_set("AVC_LOG_LEVEL", log_level ? log_level : "warn") == AVC_OK, "AVC_LOG_LEVEL set");
    check(avc_config_set("AVC_SERVER_URI", server_uri) == AVC_OK, "AVC_SERVER_URI set");
    check(avc_config_set("AVC_ENDPOINT", ep) == AVC_OK, "AVC_ENDPOINT set");
    check(avc_config_set("AVC_STATE_DIR", state_dir) == AVC_OK, "AVC_STATE_DIR set (the default file firmware handler)");
    check(avc_config_set("AVC_FW_VERSION", "1.0.0") == AVC_OK, "AVC_FW_VERSION set");
    check(avc_config_set("AVC_FW_TRUSTED_KEYS", key) == AVC_OK, "AVC_FW_TRUSTED_KEYS takes the avc keygen key");
    check(avc_config_set("AVC_FW_REQUIRE_SIGNATURE", "true") == AVC_OK, "AVC_FW_REQUIRE_SIGNATURE set");

    check(le_avc_GetUserAgreement(LE_AVC_USER_AGREEMENT_DOWNLOAD, &enabled) == LE_OK && !enabled,
          "the download agreement is disabled (the default)");
    enabled = true;
    check(le_avc_GetUserAgreement(LE_AVC_USER_AGREEMENT_INSTALL, &enabled) == LE_OK && !enabled,
          "the install agreement is disabled (the default)");
    ref = le_avc_AddStatusEventHandler(status_handler, NULL);
    check(ref != NULL, "le_avc_AddStatusEventHandler");

    check(le_avc_StartSession() == LE_OK, "le_avc_StartSession");
    check(wait_for(LE_AVC_SESSION_STARTED, 0, 30000) >= 0, "LE_AVC_SESSION_STARTED (registered)");
    check(api_read_until(api, ep, "/3/0/3", "\"1.0.0\"", 10000), "/3/0/3 reads the running version 1.0.0");

    /* The call starts: installs are blocked from now on. */
    block = le_avc_BlockInstall();
    check(block != NULL, "le_avc_BlockInstall before the update");

    /* Download: the server writes the Package URI. */
    mark = seen_count();
    snprintf(url, sizeof(url), "/api/clients/%s/write/5/0/1", ep);
    snprintf(json, sizeof(json), "{\"value\":\"%s\",\"type\":\"string\"}", pkg_uri);
    check(http(api, "PUT", url, json, body, sizeof(body)) == 200 && strstr(body, "2.04") != NULL,
          "server writes /5/0/1 (2.04 Changed)");
    dl_complete = wait_for(LE_AVC_DOWNLOAD_COMPLETE, mark, 30000);
    check(dl_complete >= 0, "LE_AVC_DOWNLOAD_COMPLETE without an AcceptDownload");
    check(api_read_until(api, ep, "/5/0/3", "2", 10000), "/5/0/3 reads 2 (Downloaded)");
    dl_pending = first_of(LE_AVC_DOWNLOAD_PENDING, mark);
    printf("      LE_AVC_DOWNLOAD_PENDING %s (the download agreement is disabled)\n",
           dl_pending >= 0 ? "reported" : "not reported");

    /* Update: the server executes /5/0/2 while the block is held. */
    mark = seen_count();
    snprintf(url, sizeof(url), "/api/clients/%s/execute/5/0/2", ep);
    check(http(api, "POST", url, "", body, sizeof(body)) == 200 && strstr(body, "2.04") != NULL,
          "server executes /5/0/2 (2.04 Changed) while the block is held");
    exec_at = now_ms();

    stayed = 1;
    reads = 0;
    in_session = 1;
    got[0] = 0;
    while (now_ms() - exec_at < HOLD_MS)
    {
        if (api_read(api, ep, "/5/0/3", got, sizeof(got)))
        {
            reads++;
            if (strcmp(got, "2") != 0 && stayed)
            {
                stayed = 0;
                printf("      /5/0/3 read %s while blocked\n", got);
            }
        }
        if (!le_avc_IsSessionStarted(LE_AVC_SERVER_ID_ALL_SERVERS))
        {
            in_session = 0;
        }
        sleep_ms(250);
    }
    snprintf(line, sizeof(line), "/5/0/3 stays 2 for %d s after the Execute while the block is held (%d reads)",
             HOLD_MS / 1000, reads);
    check(stayed && reads >= 5, line);
    check(first_of(LE_AVC_INSTALL_IN_PROGRESS, mark) < 0 && first_of(LE_AVC_INSTALL_COMPLETE, mark) < 0 &&
              first_of(LE_AVC_INSTALL_FAILED, mark) < 0,
          "no INSTALL_IN_PROGRESS (nor a result) while the block is held");
    check(in_session && first_of(LE_AVC_SESSION_STOPPED, mark) < 0,
          "the session stays up while the install is blocked");
    check(!file_exists(fw_dir, "installed") && file_exists(fw_dir, "image.bin"),
          "nothing installed: the image is still only downloaded");
    inst_pending = first_of(LE_AVC_INSTALL_PENDING, mark);
    printf("      LE_AVC_INSTALL_PENDING %s (the install agreement is disabled)\n",
           inst_pending >= 0 ? "reported" : "not reported");

    /* The call ends. */
    le_avc_UnblockInstall(block);
    unblock_at = now_ms();
    printf("      unblocked %ld ms after the Execute; waiting for the 3-minute retry\n", unblock_at - exec_at);

    inst_progress = wait_for(LE_AVC_INSTALL_IN_PROGRESS, mark, RETRY_MS + 60000 - (now_ms() - exec_at));
    check(inst_progress >= 0, "LE_AVC_INSTALL_IN_PROGRESS after le_avc_UnblockInstall");
    if (inst_progress >= 0)
    {
        waited = seen_at(inst_progress) - exec_at;
        printf("      install started %ld ms after the Execute, %ld ms after the unblock\n", waited,
               seen_at(inst_progress) - unblock_at);
        check(waited >= RETRY_MS - 5000 && waited <= RETRY_MS + 30000,
              "the install happened at the 3-minute retry (180 s after the Execute), not at the unblock");
    }
    else
    {
        check(0, "the install happened at the 3-minute retry (180 s after the Execute), not at the unblock");
    }
    inst_complete = wait_for(LE_AVC_INSTALL_COMPLETE, inst_progress, 30000);
    check(inst_complete >= 0, "LE_AVC_INSTALL_COMPLETE after the agent's restart");
    stopped = first_of(LE_AVC_SESSION_STOPPED, inst_progress);
    check(inst_progress >= 0 && stopped > inst_progress && inst_complete > stopped,
          "the install closed the session first: INSTALL_IN_PROGRESS, SESSION_STOPPED, INSTALL_COMPLETE");
    restarted = stopped >= 0 ? wait_for(LE_AVC_SESSION_STARTED, stopped, 30000) : -1;
    check(restarted >= 0, "LE_AVC_SESSION_STARTED again after the restart");

    failed_any = first_of(LE_AVC_DOWNLOAD_FAILED, 0) >= 0 || first_of(LE_AVC_INSTALL_FAILED, 0) >= 0 ||
                 first_of(LE_AVC_CERTIFICATION_KO, 0) >= 0;
    check(!failed_any, "no DOWNLOAD_FAILED, INSTALL_FAILED or CERTIFICATION_KO");
    print_statuses();

    snprintf(want, sizeof(want), "\"%s\"", version);
    snprintf(line, sizeof(line), "/3/0/3 reads the new version %s through the server", version);
    check(api_read_until(api, ep, "/3/0/3", want, 20000), line);
    check(api_read_until(api, ep, "/5/0/3", "0", 10000), "/5/0/3 reads 0 (Idle)");
    check(api_read_until(api, ep, "/5/0/5", "1", 10000), "/5/0/5 reads 1 (updated successfully)");

    mark = seen_count();
    check(le_avc_StopSession() == LE_OK, "le_avc_StopSession");
    check(wait_for(LE_AVC_SESSION_STOPPED, mark, 30000) >= 0, "LE_AVC_SESSION_STOPPED");
    le_avc_RemoveStatusEventHandler(ref);
    return report();
}
