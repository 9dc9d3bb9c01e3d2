/*
 * fota_flash.c - firmware update (LwM2M Object 5) with a file-backed
 * "flash": the avc_fw_handlers_t callbacks store the image in DIR/fw.part,
 * rename it to DIR/fw.bin when complete, and "install" it by recording its
 * version in DIR/running, which this program reports as its firmware
 * version (/3/0/3) at the next start. Stays registered until SIGINT or
 * SIGTERM.
 *
 *   make lib cli
 *   build/avc server -coap 127.0.0.1:5683 -http 127.0.0.1:8080 &
 *   cc -std=c99 -Iinclude examples/c/fota_flash.c -Lbuild -lavc -pthread -o build/fota_flash
 *   mkdir -p /tmp/c-flash
 *   AVC_SERVER_URI=coap://127.0.0.1:5683 AVC_ENDPOINT=c-flash AVC_STATE_DIR=/tmp/c-flash \
 *       LD_LIBRARY_PATH=build build/fota_flash /tmp/c-flash &
 *   build/avc pack -in image.bin -out /tmp/images/fw.avc -version 2.0.0
 *   (cd /tmp/images && python3 -m http.server 8000 &)
 *   curl -X PUT -d '{"value":"http://127.0.0.1:8000/fw.avc"}' \
 *       http://127.0.0.1:8080/api/clients/c-flash/write/5/0/1
 *   curl -X POST http://127.0.0.1:8080/api/clients/c-flash/execute/5/0/2   # once downloaded
 *
 * With AVC_STATE_DIR the update also survives a real restart of this
 * program: the next session asks booted().
 */
#define _XOPEN_SOURCE 700 /* SA_ONSTACK, fsync, ftruncate */

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "legato.h"
#include "interfaces.h"
#include "avc.h"

static volatile sig_atomic_t quit;

/* The flash: one file open while a download runs. */
typedef struct flash
{
    char part[512];     /* DIR/fw.part */
    char bin[512];      /* DIR/fw.bin */
    char running[512];  /* DIR/running */
    FILE* f;
} flash_t;

static void flash_close(flash_t* fl)
{
    if (fl->f != NULL)
    {
        fclose(fl->f);
        fl->f = NULL;
    }
}

static int StreamOpen(void* user, const char* uri, int64_t offset)
{
    flash_t* fl = (flash_t*)user;
    long size;
    printf("firmware: downloading %s from byte %lld\n", uri[0] ? uri : "(push)", (long long)offset);
    flash_close(fl);
    fl->f = fopen(fl->part, offset > 0 ? "r+b" : "w+b");
    if (fl->f == NULL)
    {
        return AVC_FW_ERR_NOT_ENOUGH_SPACE;
    }
    /* A resumed download keeps exactly offset bytes. */
    if (fseek(fl->f, 0, SEEK_END) != 0 || (size = ftell(fl->f)) < offset ||
        ftruncate(fileno(fl->f), (off_t)offset) != 0 || fseek(fl->f, (long)offset, SEEK_SET) != 0)
    {
        flash_close(fl);
        return -1; /* libavc starts over from 0 */
    }
    return 0;
}

static int StreamWrite(void* user, const void* data, size_t length)
{
    flash_t* fl = (flash_t*)user;
    if (fl->f == NULL || fwrite(data, 1, length, fl->f) != length)
    {
        return AVC_FW_ERR_NOT_ENOUGH_SPACE;
    }
    return 0;
}

/* Before every checkpoint libavc stores: the bytes must be on disk. */
static int Sync(void* user)
{
    flash_t* fl = (flash_t*)user;
    if (fl->f == NULL || fflush(fl->f) != 0 || fsync(fileno(fl->f)) != 0)
    {
        return AVC_FW_ERR_NOT_ENOUGH_SPACE;
    }
    return 0;
}

static int StreamFinish(void* user)
{
    flash_t* fl = (flash_t*)user;
    int rc = Sync(user);
    flash_close(fl);
    if (rc != 0 || rename(fl->part, fl->bin) != 0)
    {
        return AVC_FW_ERR_INTEGRITY_FAILURE;
    }
    printf("firmware: downloaded into %s\n", fl->bin);
    return 0;
}

static void Reset(void* user)
{
    flash_t* fl = (flash_t*)user;
    flash_close(fl);
    remove(fl->part);
    remove(fl->bin);
}

/* A real device hands fw.bin to its bootloader and reboots here. */
static int PerformUpgrade(void* user, const avc_fw_package_t* pkg)
{
    flash_t* fl = (flash_t*)user;
    FILE* f = fopen(fl->running, "w");
    printf("firmware: installing %s %s (%lld bytes, sha256 %s)\n", pkg->name, pkg->version,
           (long long)pkg->size, pkg->sha256);
    if (f == NULL)
    {
        return -1; /* Update Result 8, the image is kept */
    }
    fputs(pkg->version, f);
    return fclose(f) == 0 ? 0 : -1;
}

static int Booted(void* user, const avc_fw_package_t* pkg, char* running, size_t running_len)
{
    flash_t* fl = (flash_t*)user;
    FILE* f = fopen(fl->running, "r");
    if (f == NULL)
    {
        return 0;
    }
    if (fgets(running, (int)running_len, f) == NULL)
    {
        running[0] = 0;
    }
    fclose(f);
    printf("firmware: running %s after the update to %s\n", running, pkg->version);
    return strcmp(running, pkg->version) == 0 ? 1 : 0;
}

/* Runs on libavc's dispatcher thread. */
static void OnFirmwareStatus(void* ctx, const avc_fw_status_t* st)
{
    static const char* const states[] = {"idle", "downloading", "downloaded", "updating"};
    (void)ctx;
    if (st->state != AVC_FW_STATE_DOWNLOADING)
    {
        printf("firmware: state %s, result %d\n", st->state >= 0 && st->state <= 3 ? states[st->state] : "?",
               st->result);
    }
    fflush(stdout);
}

static void OnSignal(int sig)
{
    (void)sig;
    quit = 1;
}

int main(int argc, char** argv)
{
    static flash_t fl;
    const char* dir = argc > 1 ? argv[1] : ".";
    struct sigaction sa;
    struct timespec tick = { 0, 100 * 1000 * 1000 };
    avc_fw_handlers_t h;
    char version[AVC_FW_VERSION_MAX] = "";
    FILE* f;
    int rc;

    snprintf(fl.part, sizeof(fl.part), "%s/fw.part", dir);
    snprintf(fl.bin, sizeof(fl.bin), "%s/fw.bin", dir);
    snprintf(fl.running, sizeof(fl.running), "%s/running", dir);

    /* The Go runtime inside libavc needs SA_ONSTACK on every handler. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = OnSignal;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* Read the AVC_* environment first (a first call to avc_config_set
     * would skip it), then set the version this "device" runs: the last
     * one installed. */
    le_avc_ConnectService();
    f = fopen(fl.running, "r");
    if (f != NULL)
    {
        if (fgets(version, sizeof(version), f) != NULL)
        {
            avc_config_set("AVC_FW_VERSION", version);
        }
        fclose(f);
    }

    memset(&h, 0, sizeof(h));
    h.stream_open = StreamOpen;
    h.stream_write = StreamWrite;
    h.stream_finish = StreamFinish;
    h.reset = Reset;
    h.perform_upgrade = PerformUpgrade;
    h.booted = Booted;
    h.sync = Sync;
    rc = avc_fw_install(&h, &fl);
    if (rc != AVC_OK)
    {
        fprintf(stderr, "avc_fw_install: %s\n", avc_strerror(rc));
        return 1;
    }
    avc_fw_set_status_handler(OnFirmwareStatus, NULL);

    if (le_avc_StartSession() != LE_OK)
    {
        char msg[256];
        avc_last_error(msg, sizeof(msg));
        fprintf(stderr, "le_avc_StartSession: %s\n", msg);
        return 1;
    }
    while (!quit)
    {
        nanosleep(&tick, NULL);
    }
    le_avc_StopSession();
    /* Waits for the session to end: the handlers are unused afterwards. */
    avc_fw_uninstall();
    flash_close(&fl);
    return 0;
}
