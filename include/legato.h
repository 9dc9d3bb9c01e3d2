/*
 * legato.h - the small part of Legato's framework header that le_avc
 * programs need, provided by libavc (avc's LwM2M agent).
 *
 * This is a shim, not the Legato runtime: it gives the basic types
 * (le_result_t, le_onoff_t), LE_RESULT_TXT(), LE_NONNULL,
 * LE_LIMIT_APP_NAME_LEN and printf-style LE_DEBUG/LE_INFO/LE_WARN/LE_ERROR
 * logging macros that write one line to stderr. Names and values match
 * Legato's framework/include/le_basics.h and le_limit.api.
 *
 * C99 and C++ clean. Applications include "legato.h" and then
 * "interfaces.h" (or "le_avc.h").
 */
#ifndef LEGATO_H_INCLUDE_GUARD
#define LEGATO_H_INCLUDE_GUARD

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Result codes shared by every Legato API. LE_OK is 0; every failure is
 * negative. Values are Legato's.
 */
typedef enum
{
    LE_OK = 0,                  /* Successful. */
    LE_NOT_FOUND = -1,          /* The referenced item does not exist or could not be found. */
    LE_NOT_POSSIBLE = -2,       /* Deprecated: it is not possible to perform the requested action. */
    LE_OUT_OF_RANGE = -3,       /* An index or other value is out of range. */
    LE_NO_MEMORY = -4,          /* Insufficient memory is available. */
    LE_NOT_PERMITTED = -5,      /* The current process does not have permission to do this. */
    LE_FAULT = -6,              /* Unspecified internal error. */
    LE_COMM_ERROR = -7,         /* Communications error. */
    LE_TIMEOUT = -8,            /* A time-out occurred. */
    LE_OVERFLOW = -9,           /* An overflow occurred or would have occurred. */
    LE_UNDERFLOW = -10,         /* An underflow occurred or would have occurred. */
    LE_WOULD_BLOCK = -11,       /* Would have blocked if non-blocking behaviour was not requested. */
    LE_DEADLOCK = -12,          /* Would have caused a deadlock. */
    LE_FORMAT_ERROR = -13,      /* Format error. */
    LE_DUPLICATE = -14,         /* Duplicate entry found, or the operation is already done. */
    LE_BAD_PARAMETER = -15,     /* A parameter is invalid. */
    LE_CLOSED = -16,            /* The resource is closed. */
    LE_BUSY = -17,              /* The resource is busy. */
    LE_UNSUPPORTED = -18,       /* The underlying resource does not support this operation. */
    LE_IO_ERROR = -19,          /* An I/O error occurred. */
    LE_NOT_IMPLEMENTED = -20,   /* Unimplemented functionality. */
    LE_UNAVAILABLE = -21,       /* A transient or temporary loss of a service or resource. */
    LE_TERMINATED = -22,        /* The process, operation, data stream, session, etc. has stopped. */
    LE_IN_PROGRESS = -23,       /* The operation is in progress. */
    LE_SUSPENDED = -24          /* The operation is suspended. */
}
le_result_t;

/* On/off switch. */
typedef enum
{
    LE_OFF = 0,
    LE_ON = 1
}
le_onoff_t;

/*
 * Annotation Legato puts on pointer parameters that must not be NULL. It
 * expands to nothing here; libavc still checks for NULL where it can.
 */
#define LE_NONNULL

/* Maximum length of an application name, without the NUL (le_limit.api). */
#define LE_LIMIT_APP_NAME_LEN 47

#ifndef AVC_NO_PROTOTYPES
/*
 * Returns the name of a result code ("LE_OK", "LE_DUPLICATE", ...), or
 * "(unknown)" for a value that is not an le_result_t.
 *
 * [in] result  any value.
 *
 * The string is static, owned by libavc, and valid for the life of the
 * process; the caller must not free it. Callable from any thread.
 */
const char* le_result_Txt(le_result_t result);
#endif

/* Name of a result code, for logs: LE_RESULT_TXT(LE_FAULT) is "LE_FAULT". */
#define LE_RESULT_TXT(v) le_result_Txt(v)

/*
 * Logging. LE_DEBUG, LE_INFO, LE_WARN and LE_ERROR take a printf format
 * and arguments and write one line to stderr:
 *
 *     INFO | main.c:42 | status: LE_AVC_SESSION_STARTED (13)
 *
 * LE_DEBUG lines are written only when the environment variable
 * LE_LOG_LEVEL is "DEBUG". Each line is written with a single stdio call,
 * so lines from different threads do not interleave. Messages longer than
 * 1023 bytes are truncated.
 */
#if defined(__GNUC__) || defined(__clang__)
#define LE_LOG_PRINTF_FORMAT_(f, a) __attribute__((format(printf, f, a)))
#else
#define LE_LOG_PRINTF_FORMAT_(f, a)
#endif

static inline void le_log_Emit_(const char* level, const char* file, int line,
                                const char* format, ...) LE_LOG_PRINTF_FORMAT_(4, 5);

static inline void le_log_Emit_(const char* level, const char* file, int line,
                                const char* format, ...)
{
    char msg[1024];
    const char* base = strrchr(file, '/');
    va_list ap;
    if (level[0] == 'D')
    {
        const char* env = getenv("LE_LOG_LEVEL");
        if (env == NULL || strcmp(env, "DEBUG") != 0)
        {
            return;
        }
    }
    va_start(ap, format);
    vsnprintf(msg, sizeof(msg), format, ap);
    va_end(ap);
    fprintf(stderr, "%s | %s:%d | %s\n", level, base != NULL ? base + 1 : file, line, msg);
}

#define LE_DEBUG(...) le_log_Emit_("DEBUG", __FILE__, __LINE__, __VA_ARGS__)
#define LE_INFO(...)  le_log_Emit_("INFO", __FILE__, __LINE__, __VA_ARGS__)
#define LE_WARN(...)  le_log_Emit_("WARN", __FILE__, __LINE__, __VA_ARGS__)
#define LE_ERROR(...) le_log_Emit_("ERROR", __FILE__, __LINE__, __VA_ARGS__)

#ifdef __cplusplus
}
#endif

#endif /* LEGATO_H_INCLUDE_GUARD */
