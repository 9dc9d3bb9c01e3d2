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

/* Calls an le_avc CommInfo handler. */
static inline void avc_call_comm_info_(le_avc_CommInfoHandlerFunc_t fn, uint8_t code,
                                       const char* str, uintptr_t ctx)
{
    fn(code, str, (void*)ctx);
}

/* Storage calls (avc_storage_t); s is a copy of the host's struct. */
static inline int64_t avc_call_storage_read_(const avc_storage_t* s, uintptr_t user, const char* key,
                                             void* buf, size_t size)
{
    return s->read((void*)user, key, buf, size);
}

static inline int avc_call_storage_write_(const avc_storage_t* s, uintptr_t user, const char* key,
                                          const void* data, size_t length)
{
    return s->write((void*)user, key, data, length);
}

/* Calls the le_avc session request handler. */
static inline void avc_call_session_request_(le_avc_SessionRequestHandlerFunc_t fn, int32_t request,
                                             uintptr_t ctx)
{
    fn((le_avc_SessionRequest_t)request, (void*)ctx);
}

/* Calls an avc log callback. */
static inline void avc_call_log_(avc_log_fn fn, uintptr_t user, int level, const char* msg)
{
    fn((void*)user, level, msg);
}

/* Firmware handler calls (avc_fw_handlers_t). h is a copy of the host's
 * struct; the package strings are C copies made for the call. */
static inline int avc_call_fw_stream_open_(const avc_fw_handlers_t* h, uintptr_t user,
                                           const char* uri, int64_t offset)
{
    return h->stream_open((void*)user, uri, offset);
}

static inline int avc_call_fw_stream_write_(const avc_fw_handlers_t* h, uintptr_t user,
                                            const void* data, size_t length)
{
    return h->stream_write((void*)user, data, length);
}

static inline int avc_call_fw_stream_finish_(const avc_fw_handlers_t* h, uintptr_t user)
{
    return h->stream_finish((void*)user);
}

static inline void avc_call_fw_reset_(const avc_fw_handlers_t* h, uintptr_t user)
{
    h->reset((void*)user);
}

static inline int avc_call_fw_sync_(const avc_fw_handlers_t* h, uintptr_t user)
{
    return h->sync((void*)user);
}

static inline int avc_call_fw_perform_upgrade_(const avc_fw_handlers_t* h, uintptr_t user,
                                               const char* uri, const char* name,
                                               const char* version, const char* sha256,
                                               int64_t size)
{
    avc_fw_package_t pkg;
    pkg.uri = uri;
    pkg.name = name;
    pkg.version = version;
    pkg.sha256 = sha256;
    pkg.size = size;
    return h->perform_upgrade((void*)user, &pkg);
}

static inline int avc_call_fw_booted_(const avc_fw_handlers_t* h, uintptr_t user,
                                      const char* uri, const char* name,
                                      const char* version, const char* sha256,
                                      int64_t size, char* running, size_t running_len)
{
    avc_fw_package_t pkg;
    pkg.uri = uri;
    pkg.name = name;
    pkg.version = version;
    pkg.sha256 = sha256;
    pkg.size = size;
    return h->booted((void*)user, &pkg, running, running_len);
}

/* The optional hooks; the caller checks the pointer. */
static inline const char* avc_call_fw_get_name_(const avc_fw_handlers_t* h, uintptr_t user)
{
    return h->get_name((void*)user);
}

static inline const char* avc_call_fw_get_version_(const avc_fw_handlers_t* h, uintptr_t user)
{
    return h->get_version((void*)user);
}

static inline int avc_call_fw_get_security_config_(const avc_fw_handlers_t* h, uintptr_t user,
                                                   avc_fw_security_config_t* out, const char* uri)
{
    return h->get_security_config((void*)user, out, uri);
}

static inline int avc_call_fw_get_coap_tx_params_(const avc_fw_handlers_t* h, uintptr_t user,
                                                  avc_fw_coap_tx_params_t* out, const char* uri)
{
    return h->get_coap_tx_params((void*)user, out, uri);
}

static inline int64_t avc_call_fw_get_tcp_request_timeout_(const avc_fw_handlers_t* h, uintptr_t user,
                                                           const char* uri)
{
    return h->get_tcp_request_timeout((void*)user, uri);
}

/* Calls an avc_fw_status_fn; the status is built here, on the C stack. */
static inline void avc_call_fw_status_(avc_fw_status_fn fn, uintptr_t ctx, int state,
                                       int result, int64_t bytes, int64_t total,
                                       int http_status, const char* version)
{
    avc_fw_status_t st;
    st.state = state;
    st.result = result;
    st.bytes = bytes;
    st.total = total;
    st.http_status = http_status;
    st.version = version;
    fn((void*)ctx, &st);
}

#endif /* AVC_CAPI_PRIVATE_H */
