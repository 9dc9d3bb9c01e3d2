/*
 * le_avc_interface.h - Legato's le_avc API (AirVantage Connector) as
 * implemented by libavc, avc's in-process LwM2M agent.
 *
 * Signatures are exactly those Legato's ifgen generates from
 * interfaces/airVantage/le_avc.api; the comments are avc's own and say what
 * libavc does.
 *
 * What is declared here, and what is not
 * --------------------------------------
 * This header declares only the functions libavc implements today:
 *
 *     le_avc_AddStatusEventHandler, le_avc_RemoveStatusEventHandler,
 *     le_avc_StartSession, le_avc_StopSession,
 *     le_avc_ConnectService, le_avc_TryConnectService,
 *     le_avc_SetServerDisconnectHandler, le_avc_DisconnectService.
 *
 * The remaining le_avc functions (session requests, CommInfo, StartDmSession,
 * CheckRoute, Accept and Defer of downloads, installs, uninstalls and
 * reboots, BlockInstall, polling and retry timers, APN, user agreement,
 * credentials, ...) arrive with the update-control work. They are
 * deliberately NOT declared yet, so that a program using one of them fails
 * when it is compiled (implicit declaration / undeclared identifier), not
 * when it is run. Their types and constants are already in le_avc_common.h.
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
 * Sessions
 * ------------------------------------------------------------------------ */

/*
 * Starts a session with the LwM2M server: the agent registers, keeps the
 * registration up (updates, re-registration after failures) until
 * le_avc_StopSession. Non-blocking: the outcome is reported to status
 * handlers as LE_AVC_SESSION_STARTED once the server accepts the
 * registration, or LE_AVC_SESSION_FAILED when it refuses or does not
 * answer (the agent then retries with back-off while the session lasts).
 *
 * The configuration is read when this is called; later changes apply to
 * the next session. A start right after a stop waits (in the background)
 * for the previous session's de-registration to finish first.
 *
 * @return
 *  - LE_OK         the session start was requested.
 *  - LE_DUPLICATE  a session is already started.
 *  - LE_FAULT      the configuration is missing or invalid (for example no
 *                  AVC_SERVER_URI); the reason is logged and available from
 *                  avc_last_error().
 */
le_result_t le_avc_StartSession(void);

/*
 * Stops the session: the agent de-registers (waiting at most 10 s for the
 * server) and reports LE_AVC_SESSION_STOPPED to status handlers when done.
 * Non-blocking.
 *
 * @return
 *  - LE_OK         the stop was requested; LE_AVC_SESSION_STOPPED follows.
 *  - LE_DUPLICATE  no session is started.
 *  - LE_FAULT      internal failure (logged; see avc_last_error()).
 */
le_result_t le_avc_StopSession(void);

#endif /* AVC_NO_PROTOTYPES */

#ifdef __cplusplus
}
#endif

#endif /* LE_AVC_INTERFACE_H_INCLUDE_GUARD */
