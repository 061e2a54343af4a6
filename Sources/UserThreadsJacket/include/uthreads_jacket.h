// uthreads_jacket.h — UserThreadsJacket: link it (or preload libuthreads-jacket.so) and the C
// library's blocking calls — read, write, readv, writev, recv, recvfrom, recvmsg, send, sendto,
// sendmsg, accept, accept4, connect, close, poll, ppoll, select, pselect, epoll_wait,
// epoll_pwait, nanosleep, clock_nanosleep, usleep, sleep, getaddrinfo — park the calling user
// thread instead of blocking its kernel thread. Outside a user thread each is the real call.
// socket, socketpair, pipe, pipe2, dup, dup2, dup3, fcntl, fcntl64, ioctl, fclose,
// close_range, posix_spawn, posix_spawnp, system, popen, open, openat, eventfd, timerfd_create,
// signalfd and inotify_init keep its record of each descriptor's mode;
// sigaction, signal, bsd_signal, sysv_signal and siginterrupt let a signal's handler interrupt
// a parked call as it would the real one (jacket_signal.c).
// The design essay is in jacket_core.c; the runtime's side in UserThreads' IO/JacketHooks.swift.
#ifndef UTHREADS_JACKET_H
#define UTHREADS_JACKET_H

#include "uthreads_jacket_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/// 1 once a runtime has handed the jacket its hooks (the jacket is active on user threads).
int uthreads_jacket_active(void);

/// The jacket's record of descriptor `fd`, for tests and diagnostics: a sum of 1 (created
/// blocking in this process, by a call the jacket saw), 2 (its file is non-blocking in the
/// kernel, the jacket knowing it), 4 (the caller made it non-blocking) and 8 (known not to be
/// a regular file); 0 when the jacket knows nothing of it (essay: jacket_core.c).
int uthreads_jacket_descriptor(int fd);

#ifdef __cplusplus
}
#endif
#endif
