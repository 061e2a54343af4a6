// jacket_io.c — read, write, readv, writev and the socket send/receive calls (essay: jacket_core.c).
#include "jacket_internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/syscall.h>

enum { JACKET_PREADV2 = SYS_preadv2, JACKET_PWRITEV2 = SYS_pwritev2 };

/// preadv2/pwritev2(fd, iov, count, -1 (the file position), RWF_NOWAIT). On x86-64 the system
/// call itself: the C library's wrappers are cancellation points and cost ~24 instructions
/// more than read's (callgrind), a third of what the jacket added to a call that does not block.
static inline ssize_t jacket_nowait(long call, int fd, const struct iovec *iov, int count) {
#if defined(__x86_64__)
    long ret;
    register long position_low __asm__("r10") = -1;
    register long position_high __asm__("r8") = -1;
    register long flags __asm__("r9") = RWF_NOWAIT;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"(call), "D"((long)fd), "S"(iov), "d"((long)count), "r"(position_low), "r"(position_high), "r"(flags)
                     : "rcx", "r11", "memory");
    if (__builtin_expect(ret < 0 && ret > -4096, 0)) {
        errno = (int)-ret;
        return -1;
    }
    return ret;
#else
    return call == JACKET_PREADV2 ? REAL(preadv2)(fd, iov, count, -1, RWF_NOWAIT) : REAL(pwritev2)(fd, iov, count, -1, RWF_NOWAIT);
#endif
}

/// For a descriptor without RWF_NOWAIT support (EOPNOTSUPP): 0 when a zero-timeout poll says
/// it is ready for `direction` (or poll cannot tell), else the result of parking on it.
static int jacket_wait_ready(int fd, int direction, int kind, jacket_wait *wait) {
    while (1) {
        struct pollfd p = {fd, (short)(direction == UTHREADS_JACKET_WRITE ? POLLOUT : POLLIN), 0};
        if (REAL(poll)(&p, 1, 0) != 0) return JACKET_REAL_CALL;
        int e = jacket_block(fd, direction, kind, wait);
        if (e != 0) return e;
    }
}

/// readv as the caller sees it on a descriptor it may have left blocking, after a first
/// non-blocking attempt that returned `n` (the fast path made it inline).
static ssize_t jacket_readv_from(int fd, const struct iovec *iov, int count, int kind, ssize_t n) {
    jacket_wait wait = {0, 0};
    while (1) {
        if (n >= 0) return n;
        int e = errno;
        if (e == EOPNOTSUPP || e == EINVAL) {  // no per-call non-blocking read here: poll first
            e = jacket_wait_ready(fd, UTHREADS_JACKET_READ, kind, &wait);
            if (e == JACKET_REAL_CALL) return REAL(readv)(fd, iov, count);
        } else if (e == EAGAIN) {
            e = jacket_block(fd, UTHREADS_JACKET_READ, kind, &wait);
            if (e == JACKET_REAL_CALL) return REAL(readv)(fd, iov, count);
        } else {
            jacket_fd_failed(fd, e);
            return -1;  // errno as the call set it (EINTR too, as the real call)
        }
        if (e != 0) { errno = e; return -1; }
        n = jacket_nowait(JACKET_PREADV2, fd, iov, count);
    }
}

/// Moves `*iov` past `n` bytes; returns the remaining count of entries.
static int jacket_iov_advance(struct iovec **iov, int count, size_t n) {
    while (count > 0 && n >= (*iov)->iov_len) {
        n -= (*iov)->iov_len;
        (*iov)++;
        count--;
    }
    if (count > 0) {
        (*iov)->iov_base = (char *)(*iov)->iov_base + n;
        (*iov)->iov_len -= n;
    }
    return count;
}

/// writev as the caller sees it, after a first non-blocking attempt that returned `n` (the
/// fast path made it inline): on a blocking descriptor everything is written (parking as often
/// as needed), as the real call does on a pipe or stream socket.
static ssize_t jacket_writev_from(int fd, const struct iovec *original, int count, int kind, ssize_t n) {
    if (count <= 0 || count > 1024 /* IOV_MAX on Linux */) return n;
    struct iovec small[8];
    struct iovec *copy = count <= 8 ? small : malloc(sizeof(struct iovec) * (size_t)count);
    if (!copy) return n;
    memcpy(copy, original, sizeof(struct iovec) * (size_t)count);
    struct iovec *iov = copy;
    jacket_wait wait = {0, 0};
    ssize_t total = 0;
    int e = 0;
    while (count > 0) {
        if (n >= 0) {
            total += n;
            count = jacket_iov_advance(&iov, count, (size_t)n);
            if (n == 0 || count == 0) break;
            n = jacket_nowait(JACKET_PWRITEV2, fd, iov, count);
            continue;
        }
        e = errno;
        if (e == EOPNOTSUPP || e == EINVAL) {
            e = jacket_wait_ready(fd, UTHREADS_JACKET_WRITE, kind, &wait);
        } else if (e == EAGAIN) {
            e = jacket_block(fd, UTHREADS_JACKET_WRITE, kind, &wait);
        } else {
            jacket_fd_failed(fd, e);
        }
        if (e == 0) {
            n = jacket_nowait(JACKET_PWRITEV2, fd, iov, count);
            continue;
        }
        if (e == JACKET_REAL_CALL) {
            if (total > 0) break;  // the short count, as a non-blocking descriptor gives
            total = REAL(writev)(fd, iov, count);
            e = errno;
        } else if (total == 0) {
            total = -1;
        }
        break;
    }
    if (copy != small) free(copy);
    if (total < 0) errno = e;
    return total;
}

/// The total length of `iov` (for the fast path's "all written" test).
static inline size_t jacket_iov_length(const struct iovec *iov, int count) {
    size_t n = 0;
    for (int i = 0; i < count; i++) n += iov[i].iov_len;
    return n;
}

// The fast paths: one non-blocking attempt inline; the loops above only when it did not
// complete (would block, short write, or no RWF_NOWAIT support).

// Descriptors known not to be regular files carry JACKET_FD_NOT_REGULAR in their record
// (jacket_fd.c), cleared by the jacket's close. A stale bit (a number reused behind the
// jacket's back) then costs at most a short count, which read may return anyway.

/// A short non-blocking read: from a regular file, RWF_NOWAIT stops at the first byte not in
/// the page cache, where the real read would have read on from disk: do that (the kernel
/// thread blocks, as it would without the jacket). Pipes and sockets keep their short count.
static ssize_t jacket_short_read(int fd, char *buffer, size_t count, ssize_t n) {
    if (jacket_fd_state(fd) & JACKET_FD_NOT_REGULAR) return n;
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        ssize_t rest = REAL(read)(fd, buffer + n, count - (size_t)n);
        return rest > 0 ? n + rest : n;
    }
    if ((unsigned)fd < JACKET_FD_LIMIT) __atomic_fetch_or(&jacket_fd_table[fd], JACKET_FD_NOT_REGULAR, __ATOMIC_RELAXED);
    return n;
}

// The fast path of read and write on a user thread, on a file known non-blocking (the jacket
// made it so, or the caller did): the system call itself, inline, with no stack frame — the
// C library's wrappers are cancellation points (~7 instructions more each, callgrind), and a
// call through one would need a frame to look at its result. Everything else is out of line.

/// read(2) or write(2) itself: the result, or -errno (errno untouched).
static inline __attribute__((always_inline)) ssize_t jacket_sys(long call, int fd, const void *buffer, size_t count) {
#if defined(__x86_64__)
    long ret;
    __asm__ volatile("syscall" : "=a"(ret) : "0"(call), "D"((long)fd), "S"(buffer), "d"(count) : "rcx", "r11", "memory");
    return ret;
#else
    ssize_t n = call == SYS_read ? REAL(read)(fd, (void *)buffer, count) : REAL(write)(fd, buffer, count);
    return n < 0 ? -errno : n;
#endif
}

/// A read of a non-blocking file that failed with `-error`: EAGAIN parks (and retries) unless
/// the caller made the file non-blocking; anything else is the real call's failure.
__attribute__((noinline)) static ssize_t jacket_read_failed(int fd, void *buffer, size_t count, ssize_t error) {
    errno = (int)-error;
    jacket_fd_failed(fd, errno);
    if (error != -EAGAIN || (jacket_fd_state(fd) & JACKET_FD_CALLER_NONBLOCKING)) return -1;
    struct iovec v = {buffer, count};
    return jacket_readv_from(fd, &v, 1, UTHREADS_JACKET_KIND_READ, -1);
}

/// A write of a non-blocking file that returned `n` < `count` (or -errno): on a file its caller
/// sees blocking, the rest is written, parking as often as needed, as the real call would.
__attribute__((noinline)) static ssize_t jacket_write_rest(int fd, const void *buffer, size_t count, ssize_t n) {
    int caller_nonblocking = jacket_fd_state(fd) & JACKET_FD_CALLER_NONBLOCKING;
    if (n < 0) {
        errno = (int)-n;
        jacket_fd_failed(fd, errno);
        if (n != -EAGAIN || caller_nonblocking) return -1;
        n = -1;
    } else if (caller_nonblocking) {
        return n;
    }
    struct iovec v = {(void *)buffer, count};
    return jacket_writev_from(fd, &v, 1, UTHREADS_JACKET_KIND_WRITE, n);
}

static inline __attribute__((always_inline)) ssize_t jacket_read_nonblocking(int fd, void *buffer, size_t count) {
    ssize_t n = jacket_sys(SYS_read, fd, buffer, count);
    if (__builtin_expect(n >= 0, 1)) return n;
    return jacket_read_failed(fd, buffer, count, n);
}

static inline __attribute__((always_inline)) ssize_t jacket_write_nonblocking(int fd, const void *buffer, size_t count) {
    ssize_t n = jacket_sys(SYS_write, fd, buffer, count);
    if (__builtin_expect(n == (ssize_t)count, 1)) return n;
    return jacket_write_rest(fd, buffer, count, n);
}

/// read on a user thread, for a file not (yet) known non-blocking: adopted now if this process
/// created it, else the per-call non-blocking attempt.
__attribute__((noinline)) static ssize_t jacket_read(int fd, void *buffer, size_t count) {
    if (jacket_fd_touch(fd) & JACKET_FD_NONBLOCKING) return jacket_read_nonblocking(fd, buffer, count);
    struct iovec v = {buffer, count};
    ssize_t n = jacket_nowait(JACKET_PREADV2, fd, &v, 1);
    if (__builtin_expect(n >= 0, 1)) return n == 0 || (size_t)n == count ? n : jacket_short_read(fd, buffer, count, n);
    return jacket_readv_from(fd, &v, 1, UTHREADS_JACKET_KIND_READ, n);
}

ssize_t readv(int fd, const struct iovec *iov, int count) {
    if (JACKET_PASS(fd)) return REAL(readv)(fd, iov, count);
    unsigned state = jacket_fd_touch(fd);
    if (state & JACKET_FD_NONBLOCKING) {
        ssize_t n = REAL(readv)(fd, iov, count);
        if (n >= 0) return n;
        if ((state & JACKET_FD_CALLER_NONBLOCKING) || errno != EAGAIN) {
            jacket_fd_failed(fd, errno);
            return n;
        }
        return jacket_readv_from(fd, iov, count, UTHREADS_JACKET_KIND_READ, n);
    }
    return jacket_readv_from(fd, iov, count, UTHREADS_JACKET_KIND_READ, jacket_nowait(JACKET_PREADV2, fd, iov, count));
}

/// write on a user thread, for a file not (yet) known non-blocking (as jacket_read).
__attribute__((noinline)) static ssize_t jacket_write(int fd, const void *buffer, size_t count) {
    if (jacket_fd_touch(fd) & JACKET_FD_NONBLOCKING) return jacket_write_nonblocking(fd, buffer, count);
    struct iovec v = {(void *)buffer, count};
    ssize_t n = jacket_nowait(JACKET_PWRITEV2, fd, &v, 1);
    if (__builtin_expect(n == (ssize_t)count, 1)) return n;
    return jacket_writev_from(fd, &v, 1, UTHREADS_JACKET_KIND_WRITE, n);
}

ssize_t read(int fd, void *buffer, size_t count) {
    if (JACKET_PASS(fd)) return REAL(read)(fd, buffer, count);
    if (__builtin_expect(jacket_fd_state(fd) & JACKET_FD_NONBLOCKING, 1)) return jacket_read_nonblocking(fd, buffer, count);
    return jacket_read(fd, buffer, count);
}

ssize_t write(int fd, const void *buffer, size_t count) {
    if (JACKET_PASS(fd)) return REAL(write)(fd, buffer, count);
    if (__builtin_expect(jacket_fd_state(fd) & JACKET_FD_NONBLOCKING, 1)) return jacket_write_nonblocking(fd, buffer, count);
    return jacket_write(fd, buffer, count);
}

ssize_t writev(int fd, const struct iovec *iov, int count) {
    if (JACKET_PASS(fd)) return REAL(writev)(fd, iov, count);
    unsigned state = jacket_fd_touch(fd);
    ssize_t n;
    if (state & JACKET_FD_NONBLOCKING) {
        n = REAL(writev)(fd, iov, count);
        if (state & JACKET_FD_CALLER_NONBLOCKING) return n;
    } else {
        n = jacket_nowait(JACKET_PWRITEV2, fd, iov, count);
    }
    if (n >= 0 && (size_t)n == jacket_iov_length(iov, count)) return n;
    return jacket_writev_from(fd, iov, count, UTHREADS_JACKET_KIND_WRITE, n);
}

// MARK: - Sockets: the same call with MSG_DONTWAIT

/// The receive calls' shape: the real call with MSG_DONTWAIT added (`f`), parking on EAGAIN.
#define JACKET_RECEIVE(call_expr_with_flags)                                    \
    jacket_wait wait = {0, 0};                                                             \
    while (1) {                                                                            \
        int f = flags | MSG_DONTWAIT;                                                      \
        ssize_t n = call_expr_with_flags;                                                  \
        if (n >= 0) return n;                                                              \
        if (errno != EAGAIN) return -1;                                                    \
        int e = jacket_block(fd, UTHREADS_JACKET_READ, UTHREADS_JACKET_KIND_READ, &wait);   \
        if (e == 0) continue;                                                              \
        if (e == JACKET_REAL_CALL) { f = flags; return call_expr_with_flags; }             \
        errno = e;                                                                         \
        return -1;                                                                         \
    }

static ssize_t jacket_recv_all(int fd, char *buffer, size_t length, int flags) {
    size_t got = 0;
    jacket_wait wait = {0, 0};
    while (got < length) {
        ssize_t n = REAL(recv)(fd, buffer + got, length - got, (flags & ~MSG_WAITALL) | MSG_DONTWAIT);
        if (n > 0) { got += (size_t)n; continue; }
        if (n == 0) break;  // end of stream: the short count
        int e = errno;
        if (e == EAGAIN) {
            e = jacket_block(fd, UTHREADS_JACKET_READ, UTHREADS_JACKET_KIND_READ, &wait);
            if (e == 0) continue;
            if (e == JACKET_REAL_CALL) {
                n = REAL(recv)(fd, buffer + got, length - got, flags);
                if (n >= 0) return (ssize_t)got + n;
                e = errno;
            }
        }
        if (got > 0) break;
        errno = e;
        return -1;
    }
    return (ssize_t)got;
}

ssize_t recv(int fd, void *buffer, size_t length, int flags) {
    if (JACKET_PASS(fd) || (flags & MSG_DONTWAIT)) return REAL(recv)(fd, buffer, length, flags);
    if ((flags & MSG_WAITALL) && !(flags & MSG_PEEK)) return jacket_recv_all(fd, buffer, length, flags);
    JACKET_RECEIVE(REAL(recv)(fd, buffer, length, f))
}

ssize_t recvfrom(int fd, void *buffer, size_t length, int flags, struct sockaddr *address, socklen_t *address_length) {
    if (JACKET_PASS(fd) || (flags & MSG_DONTWAIT)) return REAL(recvfrom)(fd, buffer, length, flags, address, address_length);
    if ((flags & MSG_WAITALL) && !(flags & MSG_PEEK) && !address) return jacket_recv_all(fd, buffer, length, flags);
    JACKET_RECEIVE(REAL(recvfrom)(fd, buffer, length, f, address, address_length))
}

ssize_t recvmsg(int fd, struct msghdr *message, int flags) {
    if (JACKET_PASS(fd) || (flags & MSG_DONTWAIT)) return REAL(recvmsg)(fd, message, flags);
    JACKET_RECEIVE(REAL(recvmsg)(fd, message, f))
}

/// send/sendto on a blocking stream sends everything, as the real call does.
static ssize_t jacket_send(int fd, const char *buffer, size_t length, int flags,
                           const struct sockaddr *address, socklen_t address_length) {
    size_t sent = 0;
    jacket_wait wait = {0, 0};
    while (1) {
        ssize_t n = REAL(sendto)(fd, buffer + sent, length - sent, flags | MSG_DONTWAIT, address, address_length);
        if (n >= 0) {
            sent += (size_t)n;
            if (sent >= length || n == 0) return (ssize_t)sent;
            continue;
        }
        int e = errno;
        if (e == EAGAIN) {
            e = jacket_block(fd, UTHREADS_JACKET_WRITE, UTHREADS_JACKET_KIND_WRITE, &wait);
            if (e == 0) continue;
            if (e == JACKET_REAL_CALL) {
                if (sent > 0) return (ssize_t)sent;
                return REAL(sendto)(fd, buffer, length, flags, address, address_length);
            }
        }
        if (sent > 0) return (ssize_t)sent;
        errno = e;
        return -1;
    }
}

ssize_t send(int fd, const void *buffer, size_t length, int flags) {
    if (JACKET_PASS(fd) || (flags & MSG_DONTWAIT)) return REAL(send)(fd, buffer, length, flags);
    return jacket_send(fd, buffer, length, flags, NULL, 0);
}

ssize_t sendto(int fd, const void *buffer, size_t length, int flags, const struct sockaddr *address, socklen_t address_length) {
    if (JACKET_PASS(fd) || (flags & MSG_DONTWAIT)) return REAL(sendto)(fd, buffer, length, flags, address, address_length);
    return jacket_send(fd, buffer, length, flags, address, address_length);
}

ssize_t sendmsg(int fd, const struct msghdr *message, int flags) {
    if (JACKET_PASS(fd) || (flags & MSG_DONTWAIT)) return REAL(sendmsg)(fd, message, flags);
    jacket_wait wait = {0, 0};
    while (1) {
        ssize_t n = REAL(sendmsg)(fd, message, flags | MSG_DONTWAIT);
        if (n >= 0 || errno != EAGAIN) return n;  // a short count on a stream is returned as is
        int e = jacket_block(fd, UTHREADS_JACKET_WRITE, UTHREADS_JACKET_KIND_WRITE, &wait);
        if (e == 0) continue;
        if (e == JACKET_REAL_CALL) return REAL(sendmsg)(fd, message, flags);
        errno = e;
        return -1;
    }
}
