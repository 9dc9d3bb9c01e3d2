/*
 * fota.c - a full firmware update (LwM2M Object 5) through the C firmware
 * handlers of avc.h: a RAM "flash" with a download slot and a boot slot,
 * against avc's embedded server (`avc server`). The server writes the
 * Package URI (/5/0/1) through its HTTP API, then executes Update
 * (/5/0/2). The package comes from the URI given as the last argument
 * (e.g. the server's own coap://.../fw/<name>), or without it from this
 * program, over HTTP.
 *
 * It checks that the handler receives exactly the image bytes, that State
 * goes 1 -> 2 -> 3 and back to 0 with Update Result 1, that after
 * perform_upgrade libavc restarts its engine and asks booted, and that
 * /3/0/3 then reads the version booted() reported. It also checks what a
 * handler may not call (avc_set_value, avc_fw_install).
 *
 *   cc -std=c99 -Iinclude capi/testdata/fota.c -Lbuild -lavc -pthread -o build/fota
 *   LD_LIBRARY_PATH=build build/fota coap://127.0.0.1:5683 127.0.0.1:8080 \
 *       image.bin package.avc <public key hex> <package version> [package URI]
 *
 * The package is image.bin packed and signed with `avc pack -key`; the
 * public key is the one `avc keygen` printed. scripts/test-c.sh runs it.
 * Prints one line per check and "N passed, N failed"; exits 0 only when
 * every check passed.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "legato.h"
#include "interfaces.h"
#include "avc.h"
#include "check.h"
#include "serverapi.h"

#define TIMEOUT_MS 30000

/* ---- the flash: what the handlers do ------------------------------------ */

typedef struct flash
{
    pthread_mutex_t lock;       /* handlers run on a libavc thread, checks on main */
    unsigned char* slot;        /* the download slot */
    size_t len;
    size_t cap;
    int open;
    unsigned char* boot;        /* the boot slot: what perform_upgrade installed */
    size_t boot_len;
    char boot_version[AVC_FW_VERSION_MAX];
    char calls[64];             /* R reset, O open, W writes, S sync, F finish, P perform, B booted */
    int writes;
    int syncs;
    int64_t open_offset;
    char open_uri[256];
    char pkg_uri[256];          /* as perform_upgrade saw the package */
    char pkg_name[64];
    char pkg_version[64];
    char pkg_sha256[80];
    int64_t pkg_size;
    int booted_installed;
    int reentry_set_value;      /* what avc_set_value returned inside a handler */
    int reentry_install;        /* avc_fw_uninstall inside a handler was refused as such */
} flash_t;

static void note(flash_t* f, char c)
{
    size_t n = strlen(f->calls);
    if (c == 'W' && n > 0 && f->calls[n - 1] == 'W')
    {
        return;
    }
    if (n + 1 < sizeof(f->calls))
    {
        f->calls[n] = c;
        f->calls[n + 1] = 0;
    }
}

static int fl_stream_open(void* user, const char* uri, int64_t offset)
{
    flash_t* f = (flash_t*)user;
    pthread_mutex_lock(&f->lock);
    note(f, 'O');
    copy_str(f->open_uri, sizeof(f->open_uri), uri);
    f->open_offset = offset;
    if ((size_t)offset > f->len)
    {
        pthread_mutex_unlock(&f->lock);
        return -1; /* fewer bytes stored than the resume wants */
    }
    f->len = (size_t)offset;
    f->open = 1;
    pthread_mutex_unlock(&f->lock);
    return 0;
}

static int fl_stream_write(void* user, const void* data, size_t length)
{
    flash_t* f = (flash_t*)user;
    pthread_mutex_lock(&f->lock);
    note(f, 'W');
    f->writes++;
    if (!f->open || f->len + length > f->cap)
    {
        pthread_mutex_unlock(&f->lock);
        return AVC_FW_ERR_NOT_ENOUGH_SPACE;
    }
    memcpy(f->slot + f->len, data, length);
    f->len += length;
    pthread_mutex_unlock(&f->lock);
    return 0;
}

static int fl_sync(void* user)
{
    flash_t* f = (flash_t*)user;
    pthread_mutex_lock(&f->lock);
    note(f, 'S');
    f->syncs++;
    pthread_mutex_unlock(&f->lock);
    return 0;
}

static int fl_stream_finish(void* user)
{
    flash_t* f = (flash_t*)user;
    /* Calls that would wait for the session are refused here. */
    char msg[256];
    int set_value = avc_set_value("/3/0/9", "50");
    int uninstall = avc_fw_uninstall();
    avc_last_error(msg, sizeof(msg));
    pthread_mutex_lock(&f->lock);
    note(f, 'F');
    f->open = 0;
    f->reentry_set_value = set_value;
    f->reentry_install = uninstall == AVC_ERR_NOT_PERMITTED && strstr(msg, "firmware handler") != NULL;
    pthread_mutex_unlock(&f->lock);
    return 0;
}

static void fl_reset(void* user)
{
    flash_t* f = (flash_t*)user;
    pthread_mutex_lock(&f->lock);
    note(f, 'R');
    f->len = 0;
    f->open = 0;
    pthread_mutex_unlock(&f->lock);
}

/* "Installs" the download slot: copies it to the boot slot, as a
 * bootloader would after the reboot. */
static int fl_perform_upgrade(void* user, const avc_fw_package_t* pkg)
{
    flash_t* f = (flash_t*)user;
    pthread_mutex_lock(&f->lock);
    note(f, 'P');
    copy_str(f->pkg_uri, sizeof(f->pkg_uri), pkg->uri);
    copy_str(f->pkg_name, sizeof(f->pkg_name), pkg->name);
    copy_str(f->pkg_version, sizeof(f->pkg_version), pkg->version);
    copy_str(f->pkg_sha256, sizeof(f->pkg_sha256), pkg->sha256);
    f->pkg_size = pkg->size;
    if ((int64_t)f->len != pkg->size)
    {
        pthread_mutex_unlock(&f->lock);
        return AVC_FW_ERR_INTEGRITY_FAILURE;
    }
    free(f->boot);
    f->boot = (unsigned char*)malloc(f->len ? f->len : 1);
    if (f->boot == NULL)
    {
        pthread_mutex_unlock(&f->lock);
        return AVC_FW_ERR_OUT_OF_MEMORY;
    }
    memcpy(f->boot, f->slot, f->len);
    f->boot_len = f->len;
    copy_str(f->boot_version, sizeof(f->boot_version), pkg->version);
    pthread_mutex_unlock(&f->lock);
    return 0; /* "rebooting" */
}

static int fl_booted(void* user, const avc_fw_package_t* pkg, char* running, size_t running_len)
{
    flash_t* f = (flash_t*)user;
    int installed;
    pthread_mutex_lock(&f->lock);
    note(f, 'B');
    snprintf(running, running_len, "%s", f->boot_version);
    installed = f->boot != NULL && strcmp(f->boot_version, pkg->version) == 0;
    f->booted_installed = installed;
    pthread_mutex_unlock(&f->lock);
    return installed;
}

static const char* fl_get_name(void* user)
{
    (void)user;
    return "ram-flash";
}

/* ---- firmware statuses ----------------------------------------------------- */

typedef struct statuses
{
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int states[32];             /* distinct consecutive states seen */
    int n;
    int state;
    int result;
    int64_t max_bytes;
    int64_t total;
    char version[64];
    int calls;
} statuses_t;

static void on_fw_status(void* ctx, const avc_fw_status_t* st)
{
    statuses_t* s = (statuses_t*)ctx;
    pthread_mutex_lock(&s->lock);
    s->calls++;
    if ((s->n == 0 || s->states[s->n - 1] != st->state) && s->n < 32)
    {
        s->states[s->n++] = st->state;
    }
    s->state = st->state;
    s->result = st->result;
    if (st->bytes > s->max_bytes)
    {
        s->max_bytes = st->bytes;
    }
    if (st->total > 0)
    {
        s->total = st->total;
    }
    if (st->version[0] != 0)
    {
        copy_str(s->version, sizeof(s->version), st->version);
    }
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

/* Waits until the status has state and result (-1: any result). */
static int wait_fw(statuses_t* s, int state, int result, int timeout_ms)
{
    struct timespec deadline;
    int ok;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    pthread_mutex_lock(&s->lock);
    while (!(s->n > 0 && s->state == state && (result < 0 || s->result == result)))
    {
        if (pthread_cond_timedwait(&s->changed, &s->lock, &deadline) == ETIMEDOUT)
        {
            break;
        }
    }
    ok = s->n > 0 && s->state == state && (result < 0 || s->result == result);
    pthread_mutex_unlock(&s->lock);
    return ok;
}

/* ---- HTTP: a client for the server's API and a server for the package ---- */

typedef struct image_server
{
    int fd;
    const unsigned char* data;
    size_t len;
    int requests;
} image_server_t;

/* Answers every request on s->fd with the whole package until the socket
 * is shut down. */
static void* serve_image(void* arg)
{
    image_server_t* s = (image_server_t*)arg;
    for (;;)
    {
        char req[4096];
        char head[256];
        size_t got = 0;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
        {
            if (errno == EINTR)
            {
                continue;
            }
            return NULL;
        }
        while (got < sizeof(req) - 1)
        {
            ssize_t r = read(c, req + got, sizeof(req) - 1 - got);
            if (r <= 0)
            {
                break;
            }
            got += (size_t)r;
            req[got] = 0;
            if (strstr(req, "\r\n\r\n") != NULL)
            {
                break;
            }
        }
        s->requests++;
        snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                 s->len);
        if (write_all(c, head, strlen(head)) == 0)
        {
            write_all(c, s->data, s->len);
        }
        close(c);
    }
}

/* ---- the update ------------------------------------------------------------ */

int main(int argc, char** argv)
{
    static flash_t flash;
    static statuses_t st;
    avc_fw_handlers_t h;
    image_server_t srv;
    pthread_t srv_thread;
    const char *server_uri, *api, *key, *version;
    unsigned char *image, *package;
    size_t image_len = 0, package_len = 0;
    char ep[64], uri[128], url[256], json[512], body[1024], want[80];
    int port, i, order_ok;
    const char* log_level = getenv("AVC_LOG_LEVEL");

    if (argc != 7 && argc != 8)
    {
        fprintf(stderr, "usage: %s coap://server host:port-of-http-api image package pubkey version [package-uri]\n",
                argv[0]);
        return 2;
    }
    server_uri = argv[1];
    api = argv[2];
    key = argv[5];
    version = argv[6];
    image = read_file(argv[3], &image_len);
    package = read_file(argv[4], &package_len);
    if (image == NULL || package == NULL)
    {
        fprintf(stderr, "cannot read %s or %s\n", argv[3], argv[4]);
        return 2;
    }

    pthread_mutex_init(&flash.lock, NULL);
    flash.cap = image_len + 1024;
    flash.slot = (unsigned char*)malloc(flash.cap);
    pthread_mutex_init(&st.lock, NULL);
    pthread_cond_init(&st.changed, NULL);
    st.total = -1;

    snprintf(ep, sizeof(ep), "c-fota-%ld", (long)getpid());
    check(avc_config_set("AVC_LOG_LEVEL", log_level ? log_level : "warn") == AVC_OK, "AVC_LOG_LEVEL set");
    check(avc_config_set("AVC_SERVER_URI", server_uri) == AVC_OK, "AVC_SERVER_URI set");
    check(avc_config_set("AVC_ENDPOINT", ep) == AVC_OK, "AVC_ENDPOINT set");
    check(avc_config_set("AVC_FW_VERSION", "1.0.0") == AVC_OK, "AVC_FW_VERSION set");
    check(avc_config_set("AVC_FW_REQUIRE_SIGNATURE", "true") == AVC_OK, "AVC_FW_REQUIRE_SIGNATURE set");
    check(avc_fw_set_trusted_key(key) == AVC_OK, "avc_fw_set_trusted_key takes the avc keygen key");

    memset(&h, 0, sizeof(h));
    h.stream_open = fl_stream_open;
    h.stream_write = fl_stream_write;
    h.stream_finish = fl_stream_finish;
    h.reset = fl_reset;
    h.perform_upgrade = fl_perform_upgrade;
    h.booted = fl_booted;
    h.sync = fl_sync;
    h.get_name = fl_get_name;
    check(avc_fw_install(&h, &flash) == AVC_OK, "avc_fw_install");
    memset(&h, 0, sizeof(h)); /* the struct was copied */
    check(avc_fw_set_status_handler(on_fw_status, &st) == AVC_OK, "avc_fw_set_status_handler");
    check(avc_events_enable_poll(1) == AVC_OK, "event queue on");

    srv.data = package;
    srv.len = package_len;
    srv.requests = 0;
    srv.fd = -1;
    if (argc == 8)
    {
        snprintf(uri, sizeof(uri), "%s", argv[7]);
    }
    else
    {
        srv.fd = listen_local(SOCK_STREAM, &port);
        check(srv.fd >= 0 && pthread_create(&srv_thread, NULL, serve_image, &srv) == 0, "package served over HTTP");
        snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/fw/c-fota.avc", port);
    }
    printf("      Package URI %s\n", uri);

    check(le_avc_StartSession() == LE_OK, "le_avc_StartSession");
    check(wait_status(LE_AVC_SESSION_STARTED, TIMEOUT_MS), "registered");
    check(api_read_until(api, ep, "/3/0/3", "\"1.0.0\"", 10000), "/3/0/3 reads the running version 1.0.0");
    check(api_read_until(api, ep, "/5/0/3", "0", 10000), "/5/0/3 reads Idle");

    /* Download: the server writes the Package URI. */
    snprintf(url, sizeof(url), "/api/clients/%s/write/5/0/1", ep);
    snprintf(json, sizeof(json), "{\"value\":\"%s\",\"type\":\"string\"}", uri);
    check(http(api, "PUT", url, json, body, sizeof(body)) == 200 && strstr(body, "2.04") != NULL,
          "server writes /5/0/1 (2.04 Changed)");
    check(wait_fw(&st, AVC_FW_STATE_DOWNLOADED, AVC_FW_RESULT_INITIAL, TIMEOUT_MS), "State Downloaded (2)");
    check(api_read_until(api, ep, "/5/0/3", "2", 10000), "/5/0/3 reads 2");

    pthread_mutex_lock(&flash.lock);
    check(flash.len == image_len && memcmp(flash.slot, image, image_len) == 0,
          "the handler stored exactly the image bytes (the package minus its manifest)");
    check(strcmp(flash.open_uri, uri) == 0 && flash.open_offset == 0, "stream_open got the Package URI, offset 0");
    check(flash.writes > 1 && flash.syncs >= 1, "several stream_writes, sync before a checkpoint");
    check(flash.reentry_set_value == AVC_ERR_NOT_PERMITTED,
          "avc_set_value from a handler returns AVC_ERR_NOT_PERMITTED");
    check(flash.reentry_install, "avc_fw_uninstall from a handler returns AVC_ERR_NOT_PERMITTED");
    pthread_mutex_unlock(&flash.lock);

    /* Update. */
    snprintf(url, sizeof(url), "/api/clients/%s/execute/5/0/2", ep);
    check(http(api, "POST", url, "", body, sizeof(body)) == 200 && strstr(body, "2.04") != NULL,
          "server executes /5/0/2 (2.04 Changed)");
    check(wait_fw(&st, AVC_FW_STATE_IDLE, AVC_FW_RESULT_SUCCESS, TIMEOUT_MS), "State Idle (0), Update Result 1");
    check(api_read_until(api, ep, "/3/0/3", "\"2.0.0\"", 20000), "/3/0/3 reads the new version 2.0.0");
    check(api_read_until(api, ep, "/5/0/5", "1", 10000), "/5/0/5 reads 1");
    check(api_read_until(api, ep, "/5/0/3", "0", 10000), "/5/0/3 reads 0");

    pthread_mutex_lock(&flash.lock);
    check(flash.boot_len == image_len && memcmp(flash.boot, image, image_len) == 0,
          "perform_upgrade installed exactly the image bytes");
    check(strcmp(flash.pkg_version, version) == 0 && strcmp(flash.pkg_name, "c-fota") == 0,
          "the package carries the manifest's name and version");
    check(flash.pkg_size == (int64_t)image_len && strlen(flash.pkg_sha256) == 64 && strcmp(flash.pkg_uri, uri) == 0,
          "the package's size, sha256 and URI");
    check(flash.booted_installed == 1, "booted reported the package installed");
    {
        const char* o = strchr(flash.calls, 'O');
        const char* f = strchr(flash.calls, 'F');
        const char* p = strchr(flash.calls, 'P');
        const char* b = strchr(flash.calls, 'B');
        order_ok = o && f && p && b && o < f && f < p && p < b && strchr(o, 'W') && strchr(o, 'W') < f;
    }
    printf("      handler calls: %s\n", flash.calls);
    check(order_ok, "calls in order: open, write..., finish, perform_upgrade, (restart) booted");
    pthread_mutex_unlock(&flash.lock);

    pthread_mutex_lock(&st.lock);
    printf("      states:");
    for (i = 0; i < st.n; i++)
    {
        printf(" %d", st.states[i]);
    }
    printf("\n");
    {
        /* 1 -> 2 -> 3 -> 0, in order (a leading 0 is fine). */
        int seq[] = {1, 2, 3, 0};
        int k = 0;
        for (i = 0; i < st.n && k < 4; i++)
        {
            if (st.states[i] == seq[k])
            {
                k++;
            }
            else if (k > 0)
            {
                break;
            }
        }
        check(k == 4, "status callback saw State 1 -> 2 -> 3 -> 0");
    }
    snprintf(want, sizeof(want), "%s", version);
    check(st.max_bytes == (int64_t)package_len && st.total == (int64_t)package_len && strcmp(st.version, want) == 0,
          "status progress reached the package size, with its version");
    pthread_mutex_unlock(&st.lock);

    check(le_avc_StopSession() == LE_OK, "le_avc_StopSession");
    check(wait_status(LE_AVC_SESSION_STOPPED, TIMEOUT_MS), "stopped");
    check(avc_fw_uninstall() == AVC_OK, "avc_fw_uninstall after the session");
    check(avc_fw_set_status_handler(NULL, NULL) == AVC_OK, "status handler removed");

    if (srv.fd >= 0)
    {
        shutdown(srv.fd, SHUT_RDWR);
        close(srv.fd);
        pthread_join(srv_thread, NULL);
        check(srv.requests == 1, "the package was fetched once");
    }

    free(image);
    free(package);
    free(flash.slot);
    free(flash.boot);
    return report();
}
