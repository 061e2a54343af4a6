// futex.c — a 32-bit word that an idle kernel thread sleeps on and other kernel threads bump.
//
// Used by an M:1 runtime's idle loop (Scheduler/ForeignCancels.swift): it reads the word,
// looks for posted work, and sleeps only while the word still has the value it read, so a
// bump between the look and the sleep is never lost (FUTEX_WAIT returns EAGAIN). Unlike a
// condition variable, the wait ends with EINTR on a signal, as the nanosleep it replaces did
// (the dump signal is answered at once).
#define _GNU_SOURCE
#include "cuthreads.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

uint32_t uthreads_futex_load(const uint32_t *word) {
    return __atomic_load_n(word, __ATOMIC_ACQUIRE);
}

void uthreads_futex_bump_and_wake(uint32_t *word) {
    __atomic_fetch_add(word, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

int uthreads_futex_wait(uint32_t *word, uint32_t expected, uint64_t nanoseconds) {
    struct timespec relative = {
        .tv_sec = (time_t)(nanoseconds / 1000000000u),
        .tv_nsec = (long)(nanoseconds % 1000000000u),
    };
    long r = syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected,
                     nanoseconds == UINT64_MAX ? NULL : &relative, NULL, 0);
    return r == 0 ? 0 : errno;
}
