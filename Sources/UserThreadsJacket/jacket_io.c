// jacket_io.c — read, write, readv, writev and the socket send/receive calls (essay: jacket_core.c).
#include "jacket_internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/stat.h>

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

/// readv as the caller sees it on a descriptor it may have left blocking.
static ssize_t jacket_readv(int fd, const struct iovec *iov, int count, int kind) {
    jacket_wait wait = {0, 0};
    while (1) {
        ssize_t n = REAL(preadv2)(fd, iov, count, -1, RWF_NOWAIT);
        if (n >= 0) return n;
        int e = errno;
        if (e == EOPNOTSUPP || e == EINVAL) {  // no per-call non-blocking read here: poll first
            e = jacket_wait_ready(fd, UTHREADS_JACKET_READ, kind, &wait);
            if (e == JACKET_REAL_CALL) return REAL(readv)(fd, iov, count);
        } else if (e == EAGAIN) {
            e = jacket_block(fd, UTHREADS_JACKET_READ, kind, &wait);
            if (e == JACKET_REAL_CALL) return REAL(readv)(fd, iov, count);
            if (e == 0) continue;
        } else {
            return -1;  // errno as the call set it (EINTR too, as the real call)
        }
        if (e != 0) { errno = e; return -1; }
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

/// writev as the caller sees it: on a blocking descriptor, everything is written (parking as
/// often as needed), as the real call does on a pipe or stream socket.
static ssize_t jacket_writev(int fd, const struct iovec *original, int count, int kind) {
    if (count <= 0 || count > 1024 /* IOV_MAX on Linux */) return REAL(writev)(fd, original, count);
    struct iovec small[8];
    struct iovec *copy = count <= 8 ? small : malloc(sizeof(struct iovec) * (size_t)count);
    if (!copy) return REAL(writev)(fd, original, count);
    memcpy(copy, original, sizeof(struct iovec) * (size_t)count);
    struct iovec *iov = copy;
    jacket_wait wait = {0, 0};
    ssize_t total = 0;
    int e = 0;
    while (count > 0) {
        ssize_t n = REAL(pwritev2)(fd, iov, count, -1, RWF_NOWAIT);
        if (n >= 0) {
            total += n;
            count = jacket_iov_advance(&iov, count, (size_t)n);
            if (n == 0) break;
            continue;
        }
        e = errno;
        if (e == EOPNOTSUPP || e == EINVAL) {
            e = jacket_wait_ready(fd, UTHREADS_JACKET_WRITE, kind, &wait);
        } else if (e == EAGAIN) {
            e = jacket_block(fd, UTHREADS_JACKET_WRITE, kind, &wait);
        }
        if (e == 0) continue;
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

ssize_t read(int fd, void *buffer, size_t count) {
    if (!jacket_on_user_thread()) return REAL(read)(fd, buffer, count);
    struct iovec v = {buffer, count};
    return jacket_readv(fd, &v, 1, UTHREADS_JACKET_KIND_READ);
}

ssize_t readv(int fd, const struct iovec *iov, int count) {
    if (!jacket_on_user_thread()) return REAL(readv)(fd, iov, count);
    return jacket_readv(fd, iov, count, UTHREADS_JACKET_KIND_READ);
}

ssize_t write(int fd, const void *buffer, size_t count) {
    if (!jacket_on_user_thread()) return REAL(write)(fd, buffer, count);
    struct iovec v = {(void *)buffer, count};
    return jacket_writev(fd, &v, 1, UTHREADS_JACKET_KIND_WRITE);
}

ssize_t writev(int fd, const struct iovec *iov, int count) {
    if (!jacket_on_user_thread()) return REAL(writev)(fd, iov, count);
    return jacket_writev(fd, iov, count, UTHREADS_JACKET_KIND_WRITE);
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
    if (!jacket_on_user_thread() || (flags & MSG_DONTWAIT)) return REAL(recv)(fd, buffer, length, flags);
    if ((flags & MSG_WAITALL) && !(flags & MSG_PEEK)) return jacket_recv_all(fd, buffer, length, flags);
    JACKET_RECEIVE(REAL(recv)(fd, buffer, length, f))
}

ssize_t recvfrom(int fd, void *buffer, size_t length, int flags, struct sockaddr *address, socklen_t *address_length) {
    if (!jacket_on_user_thread() || (flags & MSG_DONTWAIT)) return REAL(recvfrom)(fd, buffer, length, flags, address, address_length);
    if ((flags & MSG_WAITALL) && !(flags & MSG_PEEK) && !address) return jacket_recv_all(fd, buffer, length, flags);
    JACKET_RECEIVE(REAL(recvfrom)(fd, buffer, length, f, address, address_length))
}

ssize_t recvmsg(int fd, struct msghdr *message, int flags) {
    if (!jacket_on_user_thread() || (flags & MSG_DONTWAIT)) return REAL(recvmsg)(fd, message, flags);
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
    if (!jacket_on_user_thread() || (flags & MSG_DONTWAIT)) return REAL(send)(fd, buffer, length, flags);
    return jacket_send(fd, buffer, length, flags, NULL, 0);
}

ssize_t sendto(int fd, const void *buffer, size_t length, int flags, const struct sockaddr *address, socklen_t address_length) {
    if (!jacket_on_user_thread() || (flags & MSG_DONTWAIT)) return REAL(sendto)(fd, buffer, length, flags, address, address_length);
    return jacket_send(fd, buffer, length, flags, address, address_length);
}

ssize_t sendmsg(int fd, const struct msghdr *message, int flags) {
    if (!jacket_on_user_thread() || (flags & MSG_DONTWAIT)) return REAL(sendmsg)(fd, message, flags);
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
