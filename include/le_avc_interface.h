/*
 * le_avc_interface.h - Legato's le_avc API (AirVantage Connector) as
 * implemented by libavc, avc's in-process LwM2M agent.
 *
 * Signatures are exactly those Legato's ifgen generates from
 * interfaces/airVantage/le_avc.api; the comments are avc's own and say what
 * libavc does.
 *
 * What is declared here
 * ---------------------
 * All 43 functions of Legato's generated le_avc client API: the 39 of
 * le_avc.api (in .api order below: events, sessions, update control,
 * settings, credentials) and the four service-connection functions.
 * Their types and constants are in le_avc_common.h.
 *
 * Update control (the "le_avc personality")
 * -----------------------------------------
 * libavc's agent runs with update control on: it asks before it
 * downloads, installs, uninstalls, reboots or connects when the user
 * agreement for that operation is enabled, and reports LE_AVC_* statuses
 * (with totalNumBytes and progress) to the status handlers; with an
 * agreement disabled (the default) it accepts on its own, as avcService
 * does.
 *
 * The agent runs from the first le_avc call on whenever the configuration
 * names a server (AVC_SERVER_URI), session or not: its polling and retry
 * timers run, and it opens the network only while a session needs it.
 * It keeps its settings (user agreements, timers, last poll, APN,
 * credentials, resume state) in the persistent store: the state file
 * under AVC_STATE_DIR, or the host's storage (avc_storage_set). A
 * configuration change (avc_config_set and the like) makes a new agent
 * from the store before the next session. libavc also keeps the settings
 * the host made and hands them to every new agent. Without a configured
 * server there is no agent: getters answer from the last values libavc
 * knows (those the host set, or the defaults: agreements disabled,
 * polling 0, retry timers {15, 60, 240, 480, 1440, 2880, 0, 0}, empty
 * APN), and Accept and Defer return LE_FAULT, as nothing can be pending.
 *
 * Behaviour common to every function
 * ----------------------------------
 * - Configuration: the first le_avc_* call reads the AVC_* environment
 *   variables (AVC_SERVER_URI, AVC_ENDPOINT, AVC_LIFETIME, AVC_STATE_DIR,
 *   AVC_LOG_LEVEL, ...) as getenv() sees them at that moment, unless
 *   avc_config_set() (avc.h) was called first, in which case the
 *   environment is not read at all.
 * - Threads: every function may be called from any thread, including from
 *   inside a status handler.
 * - Handlers run on one thread owned by libavc (the dispatcher), one call
 *   at a time, never while libavc holds an internal lock. A handler that
 *   blocks delays every later handler call, nothing else.
 * - Misuse that Legato answers by killing the client (a NULL handler, an
 *   unknown reference) is logged as a warning and otherwise ignored; libavc
 *   never terminates the host process.
 * - Logging goes to stderr (or the avc_set_log_handler() callback) at
 *   AVC_LOG_LEVEL.
 *
 * C99 and C++ clean.
 */
#ifndef LE_AVC_INTERFACE_H_INCLUDE_GUARD
#define LE_AVC_INTERFACE_H_INCLUDE_GUARD

#include "le_avc_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * AVC_NO_PROTOTYPES is defined only while libavc itself is compiled: its Go
 * exports declare these functions with ABI-identical types. Applications
 * never define it.
 */
#ifndef AVC_NO_PROTOTYPES

/* ------------------------------------------------------------------------
 * Service connection. Legato apps normally leave these to the framework;
 * in libavc the "service" is in-process, so they always succeed.
 * ------------------------------------------------------------------------ */

/*
 * Connects to the le_avc service. In libavc this only makes sure the
 * library is initialised (see "Configuration" above); it never blocks.
 */
void le_avc_ConnectService(void);

/*
 * Tries to connect to the le_avc service without blocking.
 *
 * @return LE_OK always: the service is in-process and always available.
 */
le_result_t le_avc_TryConnectService(void);

/*
 * Sets the handler called if the connection to the service is lost. The
 * in-process service is never lost, so the handler is accepted and never
 * called.
 *
 * [in] disconnectHandler  handler; may be NULL.
 * [in] contextPtr         passed to the handler; not dereferenced.
 */
void le_avc_SetServerDisconnectHandler(le_avc_DisconnectHandler_t disconnectHandler,
                                       void* contextPtr);

/*
 * Disconnects from the le_avc service. A no-op in libavc: handlers stay
 * registered and a running session keeps running.
 */
void le_avc_DisconnectService(void);

/* ------------------------------------------------------------------------
 * Status events
 * ------------------------------------------------------------------------ */

/*
 * Adds a handler for status events. Several handlers may be added; each
 * receives every status reported after it was added, in order.
 *
 * [in] handlerPtr  the handler; NULL is refused.
 * [in] contextPtr  passed unchanged to every call of the handler; libavc
 *                  never dereferences it. The caller keeps ownership.
 *
 * Handlers are called on libavc's dispatcher thread (see above) with
 * totalNumBytes and progress set to -1 for session statuses.
 *
 * @return a non-NULL reference to pass to le_avc_RemoveStatusEventHandler,
 *         or NULL when handlerPtr is NULL (a warning is logged and
 *         avc_last_error() says why).
 */
le_avc_StatusEventHandlerRef_t le_avc_AddStatusEventHandler(le_avc_StatusHandlerFunc_t handlerPtr,
                                                            void* contextPtr);

/*
 * Removes a handler added by le_avc_AddStatusEventHandler.
 *
 * [in] handlerRef  the reference it returned. NULL, an unknown reference
 *                  and a reference already removed are ignored with a
 *                  warning (Legato would kill the client).
 *
 * Once this returns, the handler is not called again. If the handler is
 * running on the dispatcher thread at that moment and this is called from
 * another thread, this waits for that call to return first; called from
 * inside a handler, it does not wait.
 */
void le_avc_RemoveStatusEventHandler(le_avc_StatusEventHandlerRef_t handlerRef);

/* ------------------------------------------------------------------------
 * Session requests and communication information
 * ------------------------------------------------------------------------ */

/*
 * Adds the session request handler. Only one may be registered at a time.
 *
 * [in] handlerPtr  the handler; NULL is refused.
 * [in] contextPtr  passed unchanged to the handler; never dereferenced.
 *
 * While a handler is registered, the agent opens and closes no session
 * by itself: when it needs one (its polling timer is due, a retry timer of
 * le_avc_SetRetryTimers fires, a connection is accepted or resumed after
 * a restart) it calls the handler with LE_AVC_SESSION_ACQUIRE and the
 * application opens it with le_avc_StartSession (or not); when a session
 * the application did not start has been inactive for the activity
 * timeout it calls the handler once with LE_AVC_SESSION_RELEASE and the
 * application closes it with le_avc_StopSession (or not). Sessions the
 * application asks for (le_avc_StartSession, le_avc_AcceptDownload) and
 * the close before a firmware install are not forwarded. The handler runs
 * on libavc's dispatcher thread, like the status handlers. Once it is
 * removed, a request left unanswered is carried out by the agent.
 *
 * @return a non-NULL reference for le_avc_RemoveSessionRequestEventHandler,
 *         or NULL when handlerPtr is NULL or a handler is already
 *         registered (Legato kills such a second registrant; libavc logs a
 *         warning and avc_last_error() says why).
 */
le_avc_SessionRequestEventHandlerRef_t le_avc_AddSessionRequestEventHandler
(
    le_avc_SessionRequestHandlerFunc_t handlerPtr,  ///< [IN]
    void* contextPtr                                ///< [IN]
);

/*
 * Removes the session request handler.
 *
 * [in] handlerRef  the reference le_avc_AddSessionRequestEventHandler
 *                  returned; NULL or an unknown reference is ignored with a
 *                  warning.
 */
void le_avc_RemoveSessionRequestEventHandler
(
    le_avc_SessionRequestEventHandlerRef_t handlerRef  ///< [IN]
);

/*
 * Adds a communication-information handler. Several may be added.
 *
 * [in] handlerPtr  the handler; NULL is refused.
 * [in] contextPtr  passed unchanged to the handler; never dereferenced.
 *
 * Handlers run on libavc's dispatcher thread, like status handlers. The
 * string is valid only during the call. libavc reports:
 *  - LE_AVC_COMM_INFO_BEARER_UP "session: network in use" when a session's
 *    agent starts and LE_AVC_COMM_INFO_BEARER_DOWN "session: network
 *    released" when it ends (libavc uses the host's network; it does not
 *    manage a bearer or PDP context, so LE_AVC_COMM_INFO_PDP_CONTEXT is
 *    never reported);
 *  - LE_AVC_COMM_INFO_UDP_OPEN_ERR with the error text when the session's
 *    socket (or DTLS handshake) fails, and LE_AVC_COMM_INFO_UDP_SEND_ERR
 *    when registering fails without an answer from the server;
 *  - the CoAP response code of the server's answer, as the raw code byte
 *    (class << 5 | detail) with the text "COAP c.dd": 2.01 on
 *    registration, 2.04 on a registration update, 2.02 on
 *    de-registration, and the error code (e.g. 4.04) when registering or
 *    a Send fails.
 *
 * @return a non-NULL reference for le_avc_RemoveCommInfoHandler, or NULL
 *         when handlerPtr is NULL.
 */
le_avc_CommInfoHandlerRef_t le_avc_AddCommInfoHandler
(
    le_avc_CommInfoHandlerFunc_t handlerPtr,  ///< [IN]
    void* contextPtr                          ///< [IN]
);

/*
 * Removes a communication-information handler. Once this returns, the
 * handler is not called again (the same rules as
 * le_avc_RemoveStatusEventHandler).
 *
 * [in] handlerRef  the reference le_avc_AddCommInfoHandler returned; NULL
 *                  or an unknown reference is ignored with a warning.
 */
void le_avc_RemoveCommInfoHandler
(
    le_avc_CommInfoHandlerRef_t handlerRef  ///< [IN]
);

/* ------------------------------------------------------------------------
 * Sessions
 * ------------------------------------------------------------------------ */

/*
 * Starts a session with the LwM2M server: the agent registers, keeps the
 * registration up (updates, re-registration after failures) until
 * le_avc_StopSession. Non-blocking: the outcome is reported to status
 * handlers as LE_AVC_SESSION_STARTED once the server accepts the
 * registration, or LE_AVC_SESSION_FAILED when it refuses or does not
 * answer (the agent then retries along the retry timers,
 * le_avc_SetRetryTimers, and gives up when they are spent).
 *
 * The agent itself runs from the first le_avc call on (when the
 * configuration names a server), so its polling timer connects even if
 * the application never calls this; such a session is closed after the
 * activity timeout, and le_avc_StopSession closes it too. The socket is
 * open only while a session needs it. A configuration change
 * (avc_config_set, avc_object_define_xml, avc_fw_install,
 * le_avc_SetNatTimeout) applies from the next session on. A start right
 * after a stop waits (in the background) for the previous session's
 * de-registration to finish first.
 *
 * @return
 *  - LE_OK         the session start was requested.
 *  - LE_DUPLICATE  a session is already started (by the application, or
 *                  by the agent for its polling timer).
 *  - LE_BUSY       a retry timer runs after a failed connection.
 *  - LE_FAULT      the configuration is missing or invalid (for example no
 *                  AVC_SERVER_URI); the reason is logged and available from
 *                  avc_last_error().
 */
le_result_t le_avc_StartSession(void);

/*
 * Starts a session with a device management server. libavc has one
 * server (AVC_SERVER_URI), so this is le_avc_StartSession for any serverId
 * but 0 (the bootstrap server).
 *
 * [in] serverId          the server's short ID, LE_AVC_SERVER_ID_AIRVANTAGE
 *                        or LE_AVC_SERVER_ID_ALL_SERVERS.
 * [in] isAutoDisconnect  accepted and ignored: the session lasts until
 *                        le_avc_StopSession (the agent's activity timer
 *                        reports LE_AVC_NO_UPDATE when it is idle).
 *
 * @return the codes of le_avc_StartSession; LE_FAULT for serverId 0.
 */
le_result_t le_avc_StartDmSession
(
    uint16_t serverId,      ///< [IN]
    bool isAutoDisconnect   ///< [IN]
);

/*
 * Stops the session, the application's or one the agent opened itself
 * (a poll): the agent de-registers and reports LE_AVC_SESSION_STOPPED to
 * status handlers when done. Non-blocking.
 *
 * @return
 *  - LE_OK         the stop was requested; LE_AVC_SESSION_STOPPED follows.
 *  - LE_DUPLICATE  no session is started.
 *  - LE_FAULT      internal failure (logged; see avc_last_error()).
 */
le_result_t le_avc_StopSession(void);

/*
 * Checks the route to the server by sending a Registration Update now.
 *
 * @return
 *  - LE_OK     the update was sent; the answer is reported to CommInfo
 *              handlers (COAP 2.04).
 *  - LE_FAULT  no session is registered (or the agent refused it).
 */
le_result_t le_avc_CheckRoute(void);

/* ------------------------------------------------------------------------
 * Update control: accept or defer the pending operation. Each returns
 * LE_FAULT unless the matching LE_AVC_*_PENDING status is pending in the
 * running session (so always without a session). Deferring re-arms that
 * operation's timer: its *_PENDING status is reported again when it fires.
 * ------------------------------------------------------------------------ */

/*
 * Defers the pending connection (LE_AVC_CONNECTION_PENDING).
 *
 * [in] deferMinutes  minutes until the connection is offered again.
 *
 * @return LE_OK, or LE_FAULT when no connection is pending.
 */
le_result_t le_avc_DeferConnect
(
    uint32_t deferMinutes  ///< [IN]
);

/*
 * Accepts the pending download (LE_AVC_DOWNLOAD_PENDING).
 *
 * @return LE_OK, or LE_FAULT when no download is pending.
 */
le_result_t le_avc_AcceptDownload(void);

/*
 * Defers the pending download.
 *
 * [in] deferMinutes  minutes until the download is offered again.
 *
 * @return LE_OK, or LE_FAULT when no download is pending.
 */
le_result_t le_avc_DeferDownload
(
    uint32_t deferMinutes  ///< [IN]
);

/*
 * Accepts the pending install (LE_AVC_INSTALL_PENDING). It starts about
 * 2 seconds later, unless an install block is held (le_avc_BlockInstall):
 * then it is retried every 3 minutes.
 *
 * @return LE_OK, or LE_FAULT when no install is pending.
 */
le_result_t le_avc_AcceptInstall(void);

/*
 * Defers the pending install.
 *
 * [in] deferMinutes  minutes until the install is offered again.
 *
 * @return LE_OK, or LE_FAULT when no install is pending.
 */
le_result_t le_avc_DeferInstall
(
    uint32_t deferMinutes  ///< [IN]
);

/*
 * Accepts the pending uninstall (LE_AVC_UNINSTALL_PENDING).
 *
 * @return LE_OK, or LE_FAULT when no uninstall is pending.
 */
le_result_t le_avc_AcceptUninstall(void);

/*
 * Defers the pending uninstall.
 *
 * [in] deferMinutes  minutes until the uninstall is offered again.
 *
 * @return LE_OK, or LE_FAULT when no uninstall is pending.
 */
le_result_t le_avc_DeferUninstall
(
    uint32_t deferMinutes  ///< [IN]
);

/*
 * Accepts the pending reboot (LE_AVC_REBOOT_PENDING); it happens about
 * 2 seconds later.
 *
 * @return LE_OK, or LE_FAULT when no reboot is pending.
 */
le_result_t le_avc_AcceptReboot(void);

/*
 * Defers the pending reboot.
 *
 * [in] deferMinutes  minutes until the reboot is offered again.
 *
 * @return LE_OK, or LE_FAULT when no reboot is pending.
 */
le_result_t le_avc_DeferReboot
(
    uint32_t deferMinutes  ///< [IN]
);

/*
 * Gets the kind of the pending update.
 *
 * [out] updateTypePtr  the type; untouched on failure.
 *
 * @return LE_OK, or LE_FAULT when nothing is pending (or updateTypePtr is
 *         NULL).
 */
le_result_t le_avc_GetUpdateType
(
    le_avc_UpdateType_t* updateTypePtr  ///< [OUT]
);

/*
 * Gets the name of the pending application update (Object 9 package
 * name), at most LE_LIMIT_APP_NAME_LEN bytes.
 *
 * [out] updateName      buffer; NUL-terminated on LE_OK.
 * [in]  updateNameSize  its size in bytes.
 *
 * @return LE_OK; LE_FAULT when no application update is pending or the
 *         buffer is NULL; LE_OVERFLOW when the name does not fit (it is
 *         truncated).
 */
le_result_t le_avc_GetAppUpdateName
(
    char* updateName,       ///< [OUT]
    size_t updateNameSize   ///< [IN]
);

/*
 * Blocks installs and uninstalls until le_avc_UnblockInstall. While any
 * block is held, an accepted install or uninstall waits and is retried
 * every 3 minutes. Blocks are kept across sessions until released.
 *
 * @return an opaque reference (allocated by libavc, never dereference it),
 *         or NULL when the running agent refused the block.
 */
le_avc_BlockRequestRef_t le_avc_BlockInstall(void);

/*
 * Releases a block taken with le_avc_BlockInstall.
 *
 * [in] blockRef  the reference; NULL, an unknown or an already released
 *                reference is ignored with a warning (Legato kills the
 *                client).
 */
void le_avc_UnblockInstall
(
    le_avc_BlockRequestRef_t blockRef  ///< [IN]
);

/*
 * Gets why the last update failed.
 *
 * @return an le_avc_ErrorCode_t; LE_AVC_ERR_NONE unless it failed.
 */
le_avc_ErrorCode_t le_avc_GetErrorCode(void);

/*
 * Gets the type of the current session, or of the last one.
 *
 * @return LE_AVC_DM_SESSION, LE_AVC_BOOTSTRAP_SESSION, or
 *         LE_AVC_SESSION_INVALID when no session was ever up.
 */
le_avc_SessionType_t le_avc_GetSessionType(void);

/*
 * Gets the HTTP status (RFC 7231) of the last package download over HTTP.
 *
 * @return the status, or LE_AVC_HTTP_STATUS_INVALID (0xFFFF) when unknown
 *         (no HTTP download ran, or the download used CoAP).
 */
uint16_t le_avc_GetHttpStatus(void);

/*
 * Gets the polling timer: minutes between connections the agent makes on
 * its own; 0 means polling is disabled.
 *
 * [out] pollingTimerPtr  the value.
 *
 * @return LE_OK; LE_FAULT when pollingTimerPtr is NULL.
 */
le_result_t le_avc_GetPollingTimer
(
    uint32_t* pollingTimerPtr  ///< [OUT]
);

/*
 * Gets the LE_AVC_NUM_RETRY_TIMERS (8) connection retry timers, in
 * minutes (0: that timer is unused).
 *
 * [out]    timerValuePtr      array of at least 8 values.
 * [in,out] timerValueSizePtr  in: the array's capacity; out: 8.
 *
 * @return LE_OK; LE_FAULT when a pointer is NULL or the capacity is less
 *         than 8.
 */
le_result_t le_avc_GetRetryTimers
(
    uint16_t* timerValuePtr,    ///< [OUT]
    size_t* timerValueSizePtr   ///< [INOUT]
);

/*
 * Gets the APN configuration.
 *
 * [out] apnName       buffer of apnNameSize bytes (LE_AVC_APN_NAME_MAX_LEN_BYTES suffice).
 * [in]  apnNameSize
 * [out] userName      buffer of userNameSize bytes (LE_AVC_USERNAME_MAX_LEN_BYTES suffice).
 * [in]  userNameSize
 * [out] userPwd       buffer of userPwdSize bytes (LE_AVC_PASSWORD_MAX_LEN_BYTES suffice).
 * [in]  userPwdSize
 *
 * libavc stores the APN and hands it to the agent; it uses the host's
 * network and does not set up a bearer with it.
 *
 * @return LE_OK; LE_FAULT when a buffer is NULL; LE_OVERFLOW when a value
 *         does not fit its buffer (it is truncated).
 */
le_result_t le_avc_GetApnConfig
(
    char* apnName,          ///< [OUT]
    size_t apnNameSize,     ///< [IN]
    char* userName,         ///< [OUT]
    size_t userNameSize,    ///< [IN]
    char* userPwd,          ///< [OUT]
    size_t userPwdSize      ///< [IN]
);

/*
 * Sets the APN configuration.
 *
 * [in] apnName   at most LE_AVC_APN_NAME_MAX_LEN bytes.
 * [in] userName  at most LE_AVC_USERNAME_MAX_LEN bytes.
 * [in] userPwd   at most LE_AVC_PASSWORD_MAX_LEN bytes.
 * The strings are copied.
 *
 * @return LE_OK; LE_OVERFLOW when a value is too long (nothing is
 *         changed); LE_FAULT when a pointer is NULL or the agent refused.
 */
le_result_t le_avc_SetApnConfig
(
    const char* LE_NONNULL apnName,   ///< [IN]
    const char* LE_NONNULL userName,  ///< [IN]
    const char* LE_NONNULL userPwd    ///< [IN]
);

/*
 * Sets the polling timer.
 *
 * [in] pollingTimer  minutes, LE_AVC_POLLING_TIMER_MIN_VAL (0, disabled)
 *                    to LE_AVC_POLLING_TIMER_MAX_VAL (525600).
 *
 * @return LE_OK; LE_OUT_OF_RANGE beyond 525600 (nothing is changed);
 *         LE_FAULT when the agent refused.
 */
le_result_t le_avc_SetPollingTimer
(
    uint32_t pollingTimer  ///< [IN]
);

/*
 * Sets the connection retry timers. They take effect at the next
 * connection attempt sequence.
 *
 * [in] timerValuePtr   exactly LE_AVC_NUM_RETRY_TIMERS (8) values in
 *                      minutes, each 0 (unused) to
 *                      LE_AVC_RETRY_TIMER_MAX_VAL (20160).
 * [in] timerValueSize  the number of values.
 *
 * @return LE_OK; LE_FAULT when timerValuePtr is NULL or timerValueSize is
 *         not 8 (or the agent refused); LE_OUT_OF_RANGE when a value is
 *         beyond 20160 (nothing is changed).
 */
le_result_t le_avc_SetRetryTimers
(
    const uint16_t* timerValuePtr,  ///< [IN]
    size_t timerValueSize           ///< [IN]
);

/*
 * Gets which credentials the device holds.
 *
 * @return LE_AVC_DM_CREDENTIAL_PROVISIONED when the device management
 *         server's DTLS PSK (identity and key: AVC_PSK_IDENTITY and
 *         AVC_PSK_KEY) is configured; else LE_AVC_BS_CREDENTIAL_PROVISIONED
 *         when a bootstrap PSK identity and PSK were provisioned with
 *         le_avc_SetCredential (they are kept in the persistent store, so
 *         this holds after a restart too, once the agent runs); else
 *         LE_AVC_NO_CREDENTIAL_PROVISIONED.
 */
le_avc_CredentialStatus_t le_avc_GetCredentialStatus(void);

/*
 * Enables or disables the user agreement for an operation. Disabled (the
 * default), the agent accepts that operation on its own; enabled, it
 * reports the *_PENDING status and waits for an Accept or Defer.
 *
 * [in] updateStatus  the operation (an le_avc_UserAgreement_t).
 * [in] enable        true to ask the status handlers first.
 *
 * @return LE_OK; LE_FAULT for an unknown operation or when the agent
 *         refused.
 */
le_result_t le_avc_SetUserAgreement
(
    le_avc_UserAgreement_t updateStatus,  ///< [IN]
    bool enable                           ///< [IN]
);

/*
 * Gets the user agreement setting of an operation.
 *
 * [in]  updateStatus  the operation.
 * [out] enablePtr     true when it is enabled.
 *
 * @return LE_OK; LE_FAULT for an unknown operation or a NULL enablePtr.
 */
le_result_t le_avc_GetUserAgreement
(
    le_avc_UserAgreement_t updateStatus,  ///< [IN]
    bool* enablePtr                       ///< [OUT]
);

/*
 * Reads an LwM2M resource as text.
 *
 * [in]  objectId, objectInstanceId, resourceId, resourceInstanceId
 *       the resource's path.
 * [out] data      buffer (LE_AVC_MAX_LWM2M_RESOURCE_BYTES + 1 bytes suffice).
 * [in]  dataSize  its size.
 *
 * A single resource is read whole (resourceInstanceId is then ignored); a
 * multiple resource one instance at a time. Values are in their text form:
 * numbers in decimal, booleans 0/1, opaque data in base64, object links
 * "3:0". The Security object (/0) is never read.
 *
 * @return LE_OK: data holds the value, NUL-terminated.
 *         LE_FAULT: no session is running, no buffer, or no such
 *         resource (instance); avc_last_error() says which.
 *         LE_OVERFLOW: the value does not fit in dataSize bytes.
 */
le_result_t le_avc_ReadLwm2mResource
(
    uint16_t objectId,            ///< [IN]
    uint16_t objectInstanceId,    ///< [IN]
    uint16_t resourceId,          ///< [IN]
    uint16_t resourceInstanceId,  ///< [IN]
    char* data,                   ///< [OUT]
    size_t dataSize               ///< [IN]
);

/*
 * Sets the NAT timeout, in seconds (default 40; 0 disables). Over coaps,
 * when nothing came from the server for longer than this, the next send
 * first starts a new DTLS session and the agent registers anew (a NAT
 * binding may be gone). libavc does not resume DTLS sessions (no session
 * tickets or Connection ID yet): it handshakes again. The value applies to
 * sessions started after the call and lasts for the life of the process.
 *
 * [in] timeout  seconds.
 */
void le_avc_SetNatTimeout
(
    uint32_t timeout  ///< [IN]
);

/*
 * Tells whether a session with a server is up (registered).
 *
 * [in] serverId  the server's short ID; LE_AVC_SERVER_ID_ALL_SERVERS or
 *                any non-zero ID names libavc's one server; 0 (bootstrap)
 *                is true only while a bootstrap session is up.
 *
 * @return true when the session is up.
 */
bool le_avc_IsSessionStarted
(
    uint16_t serverId  ///< [IN]
);

/*
 * Provisions a credential: it is kept in the persistent store (the
 * state file under AVC_STATE_DIR, or the host's storage of
 * avc_storage_set), replacing an earlier one of the same type and server,
 * and survives restarts.
 *
 * [in] credType  LE_AVC_BS_SERVER_ADDRESS (a coap:// or coaps:// URI; it
 *                also sets AVC_BOOTSTRAP_URI), LE_AVC_BS_PSK_ID and
 *                LE_AVC_BS_PSK (the bootstrap server's DTLS PSK identity
 *                and raw key bytes, for the bootstrap client; the device
 *                management server's PSK is AVC_PSK_IDENTITY and
 *                AVC_PSK_KEY), LE_AVC_SW_PUBLIC_KEY and
 *                LE_AVC_FW_PUBLIC_KEY (stored; firmware packages are
 *                verified with the key of avc_fw_set_trusted_key).
 * [in] serverId  the server the credential is for (0: the bootstrap
 *                server).
 * [in] credPtr   the credential, copied; 1 to LE_AVC_MAX_CREDENTIAL_SIZE
 *                (4096) bytes.
 * [in] credSize  its size in bytes.
 *
 * @return LE_OK; LE_FAULT for an unknown type, a NULL, empty or too long
 *         credential, or a bootstrap server address that is not a
 *         coap:// or coaps:// URI.
 */
le_result_t le_avc_SetCredential
(
    le_avc_CredentialType_t credType,  ///< [IN]
    uint16_t serverId,                 ///< [IN]
    const uint8_t* credPtr,            ///< [IN]
    size_t credSize                    ///< [IN]
);

#endif /* AVC_NO_PROTOTYPES */

#ifdef __cplusplus
}
#endif

#endif /* LE_AVC_INTERFACE_H_INCLUDE_GUARD */
