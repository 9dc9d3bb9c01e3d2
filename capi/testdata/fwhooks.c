/*
 * fwhooks.c - the optional firmware handler callbacks of avc.h (Anjay's
 * get_name, get_version, get_security_config, get_coap_tx_params,
 * get_tcp_request_timeout) against avc's embedded server (`avc server`):
 * each is called with the Package URI of the pull and takes effect.
 *
 *  1. get_name/get_version name a bare image (no manifest) pulled over
 *     HTTP from this program: /5/0/6, /5/0/7 and the status show them.
 *  2. get_tcp_request_timeout (1 s) ends an HTTP pull whose server stops
 *     sending after the head: Idle with Update Result 4, after >= 1 s.
 *  3. get_coap_tx_params (ACK_TIMEOUT 300 ms, factor 1, MAX_RETRANSMIT 1)
 *     sets when a silent CoAP server sees the pull's GET again: 300 ms
 *     after the first (the default is 2 to 3 s), then a new request
 *     after the 2 s retry wait.
 *  4. get_security_config gives the only PSK (none is configured): a
 *     coaps pull goes out as a DTLS handshake instead of failing with
 *     Result 9; a failing callback fails the pull with its result.
 *     (test/behaviour's TestFOTAHookCoaps completes such a pull against
 *     a DTLS server that knows only the hook's identity.)
 *
 *   cc -std=c99 -Iinclude capi/testdata/fwhooks.c -Lbuild -lavc -pthread -o build/fwhooks
 *   LD_LIBRARY_PATH=build build/fwhooks coap://127.0.0.1:5683 127.0.0.1:8080 image.bin
 *
 * scripts/test-c.sh runs it. Prints one line per check and "N passed, N
 * failed"; exits 0 only when every check passed.
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
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

/* ---- the handler: a RAM slot, and a log of the hook calls ---------------- */

typedef struct handler
{
    pthread_mutex_t lock;
    pthread_cond_t changed;     /* any status */
    unsigned char* slot;
    size_t len, cap;
    char name_uri[256];         /* the last URI each hook was asked for */
    char tx_uri[256];
    char timeout_uri[256];
    char security_uri[256];
    int names, versions;        /* get_name / get_version calls */
    char pkg_name[64], pkg_version[64];
    int state, result;          /* the last status */
    char version[64];
} handler_t;

static handler_t H;

/* The PSK the security hook hands out: static, so it outlives the call. */
static const char hook_identity[] = "c-hook-id";
static const unsigned char hook_key[] = "c-hook-key-0123";

static int h_open(void* user, const char* uri, int64_t offset)
{
    (void)user;
    (void)uri;
    pthread_mutex_lock(&H.lock);
    H.len = (size_t)offset <= H.len ? (size_t)offset : H.len;
    pthread_mutex_unlock(&H.lock);
    return 0;
}

static int h_write(void* user, const void* data, size_t length)
{
    (void)user;
    pthread_mutex_lock(&H.lock);
    if (H.len + length > H.cap)
    {
        pthread_mutex_unlock(&H.lock);
        return AVC_FW_ERR_NOT_ENOUGH_SPACE;
    }
    memcpy(H.slot + H.len, data, length);
    H.len += length;
    pthread_mutex_unlock(&H.lock);
    return 0;
}

static int h_finish(void* user)
{
    (void)user;
    return 0;
}

static void h_reset(void* user)
{
    (void)user;
    pthread_mutex_lock(&H.lock);
    H.len = 0;
    pthread_mutex_unlock(&H.lock);
}

static int h_upgrade(void* user, const avc_fw_package_t* pkg)
{
    (void)user;
    (void)pkg;
    return AVC_FW_ERR_DEFERRED; /* never installs here */
}

static int h_booted(void* user, const avc_fw_package_t* pkg, char* running, size_t len)
{
    (void)user;
    (void)pkg;
    snprintf(running, len, "1.0.0");
    return 0;
}

static const char* h_get_name(void* user)
{
    (void)user;
    pthread_mutex_lock(&H.lock);
    H.names++;
    pthread_mutex_unlock(&H.lock);
    return "c-hooks-blob";
}

static const char* h_get_version(void* user)
{
    (void)user;
    pthread_mutex_lock(&H.lock);
    H.versions++;
    pthread_mutex_unlock(&H.lock);
    return "7.7.7";
}

static int h_get_security_config(void* user, avc_fw_security_config_t* out, const char* uri)
{
    (void)user;
    pthread_mutex_lock(&H.lock);
    copy_str(H.security_uri, sizeof(H.security_uri), uri);
    pthread_mutex_unlock(&H.lock);
    if (strstr(uri, "/oom") != NULL)
    {
        return AVC_FW_ERR_OUT_OF_MEMORY;
    }
    if (strstr(uri, "/refuse") != NULL)
    {
        return -1;
    }
    out->psk_identity = hook_identity;
    out->psk_key = hook_key;
    out->psk_key_len = sizeof(hook_key) - 1;
    return 0;
}

static int h_get_coap_tx_params(void* user, avc_fw_coap_tx_params_t* out, const char* uri)
{
    int defaults;
    (void)user;
    defaults = out->ack_timeout_ms == 2000 && out->ack_random_factor == 1.5 && out->max_retransmit == 4;
    pthread_mutex_lock(&H.lock);
    copy_str(H.tx_uri, sizeof(H.tx_uri), defaults ? uri : "(not the defaults on entry)");
    pthread_mutex_unlock(&H.lock);
    out->ack_timeout_ms = 300;
    out->ack_random_factor = 1.0;
    out->max_retransmit = 1;
    return 0;
}

static int64_t h_get_tcp_request_timeout(void* user, const char* uri)
{
    (void)user;
    pthread_mutex_lock(&H.lock);
    copy_str(H.timeout_uri, sizeof(H.timeout_uri), uri);
    pthread_mutex_unlock(&H.lock);
    return 1000;
}

static void on_fw_status(void* ctx, const avc_fw_status_t* st)
{
    (void)ctx;
    pthread_mutex_lock(&H.lock);
    H.state = st->state;
    H.result = st->result;
    copy_str(H.version, sizeof(H.version), st->version);
    pthread_cond_broadcast(&H.changed);
    pthread_mutex_unlock(&H.lock);
}

/* Waits until the status has state and result; returns 1 when it did. */
static int wait_fw(int state, int result, int timeout_ms)
{
    struct timespec deadline;
    int ok;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    pthread_mutex_lock(&H.lock);
    while (!(H.state == state && H.result == result))
    {
        if (pthread_cond_timedwait(&H.changed, &H.lock, &deadline) == ETIMEDOUT)
        {
            break;
        }
    }
    ok = H.state == state && H.result == result;
    if (!ok)
    {
        printf("      state %d result %d, want %d and %d\n", H.state, H.result, state, result);
    }
    pthread_mutex_unlock(&H.lock);
    return ok;
}

/* ---- an HTTP server for the image, and one that stalls -------------------- */

typedef struct image_server
{
    int fd;
    const unsigned char* data;
    size_t len;
} image_server_t;

/* Answers GET /fw/image with the whole image, and GET /fw/stall with a
 * head and 100 bytes of a larger body, then nothing until the client
 * goes away. */
static void* serve(void* arg)
{
    image_server_t* s = (image_server_t*)arg;
    for (;;)
    {
        char req[4096];
        char head[256];
        size_t got = 0;
        int stall;
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
        stall = strstr(req, "/fw/stall") != NULL;
        snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                 s->len);
        if (write_all(c, head, strlen(head)) == 0)
        {
            if (stall)
            {
                char b;
                write_all(c, s->data, 100);
                while (read(c, &b, 1) > 0)
                {
                    /* until the client cancels */
                }
            }
            else
            {
                write_all(c, s->data, s->len);
            }
        }
        close(c);
    }
}

/* Receives one datagram on fd within timeout_ms; returns its length (-1
 * none) and the time it arrived. */
static ssize_t recv_dgram(int fd, unsigned char* buf, size_t size, int timeout_ms, long* at)
{
    struct pollfd p;
    ssize_t n;
    p.fd = fd;
    p.events = POLLIN;
    if (poll(&p, 1, timeout_ms) != 1)
    {
        return -1;
    }
    n = recv(fd, buf, size, 0);
    *at = now_ms();
    return n;
}

/* Writes the Package URI through the server's API ("" resets). */
static int write_uri(const char* api, const char* ep, const char* uri)
{
    char url[256], json[512], body[1024];
    snprintf(url, sizeof(url), "/api/clients/%s/write/5/0/1", ep);
    snprintf(json, sizeof(json), "{\"value\":\"%s\",\"type\":\"string\"}", uri);
    return http(api, "PUT", url, json, body, sizeof(body)) == 200 && strstr(body, "2.04") != NULL;
}

static int asked(const char* got, const char* uri)
{
    int ok;
    pthread_mutex_lock(&H.lock);
    ok = strcmp(got, uri) == 0;
    if (!ok)
    {
        printf("      asked for %s, want %s\n", got, uri);
    }
    pthread_mutex_unlock(&H.lock);
    return ok;
}

int main(int argc, char** argv)
{
    avc_fw_handlers_t h = {0};
    image_server_t srv;
    pthread_t srv_thread;
    const char *server_uri, *api;
    unsigned char* image;
    size_t image_len = 0;
    char ep[64], uri[160], got[128];
    int port, udp, udp_port;
    unsigned char dg[2048];
    long t[3], start;
    ssize_t n[3];
    const char* log_level = getenv("AVC_LOG_LEVEL");

    if (argc != 4)
    {
        fprintf(stderr, "usage: %s coap://server host:port-of-http-api image\n", argv[0]);
        return 2;
    }
    server_uri = argv[1];
    api = argv[2];
    image = read_file(argv[3], &image_len);
    if (image == NULL || image_len < 1000)
    {
        fprintf(stderr, "cannot read %s (at least 1000 bytes)\n", argv[3]);
        return 2;
    }
    pthread_mutex_init(&H.lock, NULL);
    pthread_cond_init(&H.changed, NULL);
    H.cap = image_len + 1024;
    H.slot = (unsigned char*)malloc(H.cap);
    H.state = -1;

    snprintf(ep, sizeof(ep), "c-fwhooks-%ld", (long)getpid());
    check(avc_config_set("AVC_LOG_LEVEL", log_level ? log_level : "warn") == AVC_OK, "AVC_LOG_LEVEL set");
    check(avc_config_set("AVC_SERVER_URI", server_uri) == AVC_OK, "AVC_SERVER_URI set");
    check(avc_config_set("AVC_ENDPOINT", ep) == AVC_OK, "AVC_ENDPOINT set (no PSK configured)");
    check(avc_config_set("AVC_FW_VERSION", "1.0.0") == AVC_OK, "AVC_FW_VERSION set");

    h.stream_open = h_open;
    h.stream_write = h_write;
    h.stream_finish = h_finish;
    h.reset = h_reset;
    h.perform_upgrade = h_upgrade;
    h.booted = h_booted;
    h.get_name = h_get_name;
    h.get_version = h_get_version;
    h.get_security_config = h_get_security_config;
    h.get_coap_tx_params = h_get_coap_tx_params;
    h.get_tcp_request_timeout = h_get_tcp_request_timeout;
    check(avc_fw_install(&h, NULL) == AVC_OK, "avc_fw_install with every optional callback");
    check(avc_fw_set_status_handler(on_fw_status, NULL) == AVC_OK, "avc_fw_set_status_handler");
    check(avc_events_enable_poll(1) == AVC_OK, "event queue on");

    srv.data = image;
    srv.len = image_len;
    srv.fd = listen_local(SOCK_STREAM, &port);
    check(srv.fd >= 0 && pthread_create(&srv_thread, NULL, serve, &srv) == 0, "image served over HTTP");
    udp = listen_local(SOCK_DGRAM, &udp_port);
    check(udp >= 0, "a silent UDP server");

    check(le_avc_StartSession() == LE_OK, "le_avc_StartSession");
    check(wait_status(LE_AVC_SESSION_STARTED, TIMEOUT_MS), "registered");

    /* 1. get_name / get_version name a bare image. */
    snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/fw/image", port);
    check(write_uri(api, ep, uri), "server writes an http Package URI of a bare image");
    check(wait_fw(AVC_FW_STATE_DOWNLOADED, AVC_FW_RESULT_INITIAL, TIMEOUT_MS), "State Downloaded (2)");
    check(asked(H.timeout_uri, uri), "get_tcp_request_timeout asked with the Package URI");
    pthread_mutex_lock(&H.lock);
    check(H.len == image_len && memcmp(H.slot, image, image_len) == 0, "the image stored whole");
    check(H.names == 1 && H.versions == 1, "get_name and get_version called once");
    check(strcmp(H.version, "7.7.7") == 0, "the status carries get_version's version");
    pthread_mutex_unlock(&H.lock);
    check(api_read_until(api, ep, "/5/0/6", "\"c-hooks-blob\"", 10000), "/5/0/6 reads get_name's name");
    check(api_read_until(api, ep, "/5/0/7", "\"7.7.7\"", 10000), "/5/0/7 reads get_version's version");
    check(write_uri(api, ep, ""), "server resets with an empty Package URI");
    check(wait_fw(AVC_FW_STATE_IDLE, AVC_FW_RESULT_INITIAL, TIMEOUT_MS), "State Idle");

    /* 2. get_tcp_request_timeout ends a stalled HTTP pull. */
    snprintf(uri, sizeof(uri), "http://127.0.0.1:%d/fw/stall", port);
    start = now_ms();
    check(write_uri(api, ep, uri), "server writes the Package URI of a server that stalls");
    check(wait_fw(AVC_FW_STATE_IDLE, AVC_FW_RESULT_CONNECTION_LOST, 10000), "Idle with Update Result 4 (connection lost)");
    printf("      ended %ld ms after the write\n", now_ms() - start);
    check(now_ms() - start >= 1000, "not before the 1 s request timeout");
    check(asked(H.timeout_uri, uri), "get_tcp_request_timeout asked with the Package URI");

    /* 3. get_coap_tx_params sets the retransmission of the pull's GET. */
    snprintf(uri, sizeof(uri), "coap://127.0.0.1:%d/fw/silent", udp_port);
    check(write_uri(api, ep, uri), "server writes the Package URI of a silent CoAP server");
    n[0] = recv_dgram(udp, dg, sizeof(dg), 5000, &t[0]);
    n[1] = n[0] >= 4 ? recv_dgram(udp, dg + 1024, 1024, 5000, &t[1]) : -1;
    n[2] = n[1] >= 4 ? recv_dgram(udp, dg + 512, 512, 5000, &t[2]) : -1;
    check(n[0] >= 4 && n[1] >= 4 && n[2] >= 4, "three GETs arrived");
    if (n[2] >= 4)
    {
        printf("      GETs at +0, +%ld, +%ld ms\n", t[1] - t[0], t[2] - t[0]);
        check(t[1] - t[0] >= 250 && t[1] - t[0] < 1500, "the resend came after ACK_TIMEOUT 300 ms (default: 2-3 s)");
        check(memcmp(dg + 2, dg + 1024 + 2, 2) == 0, "the resend has the first GET's message ID");
        check(memcmp(dg + 1024 + 2, dg + 512 + 2, 2) != 0 && t[2] - t[1] >= 2000 && t[2] - t[1] < 4500,
              "after MAX_RETRANSMIT 1 a new request, 600 ms timeout + 2 s retry later");
    }
    check(asked(H.tx_uri, uri), "get_coap_tx_params asked with the Package URI (and the defaults in *out)");
    check(write_uri(api, ep, ""), "server resets");
    check(wait_fw(AVC_FW_STATE_IDLE, AVC_FW_RESULT_INITIAL, TIMEOUT_MS), "State Idle");

    /* 4. get_security_config: the only PSK. */
    while (recv_dgram(udp, dg, sizeof(dg), 300, &t[0]) >= 0)
    {
        /* drain the last GETs */
    }
    check(api_read(api, ep, "/5/0/8/1", got, sizeof(got)) && strcmp(got, "1") == 0,
          "/5/0/8 offers CoAPS (1) with get_security_config and no configured PSK");
    snprintf(uri, sizeof(uri), "coaps://127.0.0.1:%d/fw/secure", udp_port);
    check(write_uri(api, ep, uri), "server writes a coaps Package URI");
    n[0] = recv_dgram(udp, dg, sizeof(dg), 5000, &t[0]);
    check(n[0] > 13 && dg[0] == 22 && dg[1] == 0xfe, "a DTLS handshake record arrived (not plaintext, not Result 9)");
    check(asked(H.security_uri, uri), "get_security_config asked with the Package URI");
    check(wait_fw(AVC_FW_STATE_DOWNLOADING, AVC_FW_RESULT_INITIAL, 5000), "State Downloading");
    check(write_uri(api, ep, ""), "server resets");
    check(wait_fw(AVC_FW_STATE_IDLE, AVC_FW_RESULT_INITIAL, TIMEOUT_MS), "State Idle");
    snprintf(uri, sizeof(uri), "coaps://127.0.0.1:%d/fw/oom", udp_port);
    check(write_uri(api, ep, uri), "server writes a coaps Package URI the hook fails");
    check(wait_fw(AVC_FW_STATE_IDLE, AVC_FW_RESULT_OUT_OF_MEMORY, 10000), "AVC_FW_ERR_OUT_OF_MEMORY: Update Result 3");
    snprintf(uri, sizeof(uri), "coaps://127.0.0.1:%d/fw/refuse", udp_port);
    check(write_uri(api, ep, uri), "server writes a coaps Package URI the hook refuses");
    check(wait_fw(AVC_FW_STATE_IDLE, AVC_FW_RESULT_UNSUPPORTED_PROTOCOL, 10000), "-1: Update Result 9");

    check(le_avc_StopSession() == LE_OK, "le_avc_StopSession");
    check(wait_status(LE_AVC_SESSION_STOPPED, TIMEOUT_MS), "stopped");
    check(avc_fw_uninstall() == AVC_OK, "avc_fw_uninstall");
    check(avc_fw_set_status_handler(NULL, NULL) == AVC_OK, "status handler removed");
    shutdown(srv.fd, SHUT_RDWR);
    close(srv.fd);
    pthread_join(srv_thread, NULL);
    close(udp);
    free(image);
    free(H.slot);
    return report();
}
