/*
 * lestatus.h - le_avc helpers the C update tests share: the name of an
 * le_avc_Status_t, and whether a file exists in a directory. Header-only.
 */
#ifndef AVC_TESTDATA_LESTATUS_H
#define AVC_TESTDATA_LESTATUS_H

#include <stdio.h>
#include <sys/stat.h>

#include "le_avc_interface.h"

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

#endif
