// cuthreads_io.h — layer 0 for the reactor: the Linux calls Glibc does not export to Swift
// (epoll, eventfd, accept4 and a few socket constants that Swift imports awkwardly).
//
// Every function returns what the system call returns (-1 with errno set on failure), so the
// Swift wrappers read errno right after the call, as they do for Glibc's own functions.
#ifndef CUTHREADS_IO_H
#define CUTHREADS_IO_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Readiness bits (the EPOLL* values).
enum {
    UTHREADS_EV_IN = 0x001,
    UTHREADS_EV_OUT = 0x004,
    UTHREADS_EV_ERR = 0x008,
    UTHREADS_EV_HUP = 0x010,
    UTHREADS_EV_RDHUP = 0x2000,
    UTHREADS_EV_ET = (int)(1u << 31),
};

/// One ready descriptor: an epoll_event without the packed layout (which Swift cannot import).
typedef struct uthreads_io_event {
    uint32_t events;
    uint64_t data;
} uthreads_io_event;

/// The system calls themselves (syscall(2)), for the runtime's own I/O: never the C library's
/// interposable symbols, which an interposer (the jacket) may have replaced with calls that
/// park user threads (essay: Sources/UserThreadsJacket/jacket_core.c).
ssize_t uthreads_sys_read(int fd, void *_Nullable buffer, size_t count);
/// write(2), the system call.
ssize_t uthreads_sys_write(int fd, const void *_Nullable buffer, size_t count);
/// readv(2), the system call.
ssize_t uthreads_sys_readv(int fd, const struct iovec *_Nullable vectors, int count);
/// writev(2), the system call.
ssize_t uthreads_sys_writev(int fd, const struct iovec *_Nullable vectors, int count);
/// recv(2) (recvfrom with no address), the system call.
ssize_t uthreads_sys_recv(int fd, void *_Nullable buffer, size_t count, int flags);
/// send(2) (sendto with no address), the system call.
ssize_t uthreads_sys_send(int fd, const void *_Nullable buffer, size_t count, int flags);
/// close(2), the system call.
int uthreads_sys_close(int fd);

/// epoll_create1(EPOLL_CLOEXEC).
int uthreads_epoll_create(void);
/// epoll_ctl with op 1 = ADD, 2 = DEL, 3 = MOD.
int uthreads_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
/// epoll_wait into `out` (at most `max`, <= 1024 entries), timeout in ms (-1 forever).
int uthreads_epoll_wait(int epfd, uthreads_io_event *_Nonnull out, int max, int timeout_ms);

/// eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK).
int uthreads_eventfd_create(void);
/// Adds 1 to the counter (async-signal-safe; any kernel thread).
int uthreads_eventfd_signal(int fd);
/// Reads and resets the counter; returns it, or 0 when it was 0 (EAGAIN).
uint64_t uthreads_eventfd_drain(int fd);

/// accept4(..., SOCK_CLOEXEC | SOCK_NONBLOCK).
int uthreads_accept(int fd, struct sockaddr *_Nullable addr, socklen_t *_Nullable len);
/// socket(domain, type | SOCK_CLOEXEC | SOCK_NONBLOCK, protocol).
int uthreads_socket(int domain, int type, int protocol);
/// socketpair(domain, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv).
int uthreads_socketpair(int domain, int type, int *_Nonnull sv);
/// pipe2(fds, O_CLOEXEC | O_NONBLOCK).
int uthreads_pipe(int *_Nonnull fds);
/// Sets or clears O_NONBLOCK; returns 0 or -1.
int uthreads_set_nonblocking(int fd, int on);
/// The pending socket error (getsockopt SO_ERROR), or -1 with errno set.
int uthreads_socket_error(int fd);
/// Pins the calling kernel thread to one CPU (sched_setaffinity); 0 or -1.
int uthreads_pin_current_thread(int cpu);
/// The number of CPUs in the calling kernel thread's affinity mask (sched_getaffinity: what
/// `taskset` sets), or -1 with errno set.
int uthreads_affinity_cpu_count(void);
/// Ignores SIGPIPE for the whole process (idempotent).
void uthreads_ignore_sigpipe(void);
/// Blocks the `count` signals in `signals` in the calling kernel thread (threads it starts
/// later inherit the mask) and returns signalfd(-1, those, SFD_NONBLOCK | SFD_CLOEXEC).
int uthreads_signalfd_open(const int *_Nonnull signals, int count);
/// The bytes one signalfd read returns per signal (sizeof(struct signalfd_siginfo)).
enum { UTHREADS_SIGNALFD_INFO_SIZE = 128 };

/// Constants Swift imports as enums or not at all.
enum {
    UTHREADS_SOCK_STREAM = 1,
    UTHREADS_SOCK_DGRAM = 2,
    UTHREADS_MSG_NOSIGNAL = 0x4000,
    UTHREADS_MSG_DONTWAIT = 0x40,
};

#ifdef __cplusplus
}
#endif
#endif
