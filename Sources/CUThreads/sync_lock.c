// sync_lock.c — the lock of a sync object shared between kernel threads (Layer 0).
//
// Design essay
// ============
//
// A shared sync object (a channel, a mutex, a semaphore, … used by threads on several M:N
// workers: Sync/SyncSupport.swift, "Bare or locked") keeps its state under a lock held for a
// few loads and stores, never across a park. The lock is one 32-bit word (Drepper, "Futexes
// Are Tricky", mutex 3): 0 free, 1 held, 2 held with a kernel thread asleep on it. Taking a free
// lock is one compare-and-swap, releasing an uncontended one one exchange; a kernel thread
// that finds it held spins briefly (the holder is usually mid-way through a few stores on the
// other CPU) and then sleeps in FUTEX_WAIT, so a holder preempted on a 2-vCPU VM costs the
// waiter a sleep, not a time slice of spinning.
//
// Why not a pthread mutex (the first version): the same two atomic instructions, plus ~50
// instructions per lock and unlock pair of type checks and bookkeeping; a ping-pong handoff on
// one worker takes two pairs (callgrind: 114 instructions per handoff in pthread_mutex_lock
// and unlock). Why not Synchronization.Mutex: ThreadSanitizer does not see its lock on this
// toolchain (DEVELOPERS.md). This file is C, compiled with the sanitizer when the package is,
// so ThreadSanitizer sees the acquire and release of the word as it does any atomic. Why not a
// pure spin lock: the preempted holder above (SyncSupport.swift's rejected designs).
#define _GNU_SOURCE
#include "cuthreads.h"

#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

/// Spins before sleeping: ~100 pause instructions cover a holder's few stores on another CPU.
#define SYNC_LOCK_SPINS 100

void uthreads_sync_lock(uint32_t *word) {
    uint32_t expected = 0;
    if (__atomic_compare_exchange_n(word, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)) return;
    for (int i = 0; i < SYNC_LOCK_SPINS; i++) {
        uthreads_cpu_relax();
        expected = 0;
        if (__atomic_load_n(word, __ATOMIC_RELAXED) == 0
            && __atomic_compare_exchange_n(word, &expected, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
            return;
    }
    // Mark it contended (2) and sleep until an unlock wakes us; whoever takes it from here
    // takes it as 2, so its unlock wakes the next sleeper.
    while (__atomic_exchange_n(word, 2, __ATOMIC_ACQUIRE) != 0) {
        syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
    }
}

void uthreads_sync_unlock(uint32_t *word) {
    if (__atomic_exchange_n(word, 0, __ATOMIC_RELEASE) == 2) {
        syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
}
