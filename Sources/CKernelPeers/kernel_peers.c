// kernel_peers.c — kernel threads measured the same way user threads are.
#define _GNU_SOURCE
#include "ckernelpeers.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

// Pins the calling thread to `cpu`; a negative `cpu` lets it run on every online CPU.
static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (cpu < 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        for (long i = 0; i < n && i < CPU_SETSIZE; i++) CPU_SET(i, &set);
    } else {
        CPU_SET(cpu, &set);
    }
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

// The caller's CPU mask, taken before a handoff pins it and given back after (threads it
// creates later inherit its mask: the caller's placement must be what it was).
static cpu_set_t saved_mask(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    pthread_getaffinity_np(pthread_self(), sizeof set, &set);
    return set;
}

static void restore_mask(const cpu_set_t *set) { pthread_setaffinity_np(pthread_self(), sizeof *set, set); }

static long futex(_Atomic uint32_t *addr, int op, uint32_t val) {
    return syscall(SYS_futex, addr, op, val, NULL, NULL, 0);
}

static void *empty(void *arg) { return arg; }

double peers_pthread_create_join_ns(int iterations) {
    uint64_t t0 = now_ns();
    for (int i = 0; i < iterations; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, empty, NULL) != 0) return -1;
        pthread_join(t, NULL);
    }
    return (double)(now_ns() - t0) / iterations;
}

// MARK: futex handoff: token 0 = ping's turn, 1 = pong's turn.
struct handoff {
    _Atomic uint32_t turn;
    int rounds;
    int cpu;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
};

static void *futex_pong(void *arg) {
    struct handoff *h = arg;
    pin(h->cpu);
    for (int i = 0; i < h->rounds; i++) {
        while (atomic_load(&h->turn) != 1) futex(&h->turn, FUTEX_WAIT_PRIVATE, 0);
        atomic_store(&h->turn, 0);
        futex(&h->turn, FUTEX_WAKE_PRIVATE, 1);
    }
    return NULL;
}

double peers_futex_handoff_ns(int handoffs, int cpu) {
    struct handoff h = {.turn = 0, .rounds = handoffs / 2, .cpu = cpu};
    pthread_t t;
    if (pthread_create(&t, NULL, futex_pong, &h) != 0) return -1;
    cpu_set_t saved = saved_mask();
    pin(cpu);
    uint64_t t0 = now_ns();
    for (int i = 0; i < h.rounds; i++) {
        atomic_store(&h.turn, 1);
        futex(&h.turn, FUTEX_WAKE_PRIVATE, 1);
        while (atomic_load(&h.turn) != 0) futex(&h.turn, FUTEX_WAIT_PRIVATE, 1);
    }
    uint64_t t1 = now_ns();
    pthread_join(t, NULL);
    restore_mask(&saved);
    return (double)(t1 - t0) / (2.0 * h.rounds);
}

static void *condvar_pong(void *arg) {
    struct handoff *h = arg;
    pin(h->cpu);
    pthread_mutex_lock(&h->mutex);
    for (int i = 0; i < h->rounds; i++) {
        while (atomic_load(&h->turn) != 1) pthread_cond_wait(&h->cond, &h->mutex);
        atomic_store(&h->turn, 0);
        pthread_cond_signal(&h->cond);
    }
    pthread_mutex_unlock(&h->mutex);
    return NULL;
}

double peers_condvar_handoff_ns(int handoffs, int cpu) {
    struct handoff h = {.turn = 0, .rounds = handoffs / 2, .cpu = cpu};
    pthread_mutex_init(&h.mutex, NULL);
    pthread_cond_init(&h.cond, NULL);
    pthread_t t;
    if (pthread_create(&t, NULL, condvar_pong, &h) != 0) return -1;
    cpu_set_t saved = saved_mask();
    pin(cpu);
    uint64_t t0 = now_ns();
    pthread_mutex_lock(&h.mutex);
    for (int i = 0; i < h.rounds; i++) {
        atomic_store(&h.turn, 1);
        pthread_cond_signal(&h.cond);
        while (atomic_load(&h.turn) != 0) pthread_cond_wait(&h.cond, &h.mutex);
    }
    pthread_mutex_unlock(&h.mutex);
    uint64_t t1 = now_ns();
    pthread_join(t, NULL);
    restore_mask(&saved);
    pthread_mutex_destroy(&h.mutex);
    pthread_cond_destroy(&h.cond);
    return (double)(t1 - t0) / (2.0 * h.rounds);
}

static void *yield_pong(void *arg) {
    struct handoff *h = arg;
    pin(h->cpu);
    for (int i = 0; i < h->rounds; i++) {
        while (atomic_load(&h->turn) != 1) sched_yield();
        atomic_store(&h->turn, 0);
    }
    return NULL;
}

double peers_sched_yield_handoff_ns(int handoffs, int cpu) {
    struct handoff h = {.turn = 0, .rounds = handoffs / 2, .cpu = cpu};
    pthread_t t;
    if (pthread_create(&t, NULL, yield_pong, &h) != 0) return -1;
    cpu_set_t saved = saved_mask();
    pin(cpu);
    uint64_t t0 = now_ns();
    for (int i = 0; i < h.rounds; i++) {
        atomic_store(&h.turn, 1);
        while (atomic_load(&h.turn) != 0) sched_yield();
    }
    uint64_t t1 = now_ns();
    pthread_join(t, NULL);
    restore_mask(&saved);
    return (double)(t1 - t0) / (2.0 * h.rounds);
}

// MARK: parked pthreads
struct park {
    _Atomic uint32_t release;
    int count;
    pthread_t threads[];
};

static void *parked(void *arg) {
    struct park *p = arg;
    while (atomic_load(&p->release) == 0) futex(&p->release, FUTEX_WAIT_PRIVATE, 0);
    return NULL;
}

void *peers_park_pthreads(int count, int *created, int *errno_out) {
    struct park *p = calloc(1, sizeof *p + (size_t)count * sizeof(pthread_t));
    if (!p) { *errno_out = ENOMEM; *created = 0; return NULL; }
    *errno_out = 0;
    for (int i = 0; i < count; i++) {
        int e = pthread_create(&p->threads[i], NULL, parked, p);
        if (e != 0) { *errno_out = e; break; }
        p->count++;
    }
    *created = p->count;
    return p;
}

void peers_unpark_pthreads(void *handle) {
    struct park *p = handle;
    if (!p) return;
    atomic_store(&p->release, 1);
    futex(&p->release, FUTEX_WAKE_PRIVATE, 0x7fffffff);
    for (int i = 0; i < p->count; i++) pthread_join(p->threads[i], NULL);
    free(p);
}

long peers_thread_context_switches(void) {
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return ru.ru_nvcsw + ru.ru_nivcsw;
}

long peers_default_thread_stack_size(void) {
    pthread_attr_t attr;
    size_t size = 0;
    if (pthread_getattr_default_np(&attr) != 0) return -1;
    if (pthread_attr_getstacksize(&attr, &size) != 0) size = 0;
    pthread_attr_destroy(&attr);
    return size ? (long)size : -1;
}

void peers_pin_self(int cpu) { pin(cpu); }
