// process_peers.c — the third column of the 1992 comparison (processes: fork, pipes), parked
// thread and process sets that grow step by step (for memory budgets), and a system-call
// counter for code that must run for real (ptrace, unlike the seccomp trap that refuses calls).
#define _GNU_SOURCE
#include "ckernelpeers.h"

#include <errno.h>
#include <linux/futex.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void pin_self(int cpu) {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static void wait_child(pid_t pid) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
}

double peers_fork_wait_ns(int iterations) {
    uint64_t t0 = now_ns();
    for (int i = 0; i < iterations; i++) {
        pid_t pid = fork();
        if (pid < 0) return -1;
        if (pid == 0) _exit(0);
        wait_child(pid);
    }
    return (double)(now_ns() - t0) / iterations;
}

static int write_byte(int fd) { char c = 1; return write(fd, &c, 1) == 1 ? 0 : -1; }
static int read_byte(int fd) { char c; ssize_t n; while ((n = read(fd, &c, 1)) < 0 && errno == EINTR) {} return n == 1 ? 0 : -1; }

double peers_pipe_handoff_ns(int handoffs, int cpu) {
    int ping[2], pong[2];
    if (pipe(ping) != 0) return -1;
    if (pipe(pong) != 0) { close(ping[0]); close(ping[1]); return -1; }
    int rounds = handoffs / 2;
    cpu_set_t saved;
    sched_getaffinity(0, sizeof saved, &saved);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        pin_self(cpu);
        for (int i = 0; i < rounds; i++) {
            if (read_byte(ping[0]) != 0 || write_byte(pong[1]) != 0) _exit(1);
        }
        _exit(0);
    }
    pin_self(cpu);
    // one warm-up round trip so that both processes are running
    write_byte(ping[1]);
    read_byte(pong[0]);
    uint64_t t0 = now_ns();
    for (int i = 1; i < rounds; i++) {
        write_byte(ping[1]);
        read_byte(pong[0]);
    }
    uint64_t t1 = now_ns();
    wait_child(pid);
    sched_setaffinity(0, sizeof saved, &saved);
    close(ping[0]); close(ping[1]); close(pong[0]); close(pong[1]);
    return rounds > 1 ? (double)(t1 - t0) / (2.0 * (rounds - 1)) : -1;
}

// MARK: growing sets of parked pthreads

struct park_set {
    _Atomic uint32_t release;
    int count, capacity;
    pthread_t *threads;
};

static void *parked(void *arg) {
    struct park_set *p = arg;
    while (atomic_load(&p->release) == 0) syscall(SYS_futex, &p->release, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
    return NULL;
}

void *peers_thread_set_new(int capacity) {
    struct park_set *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->threads = calloc((size_t)capacity, sizeof(pthread_t));
    if (!p->threads) { free(p); return NULL; }
    p->capacity = capacity;
    return p;
}

int peers_thread_set_add(void *set, int count, long stack_size) {
    struct park_set *p = set;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    if (stack_size > 0) pthread_attr_setstacksize(&attr, (size_t)stack_size);
    int e = 0;
    for (int i = 0; i < count && p->count < p->capacity; i++) {
        e = pthread_create(&p->threads[p->count], &attr, parked, p);
        if (e != 0) break;
        p->count++;
    }
    pthread_attr_destroy(&attr);
    return e;
}

int peers_thread_set_count(void *set) { return ((struct park_set *)set)->count; }

void peers_thread_set_release(void *set) {
    struct park_set *p = set;
    if (!p) return;
    atomic_store(&p->release, 1);
    syscall(SYS_futex, &p->release, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
    for (int i = 0; i < p->count; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    free(p);
}

// MARK: growing sets of parked processes (each blocks reading a pipe nobody writes)

struct process_set {
    int fds[2];
    int count, capacity;
    pid_t *pids;
};

void *peers_process_set_new(int capacity) {
    struct process_set *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->pids = calloc((size_t)capacity, sizeof(pid_t));
    if (!s->pids || pipe(s->fds) != 0) { free(s->pids); free(s); return NULL; }
    s->capacity = capacity;
    return s;
}

int peers_process_set_add(void *set, int count) {
    struct process_set *s = set;
    for (int i = 0; i < count && s->count < s->capacity; i++) {
        pid_t pid = fork();
        if (pid < 0) return errno;
        if (pid == 0) {
            close(s->fds[1]);
            char c;
            while (read(s->fds[0], &c, 1) < 0 && errno == EINTR) {}
            _exit(0);
        }
        s->pids[s->count++] = pid;
    }
    return 0;
}

int peers_process_set_count(void *set) { return ((struct process_set *)set)->count; }

long peers_process_set_private_bytes(void *set) {
    struct process_set *s = set;
    long total = 0;
    char path[64], line[256];
    for (int i = 0; i < s->count; i++) {
        snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)s->pids[i]);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        while (fgets(line, sizeof line, f)) {
            long kb;
            if (sscanf(line, "Private_Clean: %ld kB", &kb) == 1 || sscanf(line, "Private_Dirty: %ld kB", &kb) == 1) total += kb * 1024;
        }
        fclose(f);
    }
    return total;
}

void peers_process_set_release(void *set) {
    struct process_set *s = set;
    if (!s) return;
    close(s->fds[1]);  // every child reads EOF and exits
    for (int i = 0; i < s->count; i++) wait_child(s->pids[i]);
    close(s->fds[0]);
    free(s->pids);
    free(s);
}

// MARK: counting system calls with ptrace

long peers_count_syscalls(void (*body)(void *context), void *context) {
    pid_t pid = fork();
    if (pid < 0) return -errno;
    if (pid == 0) {
        if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != 0) _exit(99);
        raise(SIGSTOP);
        body(context);
        _exit(0);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFSTOPPED(status)) return -ECHILD;
    long options = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK
                   | PTRACE_O_EXITKILL;
    if (ptrace(PTRACE_SETOPTIONS, pid, NULL, (void *)options) != 0) {
        int e = errno;
        kill(pid, SIGKILL);
        wait_child(pid);
        return -e;
    }
    ptrace(PTRACE_SYSCALL, pid, NULL, NULL);
    long count = 0;
    int main_status = -1;
    for (;;) {
        pid_t t = waitpid(-1, &status, __WALL);
        if (t < 0) {
            if (errno == EINTR) continue;
            break;  // ECHILD: every traced task is gone
        }
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            if (t == pid) main_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            continue;
        }
        if (!WIFSTOPPED(status)) continue;
        int sig = WSTOPSIG(status), inject = 0;
        if (sig == (SIGTRAP | 0x80)) {
            struct __ptrace_syscall_info info;
            if (ptrace(PTRACE_GET_SYSCALL_INFO, t, (void *)sizeof info, &info) > 0 && info.op == PTRACE_SYSCALL_INFO_ENTRY) count++;
        } else if (sig == SIGTRAP || sig == SIGSTOP) {
            inject = 0;  // ptrace events (clone, fork) and the initial stop of new tasks
        } else {
            inject = sig;
        }
        ptrace(PTRACE_SYSCALL, t, NULL, (void *)(long)inject);
    }
    return main_status == 0 ? count : -1000 - main_status;
}

long peers_malloc_in_use(void) {
    struct mallinfo2 m = mallinfo2();
    return (long)(m.uordblks + m.hblkhd);
}
