// exclusivity_head.c — where the Swift runtime keeps the calling kernel thread's access set.
//
// Design. Every switch moves the outgoing thread's dynamic-exclusivity access set out of the
// kernel thread (Context/ContextSwitch.swift): `swift_task_exitThreadLocalContext`, which
// finds libswiftCore's thread-local context (`swift::runtime::SwiftTLSContext::get()`, a
// general-dynamic TLS access through `__tls_get_addr`) and, when the live set is empty, does
// nothing else. That is nearly every switch, and the lookup alone cost ~35 instructions per
// switch (callgrind: 16 in the exit, 8 in `get`, 11 in `__tls_get_addr`), a twentieth of a
// spawn+run+join. With the address of the live set's head (per kernel thread, fixed for its
// life) the scheduler tests the head itself and calls the runtime only when an access is open.
//
// libswiftCore exports no way to get that address. `uthreads_exclusivity_head` finds it once
// per kernel thread: the exported `swift_task_exitThreadLocalContext` begins (x86-64, Swift
// 6.3.1) with a fixed prologue and a direct call of `SwiftTLSContext::get`; the call's target
// is decoded from those bytes, but only when the prologue is exactly the expected one and
// `swift_task_enterThreadLocalContext` calls the same target. The result is then *verified*
// before it is used: a tracked access begun through the runtime (`swift_beginAccess`) must
// appear as the head, and be gone after `swift_endAccess`. Anything else (another toolchain,
// another architecture, exclusivity checking disabled, a prologue that changed) returns NULL,
// and the scheduler keeps calling the runtime on every switch as before: slower, never wrong.
//
// Why the skip is exact: with an empty live set, `swift_task_exitThreadLocalContext` returns
// without writing anything (the saved state of a running thread is always empty: entering a
// saved set moves it into the live set and clears the state).
//
// Rejected: reading the context through `__tls_get_addr` with libswiftCore's module id and a
// guessed offset (no symbol gives the offset); scanning the TLS block for a known access node
// (finds *a* word, not necessarily the head); a TLS address cached in Swift code (M:N: see the
// Scheduler essay; the address is kept per scheduler, each on its own kernel thread).
#define _GNU_SOURCE
#include "cuthreads.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

typedef void *(*tls_context_getter)(void);

// The Swift runtime's access tracking (exported by libswiftCore; C calling convention).
extern void swift_beginAccess(void *pointer, void *buffer, uintptr_t flags, void *pc);
extern void swift_endAccess(void *buffer);

static tls_context_getter getter;
static pthread_once_t getter_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
// push %rbp; mov %rsp,%rbp; push %rbx; push %rax; mov %rdi,%rbx; call rel32
static const unsigned char expected_prologue[] = {0x55, 0x48, 0x89, 0xe5, 0x53, 0x50, 0x48, 0x89, 0xfb, 0xe8};

/// The target of the direct call that ends `expected_prologue` at `function`, or NULL.
static void *called_from_prologue(void *function) {
    if (function == NULL || memcmp(function, expected_prologue, sizeof expected_prologue) != 0) return NULL;
    int32_t displacement;
    memcpy(&displacement, (unsigned char *)function + sizeof expected_prologue, sizeof displacement);
    return (unsigned char *)function + sizeof expected_prologue + sizeof displacement + displacement;
}
#endif

static void find_getter(void) {
#if defined(__x86_64__)
    void *exit_target = called_from_prologue(dlsym(RTLD_DEFAULT, "swift_task_exitThreadLocalContext"));
    void *enter_target = called_from_prologue(dlsym(RTLD_DEFAULT, "swift_task_enterThreadLocalContext"));
    if (exit_target != NULL && exit_target == enter_target) getter = (tls_context_getter)exit_target;
#endif
}

void *_Nullable *_Nullable uthreads_exclusivity_head(void) {
    pthread_once(&getter_once, find_getter);
    if (getter == NULL) return NULL;
    void **head = (void **)getter();
    if (head == NULL) return NULL;
    // Verify: a tracked modify access of a variable nobody else touches becomes the head.
    static char probe;
    void *buffer[3] = {0, 0, 0};
    void *before = *head;
    swift_beginAccess(&probe, buffer, 0x1 | 0x20 /* modify | tracking */, NULL);
    int is_head = *head == (void *)buffer;
    swift_endAccess(buffer);
    if (!is_head || *head != before) return NULL;
    return head;
}
