// jacket_fd.c — the jacket's record of each descriptor: whether this process created it, whether
// its file is non-blocking in the kernel, and whether the *caller* made it non-blocking; and
// the calls that keep the record true: socket, socketpair, pipe, pipe2, accept (jacket_net.c),
// dup, dup2, dup3, fcntl, ioctl(FIONBIO), close (jacket_net.c), fclose, close_range, fork,
// posix_spawn, system and popen; and open, openat, eventfd, timerfd_create, signalfd and
// inotify_init, whose new number drops a stale record. The design (which descriptors the jacket makes non-blocking, and why) is in
// the essay of jacket_core.c, under "Descriptor modes".
#include "jacket_internal.h"

#include <dlfcn.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

JACKET_HIDDEN uint8_t jacket_fd_table[JACKET_FD_LIMIT];
/// The file each adopted descriptor's record is about (st_dev and st_ino folded to 32 bits,
/// never 0), noted when the jacket made it non-blocking; 0: not known.
static uint32_t jacket_fd_identity[JACKET_FD_LIMIT];
/// One past the highest number ever recorded: how far fork's walk goes.
static int jacket_fd_end;

static int (*real_fcntl64)(int, int, ...);
static int (*real_ioctl)(int, unsigned long, ...);
static int (*real_socket)(int, int, int);
static int (*real_socketpair)(int, int, int, int[2]);
static int (*real_pipe)(int[2]);
static int (*real_pipe2)(int[2], int);
static int (*real_dup)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);
static int (*real_fclose)(FILE *);
static int (*real_close_range)(unsigned, unsigned, int);
static int (*real_system)(const char *);
static FILE *(*real_popen)(const char *, const char *);
static int (*real_posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
                               char *const[], char *const[]);
static int (*real_posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
                                char *const[], char *const[]);

static void jacket_fd_resolve_unowned(void);

#define RESOLVE_FD(pointer, name) \
    do { if (!pointer) pointer = (__typeof__(pointer))dlsym(RTLD_NEXT, name); } while (0)

void jacket_fd_resolve(void) {
    RESOLVE_FD(real_fcntl64, "fcntl64");
    if (!real_fcntl64) real_fcntl64 = jacket_real.fcntl;  // a C library without fcntl64
    RESOLVE_FD(real_ioctl, "ioctl");
    RESOLVE_FD(real_socket, "socket");
    RESOLVE_FD(real_socketpair, "socketpair");
    RESOLVE_FD(real_pipe, "pipe");
    RESOLVE_FD(real_pipe2, "pipe2");
    RESOLVE_FD(real_dup, "dup");
    RESOLVE_FD(real_dup2, "dup2");
    RESOLVE_FD(real_dup3, "dup3");
    RESOLVE_FD(real_fclose, "fclose");
    RESOLVE_FD(real_close_range, "close_range");
    RESOLVE_FD(real_posix_spawn, "posix_spawn");
    RESOLVE_FD(real_posix_spawnp, "posix_spawnp");
    RESOLVE_FD(real_system, "system");
    RESOLVE_FD(real_popen, "popen");
    jacket_fd_resolve_unowned();
}

/// The resolved pointer `p`, resolving first if a call comes before the jacket's constructor.
#define REAL_FD(p) (__builtin_expect(p != NULL, 1) ? p : (jacket_resolve(), p))

static void jacket_fd_store(int fd, unsigned state) {
    if ((unsigned)fd >= JACKET_FD_LIMIT) return;
    __atomic_store_n(&jacket_fd_table[fd], (uint8_t)state, __ATOMIC_RELAXED);
    if (state == 0) return;
    int end = __atomic_load_n(&jacket_fd_end, __ATOMIC_RELAXED);
    while (fd >= end && !__atomic_compare_exchange_n(&jacket_fd_end, &end, fd + 1, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

void jacket_forget_descriptor(int fd) { jacket_fd_store(fd, 0); }

/// The identity of `fd`'s file (jacket_fd_identity); 0 when fstat fails.
static uint32_t jacket_file_identity(int fd) {
    struct stat st;
    if (fstat(fd, &st) != 0) return 0;
    uint64_t folded = (uint64_t)st.st_ino ^ ((uint64_t)st.st_dev * UINT64_C(0x9e3779b97f4a7c15));
    return (uint32_t)(folded ^ (folded >> 32)) | 1;
}

static void jacket_fd_note_identity(int fd, uint32_t identity) {
    if ((unsigned)fd < JACKET_FD_LIMIT) __atomic_store_n(&jacket_fd_identity[fd], identity, __ATOMIC_RELAXED);
}

unsigned jacket_fd_verify(int fd) {
    unsigned state = jacket_fd_state(fd);
    if (!(state & JACKET_FD_NONBLOCKING)) return state;
    uint32_t noted = __atomic_load_n(&jacket_fd_identity[fd], __ATOMIC_RELAXED);
    if (noted == 0 || jacket_file_identity(fd) == noted) return state;
    jacket_forget_descriptor(fd);  // another file under the number: the per-call path serves it
    return 0;
}

void jacket_fd_created(int fd, int nonblocking) {
    // A descriptor born non-blocking is the caller's own non-blocking one (the runtime's
    // sockets, pipes and accepted connections are): the real calls already do what it expects,
    // so it is not recorded at all, and a stale record under its number goes.
    jacket_fd_store(fd, nonblocking ? 0 : JACKET_FD_OURS);
}

unsigned jacket_fd_adopt(int fd) {
    int flags = REAL(fcntl)(fd, F_GETFL);
    unsigned state = JACKET_FD_OURS | JACKET_FD_NONBLOCKING;
    // Already non-blocking: a duplicate of this file was adopted first (the caller's changes
    // go through fcntl/ioctl, which record them), so the caller's view stays blocking.
    if (flags < 0 || (!(flags & O_NONBLOCK) && REAL(fcntl)(fd, F_SETFL, flags | O_NONBLOCK) < 0)) {
        jacket_fd_store(fd, 0);  // not a file the jacket can own (closed behind its back?): the per-call path
        return 0;
    }
    jacket_fd_note_identity(fd, jacket_file_identity(fd));
    jacket_fd_store(fd, state);
    return state;
}

unsigned jacket_fd_copy(int from, int to) {
    unsigned state = jacket_fd_state(from) & ~(unsigned)JACKET_FD_NOT_REGULAR;
    if ((unsigned)from < JACKET_FD_LIMIT) jacket_fd_note_identity(to, __atomic_load_n(&jacket_fd_identity[from], __ATOMIC_RELAXED));
    jacket_fd_store(to, state);
    return state;
}

// MARK: - Creation

int socket(int domain, int type, int protocol) {
    int fd = REAL_FD(real_socket)(domain, type, protocol);
    if (fd >= 0) jacket_fd_created(fd, type & SOCK_NONBLOCK);
    return fd;
}

int socketpair(int domain, int type, int protocol, int fds[2]) {
    int rc = REAL_FD(real_socketpair)(domain, type, protocol, fds);
    if (rc == 0) {
        jacket_fd_created(fds[0], type & SOCK_NONBLOCK);
        jacket_fd_created(fds[1], type & SOCK_NONBLOCK);
    }
    return rc;
}

int pipe(int fds[2]) {
    int rc = REAL_FD(real_pipe)(fds);
    if (rc == 0) {
        jacket_fd_created(fds[0], 0);
        jacket_fd_created(fds[1], 0);
    }
    return rc;
}

int pipe2(int fds[2], int flags) {
    int rc = REAL_FD(real_pipe2)(fds, flags);
    if (rc == 0) {
        jacket_fd_created(fds[0], flags & O_NONBLOCK);
        jacket_fd_created(fds[1], flags & O_NONBLOCK);
    }
    return rc;
}

// MARK: - Files the jacket does not own: a stale record of their number goes

// open(2) and the descriptors of other kinds the C library creates get a number that was free,
// so a record under it is stale (its predecessor was closed behind the jacket's back): it is
// dropped, so that the new file is served by the per-call path and never read as the old,
// non-blocking one (a blocking FIFO would block its kernel thread). One byte store per call.

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_eventfd)(unsigned, int);
static int (*real_timerfd_create)(int, int);
static int (*real_signalfd)(int, const sigset_t *, int);
static int (*real_inotify_init)(void);
static int (*real_inotify_init1)(int);

static void jacket_fd_resolve_unowned(void) {
    RESOLVE_FD(real_open, "open");
    RESOLVE_FD(real_open64, "open64");
    RESOLVE_FD(real_openat, "openat");
    RESOLVE_FD(real_openat64, "openat64");
    RESOLVE_FD(real_eventfd, "eventfd");
    RESOLVE_FD(real_timerfd_create, "timerfd_create");
    RESOLVE_FD(real_signalfd, "signalfd");
    RESOLVE_FD(real_inotify_init, "inotify_init");
    RESOLVE_FD(real_inotify_init1, "inotify_init1");
}

/// `fd`, a descriptor just made without the jacket, after dropping a stale record of its number.
static int jacket_fd_unowned(int fd) {
    if (fd >= 0 && jacket_fd_state(fd) != 0) jacket_forget_descriptor(fd);
    return fd;
}

/// open's mode argument, present only when the flags create a file.
#define JACKET_OPEN_MODE(flags, last)                                        \
    mode_t mode = 0;                                                         \
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {             \
        va_list list;                                                        \
        va_start(list, last);                                                \
        mode = (mode_t)va_arg(list, unsigned);                               \
        va_end(list);                                                        \
    }

int open(const char *path, int flags, ...) {
    JACKET_OPEN_MODE(flags, flags)
    return jacket_fd_unowned(REAL_FD(real_open)(path, flags, mode));
}

int open64(const char *path, int flags, ...) {
    JACKET_OPEN_MODE(flags, flags)
    return jacket_fd_unowned(REAL_FD(real_open64)(path, flags, mode));
}

int openat(int directory, const char *path, int flags, ...) {
    JACKET_OPEN_MODE(flags, flags)
    return jacket_fd_unowned(REAL_FD(real_openat)(directory, path, flags, mode));
}

int openat64(int directory, const char *path, int flags, ...) {
    JACKET_OPEN_MODE(flags, flags)
    return jacket_fd_unowned(REAL_FD(real_openat64)(directory, path, flags, mode));
}

int eventfd(unsigned value, int flags) { return jacket_fd_unowned(REAL_FD(real_eventfd)(value, flags)); }

int timerfd_create(int clock, int flags) { return jacket_fd_unowned(REAL_FD(real_timerfd_create)(clock, flags)); }

int signalfd(int fd, const sigset_t *mask, int flags) {
    return jacket_fd_unowned(REAL_FD(real_signalfd)(fd, mask, flags));
}

int inotify_init(void) { return jacket_fd_unowned(REAL_FD(real_inotify_init)()); }

int inotify_init1(int flags) { return jacket_fd_unowned(REAL_FD(real_inotify_init1)(flags)); }

// MARK: - Duplicates share the file, and so its mode: the record is copied

int dup(int fd) {
    int copy = REAL_FD(real_dup)(fd);
    if (copy >= 0) jacket_fd_copy(fd, copy);
    return copy;
}

int dup2(int fd, int target) {
    int rc = REAL_FD(real_dup2)(fd, target);
    if (rc >= 0 && fd != target) jacket_fd_copy(fd, target);
    return rc;
}

int dup3(int fd, int target, int flags) {
    int rc = REAL_FD(real_dup3)(fd, target, flags);
    if (rc >= 0) jacket_fd_copy(fd, target);
    return rc;
}

// MARK: - The caller's view of O_NONBLOCK: fcntl and ioctl(FIONBIO)

/// fcntl as the caller sees it, through `real` (fcntl or fcntl64): F_GETFL reports the
/// caller's O_NONBLOCK, F_SETFL keeps the jacket's, duplicates copy the record.
static int jacket_fcntl(int (*real)(int, int, ...), int fd, int command, void *argument) {
    unsigned state = jacket_fd_state(fd);
    switch (command) {
    case F_GETFL: {
        int flags = real(fd, command);
        if (state & JACKET_FD_NONBLOCKING) {
            // The jacket's O_NONBLOCK gone, or no file at all: the number was closed or reused
            // behind the jacket's back (a raw close, dup2 or fcntl): the record is stale.
            if (flags >= 0 ? !(flags & O_NONBLOCK) : errno == EBADF) {
                jacket_forget_descriptor(fd);
                return flags;
            }
            if (flags >= 0 && !(state & JACKET_FD_CALLER_NONBLOCKING)) flags &= ~O_NONBLOCK;
        }
        return flags;
    }
    case F_SETFL: {
        int flags = (int)(intptr_t)argument;
        if (!(state & JACKET_FD_OURS)) return real(fd, command, flags);
        int rc = real(fd, command, (state & JACKET_FD_NONBLOCKING) ? flags | O_NONBLOCK : flags);
        if (rc == 0) {
            state = (flags & O_NONBLOCK) ? state | JACKET_FD_NONBLOCKING | JACKET_FD_CALLER_NONBLOCKING
                                         : state & ~(unsigned)JACKET_FD_CALLER_NONBLOCKING;
            jacket_fd_store(fd, state);
        }
        return rc;
    }
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
        int copy = real(fd, command, (int)(intptr_t)argument);
        if (copy >= 0) jacket_fd_copy(fd, copy);
        return copy;
    }
    default:
        return real(fd, command, argument);
    }
}

int fcntl(int fd, int command, ...) {
    va_list list;
    va_start(list, command);
    void *argument = va_arg(list, void *);
    va_end(list);
    return jacket_fcntl(REAL(fcntl), fd, command, argument);
}

int fcntl64(int fd, int command, ...) {
    va_list list;
    va_start(list, command);
    void *argument = va_arg(list, void *);
    va_end(list);
    return jacket_fcntl(REAL_FD(real_fcntl64), fd, command, argument);
}

int ioctl(int fd, unsigned long request, ...) {
    va_list list;
    va_start(list, request);
    void *argument = va_arg(list, void *);
    va_end(list);
    unsigned state = jacket_fd_state(fd);
    if (request != FIONBIO || !argument || !(state & JACKET_FD_OURS)) return REAL_FD(real_ioctl)(fd, request, argument);
    int on = *(int *)argument != 0;
    int kernel = on || (state & JACKET_FD_NONBLOCKING);
    int rc = REAL_FD(real_ioctl)(fd, request, &kernel);
    if (rc == 0) {
        state = on ? state | JACKET_FD_NONBLOCKING | JACKET_FD_CALLER_NONBLOCKING : state & ~(unsigned)JACKET_FD_CALLER_NONBLOCKING;
        jacket_fd_store(fd, state);
    }
    return rc;
}

// MARK: - Closes the jacket would otherwise not see

int fclose(FILE *stream) {
    if (stream) jacket_forget_descriptor(fileno(stream));
    return REAL_FD(real_fclose)(stream);
}

int close_range(unsigned first, unsigned last, int flags) {
    int rc = REAL_FD(real_close_range)(first, last, flags);
    if (rc == 0 && !(flags & CLOSE_RANGE_CLOEXEC)) {
        int end = __atomic_load_n(&jacket_fd_end, __ATOMIC_RELAXED);
        for (unsigned fd = first; fd <= last && fd < (unsigned)end; fd++) jacket_forget_descriptor((int)fd);
    }
    return rc;
}

// MARK: - Sharing with a child: the jacket's O_NONBLOCK goes back

/// Gives every descriptor the jacket made non-blocking its caller's blocking mode back and
/// forgets it was created here (it is shared now: the per-call path serves it from here on).
/// `inherited_only`: only those without FD_CLOEXEC (what an exec'd program inherits).
static void jacket_fd_share(int inherited_only) {
    int end = __atomic_load_n(&jacket_fd_end, __ATOMIC_RELAXED);
    for (int fd = 0; fd < end; fd++) {
        unsigned state = jacket_fd_state(fd);
        if (!(state & JACKET_FD_OURS)) continue;
        if (inherited_only) {
            int descriptor_flags = REAL(fcntl)(fd, F_GETFD);
            if (descriptor_flags < 0 || (descriptor_flags & FD_CLOEXEC)) continue;
        }
        if ((state & JACKET_FD_NONBLOCKING) && !(state & JACKET_FD_CALLER_NONBLOCKING)) {
            int flags = REAL(fcntl)(fd, F_GETFL);
            if (flags >= 0) REAL(fcntl)(fd, F_SETFL, flags & ~O_NONBLOCK);
        }
        jacket_fd_store(fd, state & JACKET_FD_NOT_REGULAR);
    }
}

void jacket_fd_before_fork(void) { jacket_fd_share(0); }

int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
                const posix_spawnattr_t *attributes, char *const arguments[], char *const environment[]) {
    jacket_fd_share(1);
    return REAL_FD(real_posix_spawn)(pid, path, actions, attributes, arguments, environment);
}

int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions,
                 const posix_spawnattr_t *attributes, char *const arguments[], char *const environment[]) {
    jacket_fd_share(1);
    return REAL_FD(real_posix_spawnp)(pid, file, actions, attributes, arguments, environment);
}

int system(const char *command) {
    jacket_fd_share(1);
    return REAL_FD(real_system)(command);
}

FILE *popen(const char *command, const char *mode) {
    jacket_fd_share(1);
    return REAL_FD(real_popen)(command, mode);
}

int uthreads_jacket_descriptor(int fd) { return (int)jacket_fd_state(fd); }

void uthreads_jacket_forget(int fd) { jacket_forget_descriptor(fd); }
