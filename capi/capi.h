/*
 * capi.h - private to capi/: the one header every cgo preamble in this
 * package includes. It pulls in the public headers with their prototypes
 * suppressed (the //export functions declare them, with ABI-identical
 * types: uintptr_t for void* and handler references, char* for const
 * char*) and adds the static inline trampolines Go needs to call C
 * function pointers.
 */
#ifndef AVC_CAPI_PRIVATE_H
#define AVC_CAPI_PRIVATE_H

#define AVC_NO_PROTOTYPES 1

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "legato.h"
#include "le_avc_interface.h"
#include "avc.h"

/* Calls an le_avc status handler. */
static inline void avc_call_status_(le_avc_StatusHandlerFunc_t fn, int32_t status,
                                    int32_t total, int32_t progress, uintptr_t ctx)
{
    fn((le_avc_Status_t)status, total, progress, (void*)ctx);
}

/* Calls an avc log callback. */
static inline void avc_call_log_(avc_log_fn fn, uintptr_t user, int level, const char* msg)
{
    fn((void*)user, level, msg);
}

#endif /* AVC_CAPI_PRIVATE_H */
