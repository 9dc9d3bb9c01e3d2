/*
 * fwmisuse.c - the firmware update API must survive misuse: a NULL or
 * incomplete handler struct, installing while a session runs, bad trusted
 * keys, status handlers set and cleared. Documented error codes, never a
 * crash. Needs no server (the session uses one nobody answers).
 *
 *   cc -std=c99 -Iinclude capi/testdata/fwmisuse.c -Lbuild -lavc -pthread -o build/fwmisuse
 *   LD_LIBRARY_PATH=build build/fwmisuse
 *
 * scripts/test-c.sh also runs it built with AddressSanitizer. Prints one
 * line per check and "N passed, N failed"; exits 0 only when every check
 * passed.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "legato.h"
#include "interfaces.h"
#include "avc.h"
#include "check.h"


/* avc_last_error() contains text. */
static int last_error_has(const char* text)
{
    char buf[512];
    return avc_last_error(buf, sizeof(buf)) > 0 && strstr(buf, text) != NULL;
}

static int h_open(void* u, const char* uri, int64_t off)
{
    (void)u;
    (void)uri;
    (void)off;
    return 0;
}

static int h_write(void* u, const void* d, size_t n)
{
    (void)u;
    (void)d;
    (void)n;
    return 0;
}

static int h_finish(void* u)
{
    (void)u;
    return 0;
}

static void h_reset(void* u)
{
    (void)u;
}

static int h_perform(void* u, const avc_fw_package_t* p)
{
    (void)u;
    (void)p;
    return 0;
}

static int h_booted(void* u, const avc_fw_package_t* p, char* v, size_t n)
{
    (void)u;
    (void)p;
    (void)v;
    (void)n;
    return 0;
}

static void on_status(void* ctx, const avc_fw_status_t* st)
{
    (void)ctx;
    (void)st;
}

static void wait_stopped(void)
{
    avc_event_t ev;
    while (avc_poll_event(&ev, 20000) == AVC_OK)
    {
        if (ev.status == LE_AVC_SESSION_STOPPED)
        {
            return;
        }
    }
}

int main(void)
{
    avc_fw_handlers_t h;
    avc_fw_handlers anjay_style; /* the short names are the same types */
    char buf[256];
    /* An Ed25519 public key (RFC 8032 test 1). */
    const char* key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    unsetenv("AVC_SERVER_URI");
    /* The first call configures: the environment is never read. */
    check(avc_config_set("AVC_LOG_LEVEL", "error") == AVC_OK, "AVC_LOG_LEVEL error (keeps expected warnings quiet)");

    /* Handlers. */
    check(avc_fw_install(NULL, NULL) == AVC_ERR_BAD_PARAMETER, "avc_fw_install(NULL) returns AVC_ERR_BAD_PARAMETER");
    check(last_error_has("NULL"), "avc_last_error explains the NULL handlers");
    memset(&h, 0, sizeof(h));
    check(avc_fw_install(&h, NULL) == AVC_ERR_BAD_PARAMETER, "an all-NULL struct returns AVC_ERR_BAD_PARAMETER");
    check(last_error_has("stream_open") && last_error_has("booted"), "avc_last_error names the missing callbacks");
    h.stream_open = h_open;
    h.stream_write = h_write;
    h.stream_finish = h_finish;
    h.reset = h_reset;
    h.perform_upgrade = h_perform;
    check(avc_fw_install(&h, (void*)1) == AVC_ERR_BAD_PARAMETER, "a struct without booted returns AVC_ERR_BAD_PARAMETER");
    check(last_error_has("booted") && !last_error_has("stream_open"), "avc_last_error names booted only");
    h.booted = h_booted;
    h.perform_upgrade = NULL;
    check(avc_fw_install(&h, NULL) == AVC_ERR_BAD_PARAMETER, "a struct without perform_upgrade returns AVC_ERR_BAD_PARAMETER");
    h.perform_upgrade = h_perform;
    check(avc_fw_install(&h, (void*)1) == AVC_OK, "a complete struct (small-integer user pointer) installs");
    check(avc_last_error(buf, sizeof(buf)) == 0, "success clears the last error");
    memset(&anjay_style, 0, sizeof(anjay_style));
    anjay_style = h;
    check(avc_fw_install(&anjay_style, NULL) == AVC_OK, "installing again replaces the handlers");
    check(avc_fw_uninstall() == AVC_OK, "avc_fw_uninstall");
    check(avc_fw_uninstall() == AVC_OK, "avc_fw_uninstall twice");

    /* Trusted keys. */
    check(avc_fw_set_trusted_key("zz") == AVC_ERR_FORMAT, "avc_fw_set_trusted_key(\"zz\") returns AVC_ERR_FORMAT");
    check(avc_fw_set_trusted_key("00ff") == AVC_ERR_FORMAT, "a short key returns AVC_ERR_FORMAT");
    snprintf(buf, sizeof(buf), "%s,%s", key, key);
    check(avc_fw_set_trusted_key(buf) == AVC_ERR_FORMAT, "two keys return AVC_ERR_FORMAT");
    check(avc_fw_set_trusted_key(key) == AVC_OK, "one hex key");
    check(avc_config_get("AVC_FW_TRUSTED_KEYS", buf, sizeof(buf)) == AVC_OK && strcmp(buf, key) == 0,
          "AVC_FW_TRUSTED_KEYS reads it back");
    check(avc_fw_set_trusted_key(NULL) == AVC_OK, "avc_fw_set_trusted_key(NULL) clears");
    check(avc_config_get("AVC_FW_TRUSTED_KEYS", buf, sizeof(buf)) == AVC_OK && buf[0] == 0, "no trusted key left");
    check(avc_fw_set_trusted_key("") == AVC_OK, "avc_fw_set_trusted_key(\"\") clears");
    check(avc_config_set("AVC_FW_REQUIRE_SIGNATURE", "maybe") == AVC_ERR_FORMAT,
          "AVC_FW_REQUIRE_SIGNATURE \"maybe\" returns AVC_ERR_FORMAT");
    check(avc_config_set("AVC_FW_VERSION", "1.2.3") == AVC_OK, "AVC_FW_VERSION set");

    /* Status handler. */
    check(avc_fw_set_status_handler(NULL, NULL) == AVC_OK, "avc_fw_set_status_handler(NULL)");
    check(avc_fw_set_status_handler(on_status, (void*)1) == AVC_OK, "a status handler with a small-integer context");
    check(avc_fw_set_status_handler(on_status, NULL) == AVC_OK, "replaced");
    check(avc_fw_set_status_handler(NULL, NULL) == AVC_OK, "removed");

    /* Not while a session runs. */
    check(avc_events_enable_poll(1) == AVC_OK, "event queue on");
    check(avc_config_set("AVC_SERVER_URI", "coap://127.0.0.1:9") == AVC_OK, "a server nobody answers");
    check(avc_fw_install(&h, NULL) == AVC_OK, "installed before the session");
    check(le_avc_StartSession() == LE_OK, "le_avc_StartSession");
    check(avc_fw_install(&h, NULL) == AVC_ERR_NOT_PERMITTED, "avc_fw_install while a session runs returns AVC_ERR_NOT_PERMITTED");
    check(last_error_has("le_avc_StopSession"), "avc_last_error says to stop the session");
    check(avc_fw_uninstall() == AVC_ERR_NOT_PERMITTED, "avc_fw_uninstall while a session runs returns AVC_ERR_NOT_PERMITTED");
    check(avc_fw_install(NULL, NULL) == AVC_ERR_BAD_PARAMETER, "avc_fw_install(NULL) still AVC_ERR_BAD_PARAMETER");
    check(le_avc_StopSession() == LE_OK, "le_avc_StopSession");
    check(avc_fw_uninstall() == AVC_OK, "avc_fw_uninstall right after le_avc_StopSession waits for the end");
    wait_stopped();
    check(avc_fw_install(&h, NULL) == AVC_OK, "installed again after the session");
    check(avc_fw_uninstall() == AVC_OK, "and uninstalled");
    avc_events_enable_poll(0);

    return report();
}
