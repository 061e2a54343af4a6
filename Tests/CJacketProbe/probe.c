// probe.c — see cjacketprobe.h.
#define _GNU_SOURCE
#include "cjacketprobe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RESULT(expr) do { errno = 0; long v = (long)(expr); probe_result r = {v, v < 0 ? errno : 0, 0}; return r; } while (0)

probe_result probe_read(int fd, void *buffer, size_t count) { RESULT(read(fd, buffer, count)); }
probe_result probe_write(int fd, const void *buffer, size_t count) { RESULT(write(fd, buffer, count)); }
probe_result probe_recv(int fd, void *buffer, size_t count, int flags) { RESULT(recv(fd, buffer, count, flags)); }
probe_result probe_usleep(unsigned microseconds) { RESULT(usleep(microseconds)); }
probe_result probe_close(int fd) { RESULT(close(fd)); }

probe_result probe_nanosleep(long seconds, long nanoseconds) {
    struct timespec ts = {seconds, nanoseconds};
    RESULT(nanosleep(&ts, NULL));
}

probe_result probe_poll(int fd, short events, int timeout_ms) {
    struct pollfd p = {fd, events, 0};
    errno = 0;
    int v = poll(&p, 1, timeout_ms);
    probe_result r = {v, v < 0 ? errno : 0, p.revents};
    return r;
}

probe_result probe_poll2(int fd1, int fd2, int timeout_ms) {
    struct pollfd p[2] = {{fd1, POLLIN, 0}, {fd2, POLLIN, 0}};
    errno = 0;
    int v = poll(p, 2, timeout_ms);
    probe_result r = {v, v < 0 ? errno : 0, (unsigned short)p[0].revents | ((unsigned short)p[1].revents << 16)};
    return r;
}

probe_result probe_select_read(int fd, long timeout_ms) {
    fd_set set;
    FD_ZERO(&set);
    FD_SET(fd, &set);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    errno = 0;
    int v = select(fd + 1, &set, NULL, NULL, timeout_ms < 0 ? NULL : &tv);
    probe_result r = {v, v < 0 ? errno : 0, v > 0 && FD_ISSET(fd, &set)};
    return r;
}

probe_result probe_select_read_timeval(int fd, long seconds, long microseconds) {
    fd_set set;
    FD_ZERO(&set);
    FD_SET(fd, &set);
    struct timeval tv = {seconds, microseconds};
    errno = 0;
    int v = select(fd + 1, &set, NULL, NULL, &tv);
    probe_result r = {v, v < 0 ? errno : 0, v > 0 && FD_ISSET(fd, &set)};
    return r;
}

void uthreads_write_stderr(const char *message);  // CUThreads, linked into the probe

void probe_runtime_stderr(const char *message) { uthreads_write_stderr(message); }

int probe_fill_pipe(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return -errno;
    char chunk[4096] = {0};
    int total = 0;
    ssize_t n;
    while ((n = write(fd, chunk, sizeof chunk)) > 0) total += (int)n;
    int e = errno;
    fcntl(fd, F_SETFL, flags);
    return e == EAGAIN ? total : -e;
}

probe_result probe_connect_loopback(int fd, uint16_t port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    RESULT(connect(fd, (struct sockaddr *)&a, sizeof a));
}

probe_result probe_accept(int fd) {
    errno = 0;
    int v = accept(fd, NULL, NULL);
    probe_result r = {v, v < 0 ? errno : 0, v};
    return r;
}

int probe_tcp_socket(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
}

int probe_tcp_listener(uint16_t *port) {
    int fd = probe_tcp_socket();
    if (fd < 0) return fd;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

int probe_set_receive_timeout(int fd, long milliseconds) {
    struct timeval tv = {milliseconds / 1000, (milliseconds % 1000) * 1000};
    return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ? errno : 0;
}

int probe_kernel_threads(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    }
    fclose(f);
    return n;
}

int probe_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -errno : (flags & O_NONBLOCK) != 0;
}

int probe_kernel_nonblocking(int fd) {
    long flags = syscall(SYS_fcntl, fd, F_GETFL);
    return flags < 0 ? -errno : (flags & O_NONBLOCK) != 0;
}

int probe_set_nonblocking(int fd, int on) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return errno;
    return fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK) < 0 ? errno : 0;
}

int probe_fionbio(int fd, int on) { return ioctl(fd, FIONBIO, &on) < 0 ? errno : 0; }

int probe_fork_nonblocking(int fd) {
    pid_t child = fork();
    if (child < 0) return -errno;
    if (child == 0) {
        int kernel = probe_kernel_nonblocking(fd), view = probe_nonblocking(fd);
        _exit(kernel < 0 || view < 0 ? 100 : kernel + 2 * view);
    }
    int status = 0;
    if (waitpid(child, &status, 0) < 0) return -errno;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// MARK: - Signals around blocking calls

static volatile int probe_signals;

static void probe_on_signal(int sig) {
    (void)sig;
    __atomic_add_fetch(&probe_signals, 1, __ATOMIC_SEQ_CST);
}

int probe_signal_handler(int sig, int restart) {
    if (restart == PROBE_HANDLER_SIGNAL || restart == PROBE_HANDLER_SIGNAL_SIGINTERRUPT) {
        // siginterrupt is what the scenario tests (its replacement, SA_RESTART, is tested above).
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
        // The C library remembers siginterrupt for later signal() calls: forget an earlier one.
        if (siginterrupt(sig, 0) < 0) return errno;
        if (signal(sig, probe_on_signal) == SIG_ERR) return errno;
        return restart == PROBE_HANDLER_SIGNAL_SIGINTERRUPT && siginterrupt(sig, 1) < 0 ? errno : 0;
#pragma clang diagnostic pop
    }
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = probe_on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = restart ? SA_RESTART : 0;
    return sigaction(sig, &action, NULL) < 0 ? errno : 0;
}

int probe_signal_count(void) { return __atomic_load_n(&probe_signals, __ATOMIC_SEQ_CST); }

int probe_signal_readback(int sig, int restart) {
    struct sigaction old;
    if (sigaction(sig, NULL, &old) < 0) return 0;
    return old.sa_handler == probe_on_signal && !(old.sa_flags & SA_SIGINFO) && !!(old.sa_flags & SA_RESTART) == !!restart;
}

probe_result probe_signal_call(int which, int fd) {
    char byte = 0;
    struct pollfd p = {fd, POLLIN, 0};
    sigset_t mask;
    sigemptyset(&mask);
    switch (which) {
    case PROBE_SIGNAL_READ: RESULT(read(fd, &byte, 1));
    case PROBE_SIGNAL_POLL: RESULT(poll(&p, 1, -1));
    case PROBE_SIGNAL_NANOSLEEP: {
        struct timespec ts = {30, 0}, left = {0, 0};
        errno = 0;
        int v = nanosleep(&ts, &left);
        probe_result r = {v, v < 0 ? errno : 0, left.tv_sec > 0 && left.tv_sec <= 30};
        return r;
    }
    case PROBE_SIGNAL_PPOLL_BLOCKING: sigaddset(&mask, SIGUSR1); RESULT(ppoll(&p, 1, NULL, &mask));
    case PROBE_SIGNAL_PPOLL_EMPTY_MASK: RESULT(ppoll(&p, 1, NULL, &mask));
    case PROBE_SIGNAL_PSELECT_EMPTY_MASK: {
        fd_set set;
        FD_ZERO(&set);
        FD_SET(fd, &set);
        RESULT(pselect(fd + 1, &set, NULL, NULL, NULL, &mask));
    }
    case PROBE_SIGNAL_EPOLL_PWAIT_BLOCKING: {
        int epoll = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd}, out;
        if (epoll < 0 || epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev) < 0) { probe_result r = {-1, errno, 0}; return r; }
        sigaddset(&mask, SIGUSR1);
        errno = 0;
        int v = epoll_pwait(epoll, &out, 1, -1, &mask);
        probe_result r = {v, v < 0 ? errno : 0, 0};
        close(epoll);
        return r;
    }
    default: { probe_result r = {-1, EINVAL, 0}; return r; }
    }
}

typedef struct probe_signal_target {
    int which, fd;
    pid_t tid;
    int done;
    probe_result result;
} probe_signal_target;

static void *probe_signal_thread(void *argument) {
    probe_signal_target *t = argument;
    __atomic_store_n(&t->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_SEQ_CST);
    t->result = probe_signal_call(t->which, t->fd);
    __atomic_store_n(&t->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/// 1 when kernel thread `tid` of this process sleeps in the kernel (state S in its stat).
static int probe_sleeping(pid_t tid) {
    char path[64], text[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char *close_paren = strrchr(text, ')');
    return close_paren && close_paren[1] == ' ' && close_paren[2] == 'S';
}

/// Waits until the target sleeps in the kernel or its call has returned.
static void probe_until_sleeping(const probe_signal_target *t) {
    while (!__atomic_load_n(&t->done, __ATOMIC_SEQ_CST) && !probe_sleeping(t->tid)) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
}

probe_result probe_signal_real(int which, int r, int w, int sig) {
    probe_signal_target t = {which, r, 0, 0, {0, 0, 0}};
    pthread_t thread;
    if (pthread_create(&thread, NULL, probe_signal_thread, &t) != 0) {
        probe_result failed = {-1, EAGAIN, 0};
        return failed;
    }
    while (__atomic_load_n(&t.tid, __ATOMIC_SEQ_CST) == 0) sched_yield();
    probe_until_sleeping(&t);
    int before = probe_signal_count();
    pthread_kill(thread, sig);
    // A call the signal does not end sleeps again (restarted, or the signal is blocked): then a
    // byte ends it. One it ends has returned: the write is left in the pipe for nobody.
    if (which != PROBE_SIGNAL_PPOLL_BLOCKING && which != PROBE_SIGNAL_EPOLL_PWAIT_BLOCKING) {
        while (probe_signal_count() == before) sched_yield();
    }
    probe_until_sleeping(&t);
    char byte = 1;
    if (write(w, &byte, 1) != 1) abort();
    pthread_join(thread, NULL);
    return t.result;
}

// MARK: - Descriptors closed and reused behind the jacket's back

int probe_raw_close(int fd) { return syscall(SYS_close, fd) < 0 ? errno : 0; }

int probe_raw_eventfd_nonblocking(void) {
    long fd = syscall(SYS_eventfd2, 0, EFD_NONBLOCK | EFD_CLOEXEC);
    return fd < 0 ? -errno : (int)fd;
}

int probe_raw_open_null(void) {
    long fd = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC);
    return fd < 0 ? -errno : (int)fd;
}

probe_result probe_read8(int fd) {
    uint64_t value = 0;
    RESULT(read(fd, &value, sizeof value));
}

int probe_open_fifo(const char *path) {
    unlink(path);
    if (mkfifo(path, 0600) != 0) return -errno;
    int fd = open(path, O_RDWR | O_CLOEXEC);  // O_RDWR: the open does not wait for a writer
    int e = errno;
    unlink(path);
    return fd < 0 ? -e : fd;
}
