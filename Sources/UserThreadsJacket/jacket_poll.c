// jacket_poll.c — poll, ppoll, select, pselect, epoll_wait, epoll_pwait (essay: jacket_core.c).
//
// Each: the real call with a zero timeout; if nothing is ready, park until something may be
// (or the timeout), and ask again. The caller's arrays are only written by real calls.
#include "jacket_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

int jacket_park_any(const struct pollfd *fds, nfds_t n, uint64_t deadline, const jacket_signal_watch *watch) {
    nfds_t active = 0, last = 0;
    for (nfds_t i = 0; i < n; i++) {
        if (fds[i].fd >= 0 && fds[i].events) { active++; last = i; }
    }
    if (active == 0) return jacket_park_time(deadline, watch);  // nothing to wait for but the time (poll(NULL, 0, ms): a sleep)
    const short in = POLLIN | POLLPRI | POLLRDNORM | POLLRDBAND, out = POLLOUT | POLLWRNORM | POLLWRBAND;
    short events = fds[last].events;
    if (active == 1 && (!(events & out) || !(events & in))) {  // one descriptor, one direction: park on it
        int direction = (events & out) ? UTHREADS_JACKET_WRITE : UTHREADS_JACKET_READ;
        return jacket_park_fd(fds[last].fd, direction, UTHREADS_JACKET_KIND_POLL, deadline, watch);
    }
    // Several: a temporary epoll set, level-triggered, which the reactor waits on as one descriptor.
    int set = epoll_create1(EPOLL_CLOEXEC);
    if (set < 0) return errno;
    for (nfds_t i = 0; i < n; i++) {
        if (fds[i].fd < 0 || !fds[i].events) continue;
        struct epoll_event ev = {.events = (uint32_t)(unsigned short)fds[i].events, .data.fd = fds[i].fd};
        if (epoll_ctl(set, EPOLL_CTL_ADD, fds[i].fd, &ev) < 0 && errno == EEXIST) {
            for (nfds_t j = 0; j < i; j++) {
                if (fds[j].fd == fds[i].fd) ev.events |= (uint32_t)(unsigned short)fds[j].events;
            }
            epoll_ctl(set, EPOLL_CTL_MOD, fds[i].fd, &ev);
        }  // EPERM (a regular file) cannot happen: poll reported it ready already
    }
    int e = jacket_park_set(set, -1, UTHREADS_JACKET_KIND_POLL, deadline, watch);
    if (jacket_runtime->closing(set) < 0) REAL(close)(set);  // the runtime closes it on a user thread
    return e;
}

/// The loop shared by poll and ppoll.
static int jacket_poll(struct pollfd *fds, nfds_t n, uint64_t deadline, const sigset_t *mask) {
    static const struct timespec zero = {0, 0};
    jacket_signal_watch watch;  // never restarted (signal(7)); the mask says which signals may interrupt
    jacket_signal_watch_begin(&watch, mask, 0);
    while (1) {
        int r = mask ? REAL(ppoll)(fds, n, &zero, mask) : REAL(poll)(fds, n, 0);
        if (r != 0) return r;
        int e = jacket_park_any(fds, n, deadline, &watch);
        if (e == ETIMEDOUT) return mask ? REAL(ppoll)(fds, n, &zero, mask) : REAL(poll)(fds, n, 0);
        if (e == EPERM) return mask ? REAL(ppoll)(fds, n, NULL, mask) : REAL(poll)(fds, n, -1);  // cannot park
        if (e != 0) { errno = e; return -1; }
    }
}

int poll(struct pollfd *fds, nfds_t n, int timeout) {
    if (timeout == 0 || !jacket_on_user_thread()) return REAL(poll)(fds, n, timeout);
    uint64_t deadline = timeout < 0 ? UTHREADS_JACKET_FOREVER : jacket_deadline_after((uint64_t)timeout * 1000000ull);
    return jacket_poll(fds, n, deadline, NULL);
}

int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *timeout, const sigset_t *mask) {
    if (!jacket_on_user_thread()) return REAL(ppoll)(fds, n, timeout, mask);
    int64_t ns = timeout ? jacket_timespec_ns(timeout) : -1;
    if (timeout && ns <= 0) return REAL(ppoll)(fds, n, timeout, mask);  // zero, or EINVAL from the real call
    uint64_t deadline = ns < 0 ? UTHREADS_JACKET_FOREVER : jacket_deadline_after((uint64_t)ns);
    return jacket_poll(fds, n, deadline, mask);  // without a mask, ppoll is poll
}

// MARK: - select and pselect: through poll's park

/// The loop shared by select and pselect (without a mask, pselect is select). `ns` < 0: no timeout.
static int jacket_select(int nfds, fd_set *r, fd_set *w, fd_set *x, int64_t ns, const sigset_t *mask, struct timeval *tv) {
    fd_set r0, w0, x0;
    if (r) r0 = *r;
    if (w) w0 = *w;
    if (x) x0 = *x;
    uint64_t deadline = ns < 0 ? UTHREADS_JACKET_FOREVER : jacket_deadline_after((uint64_t)ns);
    struct pollfd *fds = NULL;
    nfds_t n = 0;
    jacket_signal_watch watch;
    jacket_signal_watch_begin(&watch, mask, 0);
    while (1) {
        if (r) *r = r0;
        if (w) *w = w0;
        if (x) *x = x0;
        struct timespec zero = {0, 0};
        struct timeval zerotv = {0, 0};
        int rc = mask ? REAL(pselect)(nfds, r, w, x, &zero, mask) : REAL(select)(nfds, r, w, x, &zerotv);
        if (rc != 0) { free(fds); return rc; }
        if (!fds) {
            fds = calloc((size_t)nfds + 1, sizeof *fds);
            if (!fds) { errno = ENOMEM; return -1; }
            for (int fd = 0; fd < nfds; fd++) {
                short events = (short)((r && FD_ISSET(fd, &r0) ? POLLIN : 0) | (w && FD_ISSET(fd, &w0) ? POLLOUT : 0) |
                                       (x && FD_ISSET(fd, &x0) ? POLLPRI : 0));
                if (events) fds[n++] = (struct pollfd){fd, events, 0};
            }
        }
        int e = jacket_park_any(fds, n, deadline, &watch);
        if (e == 0) continue;
        free(fds);
        if (e == EPERM) {  // cannot park on these: the real call, blocking the kernel thread
            if (r) *r = r0;
            if (w) *w = w0;
            if (x) *x = x0;
            return mask ? REAL(pselect)(nfds, r, w, x, NULL, mask) : REAL(select)(nfds, r, w, x, NULL);
        }
        if (e == ETIMEDOUT) {
            if (r) FD_ZERO(r);
            if (w) FD_ZERO(w);
            if (x) FD_ZERO(x);
            if (tv) *tv = (struct timeval){0, 0};
            return 0;
        }
        errno = e;
        return -1;
    }
}

int select(int nfds, fd_set *r, fd_set *w, fd_set *x, struct timeval *timeout) {
    if (!jacket_on_user_thread() || nfds < 0 || nfds > FD_SETSIZE) return REAL(select)(nfds, r, w, x, timeout);
    int64_t ns = -1;
    if (timeout) {
        if (timeout->tv_sec < 0 || timeout->tv_usec < 0) return REAL(select)(nfds, r, w, x, timeout);  // EINVAL
        // As the kernel does: tv_usec may exceed a second, and a huge timeout saturates (the
        // product must not wrap: 20211507185753197 s would wrap to a 512 ns timeout).
        struct timespec t = {timeout->tv_sec, 0};
        if (timeout->tv_sec > (INT64_MAX - 999999999L) / 1000000000L - timeout->tv_usec / 1000000) {
            t.tv_sec = INT64_MAX / 1000000000L;
        } else {
            t.tv_sec += timeout->tv_usec / 1000000;
            t.tv_nsec = (timeout->tv_usec % 1000000) * 1000L;
        }
        ns = jacket_timespec_ns(&t);
        if (ns == 0) return REAL(select)(nfds, r, w, x, timeout);
    }
    return jacket_select(nfds, r, w, x, ns, NULL, timeout);
}

int pselect(int nfds, fd_set *r, fd_set *w, fd_set *x, const struct timespec *timeout, const sigset_t *mask) {
    if (!jacket_on_user_thread() || nfds < 0 || nfds > FD_SETSIZE) return REAL(pselect)(nfds, r, w, x, timeout, mask);
    int64_t ns = timeout ? jacket_timespec_ns(timeout) : -1;
    if (timeout && ns <= 0) return REAL(pselect)(nfds, r, w, x, timeout, mask);
    return jacket_select(nfds, r, w, x, ns, mask, NULL);
}

// MARK: - epoll_wait: the caller's epoll set is itself pollable

static int jacket_epoll_wait(int set, struct epoll_event *events, int max, int timeout, const sigset_t *mask) {
    uint64_t deadline = timeout < 0 ? UTHREADS_JACKET_FOREVER : jacket_deadline_after((uint64_t)timeout * 1000000ull);
    jacket_signal_watch watch;
    jacket_signal_watch_begin(&watch, mask, 0);
    while (1) {
        int r = mask ? REAL(epoll_pwait)(set, events, max, 0, mask) : REAL(epoll_wait)(set, events, max, 0);
        if (r != 0) return r;
        int e = jacket_park_fd(set, UTHREADS_JACKET_READ, UTHREADS_JACKET_KIND_POLL, deadline, &watch);
        if (e == 0) continue;
        if (e == ETIMEDOUT) return mask ? REAL(epoll_pwait)(set, events, max, 0, mask) : REAL(epoll_wait)(set, events, max, 0);
        errno = e;
        return -1;
    }
}

int epoll_wait(int set, struct epoll_event *events, int max, int timeout) {
    if (timeout == 0 || !jacket_on_user_thread()) return REAL(epoll_wait)(set, events, max, timeout);
    return jacket_epoll_wait(set, events, max, timeout, NULL);
}

int epoll_pwait(int set, struct epoll_event *events, int max, int timeout, const sigset_t *mask) {
    if (timeout == 0 || !jacket_on_user_thread()) return REAL(epoll_pwait)(set, events, max, timeout, mask);
    return jacket_epoll_wait(set, events, max, timeout, mask);
}
