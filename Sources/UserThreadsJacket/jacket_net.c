// jacket_net.c — accept, accept4, connect, close and getaddrinfo (essay: jacket_core.c).
#include "jacket_internal.h"

#include <fcntl.h>

/// accept4 that parks while no connection is pending. On a listener the jacket made
/// non-blocking (or the caller did) the call itself says EAGAIN; on another there is no
/// per-call non-blocking accept, so a zero-timeout poll goes first (another process accepting
/// the same connection between the poll and the call makes the call block, as it would
/// without the jacket).
static int jacket_accept(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    unsigned state = jacket_fd_touch(fd);
    jacket_wait wait = {0, 0};
    while (1) {
        if (state & JACKET_FD_NONBLOCKING) {
            int connection = REAL(accept4)(fd, address, length, flags);
            if (connection >= 0 || (state & JACKET_FD_CALLER_NONBLOCKING) || errno != EAGAIN) return connection;
        } else {
            struct pollfd p = {fd, POLLIN, 0};
            if (REAL(poll)(&p, 1, 0) != 0) return REAL(accept4)(fd, address, length, flags);  // ready, or an error accept reports
        }
        int e = jacket_block(fd, UTHREADS_JACKET_READ, UTHREADS_JACKET_KIND_ACCEPT, &wait);
        if (e == 0) continue;
        if (e == JACKET_REAL_CALL) return REAL(accept4)(fd, address, length, flags);
        errno = e;
        return -1;
    }
}

/// Records an accepted connection (a descriptor created here) and returns it.
static int jacket_accepted(int connection, int flags) {
    if (connection >= 0) jacket_fd_created(connection, flags & SOCK_NONBLOCK);
    return connection;
}

int accept(int fd, struct sockaddr *address, socklen_t *length) {
    if (JACKET_PASS(fd)) return jacket_accepted(REAL(accept)(fd, address, length), 0);
    return jacket_accepted(jacket_accept(fd, address, length, 0), 0);
}

int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    if (JACKET_PASS(fd)) return jacket_accepted(REAL(accept4)(fd, address, length, flags), flags);
    return jacket_accepted(jacket_accept(fd, address, length, flags), flags);
}

/// connect on a blocking socket, then parks until the socket is writable. A socket created
/// here is made non-blocking for good (adopted); on another, connect is the one call that sets
/// O_NONBLOCK for a moment (a connect in progress cannot be re-issued as a blocking one).
/// SO_SNDTIMEO bounds it (then EINPROGRESS, as Linux's blocking connect reports a timeout).
int connect(int fd, const struct sockaddr *address, socklen_t length) {
    if (JACKET_PASS(fd)) return REAL(connect)(fd, address, length);
    unsigned state = jacket_fd_touch(fd);
    int rc, e;
    if (state & JACKET_FD_NONBLOCKING) {
        rc = REAL(connect)(fd, address, length);
        if (state & JACKET_FD_CALLER_NONBLOCKING) return rc;
        e = errno;
    } else {
        int flags = REAL(fcntl)(fd, F_GETFL);
        if (flags < 0 || (flags & O_NONBLOCK)) return REAL(connect)(fd, address, length);
        if (REAL(fcntl)(fd, F_SETFL, flags | O_NONBLOCK) < 0) return REAL(connect)(fd, address, length);
        rc = REAL(connect)(fd, address, length);
        e = errno;
        REAL(fcntl)(fd, F_SETFL, flags);
    }
    if (rc == 0 || (e != EINPROGRESS && e != EAGAIN)) { errno = e; return rc; }
    jacket_wait wait = {0, 0};
    while (1) {
        struct pollfd p = {fd, POLLOUT, 0};
        if (REAL(poll)(&p, 1, 0) > 0) {
            int error = 0;
            socklen_t size = sizeof error;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) < 0) return -1;
            if (error == 0 && e == EAGAIN) return REAL(connect)(fd, address, length);  // Unix socket: room now
            if (error == 0) return 0;
            errno = error;
            return -1;
        }
        int w = jacket_block(fd, UTHREADS_JACKET_WRITE, UTHREADS_JACKET_KIND_CONNECT, &wait);
        if (w == 0) continue;
        if (w == JACKET_REAL_CALL) w = EINPROGRESS;  // cannot happen on a socket; report in progress
        errno = w == EAGAIN ? EINPROGRESS : w;       // SO_SNDTIMEO passed
        return -1;
    }
}

/// close on a user thread is the runtime's close: it wakes the waiters of `fd` on every M:N
/// worker before the file goes (the kernel drops a closed file from other epoll sets silently)
/// and calls close(2) itself, as the last watcher.
int close(int fd) {
    jacket_forget_descriptor(fd);
    if (jacket_on_user_thread()) {
        int e = jacket_runtime->closing(fd);
        if (e == 0) return 0;
        if (e > 0) { errno = e; return -1; }
    }
    return REAL(close)(fd);
}

// MARK: - Name resolution on the offload pool

typedef struct jacket_resolution {
    const char *node;
    const char *service;
    const struct addrinfo *hints;
    struct addrinfo **result;
    int rc;
    int error;
} jacket_resolution;

static void jacket_resolve_now(void *context) {
    jacket_resolution *r = context;
    r->rc = REAL(getaddrinfo)(r->node, r->service, r->hints, r->result);
    r->error = errno;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **result) {
    if (!jacket_on_user_thread() || (hints && (hints->ai_flags & AI_NUMERICHOST)))
        return REAL(getaddrinfo)(node, service, hints, result);
    jacket_resolution r = {node, service, hints, result, EAI_SYSTEM, 0};
    if (jacket_runtime->offload(jacket_resolve_now, &r) != 0) return REAL(getaddrinfo)(node, service, hints, result);
    errno = r.error;
    return r.rc;
}
