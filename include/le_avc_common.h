/*
 * le_avc_common.h - types and constants of Legato's le_avc API
 * (AirVantage Connector), as provided by libavc.
 *
 * Every DEFINE, ENUM, REFERENCE and HANDLER of interfaces/airVantage/le_avc.api
 * (legato-af master) appears here with Legato's C name and value, so that
 * code written against Legato's documentation compiles unchanged. The
 * comments are avc's own. Functions are declared in le_avc_interface.h.
 *
 * C99 and C++ clean.
 */
#ifndef LE_AVC_COMMON_H_INCLUDE_GUARD
#define LE_AVC_COMMON_H_INCLUDE_GUARD

#include "legato.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * DEFINEs
 * ------------------------------------------------------------------------ */

/* Maximum APN name length, without the NUL. */
#define LE_AVC_APN_NAME_MAX_LEN 48
/* Bytes needed to hold an APN name with its NUL. */
#define LE_AVC_APN_NAME_MAX_LEN_BYTES 49
/* Maximum APN user name length, without the NUL. */
#define LE_AVC_USERNAME_MAX_LEN 28
/* Bytes needed to hold an APN user name with its NUL. */
#define LE_AVC_USERNAME_MAX_LEN_BYTES 29
/* Maximum APN password length, without the NUL. */
#define LE_AVC_PASSWORD_MAX_LEN 28
/* Bytes needed to hold an APN password with its NUL. */
#define LE_AVC_PASSWORD_MAX_LEN_BYTES 29
/* Number of connection retry timers. */
#define LE_AVC_NUM_RETRY_TIMERS 8
/* Largest polling timer value, in minutes (one year). */
#define LE_AVC_POLLING_TIMER_MAX_VAL 525600
/* Smallest polling timer value, in minutes (0 disables polling). */
#define LE_AVC_POLLING_TIMER_MIN_VAL 0
/* Largest retry timer value, in minutes (two weeks). */
#define LE_AVC_RETRY_TIMER_MAX_VAL 20160
/* Smallest retry timer value, in minutes (0 disables that timer). */
#define LE_AVC_RETRY_TIMER_MIN_VAL 0
/* HTTP status reported when no download status is known. */
#define LE_AVC_HTTP_STATUS_INVALID 0xFFFF
/* Maximum length of a communication-information string. */
#define LE_AVC_COMM_INFO_STR_MAX_LEN 256
/* Maximum length of an LwM2M resource value read as a string. */
#define LE_AVC_MAX_LWM2M_RESOURCE_LEN 512
/* Bytes of an LwM2M resource value read as a string (see ReadLwm2mResource). */
#define LE_AVC_MAX_LWM2M_RESOURCE_BYTES 513
/* Server ID meaning "every configured server". */
#define LE_AVC_SERVER_ID_ALL_SERVERS 0xFFFF
/* Short server ID of the AirVantage (device management) server. */
#define LE_AVC_SERVER_ID_AIRVANTAGE 1
/* Root of avcService's configuration tree. */
#define LE_AVC_CONFIG_TREE_ROOT "avcService:/"
/* Configuration node of SIM APDU commands. */
#define LE_AVC_CONFIG_SIM_APDU_PATH "SIM_APDU"
/* Configuration node of SIM APDU responses. */
#define LE_AVC_CONFIG_SIM_APDU_RESP_PATH "SIM_APDU_RESP"
/* Largest credential accepted by le_avc_SetCredential, in bytes. */
#define LE_AVC_MAX_CREDENTIAL_SIZE 4096

/*
 * Communication-information codes, passed as the code argument of an
 * le_avc_CommInfoHandlerFunc_t. 0x00-0x08 are transport and bearer
 * events; the others are CoAP response codes as the raw code byte
 * (class << 5 | detail), e.g. 0x84 is 4.04.
 */
#define LE_AVC_COMM_INFO_UDP_NO_ERR 0x00
#define LE_AVC_COMM_INFO_UDP_OPEN_ERR 0x01
#define LE_AVC_COMM_INFO_UDP_CLOSE_ERR 0x02
#define LE_AVC_COMM_INFO_UDP_SEND_ERR 0x03
#define LE_AVC_COMM_INFO_UDP_RECV_ERR 0x04
#define LE_AVC_COMM_INFO_UDP_CONNECT_ERR 0x05
#define LE_AVC_COMM_INFO_BEARER_UP 0x06
#define LE_AVC_COMM_INFO_BEARER_DOWN 0x07
#define LE_AVC_COMM_INFO_PDP_CONTEXT 0x08
#define LE_AVC_COMM_INFO_COAP_201_CREATED 0x41
#define LE_AVC_COMM_INFO_COAP_202_DELETED 0x42
#define LE_AVC_COMM_INFO_COAP_204_CHANGED 0x44
#define LE_AVC_COMM_INFO_COAP_205_CONTENT 0x45
#define LE_AVC_COMM_INFO_COAP_231_CONTINUE 0x5F
#define LE_AVC_COMM_INFO_COAP_400_BAD_REQUEST 0x80
#define LE_AVC_COMM_INFO_COAP_401_UNAUTHORIZED 0x81
#define LE_AVC_COMM_INFO_COAP_402_BAD_OPTION 0x82
#define LE_AVC_COMM_INFO_COAP_404_NOT_FOUND 0x84
#define LE_AVC_COMM_INFO_COAP_405_METHOD_NOT_ALLOWED 0x85
#define LE_AVC_COMM_INFO_COAP_406_NOT_ACCEPTABLE 0x86
#define LE_AVC_COMM_INFO_COAP_408_REQ_ENTITY_INCOMPLETE 0x88
#define LE_AVC_COMM_INFO_COAP_412_PRECONDITION_FAILED 0x8C
#define LE_AVC_COMM_INFO_COAP_413_ENTITY_TOO_LARGE 0x8D
#define LE_AVC_COMM_INFO_COAP_500_INTERNAL_SERVER_ERROR 0xA0
#define LE_AVC_COMM_INFO_COAP_501_NOT_IMPLEMENTED 0xA1
#define LE_AVC_COMM_INFO_COAP_503_SERVICE_UNAVAILABLE 0xA3

/* ------------------------------------------------------------------------
 * ENUMs
 * ------------------------------------------------------------------------ */

/*
 * Status of the agent, reported to every le_avc_StatusHandlerFunc_t.
 * The agent reports them (update control, le_avc_interface.h).
 * AUTH_STARTED and AUTH_FAILED frame the DTLS handshake with a coaps://
 * server (a failed one is followed by SESSION_FAILED and the retry
 * timers); DOWNLOAD_TIMEOUT precedes the DOWNLOAD_FAILED of a download
 * that ran out of its 300 s connect time or stayed below 100 B/s for
 * 1000 s; DOWNLOAD_ABORTED reports a download the server cancelled (the
 * Package URI written empty) while under way or waiting for agreement.
 * SESSION_BS_STARTED is reported once libavc runs a bootstrap session.
 */
typedef enum
{
    LE_AVC_NO_UPDATE = 0,               /* Nothing pending (also: activity timer expired). */
    LE_AVC_DOWNLOAD_PENDING = 1,        /* An update is waiting to be downloaded. */
    LE_AVC_DOWNLOAD_IN_PROGRESS = 2,    /* Downloading. */
    LE_AVC_DOWNLOAD_COMPLETE = 3,       /* Download finished. */
    LE_AVC_DOWNLOAD_FAILED = 4,         /* Download failed. */
    LE_AVC_INSTALL_PENDING = 5,         /* An install is waiting (the download is complete). */
    LE_AVC_INSTALL_IN_PROGRESS = 6,     /* Installing. */
    LE_AVC_INSTALL_COMPLETE = 7,        /* Install finished. */
    LE_AVC_INSTALL_FAILED = 8,          /* Install failed. */
    LE_AVC_UNINSTALL_PENDING = 9,       /* An uninstall is waiting. */
    LE_AVC_UNINSTALL_IN_PROGRESS = 10,  /* Uninstalling. */
    LE_AVC_UNINSTALL_COMPLETE = 11,     /* Uninstall finished. */
    LE_AVC_UNINSTALL_FAILED = 12,       /* Uninstall failed. */
    LE_AVC_SESSION_STARTED = 13,        /* A device management session is up (registered). */
    LE_AVC_SESSION_BS_STARTED = 14,     /* A bootstrap session is up. */
    LE_AVC_SESSION_STOPPED = 15,        /* The session (DM or bootstrap) is down. */
    LE_AVC_SESSION_FAILED = 16,         /* A session could not be started. */
    LE_AVC_REBOOT_PENDING = 17,         /* A reboot is waiting. */
    LE_AVC_CONNECTION_PENDING = 18,     /* A connection to the server is needed. */
    LE_AVC_AUTH_STARTED = 19,           /* Authentication with the server started. */
    LE_AVC_AUTH_FAILED = 20,            /* Authentication with the server failed. */
    LE_AVC_CERTIFICATION_OK = 21,       /* The package is signed by a trusted server. */
    LE_AVC_CERTIFICATION_KO = 22,       /* The package signature is not trusted. */
    LE_AVC_DOWNLOAD_TIMEOUT = 23,       /* The download timed out. */
    LE_AVC_DOWNLOAD_ABORTED = 24        /* The download was aborted. */
}
le_avc_Status_t;

/* Operations the user agreement setting can gate. */
typedef enum
{
    LE_AVC_USER_AGREEMENT_CONNECTION = 0,
    LE_AVC_USER_AGREEMENT_DOWNLOAD = 1,
    LE_AVC_USER_AGREEMENT_INSTALL = 2,
    LE_AVC_USER_AGREEMENT_UNINSTALL = 3,
    LE_AVC_USER_AGREEMENT_REBOOT = 4
}
le_avc_UserAgreement_t;

/* What a session request handler is asked to do. */
typedef enum
{
    LE_AVC_SESSION_ACQUIRE = 0,         /* Open a session. */
    LE_AVC_SESSION_RELEASE = 1          /* Close the session. */
}
le_avc_SessionRequest_t;

/* Kind of the pending update. */
typedef enum
{
    LE_AVC_UNKNOWN_UPDATE = 0,
    LE_AVC_FIRMWARE_UPDATE = 1,
    LE_AVC_FRAMEWORK_UPDATE = 2,
    LE_AVC_APPLICATION_UPDATE = 3,
    LE_AVC_FILE_TRANSFER = 4
}
le_avc_UpdateType_t;

/* Why the last update failed. */
typedef enum
{
    LE_AVC_ERR_NONE = 0,                /* No error. */
    LE_AVC_ERR_BAD_PACKAGE = 1,         /* Bad package; not resumable. */
    LE_AVC_ERR_INTERNAL = 2,            /* Internal error; not resumable. */
    LE_AVC_ERR_SECURITY_FAILURE = 3,    /* Security check failed; not resumable. */
    LE_AVC_ERR_RAM = 4,                 /* Out of RAM; resumable after a reboot. */
    LE_AVC_ERR_NETWORK = 5,             /* Network error; resumable. */
    LE_AVC_ERR_FLASH = 6,               /* Flash error; not resumable. */
    LE_AVC_ERR_PKG_TOO_BIG = 7          /* The package does not fit. */
}
le_avc_ErrorCode_t;

/* Kind of the current (or last) session. */
typedef enum
{
    LE_AVC_BOOTSTRAP_SESSION = 0,
    LE_AVC_DM_SESSION = 1,
    LE_AVC_SESSION_INVALID = 2
}
le_avc_SessionType_t;

/* Which credentials the device holds. */
typedef enum
{
    LE_AVC_NO_CREDENTIAL_PROVISIONED = 1,
    LE_AVC_BS_CREDENTIAL_PROVISIONED = 2,
    LE_AVC_DM_CREDENTIAL_PROVISIONED = 3
}
le_avc_CredentialStatus_t;

/* Configuration record types. */
typedef enum
{
    LE_AVC_CONFIG_TYPE_SIM_APDU_RESPONSE = 1
}
le_avc_ConfigType_t;

/* Credentials le_avc_SetCredential can write. */
typedef enum
{
    LE_AVC_SW_PUBLIC_KEY = 0,
    LE_AVC_FW_PUBLIC_KEY = 1,
    LE_AVC_BS_SERVER_ADDRESS = 2,
    LE_AVC_BS_PSK_ID = 3,
    LE_AVC_BS_PSK = 4
}
le_avc_CredentialType_t;

/* ------------------------------------------------------------------------
 * REFERENCEs (opaque; never dereference them)
 * ------------------------------------------------------------------------ */

/* Returned by le_avc_AddStatusEventHandler. */
typedef struct le_avc_StatusEventHandler* le_avc_StatusEventHandlerRef_t;
/* Returned by le_avc_AddSessionRequestEventHandler. */
typedef struct le_avc_SessionRequestEventHandler* le_avc_SessionRequestEventHandlerRef_t;
/* Returned by le_avc_AddCommInfoHandler. */
typedef struct le_avc_CommInfoHandler* le_avc_CommInfoHandlerRef_t;
/* Returned by le_avc_BlockInstall. */
typedef struct le_avc_BlockRequest* le_avc_BlockRequestRef_t;

/* ------------------------------------------------------------------------
 * HANDLERs
 * ------------------------------------------------------------------------ */

/*
 * Receives status changes.
 *
 * [in] updateStatus   the new status.
 * [in] totalNumBytes  size of the package being downloaded, or -1 when
 *                     unknown or not relevant to updateStatus.
 * [in] progress       percent done of a download, install or uninstall,
 *                     or -1 when unknown or not relevant.
 * [in] contextPtr     the contextPtr given to le_avc_AddStatusEventHandler.
 */
typedef void (*le_avc_StatusHandlerFunc_t)
(
    le_avc_Status_t updateStatus,
    int32_t totalNumBytes,
    int32_t progress,
    void* contextPtr
);

/*
 * Asked to open or close a session on the agent's behalf.
 *
 * [in] request     LE_AVC_SESSION_ACQUIRE or LE_AVC_SESSION_RELEASE.
 * [in] contextPtr  the contextPtr given when the handler was added.
 */
typedef void (*le_avc_SessionRequestHandlerFunc_t)
(
    le_avc_SessionRequest_t request,
    void* contextPtr
);

/*
 * Receives communication information.
 *
 * [in] code        an LE_AVC_COMM_INFO_* code.
 * [in] str         a NUL-terminated description, valid only during the
 *                  call (at most LE_AVC_COMM_INFO_STR_MAX_LEN bytes).
 * [in] contextPtr  the contextPtr given when the handler was added.
 */
typedef void (*le_avc_CommInfoHandlerFunc_t)
(
    uint8_t code,
    const char* LE_NONNULL str,
    void* contextPtr
);

/*
 * Called when the connection to the service is lost. libavc runs in the
 * caller's process, so the connection is never lost and this handler is
 * never called.
 */
typedef void (*le_avc_DisconnectHandler_t)(void* contextPtr);

#ifdef __cplusplus
}
#endif

#endif /* LE_AVC_COMMON_H_INCLUDE_GUARD */
