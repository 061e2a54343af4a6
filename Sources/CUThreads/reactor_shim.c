// reactor_shim.c — epoll, eventfd and socket calls for the reactor (see cuthreads_io.h).
#define _GNU_SOURCE
#include "cuthreads_io.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

int uthreads_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int uthreads_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev = { .events = events, .data = { .u64 = data } };
    return epoll_ctl(epfd, op, fd, &ev);
}

// No epoll_event array on the stack (it was 12 KiB): this may run on a user thread's stack, and
// a frame that large can step over a guard or into a dense neighbour slot (StackPool's essay),
// with the kernel's writes into it failing or landing silently. The kernel fills `out` as an
// epoll_event array (never larger per entry), and the entries are widened in place from the
// last down: entry i is read before it is written, and entries above i are already done.
_Static_assert(sizeof(struct epoll_event) <= sizeof(uthreads_io_event), "epoll_event must fit in place");

int uthreads_epoll_wait(int epfd, uthreads_io_event *out, int max, int timeout_ms) {
    if (max > 1024) max = 1024;
    struct epoll_event *events = (struct epoll_event *)(void *)out;
    int n = epoll_wait(epfd, events, max, timeout_ms);
    for (int i = n - 1; i >= 0; i--) {
        struct epoll_event e;
        memcpy(&e, (char *)out + (size_t)i * sizeof e, sizeof e);
        out[i].events = e.events;
        out[i].data = e.data.u64;
    }
    return n;
}

// The runtime's own descriptors are non-blocking and must never pass through an interposer of
// the C library's blocking calls (the jacket, Sources/UserThreadsJacket): these call the
// kernel directly (syscall(2)), not the interposable read/write/close/accept4 symbols.
ssize_t uthreads_sys_read(int fd, void *buffer, size_t count) { return syscall(SYS_read, fd, buffer, count); }
ssize_t uthreads_sys_write(int fd, const void *buffer, size_t count) { return syscall(SYS_write, fd, buffer, count); }
ssize_t uthreads_sys_readv(int fd, const struct iovec *vectors, int count) { return syscall(SYS_readv, fd, vectors, count); }
ssize_t uthreads_sys_writev(int fd, const struct iovec *vectors, int count) { return syscall(SYS_writev, fd, vectors, count); }
ssize_t uthreads_sys_recv(int fd, void *buffer, size_t count, int flags) {
    return syscall(SYS_recvfrom, fd, buffer, count, flags, NULL, NULL);
}
ssize_t uthreads_sys_send(int fd, const void *buffer, size_t count, int flags) {
    return syscall(SYS_sendto, fd, buffer, count, flags, NULL, 0);
}
int uthreads_sys_close(int fd) { return (int)syscall(SYS_close, fd); }

int uthreads_eventfd_create(void) { return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

int uthreads_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t n;
    do { n = uthreads_sys_write(fd, &one, sizeof one); } while (n < 0 && errno == EINTR);
    return n == sizeof one || (n < 0 && errno == EAGAIN) ? 0 : -1;  // EAGAIN: counter saturated, already signalled
}

uint64_t uthreads_eventfd_drain(int fd) {
    uint64_t value = 0;
    ssize_t n;
    do { n = uthreads_sys_read(fd, &value, sizeof value); } while (n < 0 && errno == EINTR);
    return n == sizeof value ? value : 0;
}

int uthreads_accept(int fd, struct sockaddr *addr, socklen_t *len) {
    return (int)syscall(SYS_accept4, fd, addr, len, SOCK_CLOEXEC | SOCK_NONBLOCK);
}

int uthreads_socket(int domain, int type, int protocol) {
    return socket(domain, type | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol);
}

int uthreads_socketpair(int domain, int type, int *sv) {
    return socketpair(domain, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv);
}

int uthreads_pipe(int *fds) { return pipe2(fds, O_CLOEXEC | O_NONBLOCK); }

int uthreads_set_nonblocking(int fd, int on) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    int wanted = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    return wanted == flags ? 0 : fcntl(fd, F_SETFL, wanted);
}

int uthreads_socket_error(int fd) {
    int error = 0;
    socklen_t len = sizeof error;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0) return -1;
    return error;
}

void uthreads_ignore_sigpipe(void) { signal(SIGPIPE, SIG_IGN); }

int uthreads_pin_current_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set);
}

int uthreads_affinity_cpu_count(void) {
    // A mask as large as the kernel's: sched_getaffinity fails with EINVAL while the set is
    // smaller than the kernel's cpumask (more than 1024 possible CPUs), so double until it fits.
    for (int cpus = 1024; cpus <= (1 << 20); cpus *= 2) {
        cpu_set_t *set = CPU_ALLOC(cpus);
        if (set == NULL) return -1;
        size_t size = CPU_ALLOC_SIZE(cpus);
        if (sched_getaffinity(0, size, set) == 0) {
            int count = CPU_COUNT_S(size, set);
            CPU_FREE(set);
            return count;
        }
        int error = errno;
        CPU_FREE(set);
        if (error != EINVAL) return -1;
    }
    return -1;
}

_Static_assert(sizeof(struct signalfd_siginfo) == UTHREADS_SIGNALFD_INFO_SIZE, "signalfd_siginfo size");

int uthreads_signalfd_open(const int *signals, int count) {
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < count; i++) {
        if (sigaddset(&set, signals[i]) != 0) return -1;  // EINVAL for a bad number
    }
    int e = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (e != 0) { errno = e; return -1; }
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}
