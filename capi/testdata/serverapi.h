/*
 * serverapi.h - what the C update tests share: a monotonic clock in
 * milliseconds, and a minimal HTTP/1.1 client for avc server's JSON API
 * (http(), api_read(), api_read_until()), wait_status() for an le_avc
 * status from the event queue, and small helpers the firmware tests
 * share (copy_str(), read_file(), listen_local()). Header-only; each test program
 * includes it once.
 */
#ifndef AVC_TESTDATA_SERVERAPI_H
#define AVC_TESTDATA_SERVERAPI_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "avc.h"

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000;
    nanosleep(&ts, NULL);
}

static int tcp_connect(const char* hostport)
{
    char host[64];
    const char* colon = strrchr(hostport, ':');
    struct sockaddr_in sa;
    int fd;
    if (colon == NULL || (size_t)(colon - hostport) >= sizeof(host))
    {
        return -1;
    }
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = 0;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
    {
        return -1;
    }
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
    {
        return -1;
    }
    if (connect(fd, (struct sockaddr*)&sa, sizeof(sa)) != 0)
    {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const void* p, size_t n)
{
    const char* b = (const char*)p;
    while (n > 0)
    {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
        {
            continue;
        }
        if (w <= 0)
        {
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Sends an HTTP/1.0 request to the API; returns the HTTP status (-1 on a
 * transport failure) and copies the response body into body. */
static int http(const char* api, const char* method, const char* path, const char* json,
                char* body, size_t size)
{
    char req[1024];
    char resp[8192];
    size_t got = 0;
    int fd, status = -1;
    char* start;
    body[0] = 0;
    fd = tcp_connect(api);
    if (fd < 0)
    {
        return -1;
    }
    snprintf(req, sizeof(req),
             "%s %s HTTP/1.0\r\nHost: %s\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             method, path, api, json ? strlen(json) : (size_t)0, json ? json : "");
    if (write_all(fd, req, strlen(req)) == 0)
    {
        for (;;)
        {
            ssize_t r = read(fd, resp + got, sizeof(resp) - 1 - got);
            if (r < 0 && errno == EINTR)
            {
                continue;
            }
            if (r <= 0)
            {
                break;
            }
            got += (size_t)r;
            if (got == sizeof(resp) - 1)
            {
                break;
            }
        }
    }
    close(fd);
    resp[got] = 0;
    if (sscanf(resp, "HTTP/%*s %d", &status) != 1)
    {
        return -1;
    }
    start = strstr(resp, "\r\n\r\n");
    snprintf(body, size, "%s", start ? start + 4 : "");
    return status;
}

/* Reads path through the API; returns 1 and the first record's value as
 * JSON text ("\"2.0.0\"", "1") in out when the client answered. */
static int api_read(const char* api, const char* ep, const char* path, char* out, size_t size)
{
    char url[256];
    char body[4096];
    const char* v;
    size_t n = 0;
    snprintf(url, sizeof(url), "/api/clients/%s/read%s", ep, path);
    if (http(api, "GET", url, NULL, body, sizeof(body)) != 200)
    {
        return 0;
    }
    v = strstr(body, "\"value\":");
    if (v == NULL)
    {
        return 0;
    }
    v += strlen("\"value\":");
    while (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n')
    {
        v++;
    }
    while (v[n] != 0 && v[n] != ',' && v[n] != '}' && n + 1 < size)
    {
        n++;
    }
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r' || v[n - 1] == '\n'))
    {
        n--;
    }
    memcpy(out, v, n);
    out[n] = 0;
    return 1;
}

/* Reads path until its value is want (JSON text), for up to timeout_ms. */
static int api_read_until(const char* api, const char* ep, const char* path, const char* want, int timeout_ms)
{
    char got[128] = "";
    long end = now_ms() + timeout_ms;
    while (now_ms() < end)
    {
        if (api_read(api, ep, path, got, sizeof(got)) && strcmp(got, want) == 0)
        {
            return 1;
        }
        sleep_ms(100);
    }
    printf("      %s reads %s, want %s\n", path, got, want);
    return 0;
}

/* Copies src (or "(null)") into dst, truncating. */
static inline void copy_str(char* dst, size_t size, const char* src)
{
    snprintf(dst, size, "%s", src != NULL ? src : "(null)");
}

/* Reads the whole file name into a new buffer (free it); NULL on error. */
static inline unsigned char* read_file(const char* name, size_t* len)
{
    FILE* fp = fopen(name, "rb");
    unsigned char* buf = NULL;
    long n;
    if (fp == NULL)
    {
        return NULL;
    }
    if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0)
    {
        buf = (unsigned char*)malloc((size_t)n + 1);
        if (buf != NULL && fread(buf, 1, (size_t)n, fp) != (size_t)n)
        {
            free(buf);
            buf = NULL;
        }
        *len = (size_t)n;
    }
    fclose(fp);
    return buf;
}

/* Opens a loopback socket of type (SOCK_STREAM: listening) on a free
 * port; returns it and sets *port, or -1. */
static inline int listen_local(int type, int* port)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, type, 0);
    if (fd < 0)
    {
        return -1;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr*)&sa, sizeof(sa)) != 0 || (type == SOCK_STREAM && listen(fd, 8) != 0) ||
        getsockname(fd, (struct sockaddr*)&sa, &len) != 0)
    {
        close(fd);
        return -1;
    }
    *port = ntohs(sa.sin_port);
    return fd;
}

/* Polls libavc's event queue until the le_avc status arrives (1) or
 * timeout_ms pass (0). Inline: programs that do not use it get no
 * unused-function warning. */
static inline int wait_status(int32_t status, int timeout_ms)
{
    avc_event_t ev;
    long end = now_ms() + timeout_ms;
    while (now_ms() < end)
    {
        if (avc_poll_event(&ev, (int)(end - now_ms())) != AVC_OK)
        {
            return 0;
        }
        if (ev.type == AVC_EVENT_STATUS && ev.status == status)
        {
            return 1;
        }
    }
    return 0;
}

#endif
