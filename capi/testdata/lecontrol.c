/*
 * lecontrol.c - le_avc update control without a server: every return code
 * le_avc_interface.h documents for misuse and for the settings (Accept and
 * Defer outside a pending operation, out-of-range timers, too long APN
 * values, install blocks, user agreements, credentials, the session
 * request and CommInfo handler rules). Run by scripts/test-c.sh, also
 * under AddressSanitizer.
 *
 *   cc -std=c99 -Iinclude capi/testdata/lecontrol.c -Lbuild -lavc -pthread -o build/lecontrol
 *   env -u AVC_SERVER_URI LD_LIBRARY_PATH=build build/lecontrol
 *
 * Prints one line per check and "N passed, N failed"; exits 0 only when
 * every check passed.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "legato.h"
#include "interfaces.h"
#include "avc.h"
#include "check.h"

static void session_request_handler(le_avc_SessionRequest_t request, void* ctx)
{
    (void)request;
    (void)ctx;
}

static void comm_info_handler(uint8_t code, const char* str, void* ctx)
{
    (void)code;
    (void)str;
    (void)ctx;
}

static void status_handler(le_avc_Status_t status, int32_t total, int32_t progress, void* ctx)
{
    (void)status;
    (void)total;
    (void)progress;
    (void)ctx;
}

/* Checks rc == want and prints both names. */
static void expect(le_result_t rc, le_result_t want, const char* what)
{
    char line[256];
    snprintf(line, sizeof(line), "%s -> %s (want %s)", what, LE_RESULT_TXT(rc), LE_RESULT_TXT(want));
    check(rc == want, line);
}

static void accept_and_defer(void)
{
    le_avc_UpdateType_t type = LE_AVC_UNKNOWN_UPDATE;
    char name[LE_LIMIT_APP_NAME_LEN + 1];

    expect(le_avc_AcceptDownload(), LE_FAULT, "AcceptDownload with nothing pending");
    expect(le_avc_AcceptInstall(), LE_FAULT, "AcceptInstall with nothing pending");
    expect(le_avc_AcceptUninstall(), LE_FAULT, "AcceptUninstall with nothing pending");
    expect(le_avc_AcceptReboot(), LE_FAULT, "AcceptReboot with nothing pending");
    expect(le_avc_DeferDownload(10), LE_FAULT, "DeferDownload with nothing pending");
    expect(le_avc_DeferInstall(10), LE_FAULT, "DeferInstall with nothing pending");
    expect(le_avc_DeferUninstall(10), LE_FAULT, "DeferUninstall with nothing pending");
    expect(le_avc_DeferReboot(10), LE_FAULT, "DeferReboot with nothing pending");
    expect(le_avc_DeferConnect(10), LE_FAULT, "DeferConnect with nothing pending");
    expect(le_avc_GetUpdateType(&type), LE_FAULT, "GetUpdateType with nothing pending");
    expect(le_avc_GetUpdateType(NULL), LE_FAULT, "GetUpdateType(NULL)");
    expect(le_avc_GetAppUpdateName(name, sizeof(name)), LE_FAULT, "GetAppUpdateName with nothing pending");
    expect(le_avc_GetAppUpdateName(NULL, 0), LE_FAULT, "GetAppUpdateName(NULL, 0)");
    check(le_avc_GetErrorCode() == LE_AVC_ERR_NONE, "GetErrorCode is LE_AVC_ERR_NONE");
    check(le_avc_GetHttpStatus() == LE_AVC_HTTP_STATUS_INVALID, "GetHttpStatus is 0xFFFF when unknown");
    check(le_avc_GetHttpStatus() == 0xFFFF, "LE_AVC_HTTP_STATUS_INVALID is 0xFFFF");
}

static void polling_timer(void)
{
    uint32_t minutes = 12345;
    expect(le_avc_GetPollingTimer(&minutes), LE_OK, "GetPollingTimer");
    check(minutes == 0, "polling timer defaults to 0 (disabled)");
    expect(le_avc_SetPollingTimer(LE_AVC_POLLING_TIMER_MAX_VAL + 1), LE_OUT_OF_RANGE, "SetPollingTimer(525601)");
    expect(le_avc_SetPollingTimer(0xFFFFFFFFu), LE_OUT_OF_RANGE, "SetPollingTimer(UINT32_MAX)");
    expect(le_avc_GetPollingTimer(&minutes), LE_OK, "GetPollingTimer");
    check(minutes == 0, "an out-of-range value changes nothing");
    expect(le_avc_SetPollingTimer(LE_AVC_POLLING_TIMER_MAX_VAL), LE_OK, "SetPollingTimer(525600)");
    expect(le_avc_GetPollingTimer(&minutes), LE_OK, "GetPollingTimer");
    check(minutes == 525600, "polling timer reads back 525600");
    expect(le_avc_SetPollingTimer(60), LE_OK, "SetPollingTimer(60)");
    expect(le_avc_GetPollingTimer(&minutes), LE_OK, "GetPollingTimer");
    check(minutes == 60, "polling timer reads back 60");
    expect(le_avc_GetPollingTimer(NULL), LE_FAULT, "GetPollingTimer(NULL)");
}

static void retry_timers(void)
{
    static const uint16_t defaults[LE_AVC_NUM_RETRY_TIMERS] = {15, 60, 240, 480, 1440, 2880, 0, 0};
    uint16_t timers[10];
    uint16_t mine[LE_AVC_NUM_RETRY_TIMERS] = {1, 2, 3, 4, 5, 6, 7, LE_AVC_RETRY_TIMER_MAX_VAL};
    uint16_t too_big[LE_AVC_NUM_RETRY_TIMERS] = {1, 2, 3, 4, 5, 6, 7, LE_AVC_RETRY_TIMER_MAX_VAL + 1};
    size_t n = 10;

    memset(timers, 0xAB, sizeof(timers));
    expect(le_avc_GetRetryTimers(timers, &n), LE_OK, "GetRetryTimers (capacity 10)");
    check(n == LE_AVC_NUM_RETRY_TIMERS, "GetRetryTimers returns 8 values");
    check(memcmp(timers, defaults, sizeof(defaults)) == 0, "retry timers default to {15,60,240,480,1440,2880,0,0}");
    check(timers[8] == 0xABAB, "GetRetryTimers writes no more than 8 values");
    n = 7;
    expect(le_avc_GetRetryTimers(timers, &n), LE_FAULT, "GetRetryTimers with room for 7");
    expect(le_avc_GetRetryTimers(NULL, &n), LE_FAULT, "GetRetryTimers(NULL, ...)");
    expect(le_avc_GetRetryTimers(timers, NULL), LE_FAULT, "GetRetryTimers(..., NULL)");

    expect(le_avc_SetRetryTimers(mine, 7), LE_FAULT, "SetRetryTimers with 7 values");
    expect(le_avc_SetRetryTimers(mine, 9), LE_FAULT, "SetRetryTimers with 9 values");
    expect(le_avc_SetRetryTimers(NULL, 8), LE_FAULT, "SetRetryTimers(NULL, 8)");
    expect(le_avc_SetRetryTimers(too_big, 8), LE_OUT_OF_RANGE, "SetRetryTimers with 20161");
    n = LE_AVC_NUM_RETRY_TIMERS;
    expect(le_avc_GetRetryTimers(timers, &n), LE_OK, "GetRetryTimers");
    check(memcmp(timers, defaults, sizeof(defaults)) == 0, "a refused table changes nothing");
    expect(le_avc_SetRetryTimers(mine, 8), LE_OK, "SetRetryTimers with 8 values up to 20160");
    n = LE_AVC_NUM_RETRY_TIMERS;
    expect(le_avc_GetRetryTimers(timers, &n), LE_OK, "GetRetryTimers");
    check(memcmp(timers, mine, sizeof(mine)) == 0, "retry timers read back");
}

static void apn(void)
{
    char name[LE_AVC_APN_NAME_MAX_LEN_BYTES];
    char user[LE_AVC_USERNAME_MAX_LEN_BYTES];
    char pwd[LE_AVC_PASSWORD_MAX_LEN_BYTES];
    char small[4];
    char long_apn[LE_AVC_APN_NAME_MAX_LEN + 2];
    char long_user[LE_AVC_USERNAME_MAX_LEN + 2];
    char max_apn[LE_AVC_APN_NAME_MAX_LEN + 1];

    memset(long_apn, 'a', sizeof(long_apn) - 1);
    long_apn[sizeof(long_apn) - 1] = '\0';
    memset(long_user, 'u', sizeof(long_user) - 1);
    long_user[sizeof(long_user) - 1] = '\0';
    memset(max_apn, 'm', sizeof(max_apn) - 1);
    max_apn[sizeof(max_apn) - 1] = '\0';

    expect(le_avc_GetApnConfig(name, sizeof(name), user, sizeof(user), pwd, sizeof(pwd)), LE_OK, "GetApnConfig");
    check(name[0] == '\0' && user[0] == '\0' && pwd[0] == '\0', "APN defaults to empty");
    expect(le_avc_SetApnConfig(long_apn, "", ""), LE_OVERFLOW, "SetApnConfig with a 49-byte APN");
    expect(le_avc_SetApnConfig("apn", long_user, ""), LE_OVERFLOW, "SetApnConfig with a 29-byte user");
    expect(le_avc_SetApnConfig("apn", "", long_user), LE_OVERFLOW, "SetApnConfig with a 29-byte password");
    expect(le_avc_SetApnConfig(NULL, "", ""), LE_FAULT, "SetApnConfig(NULL, ...)");
    expect(le_avc_GetApnConfig(name, sizeof(name), user, sizeof(user), pwd, sizeof(pwd)), LE_OK, "GetApnConfig");
    check(name[0] == '\0', "a refused APN changes nothing");
    expect(le_avc_SetApnConfig(max_apn, "user", "secret"), LE_OK, "SetApnConfig with a 48-byte APN");
    expect(le_avc_GetApnConfig(name, sizeof(name), user, sizeof(user), pwd, sizeof(pwd)), LE_OK, "GetApnConfig");
    check(strcmp(name, max_apn) == 0 && strcmp(user, "user") == 0 && strcmp(pwd, "secret") == 0,
          "APN reads back");
    expect(le_avc_GetApnConfig(small, sizeof(small), user, sizeof(user), pwd, sizeof(pwd)), LE_OVERFLOW,
           "GetApnConfig into a 4-byte buffer");
    check(strlen(small) == 3, "the overflowing value is truncated and NUL-terminated");
    expect(le_avc_GetApnConfig(NULL, 0, user, sizeof(user), pwd, sizeof(pwd)), LE_FAULT, "GetApnConfig(NULL, ...)");
}

static void blocks(void)
{
    le_avc_BlockRequestRef_t a = le_avc_BlockInstall();
    le_avc_BlockRequestRef_t b = le_avc_BlockInstall();
    check(a != NULL, "BlockInstall returns a reference");
    check(b != NULL && b != a, "a second BlockInstall returns another reference");
    le_avc_UnblockInstall(a);
    le_avc_UnblockInstall(a); /* released twice: ignored with a warning */
    le_avc_UnblockInstall(NULL);
    le_avc_UnblockInstall((le_avc_BlockRequestRef_t)(uintptr_t)0x12345678);
    le_avc_UnblockInstall(b);
    check(1, "UnblockInstall of released, NULL and unknown references does not crash");
}

static void agreements(void)
{
    int i;
    bool on = true;
    for (i = LE_AVC_USER_AGREEMENT_CONNECTION; i <= LE_AVC_USER_AGREEMENT_REBOOT; i++)
    {
        on = true;
        if (le_avc_GetUserAgreement((le_avc_UserAgreement_t)i, &on) != LE_OK || on)
        {
            break;
        }
    }
    check(i == LE_AVC_USER_AGREEMENT_REBOOT + 1, "every user agreement defaults to disabled");
    expect(le_avc_SetUserAgreement(LE_AVC_USER_AGREEMENT_DOWNLOAD, true), LE_OK, "SetUserAgreement(DOWNLOAD, true)");
    expect(le_avc_GetUserAgreement(LE_AVC_USER_AGREEMENT_DOWNLOAD, &on), LE_OK, "GetUserAgreement(DOWNLOAD)");
    check(on, "the download agreement reads back enabled");
    expect(le_avc_GetUserAgreement(LE_AVC_USER_AGREEMENT_INSTALL, &on), LE_OK, "GetUserAgreement(INSTALL)");
    check(!on, "the install agreement stays disabled");
    expect(le_avc_SetUserAgreement(LE_AVC_USER_AGREEMENT_DOWNLOAD, false), LE_OK, "SetUserAgreement(DOWNLOAD, false)");
    expect(le_avc_GetUserAgreement(LE_AVC_USER_AGREEMENT_DOWNLOAD, &on), LE_OK, "GetUserAgreement(DOWNLOAD)");
    check(!on, "the download agreement reads back disabled");
    expect(le_avc_SetUserAgreement((le_avc_UserAgreement_t)5, true), LE_FAULT, "SetUserAgreement(5)");
    expect(le_avc_GetUserAgreement((le_avc_UserAgreement_t)99, &on), LE_FAULT, "GetUserAgreement(99)");
    expect(le_avc_GetUserAgreement(LE_AVC_USER_AGREEMENT_REBOOT, NULL), LE_FAULT, "GetUserAgreement(REBOOT, NULL)");
}

static void sessions_and_handlers(void)
{
    le_avc_SessionRequestEventHandlerRef_t r1, r2;
    le_avc_CommInfoHandlerRef_t c1, c2;
    le_avc_StatusEventHandlerRef_t s;
    char data[LE_AVC_MAX_LWM2M_RESOURCE_BYTES + 1];

    check(!le_avc_IsSessionStarted(LE_AVC_SERVER_ID_ALL_SERVERS), "IsSessionStarted is false without a session");
    check(!le_avc_IsSessionStarted(LE_AVC_SERVER_ID_AIRVANTAGE), "IsSessionStarted(1) is false without a session");
    check(le_avc_GetSessionType() == LE_AVC_SESSION_INVALID, "GetSessionType is INVALID before any session");
    expect(le_avc_CheckRoute(), LE_FAULT, "CheckRoute without a session");
    expect(le_avc_StartDmSession(0, true), LE_FAULT, "StartDmSession(0) (bootstrap server)");
    expect(le_avc_StartDmSession(LE_AVC_SERVER_ID_ALL_SERVERS, false), LE_FAULT,
           "StartDmSession without AVC_SERVER_URI");
    expect(le_avc_StopSession(), LE_DUPLICATE, "StopSession without a session");

    r1 = le_avc_AddSessionRequestEventHandler(session_request_handler, NULL);
    check(r1 != NULL, "AddSessionRequestEventHandler returns a reference");
    r2 = le_avc_AddSessionRequestEventHandler(session_request_handler, NULL);
    check(r2 == NULL, "a second session request handler is refused (NULL)");
    check(le_avc_AddSessionRequestEventHandler(NULL, NULL) == NULL, "a NULL session request handler is refused");
    le_avc_RemoveSessionRequestEventHandler(r1);
    le_avc_RemoveSessionRequestEventHandler(r1);
    le_avc_RemoveSessionRequestEventHandler(NULL);
    r2 = le_avc_AddSessionRequestEventHandler(session_request_handler, (void*)(uintptr_t)7);
    check(r2 != NULL, "after its removal, a session request handler can be added again");
    le_avc_RemoveSessionRequestEventHandler(r2);

    check(le_avc_AddCommInfoHandler(NULL, NULL) == NULL, "a NULL CommInfo handler is refused");
    c1 = le_avc_AddCommInfoHandler(comm_info_handler, NULL);
    c2 = le_avc_AddCommInfoHandler(comm_info_handler, (void*)(uintptr_t)1);
    check(c1 != NULL && c2 != NULL && c1 != c2, "two CommInfo handlers get two references");
    le_avc_RemoveCommInfoHandler(c1);
    le_avc_RemoveCommInfoHandler(c1);
    le_avc_RemoveCommInfoHandler(c2);
    le_avc_RemoveCommInfoHandler(NULL);

    s = le_avc_AddStatusEventHandler(status_handler, NULL);
    check(s != NULL, "AddStatusEventHandler returns a reference");
    le_avc_RemoveStatusEventHandler(s);

    expect(le_avc_ReadLwm2mResource(3, 0, 0, 0, data, sizeof(data)), LE_FAULT, "ReadLwm2mResource without a session");
    expect(le_avc_ReadLwm2mResource(3, 0, 0, 0, NULL, 0), LE_FAULT, "ReadLwm2mResource without a buffer");
    le_avc_SetNatTimeout(0);
    le_avc_SetNatTimeout(40);
    check(1, "SetNatTimeout does not crash");
}

static void credentials(void)
{
    static const uint8_t key[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static uint8_t huge[LE_AVC_MAX_CREDENTIAL_SIZE + 1];
    const char* id = "lecontrol-id";
    const char* bs = "coaps://bs.example.com:5684";
    const char* not_uri = "bs.example.com";
    char buf[128];

    check(le_avc_GetCredentialStatus() == LE_AVC_NO_CREDENTIAL_PROVISIONED,
          "GetCredentialStatus is NO_CREDENTIAL without a PSK");
    expect(le_avc_SetCredential(LE_AVC_BS_PSK, 1, NULL, 16), LE_FAULT, "SetCredential(BS_PSK, NULL)");
    expect(le_avc_SetCredential(LE_AVC_BS_PSK, 1, key, 0), LE_FAULT, "SetCredential of 0 bytes");
    expect(le_avc_SetCredential(LE_AVC_BS_PSK, 1, huge, sizeof(huge)), LE_FAULT, "SetCredential of 4097 bytes");
    expect(le_avc_SetCredential((le_avc_CredentialType_t)5, 0, key, sizeof(key)), LE_FAULT, "SetCredential of an unknown type");
    expect(le_avc_SetCredential(LE_AVC_BS_SERVER_ADDRESS, 0, (const uint8_t*)not_uri, strlen(not_uri)), LE_FAULT,
           "SetCredential(BS_SERVER_ADDRESS) of a name that is not a URI");
    expect(le_avc_SetCredential(LE_AVC_SW_PUBLIC_KEY, 1, key, sizeof(key)), LE_OK, "SetCredential(SW_PUBLIC_KEY) is stored");
    expect(le_avc_SetCredential(LE_AVC_FW_PUBLIC_KEY, 1, key, sizeof(key)), LE_OK, "SetCredential(FW_PUBLIC_KEY) is stored");
    expect(le_avc_SetCredential(LE_AVC_BS_SERVER_ADDRESS, 0, (const uint8_t*)bs, strlen(bs)), LE_OK, "SetCredential(BS_SERVER_ADDRESS)");
    check(avc_config_get("AVC_BOOTSTRAP_URI", buf, sizeof(buf)) == AVC_OK && strcmp(buf, bs) == 0,
          "the bootstrap server address is AVC_BOOTSTRAP_URI");
    expect(le_avc_SetCredential(LE_AVC_BS_PSK_ID, 0, (const uint8_t*)id, strlen(id)), LE_OK, "SetCredential(BS_PSK_ID)");
    check(le_avc_GetCredentialStatus() == LE_AVC_NO_CREDENTIAL_PROVISIONED,
          "GetCredentialStatus is still NO_CREDENTIAL with a bootstrap PSK identity alone");
    expect(le_avc_SetCredential(LE_AVC_BS_PSK, 0, key, sizeof(key)), LE_OK, "SetCredential(BS_PSK)");
    check(le_avc_GetCredentialStatus() == LE_AVC_BS_CREDENTIAL_PROVISIONED,
          "GetCredentialStatus is BS_CREDENTIAL with the bootstrap PSK");
    check(avc_config_set("AVC_PSK_IDENTITY", "dm-id") == AVC_OK &&
              avc_config_set("AVC_PSK_KEY", "000102030405060708090a0b0c0d0e0f") == AVC_OK,
          "the device management server's PSK configured");
    check(le_avc_GetCredentialStatus() == LE_AVC_DM_CREDENTIAL_PROVISIONED,
          "GetCredentialStatus is DM_CREDENTIAL with the DM server's PSK");
}

int main(void)
{
    unsetenv("AVC_SERVER_URI");
    /* Quiet: the misuse below logs warnings on purpose. */
    avc_config_set("AVC_LOG_LEVEL", "error");

    check(strcmp(LE_RESULT_TXT(LE_OUT_OF_RANGE), "LE_OUT_OF_RANGE") == 0, "LE_RESULT_TXT(LE_OUT_OF_RANGE)");
    accept_and_defer();
    polling_timer();
    retry_timers();
    apn();
    blocks();
    agreements();
    sessions_and_handlers();
    credentials();
    return report();
}
