// cjacketcurl.h — libcurl's easy API, loaded with dlopen at run time: the jacket's
// demonstration with a C library this project did not write (`uthreads demo jacket`, the
// jacket's tests). Loading at run time means building needs no curl headers and a machine
// without libcurl still builds and tests (the demonstration then says why it cannot run).
#ifndef CJACKETCURL_H
#define CJACKETCURL_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The outcome of one transfer.
typedef struct jacket_curl_result {
    int code;            ///< CURLcode (0: CURLE_OK)
    long status;         ///< HTTP status
    size_t bytes;        ///< body bytes received
    char error[256];     ///< curl's message when code != 0 (CURL_ERROR_SIZE)
} jacket_curl_result;

/// Loads libcurl (libcurl.so.4) and runs curl_global_init once. Returns 0, or -1 with the
/// reason in `error`. Call it before any user thread calls `jacket_curl_get`.
int jacket_curl_load(char *error, size_t size);

/// One blocking GET with curl_easy_perform (a new easy handle, no signals, `timeout_ms`).
void jacket_curl_get(const char *url, long timeout_ms, jacket_curl_result *result);

/// libcurl's version string ("" before jacket_curl_load succeeded).
const char *jacket_curl_version(void);

#ifdef __cplusplus
}
#endif
#endif
