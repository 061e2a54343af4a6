// uthreads_jacket.h — UserThreadsJacket: link it (or preload libuthreads-jacket.so) and the C
// library's blocking calls — read, write, readv, writev, recv, recvfrom, recvmsg, send, sendto,
// sendmsg, accept, accept4, connect, close, poll, ppoll, select, pselect, epoll_wait,
// epoll_pwait, nanosleep, clock_nanosleep, usleep, sleep, getaddrinfo — park the calling user
// thread instead of blocking its kernel thread. Outside a user thread each is the real call.
// The design essay is in jacket_core.c; the runtime's side in UserThreads' IO/JacketHooks.swift.
#ifndef UTHREADS_JACKET_H
#define UTHREADS_JACKET_H

#include "uthreads_jacket_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/// 1 once a runtime has handed the jacket its hooks (the jacket is active on user threads).
int uthreads_jacket_active(void);

#ifdef __cplusplus
}
#endif
#endif
