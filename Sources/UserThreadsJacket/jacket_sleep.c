// jacket_sleep.c — nanosleep, clock_nanosleep, usleep, sleep as user-thread sleeps on the
// runtime's clock (essay: jacket_core.c). A cancelled thread's sleep ends at once with
// ECANCELED, one interrupted by a signal's handler with EINTR (jacket_signal.c); nanosleep's
// `rem` says how much was left.
#include "jacket_internal.h"

#include <unistd.h>

/// Sleeps `ns`; 0, or ECANCELED or EINTR (a signal's handler ran: sleeps are never restarted)
/// with `*left` the nanoseconds not slept.
static int jacket_sleep_ns(uint64_t ns, uint64_t *left) {
    uint64_t deadline = jacket_deadline_after(ns);
    jacket_signal_watch watch;
    jacket_signal_watch_begin(&watch, NULL, 0);
    int e = jacket_park_time(deadline, &watch);
    if (e == ETIMEDOUT) e = 0;
    if (e != 0 && left) {
        uint64_t now = jacket_runtime->now();
        *left = deadline > now ? deadline - now : 0;
    }
    return e;
}

static void jacket_set_timespec(struct timespec *ts, uint64_t ns) {
    ts->tv_sec = (time_t)(ns / 1000000000ull);
    ts->tv_nsec = (long)(ns % 1000000000ull);
}

int nanosleep(const struct timespec *request, struct timespec *remaining) {
    if (!jacket_on_user_thread() || !request) return REAL(nanosleep)(request, remaining);
    int64_t ns = jacket_timespec_ns(request);
    if (ns < 0) return REAL(nanosleep)(request, remaining);  // EINVAL, as the real call says
    uint64_t left = 0;
    int e = jacket_sleep_ns((uint64_t)ns, &left);
    if (e == 0) return 0;
    if (remaining) jacket_set_timespec(remaining, left);
    errno = e;
    return -1;
}

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *request, struct timespec *remaining) {
    if (!jacket_on_user_thread() || !request) return REAL(clock_nanosleep)(clock, flags, request, remaining);
    if (clock != CLOCK_MONOTONIC && clock != CLOCK_REALTIME && clock != CLOCK_BOOTTIME && clock != CLOCK_TAI)
        return REAL(clock_nanosleep)(clock, flags, request, remaining);  // CPU-time clocks: EINVAL/ENOTSUP there
    int64_t ns = jacket_timespec_ns(request);
    if (ns < 0) return EINVAL;
    if (flags & TIMER_ABSTIME) {
        struct timespec now;
        if (clock_gettime(clock, &now) != 0) return errno;
        int64_t now_ns = jacket_timespec_ns(&now);
        ns = ns > now_ns ? ns - now_ns : 0;
    }
    uint64_t left = 0;
    int e = jacket_sleep_ns((uint64_t)ns, &left);
    if (e != 0 && remaining && !(flags & TIMER_ABSTIME)) jacket_set_timespec(remaining, left);
    return e;  // clock_nanosleep returns the error number
}

int usleep(useconds_t microseconds) {
    if (!jacket_on_user_thread()) return REAL(usleep)(microseconds);
    int e = jacket_sleep_ns((uint64_t)microseconds * 1000ull, NULL);
    if (e == 0) return 0;
    errno = e;
    return -1;
}

unsigned sleep(unsigned seconds) {
    if (!jacket_on_user_thread()) return REAL(sleep)(seconds);
    uint64_t left = 0;
    int e = jacket_sleep_ns((uint64_t)seconds * 1000000000ull, &left);
    if (e == 0) return 0;
    errno = e;
    return (unsigned)((left + 999999999ull) / 1000000000ull);
}
