/*
 * avc.h - libavc's own C API: configuration, errors, logging, an opt-in
 * event queue for hosts that would rather poll than be called back, the
 * resource values the host keeps up to date, custom objects, and the
 * firmware storage callbacks of firmware update (Object 5).
 *
 * The Legato personality (legato.h, interfaces.h / le_avc.h) is the main
 * API; this header adds what Legato has no place for. Every name starts
 * with avc_ or AVC_. Include it alone or next to the Legato headers.
 *
 * Rules that hold for every function here
 * ---------------------------------------
 * - Threads: every function may be called from any thread, including from
 *   inside an le_avc status handler or the log callback (except where a
 *   function says otherwise).
 * - Strings passed in are copied before the function returns; the caller
 *   keeps ownership. Strings passed out are copied into the caller's
 *   buffer and always NUL-terminated when the buffer size is at least 1.
 * - Failures return a negative avc_result_t and never abort the process:
 *   a Go panic inside libavc is recovered and reported as AVC_ERR_FAULT.
 *   avc_last_error() describes the most recent failure on the calling
 *   thread.
 * - The library cannot be unloaded (dlclose does nothing), a process holds
 *   one copy of it, and a process that has loaded it must not fork()
 *   without exec(). Signal handlers installed by the host must use
 *   SA_ONSTACK.
 *
 * AVC_NO_PROTOTYPES is defined only while libavc itself is compiled (its Go
 * exports declare the functions with ABI-identical types); applications
 * never define it.
 *
 * C99 and C++ clean.
 */
#ifndef AVC_H_INCLUDE_GUARD
#define AVC_H_INCLUDE_GUARD

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Result codes. AVC_OK is 0 and failures are negative. Each value equals
 * the le_result_t (legato.h) with the same meaning, so a host can handle
 * both families with one table.
 */
typedef enum
{
    AVC_OK = 0,                     /* Success. */
    AVC_ERR_NOT_FOUND = -1,         /* No such configuration name. (LE_NOT_FOUND) */
    AVC_ERR_NOT_PERMITTED = -5,     /* Not allowed in the current state, e.g. polling
                                       while the event queue is disabled. (LE_NOT_PERMITTED) */
    AVC_ERR_FAULT = -6,             /* Internal failure; see avc_last_error(). (LE_FAULT) */
    AVC_ERR_TIMEOUT = -8,           /* Nothing happened before the timeout. (LE_TIMEOUT) */
    AVC_ERR_OVERFLOW = -9,          /* The output did not fit; it was truncated. (LE_OVERFLOW) */
    AVC_ERR_FORMAT = -13,           /* A value has the wrong form. (LE_FORMAT_ERROR) */
    AVC_ERR_BAD_PARAMETER = -15     /* NULL or out-of-range argument. (LE_BAD_PARAMETER) */
}
avc_result_t;

/*
 * Returns the name of a result code ("AVC_OK", "AVC_ERR_TIMEOUT", ...), or
 * "AVC_ERR_UNKNOWN" for any other value.
 *
 * [in] rc  any value.
 *
 * The string is static, owned by libavc, valid for the life of the
 * process; do not free it.
 */
#ifndef AVC_NO_PROTOTYPES
const char* avc_strerror(int rc);
#endif

/*
 * Copies the message describing the most recent failure of an avc_* or
 * le_avc_* call made on the calling thread into buf.
 *
 * [out] buf   receives the message, NUL-terminated and truncated to
 *             size - 1 bytes. May be NULL only when size is 0.
 * [in]  size  size of buf in bytes.
 *
 * Every function that returns a result code sets the message when it fails
 * and clears it (to "") when it succeeds; avc_last_error() itself and
 * functions without a result code leave it alone. Messages are kept per
 * thread.
 *
 * @return the length of the whole message in bytes, without the NUL
 *         (>= size means it was truncated; 0 means no failure), or
 *         AVC_ERR_BAD_PARAMETER when buf is NULL and size is not 0.
 */
#ifndef AVC_NO_PROTOTYPES
int avc_last_error(char* buf, size_t size);
#endif

/*
 * Returns libavc's version, e.g. "0.1.0". The string is static, owned by
 * libavc, valid for the life of the process; do not free it.
 */
#ifndef AVC_NO_PROTOTYPES
const char* avc_version(void);
#endif

/* ------------------------------------------------------------------------
 * Configuration
 * ------------------------------------------------------------------------ */

/*
 * Sets a configuration value by name.
 *
 * [in] name   one of AVC_SERVER_URI ("coap://host[:port]"), AVC_ENDPOINT,
 *             AVC_LIFETIME (seconds), AVC_STATE_DIR, AVC_LOG_LEVEL (debug,
 *             info, warn, error), AVC_PSK_IDENTITY, AVC_PSK_KEY (hex),
 *             AVC_CERT_FILE, AVC_KEY_FILE, AVC_CA_FILE (PEM files for
 *             DTLS with certificates), AVC_BOOTSTRAP_URI, or a firmware
 *             update setting:
 *             AVC_FW_VERSION (the running firmware version, /3/0/3),
 *             AVC_FW_TRUSTED_KEYS (Ed25519 public keys allowed to sign
 *             packages, hex or base64, comma-separated; see also
 *             avc_fw_set_trusted_key), AVC_FW_REQUIRE_SIGNATURE ("true":
 *             refuse unsigned packages), AVC_FW_INSTALL_CMD (the install
 *             command of the default file handler; see avc_fw_install).
 *             Must not be NULL.
 * [in] value  the value in the same text form as the environment variable;
 *             "" restores the default. Must not be NULL.
 *
 * If this is called before any le_avc_* function and avc_config_get, the
 * AVC_* environment variables are never read: the configuration starts
 * from the defaults (endpoint "avc-<hostname>") and holds only what is set
 * here. Otherwise it changes the configuration read from the environment
 * (through getenv(), so values the host setenv()s before its first call
 * count).
 * Values are checked here; completeness (AVC_SERVER_URI present) is checked
 * by le_avc_StartSession. AVC_LOG_LEVEL applies at once; everything else
 * applies to the next session started.
 *
 * @return
 *  - AVC_OK                 stored.
 *  - AVC_ERR_BAD_PARAMETER  name or value is NULL.
 *  - AVC_ERR_NOT_FOUND      name is not a configuration name.
 *  - AVC_ERR_FORMAT         value has the wrong form (e.g. AVC_LIFETIME "ten").
 *  - AVC_ERR_FAULT          internal failure.
 */
#ifndef AVC_NO_PROTOTYPES
avc_result_t avc_config_set(const char* name, const char* value);
#endif

/*
 * Copies a configuration value, in the form avc_config_set accepts, into
 * buf. AVC_PSK_KEY is never returned: it reads "(set)" when a key is
 * configured and "" otherwise.
 *
 * [in]  name  a configuration name (see avc_config_set). Must not be NULL.
 * [out] buf   receives the value, NUL-terminated. Must not be NULL.
 * [in]  size  size of buf in bytes, at least 1.
 *
 * Like the le_avc_* functions, this reads the environment first if nothing
 * has been configured yet.
 *
 * @return
 *  - AVC_OK                 copied.
 *  - AVC_ERR_OVERFLOW       the value did not fit; buf holds it truncated.
 *  - AVC_ERR_BAD_PARAMETER  name or buf is NULL, or size is 0.
 *  - AVC_ERR_NOT_FOUND      name is not a configuration name.
 *  - AVC_ERR_FAULT          internal failure.
 */
#ifndef AVC_NO_PROTOTYPES
avc_result_t avc_config_get(const char* name, char* buf, size_t size);
#endif

/* ------------------------------------------------------------------------
 * Logging
 * ------------------------------------------------------------------------ */

/* Log levels passed to an avc_log_fn (slog's numbering). */
typedef enum
{
    AVC_LOG_DEBUG = -4,
    AVC_LOG_INFO = 0,
    AVC_LOG_WARN = 4,
    AVC_LOG_ERROR = 8
}
avc_log_level_t;

/*
 * Receives one log line.
 *
 * [in] user   the user pointer given to avc_set_log_handler.
 * [in] level  an avc_log_level_t.
 * [in] msg    one line without a trailing newline, "event key=value ...";
 *             valid only during the call.
 *
 * It may be called from any thread, and from several threads at once, so
 * it must be thread-safe. It must not call avc_set_log_handler.
 */
typedef void (*avc_log_fn)(void* user, int level, const char* msg);

/*
 * Sends libavc's log lines at AVC_LOG_LEVEL and above to fn instead of
 * stderr. The default (and the effect of fn == NULL) writes
 * "avc: LEVEL message" lines to stderr.
 *
 * [in] fn    the callback, or NULL for the default.
 * [in] user  passed to every call of fn; never dereferenced. The caller
 *            keeps ownership and must keep it valid until fn is replaced.
 *
 * When this returns, the previous callback is no longer called and no call
 * to it is running (this waits up to 1 s for calls in progress).
 *
 * @return AVC_OK, or AVC_ERR_FAULT on internal failure.
 */
#ifndef AVC_NO_PROTOTYPES
avc_result_t avc_set_log_handler(avc_log_fn fn, void* user);
#endif

/* ------------------------------------------------------------------------
 * Event queue (opt-in polling)
 * ------------------------------------------------------------------------ */

/* Types of avc_event_t. */
typedef enum
{
    AVC_EVENT_STATUS = 1    /* An le_avc status change; see avc_event_t.status. */
}
avc_event_type_t;

/* Size of avc_event_t.message, including the NUL. */
#define AVC_EVENT_MESSAGE_MAX 128

/* Events the queue holds before the oldest are dropped. */
#define AVC_EVENT_QUEUE_MAX 256

/* One event taken from the queue by avc_poll_event. */
typedef struct avc_event
{
    int32_t type;               /* An avc_event_type_t. */
    int32_t status;             /* For AVC_EVENT_STATUS: an le_avc_Status_t value
                                   (13 LE_AVC_SESSION_STARTED, 15 ..._STOPPED, 16 ..._FAILED). */
    int32_t total_num_bytes;    /* As in le_avc_StatusHandlerFunc_t; -1 when unknown. */
    int32_t progress;           /* As in le_avc_StatusHandlerFunc_t; -1 when unknown. */
    uint32_t dropped;           /* Events dropped (queue full) just before this one. */
    char message[AVC_EVENT_MESSAGE_MAX];
                                /* NUL-terminated detail, possibly "": the
                                   registration location for SESSION_STARTED,
                                   the reason for SESSION_FAILED. */
}
avc_event_t;

/*
 * Turns the event queue on or off. While it is on, every event delivered to
 * le_avc status handlers is also appended to the queue, whether or not any
 * handler is registered, so a program may use avc_poll_event alone. The
 * queue holds AVC_EVENT_QUEUE_MAX events; beyond that the oldest are
 * dropped (counted in avc_event_t.dropped). Turning it off empties the
 * queue and wakes every avc_poll_event waiting, which then returns
 * AVC_ERR_NOT_PERMITTED. Off by default.
 *
 * [in] enable  non-zero to turn the queue on, 0 to turn it off.
 *
 * @return AVC_OK, or AVC_ERR_FAULT on internal failure.
 */
#ifndef AVC_NO_PROTOTYPES
avc_result_t avc_events_enable_poll(int enable);
#endif

/*
 * Takes the oldest event from the queue, waiting for one if it is empty.
 *
 * [out] ev          receives the event. Must not be NULL.
 * [in]  timeout_ms  0: do not wait; > 0: wait at most that many
 *                   milliseconds; < 0: wait until an event arrives or the
 *                   queue is turned off.
 *
 * Several threads may poll at once; each event goes to exactly one of them.
 * Waiting never holds a lock that other libavc calls need, and releases the
 * Python GIL when called through ctypes.CDLL.
 *
 * @return
 *  - AVC_OK                 *ev holds the event.
 *  - AVC_ERR_TIMEOUT        no event within timeout_ms.
 *  - AVC_ERR_NOT_PERMITTED  the queue is off (see avc_events_enable_poll).
 *  - AVC_ERR_BAD_PARAMETER  ev is NULL.
 *  - AVC_ERR_FAULT          internal failure.
 */
#ifndef AVC_NO_PROTOTYPES
avc_result_t avc_poll_event(avc_event_t* ev, int timeout_ms);
#endif

/* ------------------------------------------------------------------------
 * Resource values and custom objects
 * ------------------------------------------------------------------------ */

/* Paths whose value avc_set_value remembers at most. */
#define AVC_VALUES_MAX 1024

/*
 * Sets a value that the host keeps up to date: the battery level (/3/0/9),
 * free memory (/3/0/10), an error code (/3/0/11/N), a Connectivity
 * Monitoring value (/4/0/...), a location (/6/0/...), or a resource of an
 * object defined with avc_object_define or avc_object_define_xml.
 *
 * [in] path   the LwM2M path of a resource ("/3/0/9") or, for a multiple
 *             resource, of one of its instances ("/3/0/11/1"). Must not be
 *             NULL.
 * [in] value  the value in its text/plain form (LwM2M Core TS 1.1 §7.4.1),
 *             converted to the resource's type: decimal integers and
 *             floats ("50", "-3.25"), "1"/"0"/"true"/"false" for booleans,
 *             standard base64 for opaque, "obj:inst" for object links, Unix
 *             seconds for times, strings as they are. NULL removes the
 *             resource instance at path.
 *
 * Values may be set at any time. The engine that serves the server exists
 * only while a session runs, so libavc remembers the last value set for
 * each path (at most AVC_VALUES_MAX paths, for the life of the process)
 * and gives all of them, in the order they were first set, to the engine
 * of every session when it starts; values set while a session runs also
 * reach its engine at once (observers are notified). Values set before
 * le_avc_StartSession are therefore in place shortly after it, although
 * the Register may leave before them: a value that creates an instance (of
 * a multiple-instance object, or Location /6/0) is announced with a
 * Registration Update.
 *
 * Whether the path and value are acceptable is the engine's decision: that
 * of the running session, or between sessions that of an engine with the
 * objects defined so far (define objects before setting their values).
 * A remembered value the next session's engine refuses (because the object
 * definitions changed) is logged as a warning and forgotten.
 *
 * @return
 *  - AVC_OK                 set, and remembered for later sessions.
 *  - AVC_ERR_BAD_PARAMETER  path is NULL or not an LwM2M path, or the
 *                           engine refuses the path or the value (no such
 *                           object, instance or resource; an executable
 *                           resource or one the engine computes; a value
 *                           that does not convert to the resource's type;
 *                           NULL for a single-instance resource).
 *                           avc_last_error() says why; nothing is
 *                           remembered.
 *  - AVC_ERR_OVERFLOW       path is new and AVC_VALUES_MAX paths are
 *                           remembered already.
 *  - AVC_ERR_NOT_PERMITTED  called from a firmware handler (see
 *                           avc_fw_handlers_t); nothing is remembered.
 *  - AVC_ERR_FAULT          internal failure.
 */
#ifndef AVC_NO_PROTOTYPES
avc_result_t avc_set_value(const char* path, const char* value);
#endif

/*
 * Defines objects beyond the built-in Security /0, Server /1, Device /3,
 * Connectivity Monitoring /4, Location /6 and Connectivity Statistics /7,
 * from their description in the OMA LwM2M registry's XML format
 * (<LWM2M><Object>...</Object></LWM2M>, LWM2M.xsd), as published for every
 * registered object.
 *
 * [in] xml  the document, UTF-8; it need not be NUL-terminated. NULL
 *           together with len 0 removes every definition made so far.
 * [in] len  its length in bytes; documents over 1 MiB are refused.
 *
 * Definitions add up: each call adds the objects of its document,
 * replacing earlier definitions with the same object ID. They apply to the
 * next session started (le_avc_StartSession); a running session keeps the
 * objects it started with. A single-instance object has instance 0 from
 * the start; instances of a multiple-instance object appear when
 * avc_set_value sets a value in them. The engine keeps the values of these
 * objects: the host sets them with avc_set_value, the server reads and
 * writes them. Server writes and executes are reported to the callbacks
 * of avc_object_set_handlers.
 *
 * @return
 *  - AVC_OK                 defined for the next session.
 *  - AVC_ERR_FORMAT         the document is not a well-formed registry
 *                           document (bad XML, no <Object>, a bad ID or
 *                           type); avc_last_error() says what. Nothing is
 *                           defined.
 *  - AVC_ERR_BAD_PARAMETER  xml is NULL while len is not 0, or the document
 *                           defines a built-in object.
 *  - AVC_ERR_FAULT          internal failure.
 */
#ifndef AVC_NO_PROTOTYPES
avc_result_t avc_object_define_xml(const char* xml, size_t len);
#endif

/* Resource data types of avc_resource_def_t.type (LwM2M Core TS 1.1
 * Appendix C). AVC_TYPE_NONE is for executable resources. */
typedef enum {
    AVC_TYPE_NONE = 0,
    AVC_TYPE_STRING = 1,
    AVC_TYPE_INTEGER = 2,
    AVC_TYPE_UNSIGNED = 3,
    AVC_TYPE_FLOAT = 4,
    AVC_TYPE_BOOLEAN = 5,
    AVC_TYPE_OPAQUE = 6,
    AVC_TYPE_TIME = 7,
    AVC_TYPE_OBJLNK = 8,
    AVC_TYPE_CORELNK = 9
} avc_resource_type_t;

/* Bits of avc_resource_def_t.operations. A resource is readable and/or
 * writable (with a type other than AVC_TYPE_NONE), or executable alone
 * (with AVC_TYPE_NONE), or has no operation.
 *
 * AVC_OP_READ_CB, beside AVC_OP_READ, makes the resource's value the
 * host's to give when a server reads it (a read callback): a server Read,
 * Observe or Read-Composite that covers it is acknowledged at once, the
 * read callback of avc_object_set_handlers is called with its path, and
 * the value the host sets there with avc_set_value is what the server
 * gets, in a separate response sent when the callback returns. Without a
 * read callback the engine answers with the value it has. Notifications
 * of an observed resource carry the value last set with avc_set_value:
 * the host keeps it current for observers. */
#define AVC_OP_READ 0x1u
#define AVC_OP_WRITE 0x2u
#define AVC_OP_EXECUTE 0x4u
#define AVC_OP_READ_CB 0x8u

/* One resource of an avc_object_def_t: the <Item> of a registry document. */
typedef struct {
    uint16_t id;           /* resource ID, 0..65534 */
    const char* name;      /* may be NULL */
    int type;              /* an avc_resource_type_t */
    unsigned operations;   /* AVC_OP_* bits */
    int multiple;          /* non-zero: a multiple-instance resource */
    int mandatory;         /* non-zero: mandatory */
} avc_resource_def_t;

/* One object for avc_object_define: the <Object> of a registry document. */
typedef struct {
    uint16_t id;                         /* object ID, 0..65534 */
    const char* name;                    /* may be NULL */
    const char* version;                 /* "1.0" form; NULL or "" means "1.0" */
    int multiple;                        /* non-zero: a multiple-instance object */
    int mandatory;                       /* non-zero: mandatory */
    const avc_resource_def_t* resources; /* resource_count elements; NULL if 0 */
    size_t resource_count;               /* at most 65535 */
} avc_object_def_t;

/*
 * Defines objects field by field: what avc_object_define_xml does with a
 * registry document, without the XML. The definitions are checked and
 * merged exactly as avc_object_define_xml does (same rules, same result
 * codes, one code path), and libavc copies what it needs: the arrays and
 * strings may be freed when the call returns.
 *
 * [in] defs  n object definitions. NULL together with n 0 removes every
 *            definition made so far (as avc_object_define_xml(NULL, 0)).
 * [in] n     how many, 1 to 1024.
 *
 * @return
 *  - AVC_OK                 defined for the next session.
 *  - AVC_ERR_FORMAT         a definition is malformed: an ID over 65534, a
 *                           resource defined twice, an unknown type or
 *                           operations bit, an executable resource with a
 *                           type, a readable or writable one without, a
 *                           version not of the form "1.0". Nothing is
 *                           defined; avc_last_error() says what.
 *  - AVC_ERR_BAD_PARAMETER  defs is NULL while n is not 0, n is out of
 *                           range, resources is NULL while resource_count
 *                           is not 0, or an object is built in.
 *  - AVC_ERR_FAULT          internal failure.
 */
#ifndef AVC_NO_PROTOTYPES
avc_result_t avc_object_define(const avc_object_def_t* defs, size_t n);
#endif

/*
 * Callbacks for what the server does to the resources of the objects
 * defined with avc_object_define or avc_object_define_xml (not the
 * built-in objects). Either may be NULL.
 *
 * write    the server wrote path (Write, partial update or
 *          Write-Composite): a resource ("/3442/0/110"), a resource
 *          instance ("/3442/0/180/2"), a multiple resource or an
 *          instance ("/3442/0") when it wrote several values at once.
 *          value is the value at path in text/plain form (as
 *          avc_set_value takes it), read from the engine just after the
 *          write; NULL when path is not a single resource or resource
 *          instance (le_avc_ReadLwm2mResource reads what it holds). The
 *          engine keeps the value: the host need not store it.
 * execute  the server executed the resource at path; args is the Execute
 *          payload as sent (Core TS 1.1 §5.4.5: "0='on',1"), "" when none.
 * read     the server reads the resource at path (or the resource
 *          instance, "/3460/0/5/1"), declared with AVC_OP_READ_CB: the
 *          host sets its value now with avc_set_value. It is called once
 *          for each such resource the request covers (a Read of an
 *          instance or object, a Read-Composite, an Observe), and when the
 *          last call returns the engine answers the server with the
 *          values it has. The server waits: a call longer than
 *          AVC_READ_TIMEOUT (5 s by default) makes the engine answer
 *          with the values it had. NULL: the engine answers at once.
 *
 * They are called on the thread that calls the le_avc status handlers,
 * one call at a time, in the order the server's requests were handled,
 * after the engine answered the server (write, execute) or acknowledged
 * it (read), and never under a libavc lock: they may call any avc_ or
 * le_avc_ function. The strings are valid for the call only.
 */
typedef struct {
    void (*write)(void* user, const char* path, const char* value);
    void (*execute)(void* user, const char* path, const char* args);
    void (*read)(void* user, const char* path);
} avc_object_handlers_t;

/*
 * Sets the object callbacks (the struct is copied) and their user
 * pointer, replacing earlier ones; NULL removes them. Requests handled
 * before the call may still be reported to the callbacks set before it.
 *
 * @return AVC_OK, or AVC_ERR_FAULT on internal failure.
 */
#ifndef AVC_NO_PROTOTYPES
avc_result_t avc_object_set_handlers(const avc_object_handlers_t* h, void* user);
#endif

/* ------------------------------------------------------------------------
 * Send
 * ------------------------------------------------------------------------ */

/*
 * Reports the current values at paths to the server with the LwM2M Send
 * operation (Core TS 1.1 §6.4.3: POST /dp, SenML-CBOR, dated with the time
 * of the call), e.g. the battery level "/3/0/9" set with avc_set_value.
 * Needs a started session (le_avc_StartSession): while it is not
 * registered yet the values are read now, queued and sent after the
 * registration. The le_avc status API has no status for the server's
 * answer; it is logged.
 *
 * [in] paths  count LwM2M paths of objects, instances or resources
 *             ("/3/0/9"); neither the array nor an element may be NULL.
 *             The Security object /0 is not reported.
 * [in] count  how many, 1 to 1024.
 *
 * @return
 *  - AVC_OK                 the values are read and sent, or queued.
 *  - AVC_ERR_NOT_PERMITTED  no session is started (or it has ended), the
 *                           server has muted Send (/1/0/23), or called
 *                           from a firmware handler.
 *  - AVC_ERR_BAD_PARAMETER  paths or an element is NULL, count is out of
 *                           range, or the engine refuses a path (not an
 *                           LwM2M path, nothing to read there);
 *                           avc_last_error() says why. Nothing is sent.
 *  - AVC_ERR_FAULT          internal failure.
 */
#ifndef AVC_NO_PROTOTYPES
avc_result_t avc_send(const char* const* paths, size_t count);
#endif

/* ------------------------------------------------------------------------
 * Persistent storage
 *
 * libavc keeps one persistent record, "state": the agent's versioned,
 * checksummed state, which holds the le_avc configuration (user
 * agreements, polling and retry timers, the last poll, APN, credentials)
 * and what is needed to resume an update after a restart. By default it
 * is the file AVC_STATE_DIR/agent-state.json (none without
 * AVC_STATE_DIR). A host without a file system gives its own storage
 * (flash) with avc_storage_set.
 * ------------------------------------------------------------------------ */

/*
 * The storage callbacks. Each gets the user pointer given to
 * avc_storage_set. libavc calls them from its own threads, one call at a
 * time, never under a libavc lock and never from a status handler.
 */
typedef struct avc_storage
{
    /*
     * Reads the record called key (NUL-terminated; only "state" is used)
     * into buf, which holds size bytes. Returns the record's length in
     * bytes, also when it is larger than size (libavc then calls again
     * with a buffer that large); 0 when there is no record; a negative
     * value on a read error. A record that is missing, unreadable or
     * corrupt (it does not verify) makes the agent start from the
     * defaults, which it writes at once; it never fails because of it.
     */
    int64_t (*read)(void* user, const char* key, void* buf, size_t size);
    /*
     * Stores length bytes of data as the record called key, durably and
     * atomically: after a power cut the store holds either this record or
     * the previous one. Returns 0 on success; anything else is logged as
     * a warning and the agent goes on (the next change writes the whole
     * record again).
     */
    int (*write)(void* user, const char* key, const void* data, size_t length);
}
avc_storage_t;

/*
 * Makes libavc keep its persistent record with the host's storage instead
 * of the file under AVC_STATE_DIR (firmware images are not concerned:
 * see avc_fw_install). Call it before the first le_avc call that needs
 * the agent, or at least before the first le_avc_StartSession: the agent
 * is made anew with the storage (reading the record) from the next le_avc
 * call on.
 *
 * [in] storage  the callbacks; the struct is copied. NULL goes back to
 *               the file under AVC_STATE_DIR. read and write must not be
 *               NULL.
 * [in] user     passed to every callback; never dereferenced. The caller
 *               keeps it valid until the storage is replaced.
 *
 * @return
 *  - AVC_OK                 installed.
 *  - AVC_ERR_BAD_PARAMETER  read or write is NULL. Nothing changes.
 *  - AVC_ERR_NOT_PERMITTED  a session is started, or called from a
 *                           handler. Nothing changes.
 *  - AVC_ERR_FAULT          internal failure.
 */
#ifndef AVC_NO_PROTOTYPES
avc_result_t avc_storage_set(const avc_storage_t* storage, void* user);
#endif

/* ------------------------------------------------------------------------
 * Firmware update (LwM2M Object 5)
 * ------------------------------------------------------------------------
 *
 * The host stores and installs firmware images through a struct of
 * callbacks modelled on Anjay's anjay_fw_update_handlers_t; libavc runs the
 * rest of Object 5: the pull (coap, http, https Package URI) or push
 * (block-wise write of /5/0/0) download, the verification of the package
 * (length, SHA-256, signed manifest), checkpoints for resuming, the state
 * machine, and the report after the install. Handlers are handed image
 * bytes only, already verified as they stream.
 *
 * An update runs: stream_open, stream_write... (sync before every
 * checkpoint), stream_finish; State is then Downloaded (2). On the server's
 * Update (/5/0/2), State becomes Updating (3) and perform_upgrade is
 * called. When it returns 0 the device is expected to restart into the new
 * image; libavc restarts its engine (as after a reboot: a real reboot
 * works too when AVC_STATE_DIR keeps the state) and asks booted whether
 * the package is installed: State goes back to Idle (0) with Update Result
 * 1 (success), or to Downloaded with Result 8 (failed).
 *
 * Optional callbacks (Anjay's get_name, get_version, get_security_config,
 * get_coap_tx_params, get_tcp_request_timeout) name a bare image and
 * choose each pull's credential, CoAP retransmission and request timeout;
 * NULL keeps the defaults. avc_fw_handlers_t grew with the last three: a
 * host compiled against an older avc.h must be rebuilt (zero-initialise
 * the struct, e.g. "avc_fw_handlers_t h = {0};", so that members it does
 * not set are NULL).
 *
 * Threads and locks: handlers run on a libavc thread of the session, one
 * call at a time, never under a libavc lock. They are storage calls and
 * are expected to return quickly (perform_upgrade may also never return,
 * when it reboots the device). A handler may call any avc_* or le_avc_*
 * function except avc_set_value, avc_send (both return
 * AVC_ERR_NOT_PERMITTED there: they wait for the session, which is busy
 * calling the handler) and avc_fw_install / avc_fw_uninstall (the same).
 * Called from a handler, le_avc_RemoveStatusEventHandler and
 * avc_fw_set_status_handler do not wait for a status callback in progress.
 */

/* Values of State, /5/0/3 (LwM2M Core TS 1.1 §E.6). */
typedef enum
{
    AVC_FW_STATE_IDLE = 0,          /* Before a download or after an update. */
    AVC_FW_STATE_DOWNLOADING = 1,
    AVC_FW_STATE_DOWNLOADED = 2,
    AVC_FW_STATE_UPDATING = 3
}
avc_fw_state_t;

/* Values of Update Result, /5/0/5 (object 5 version 1.1; the numbers of
 * Anjay's anjay_fw_update_result_t). */
typedef enum
{
    AVC_FW_RESULT_INITIAL = 0,                  /* Reset when a download or update starts. */
    AVC_FW_RESULT_SUCCESS = 1,                  /* Firmware updated successfully. */
    AVC_FW_RESULT_NOT_ENOUGH_SPACE = 2,         /* Not enough storage for the package. */
    AVC_FW_RESULT_OUT_OF_MEMORY = 3,            /* Out of RAM during the download. */
    AVC_FW_RESULT_CONNECTION_LOST = 4,          /* Connection lost during the download. */
    AVC_FW_RESULT_INTEGRITY_FAILURE = 5,        /* The package failed verification. */
    AVC_FW_RESULT_UNSUPPORTED_PACKAGE_TYPE = 6, /* Not a package this device takes. */
    AVC_FW_RESULT_INVALID_URI = 7,
    AVC_FW_RESULT_FAILED = 8,                   /* The update failed. */
    AVC_FW_RESULT_UNSUPPORTED_PROTOCOL = 9,     /* A Package URI scheme libavc cannot fetch. */
    AVC_FW_RESULT_UPDATE_CANCELLED = 10,        /* Cancelled by the server (/5/0/10). */
    AVC_FW_RESULT_DEFERRED = 11                 /* The install was deferred by the handler. */
}
avc_fw_result_t;

/*
 * Failures a handler returns to choose the Update Result (Anjay's
 * ANJAY_FW_UPDATE_ERR_* values: the negated result). Any other non-zero
 * value is a failure with the default result of the call that returned
 * it (documented with each callback).
 */
typedef enum
{
    AVC_FW_ERR_NOT_ENOUGH_SPACE = -2,           /* Result 2. */
    AVC_FW_ERR_OUT_OF_MEMORY = -3,              /* Result 3. */
    AVC_FW_ERR_INTEGRITY_FAILURE = -5,          /* Result 5; from perform_upgrade the
                                                   image is discarded (State Idle). */
    AVC_FW_ERR_UNSUPPORTED_PACKAGE_TYPE = -6,   /* Result 6; from perform_upgrade the
                                                   image is discarded (State Idle). */
    AVC_FW_ERR_DEFERRED = -11                   /* From perform_upgrade: keep the image,
                                                   State Downloaded, Result 11. */
}
avc_fw_error_t;

/* Size of the running_version buffer passed to booted, including the NUL
 * (the Firmware Version resource /3/0/3 holds at most 255 bytes). */
#define AVC_FW_VERSION_MAX 256

/*
 * A downloaded package, passed to perform_upgrade and booted. Every
 * pointer is valid during the call only; strings are never NULL ("" when
 * unknown). Name and version come from the package manifest ("" for a
 * bare image without one).
 */
typedef struct avc_fw_package
{
    const char* uri;        /* The Package URI it came from; "" for a push. */
    const char* name;       /* PkgName, /5/0/6. */
    const char* version;    /* PkgVersion, /5/0/7. */
    const char* sha256;     /* SHA-256 of the image bytes, 64 lower-case hex digits. */
    int64_t size;           /* Image bytes stored. */
}
avc_fw_package_t;

/*
 * The credential of one pull, filled in by get_security_config. libavc
 * zeroes it before the call; members left NULL (or 0) fall back to the
 * configuration. Every pointer must stay valid after the callback
 * returns, until libavc has copied what it points to, which it does
 * before it calls any other callback: point into storage the handler
 * owns (static, or reached from user), never into the callback's stack.
 */
typedef struct avc_fw_security_config
{
    const char* psk_identity;       /* coaps: DTLS-PSK identity, NUL-terminated. */
    const void* psk_key;            /* coaps: the pre-shared key, psk_key_len bytes. */
    size_t psk_key_len;             /* Identity and key both set, or neither
                                       (AVC_FW_PSK_IDENTITY/KEY, else AVC_PSK_*). */
    const char* ca_pem;             /* https: PEM certificates to trust instead of
                                       AVC_FW_CA_FILE or the system's roots. */
    const char* client_cert_pem;    /* https: PEM certificate chain presented to the
                                       server (TLS client authentication)... */
    const char* client_key_pem;     /* ...and its PEM private key; both or neither. */
}
avc_fw_security_config_t;

/*
 * CoAP transmission parameters (RFC 7252 §4.8) of a coap:// or coaps://
 * pull, filled in by get_coap_tx_params. A request is resent after
 * ack_timeout_ms × [1, ack_random_factor], doubling at each resend, at
 * most max_retransmit times before the attempt counts as failed (the
 * pull then retries after 2 s, 4 s, ...).
 */
typedef struct avc_fw_coap_tx_params
{
    uint32_t ack_timeout_ms;        /* ACK_TIMEOUT: 1 to 600000 (default 2000). */
    double ack_random_factor;       /* ACK_RANDOM_FACTOR: 1.0 to 4.0 (default 1.5). */
    uint32_t max_retransmit;        /* MAX_RETRANSMIT: 0 to 20 (default 4). */
}
avc_fw_coap_tx_params_t;

/*
 * The firmware storage callbacks. Every callback gets the user pointer
 * given to avc_fw_install as its first argument. Unless a callback says
 * otherwise it returns 0 on success, an avc_fw_error_t to choose the
 * Update Result, or any other non-zero value for its default result.
 */
typedef struct avc_fw_handlers
{
    /*
     * Prepares to store an image.
     *
     * [in] package_uri  the Package URI of a pull; "" for a push (Anjay
     *                   passes NULL there). Valid during the call only.
     * [in] offset       0 for a new download. A download resumed after a
     *                   restart passes the image bytes libavc has
     *                   checkpointed: keep exactly that many bytes and
     *                   append after them, or fail when fewer are stored
     *                   (libavc then starts over from 0).
     *
     * Mandatory. Default result on failure: 2 (not enough space).
     */
    int (*stream_open)(void* user, const char* package_uri, int64_t offset);

    /*
     * Appends image bytes.
     *
     * [in] data    length bytes, valid during the call only.
     * [in] length  at least 1.
     *
     * Mandatory. Default result on failure: 2 (not enough space).
     */
    int (*stream_write)(void* user, const void* data, size_t length);

    /*
     * Completes the stored image (flush, close). Mandatory. Default result
     * on failure: 5 (integrity failure).
     */
    int (*stream_finish)(void* user);

    /*
     * Discards a partial or complete image; also called before each new
     * download and after a successful update. Mandatory; it cannot fail.
     */
    void (*reset)(void* user);

    /*
     * Installs the stored image. Returning 0 means the install is under
     * way and the device restarts into the new image: libavc has stored
     * State 3 first, restarts its engine when this returns, and reports
     * the outcome after asking booted. AVC_FW_ERR_DEFERRED keeps the image
     * for a later Update (Result 11).
     *
     * [in] pkg  the package; valid during the call only.
     *
     * Mandatory. Default result on failure: 8 (update failed), the image
     * kept (State Downloaded).
     */
    int (*perform_upgrade)(void* user, const avc_fw_package_t* pkg);

    /*
     * Asked once after a restart with an update in progress (State 3):
     * is pkg now installed?
     *
     * [in]  pkg              the package perform_upgrade installed; valid
     *                        during the call only.
     * [out] running_version  receives the version now running,
     *                        NUL-terminated (libavc reports it in /3/0/3
     *                        on success). Zeroed before the call.
     * [in]  running_len      its size: AVC_FW_VERSION_MAX.
     *
     * Mandatory. Returns 1 when pkg is installed (Result 1, State Idle), 0
     * when it is not (Result 8, State Downloaded); any other value counts
     * as 0 and is logged.
     */
    int (*booted)(void* user, const avc_fw_package_t* pkg, char* running_version, size_t running_len);

    /*
     * Makes the bytes written so far durable. Called before every download
     * checkpoint libavc stores (every 64 KiB or 30 s), so a stored resume
     * offset never runs ahead of the stored bytes. Optional (NULL: nothing
     * to flush). Default result on failure: 2 (not enough space).
     */
    int (*sync)(void* user);

    /*
     * The name and the version of the image just stored, for a bare image
     * without a package manifest. Asked once per download, after
     * stream_finish succeeded, for what the manifest left empty (a
     * manifest's name and version win); libavc shows the answers in
     * PkgName /5/0/6 and PkgVersion /5/0/7, passes them to perform_upgrade
     * and booted, and keeps them across restarts. They are shown, never
     * verified (anti-rollback compares the signed manifest's version).
     *
     * Return a NUL-terminated UTF-8 string of at most 255 bytes (a longer
     * one is ignored and logged), or NULL or "" for none. libavc copies
     * it as soon as the callback returns: it must stay valid until then
     * (a static string, or storage reached from user).
     *
     * Optional (NULL: only the manifest names the package).
     */
    const char* (*get_name)(void* user);
    const char* (*get_version)(void* user);

    /*
     * Chooses the credential of a coaps:// or https:// pull (Anjay's
     * get_security_config). Asked when such a pull starts, and again when
     * it resumes after a restart.
     *
     * [out] out           zeroed before the call; fill in what this pull
     *                     uses (see avc_fw_security_config_t for the
     *                     lifetime of its pointers). Left zeroed: the
     *                     configuration.
     * [in]  download_uri  the Package URI; valid during the call only.
     *
     * Optional (NULL: the configuration, as AVC_FW_PSK_IDENTITY,
     * AVC_FW_PSK_KEY and AVC_FW_CA_FILE set it). With it, /5/0/8 offers
     * coaps even when no PSK is configured. Returns 0 to go on; an
     * avc_fw_error_t fails the pull with its result; any other non-zero
     * value, or a coaps pull without any PSK, a PSK identity without a
     * key (or the reverse), or PEM material that does not parse, fails it
     * with Update Result 9 (unsupported protocol).
     */
    int (*get_security_config)(void* user, avc_fw_security_config_t* out, const char* download_uri);

    /*
     * Chooses the CoAP transmission parameters of a coap:// or coaps://
     * pull (Anjay's get_coap_tx_params): they change when the pull's
     * requests are resent and given up, not the LwM2M server's exchanges.
     * Asked when such a pull starts, and again when it resumes.
     *
     * [out] out           holds the defaults (2000 ms, 1.5, 4) on entry.
     * [in]  download_uri  the Package URI; valid during the call only.
     *
     * Optional (NULL: the defaults). Returns 0 to use *out (values out
     * of range are logged and the defaults used); any other value keeps
     * the defaults.
     */
    int (*get_coap_tx_params)(void* user, avc_fw_coap_tx_params_t* out, const char* download_uri);

    /*
     * Chooses the request timeout of an http:// or https:// pull (Anjay's
     * get_tcp_request_timeout), in milliseconds: when neither the
     * response head nor body bytes arrive for that long, libavc cancels
     * the request and the download fails with Update Result 4
     * (connection lost). Asked when such a pull starts, and again when it
     * resumes.
     *
     * [in] download_uri  the Package URI; valid during the call only.
     *
     * Optional (NULL: no request timeout; the connect timeout and the
     * low-speed limit, AVC_FW_CONNECT_TIMEOUT and AVC_FW_LOW_SPEED, apply
     * either way). Returns the timeout; 0 or negative: none.
     */
    int64_t (*get_tcp_request_timeout)(void* user, const char* download_uri);
}
avc_fw_handlers_t;

/*
 * Installs the firmware storage callbacks for the sessions started from
 * now on: Object 5 is then served with them. Without a call to this, a
 * session has Object 5 only when AVC_STATE_DIR is set, with libavc's
 * default handler (image files under AVC_STATE_DIR/firmware, installed by
 * running AVC_FW_INSTALL_CMD with the image path).
 *
 * [in] handlers  the callbacks; the struct is copied, it may be freed
 *                after return. Must not be NULL; stream_open,
 *                stream_write, stream_finish, reset, perform_upgrade and
 *                booted must not be NULL.
 * [in] user      passed to every callback; never dereferenced. The caller
 *                keeps ownership and keeps it valid until the handlers are
 *                replaced or uninstalled.
 *
 * Call it before le_avc_StartSession (after a reboot too: the first
 * session after a restart with an update in progress asks booted). If a
 * stopped session is still ending, this waits for it (at most 15 s), so
 * that when it returns AVC_OK the previous handlers are no longer called
 * and no call to them is running.
 *
 * @return
 *  - AVC_OK                 installed for the next session.
 *  - AVC_ERR_BAD_PARAMETER  handlers is NULL, or a mandatory callback is
 *                           NULL (avc_last_error() names it). Nothing
 *                           changes.
 *  - AVC_ERR_NOT_PERMITTED  a session is started (le_avc_StartSession
 *                           without le_avc_StopSession), or called from a
 *                           firmware handler. Nothing changes.
 *  - AVC_ERR_TIMEOUT        a stopped session did not end within 15 s.
 *                           Nothing changes.
 *  - AVC_ERR_FAULT          internal failure.
 */
#ifndef AVC_NO_PROTOTYPES
avc_result_t avc_fw_install(const avc_fw_handlers_t* handlers, void* user);
#endif

/*
 * Removes the handlers installed with avc_fw_install: sessions started
 * from now on use the default (see avc_fw_install). Without installed
 * handlers it does nothing and returns AVC_OK.
 *
 * @return AVC_OK (the previous handlers are no longer called and no call
 *         to them is running), or AVC_ERR_NOT_PERMITTED, AVC_ERR_TIMEOUT,
 *         AVC_ERR_FAULT as for avc_fw_install.
 */
#ifndef AVC_NO_PROTOTYPES
avc_result_t avc_fw_uninstall(void);
#endif

/*
 * Trusts one Ed25519 public key to sign firmware packages, replacing the
 * keys configured before: the same as avc_config_set("AVC_FW_TRUSTED_KEYS",
 * key). Several keys are set with avc_config_set, comma-separated. Applies
 * to the next session started.
 *
 * [in] key  the 32-byte public key in hex (as `avc keygen` prints it) or
 *           base64. NULL or "" removes every trusted key.
 *
 * @return
 *  - AVC_OK            stored.
 *  - AVC_ERR_FORMAT    key is not one Ed25519 public key in hex or base64.
 *  - AVC_ERR_FAULT     internal failure.
 */
#ifndef AVC_NO_PROTOTYPES
avc_result_t avc_fw_set_trusted_key(const char* key);
#endif

/* The progress of a firmware update, passed to an avc_fw_status_fn. */
typedef struct avc_fw_status
{
    int state;              /* An avc_fw_state_t. */
    int result;             /* An avc_fw_result_t. */
    int64_t bytes;          /* Package bytes received in this download. */
    int64_t total;          /* Package size; -1 when unknown. */
    int http_status;        /* HTTP status of a failed HTTP(S) pull, else 0. */
    const char* version;    /* Package version, "" when unknown; never NULL. */
}
avc_fw_status_t;

/*
 * Receives a firmware update status.
 *
 * [in] ctx  the context pointer given to avc_fw_set_status_handler.
 * [in] st   the status; it and st->version are valid during the call only.
 *
 * Called on every state change and on download progress, in order, on
 * libavc's dispatcher thread (the thread that runs le_avc status
 * handlers, in order with them), never under a libavc lock. It may call
 * any avc_* or le_avc_* function.
 */
typedef void (*avc_fw_status_fn)(void* ctx, const avc_fw_status_t* st);

/*
 * Sets the callback that receives firmware update statuses, replacing the
 * previous one. fn == NULL removes it.
 *
 * [in] fn   the callback, or NULL.
 * [in] ctx  passed to every call of fn; never dereferenced. The caller
 *           keeps ownership and keeps it valid until fn is replaced.
 *
 * When this returns, the previous callback is no longer called and no
 * call to it is running, except when called from that callback itself
 * (the running call finishes) or from a firmware handler (it does not
 * wait).
 *
 * @return AVC_OK, or AVC_ERR_FAULT on internal failure.
 */
#ifndef AVC_NO_PROTOTYPES
avc_result_t avc_fw_set_status_handler(avc_fw_status_fn fn, void* ctx);
#endif

/* Anjay-style short names of the firmware types; the same types. */
typedef struct avc_fw_handlers avc_fw_handlers;
typedef struct avc_fw_package avc_fw_package;
typedef struct avc_fw_security_config avc_fw_security_config;
typedef struct avc_fw_coap_tx_params avc_fw_coap_tx_params;
typedef struct avc_fw_status avc_fw_status;

#ifdef __cplusplus
}
#endif

#endif /* AVC_H_INCLUDE_GUARD */
