// curl.c — libcurl's easy API through dlopen (see cjacketcurl.h). The option numbers are
// libcurl's stable ABI (curl.h: CURLOPTTYPE_LONG 0, OBJECTPOINT 10000, FUNCTIONPOINT 20000).
#define _GNU_SOURCE
#include "cjacketcurl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

enum {
    OPT_WRITEDATA = 10001,
    OPT_URL = 10002,
    OPT_ERRORBUFFER = 10010,
    OPT_WRITEFUNCTION = 20011,
    OPT_NOSIGNAL = 99,
    OPT_TIMEOUT_MS = 155,
    INFO_RESPONSE_CODE = 0x200002,
    GLOBAL_DEFAULT = 3,
};

static struct {
    void *library;
    int (*global_init)(long);
    void *(*easy_init)(void);
    int (*easy_setopt)(void *, int, ...);
    int (*easy_perform)(void *);
    int (*easy_getinfo)(void *, int, ...);
    void (*easy_cleanup)(void *);
    const char *(*easy_strerror)(int);
    char *(*version)(void);
} curl;

int jacket_curl_load(char *error, size_t size) {
    if (curl.library) return 0;
    void *library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_GLOBAL);
    if (!library) {
        snprintf(error, size, "libcurl is not installed (dlopen libcurl.so.4: %s); apt-get install libcurl4-openssl-dev", dlerror());
        return -1;
    }
#define LOAD(field, symbol) \
    if (!(*(void **)&curl.field = dlsym(library, symbol))) { snprintf(error, size, "libcurl lacks %s", symbol); return -1; }
    LOAD(global_init, "curl_global_init");
    LOAD(easy_init, "curl_easy_init");
    LOAD(easy_setopt, "curl_easy_setopt");
    LOAD(easy_perform, "curl_easy_perform");
    LOAD(easy_getinfo, "curl_easy_getinfo");
    LOAD(easy_cleanup, "curl_easy_cleanup");
    LOAD(easy_strerror, "curl_easy_strerror");
    LOAD(version, "curl_version");
#undef LOAD
    if (curl.global_init(GLOBAL_DEFAULT) != 0) {
        snprintf(error, size, "curl_global_init failed");
        return -1;
    }
    curl.library = library;
    return 0;
}

const char *jacket_curl_version(void) { return curl.library ? curl.version() : ""; }

static size_t count_bytes(char *data, size_t size, size_t count, void *context) {
    (void)data;
    *(size_t *)context += size * count;
    return size * count;
}

void jacket_curl_get(const char *url, long timeout_ms, jacket_curl_result *result) {
    memset(result, 0, sizeof *result);
    if (!curl.library) {
        result->code = -1;
        snprintf(result->error, sizeof result->error, "libcurl not loaded");
        return;
    }
    void *easy = curl.easy_init();
    if (!easy) {
        result->code = -1;
        snprintf(result->error, sizeof result->error, "curl_easy_init failed");
        return;
    }
    curl.easy_setopt(easy, OPT_URL, url);
    curl.easy_setopt(easy, OPT_NOSIGNAL, 1L);
    curl.easy_setopt(easy, OPT_TIMEOUT_MS, timeout_ms);
    curl.easy_setopt(easy, OPT_WRITEFUNCTION, count_bytes);
    curl.easy_setopt(easy, OPT_WRITEDATA, &result->bytes);
    curl.easy_setopt(easy, OPT_ERRORBUFFER, result->error);
    result->code = curl.easy_perform(easy);
    curl.easy_getinfo(easy, INFO_RESPONSE_CODE, &result->status);
    if (result->code != 0 && result->error[0] == 0)
        snprintf(result->error, sizeof result->error, "%s", curl.easy_strerror(result->code));
    curl.easy_cleanup(easy);
}
