/*
 * avc_control.c - an AirVantage-style control app written against Legato's
 * le_avc API only, like the sample in Legato's "AirVantage Connector API"
 * documentation: it enables the user agreements, so that the agent asks
 * before it downloads, installs, uninstalls or reboots, accepts each
 * request from its status handler, logs with LE_INFO/LE_ERROR and
 * LE_RESULT_TXT, and stops on SIGINT or SIGTERM. Configuration comes from
 * the AVC_* variables (AVC_SERVER_URI is required).
 *
 *   cc -std=c99 -Iinclude examples/c/avc_control.c -Lbuild -lavc -pthread -o build/avc_control
 *   AVC_SERVER_URI=coap://127.0.0.1:5683 AVC_ENDPOINT=ctl LD_LIBRARY_PATH=build build/avc_control
 *
 * A real control app would defer (le_avc_DeferInstall) while it is busy,
 * or hold an install block (le_avc_BlockInstall) around critical work.
 */
#define _XOPEN_SOURCE 700 /* SA_ONSTACK */

#include <signal.h>
#include <string.h>
#include <time.h>

#include "legato.h"
#include "interfaces.h"

static volatile sig_atomic_t quit;

/* The pending update's kind, for the logs. */
static const char* GetUpdateType(void)
{
    le_avc_UpdateType_t type;
    if (le_avc_GetUpdateType(&type) != LE_OK)
    {
        return "unknown";
    }
    switch (type)
    {
        case LE_AVC_FIRMWARE_UPDATE:    return "firmware";
        case LE_AVC_FRAMEWORK_UPDATE:   return "framework";
        case LE_AVC_APPLICATION_UPDATE: return "application";
        case LE_AVC_FILE_TRANSFER:      return "file";
        default:                        return "unknown";
    }
}

/* Runs on libavc's dispatcher thread; le_avc calls are allowed here. */
static void avcStatusHandler(le_avc_Status_t updateStatus, int32_t totalNumBytes,
                             int32_t progress, void* contextPtr)
{
    le_result_t res;
    (void)contextPtr;

    switch (updateStatus)
    {
        case LE_AVC_DOWNLOAD_PENDING:
            LE_INFO("Accepting %s update (%d bytes).", GetUpdateType(), (int)totalNumBytes);
            res = le_avc_AcceptDownload();
            if (res != LE_OK)
            {
                LE_ERROR("Failed to accept download from AirVantage (%s)", LE_RESULT_TXT(res));
            }
            break;

        case LE_AVC_INSTALL_PENDING:
            LE_INFO("Accepting %s installation.", GetUpdateType());
            res = le_avc_AcceptInstall();
            if (res != LE_OK)
            {
                LE_ERROR("Failed to accept install from AirVantage (%s)", LE_RESULT_TXT(res));
            }
            break;

        case LE_AVC_UNINSTALL_PENDING:
            LE_INFO("Accepting %s uninstall.", GetUpdateType());
            res = le_avc_AcceptUninstall();
            if (res != LE_OK)
            {
                LE_ERROR("Failed to accept uninstall from AirVantage (%s)", LE_RESULT_TXT(res));
            }
            break;

        case LE_AVC_REBOOT_PENDING:
            LE_INFO("Accepting device reboot.");
            res = le_avc_AcceptReboot();
            if (res != LE_OK)
            {
                LE_ERROR("Failed to accept reboot from AirVantage (%s)", LE_RESULT_TXT(res));
            }
            break;

        case LE_AVC_DOWNLOAD_IN_PROGRESS:
        case LE_AVC_INSTALL_IN_PROGRESS:
        case LE_AVC_UNINSTALL_IN_PROGRESS:
            LE_INFO("status %d: %d%% done", (int)updateStatus, (int)progress);
            break;

        case LE_AVC_DOWNLOAD_FAILED:
        case LE_AVC_INSTALL_FAILED:
        case LE_AVC_UNINSTALL_FAILED:
            LE_ERROR("status %d: failed, error code %d", (int)updateStatus, (int)le_avc_GetErrorCode());
            break;

        default:
            /* No action required. */
            LE_INFO("status %d", (int)updateStatus);
            break;
    }
}

/* Communication information (CoAP answers, network changes). */
static void avcCommInfoHandler(uint8_t code, const char* str, void* contextPtr)
{
    (void)contextPtr;
    LE_DEBUG("comm info 0x%02x: %s", (unsigned)code, str);
}

static void OnSignal(int sig)
{
    (void)sig;
    quit = 1;
}

int main(void)
{
    static const le_avc_UserAgreement_t agreements[] = {
        LE_AVC_USER_AGREEMENT_DOWNLOAD, LE_AVC_USER_AGREEMENT_INSTALL,
        LE_AVC_USER_AGREEMENT_UNINSTALL, LE_AVC_USER_AGREEMENT_REBOOT,
    };
    struct sigaction sa;
    struct timespec tick = { 0, 100 * 1000 * 1000 };
    le_avc_StatusEventHandlerRef_t statusRef;
    le_avc_CommInfoHandlerRef_t commRef;
    le_result_t result;
    size_t i;

    /* The Go runtime inside libavc needs SA_ONSTACK on every handler. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = OnSignal;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    LE_INFO("AirVantage Connection Controller started.");
    for (i = 0; i < sizeof(agreements) / sizeof(agreements[0]); i++)
    {
        result = le_avc_SetUserAgreement(agreements[i], true);
        if (result != LE_OK)
        {
            LE_ERROR("Failed to enable user agreement %d (%s)", (int)agreements[i], LE_RESULT_TXT(result));
        }
    }

    /* Register the handler before starting the session. */
    statusRef = le_avc_AddStatusEventHandler(avcStatusHandler, NULL);
    commRef = le_avc_AddCommInfoHandler(avcCommInfoHandler, NULL);
    result = le_avc_StartSession();
    if (result == LE_FAULT)
    {
        LE_ERROR("Failed to start an AirVantage session (%s)", LE_RESULT_TXT(result));
        le_avc_RemoveCommInfoHandler(commRef);
        le_avc_RemoveStatusEventHandler(statusRef);
        return 1;
    }

    while (!quit)
    {
        nanosleep(&tick, NULL);
    }

    result = le_avc_StopSession();
    LE_INFO("le_avc_StopSession: %s", LE_RESULT_TXT(result));
    le_avc_RemoveCommInfoHandler(commRef);
    le_avc_RemoveStatusEventHandler(statusRef);
    return 0;
}
