// ckernelpeers.h — the kernel-thread side of the comparison, in C so that nothing but the
// kernel's cost is measured: pthread create+join, futex and condvar handoffs, parked pthreads.
#ifndef CKERNELPEERS_H
#define CKERNELPEERS_H
#include <stdint.h>

/// Mean ns of pthread_create + pthread_join of an empty thread over `iterations`.
double peers_pthread_create_join_ns(int iterations);
/// Mean ns per handoff of two pthreads passing a token through a raw futex.
/// `cpu` >= 0 pins both threads to that CPU (the fair comparison with M:1 user threads).
double peers_futex_handoff_ns(int handoffs, int cpu);
/// The same through a pthread mutex + condition variable.
double peers_condvar_handoff_ns(int handoffs, int cpu);
/// Mean ns per sched_yield handoff between two pinned pthreads.
double peers_sched_yield_handoff_ns(int handoffs, int cpu);

/// Starts `count` pthreads (default attributes) that block in FUTEX_WAIT; returns an opaque
/// handle or NULL (then *created says how many were started before the failure, errno_out why).
void *peers_park_pthreads(int count, int *created, int *errno_out);
/// Wakes and joins the parked threads.
void peers_unpark_pthreads(void *handle);

/// Pins the calling thread to `cpu`, or lets it run on every online CPU when `cpu` < 0 (threads
/// it creates later inherit that).
void peers_pin_self(int cpu);

/// The stack size a pthread with default attributes gets (glibc takes it from RLIMIT_STACK at
/// start-up), in bytes; -1 if it cannot be read.
long peers_default_thread_stack_size(void);

/// Kernel context switches (voluntary + involuntary) of the calling kernel thread so far.
long peers_thread_context_switches(void);

/// Runs `body(context)` in a forked child and returns the child's exit status (or -errno).
/// The parent must be single-threaded (the CLI is); the child should end with _exit.
int peers_run_in_child(void (*body)(void *context), void *context);
/// In the calling process from now on: every system call but rt_sigreturn, exit and
/// exit_group is refused by seccomp (SECCOMP_RET_TRAP) and counted by a SIGSYS handler. It
/// cannot be undone: use it in a child only. Returns 0 or -errno.
int peers_seccomp_trap_all(void);
/// System calls refused since peers_seccomp_trap_all.
long peers_seccomp_count(void);

// process_peers.c — processes (the third column of the 1992 comparison), growing parked sets
// for memory budgets, and a ptrace system-call counter.

/// Mean ns of fork + _exit + waitpid of an empty child.
double peers_fork_wait_ns(int iterations);
/// Mean ns per handoff of two processes passing a byte over two pipes (`cpu` >= 0 pins both).
double peers_pipe_handoff_ns(int handoffs, int cpu);

/// A set of pthreads parked in FUTEX_WAIT that grows by `add` (at most `capacity`).
void *peers_thread_set_new(int capacity);
/// Starts up to `count` more (stack_size 0: default attributes); returns 0 or the errno that stopped it.
int peers_thread_set_add(void *set, int count, long stack_size);
int peers_thread_set_count(void *set);
/// Wakes, joins and frees them all.
void peers_thread_set_release(void *set);

/// A set of child processes blocked reading a pipe, grown by `add` (at most `capacity`).
void *peers_process_set_new(int capacity);
/// Forks up to `count` more; returns 0 or the errno that stopped it.
int peers_process_set_add(void *set, int count);
int peers_process_set_count(void *set);
/// Sum of the children's private pages (Private_Clean + Private_Dirty of smaps_rollup), bytes.
long peers_process_set_private_bytes(void *set);
/// Lets the children exit and reaps them.
void peers_process_set_release(void *set);

/// Runs `body(context)` in a forked child traced with ptrace (following its threads and
/// children) and returns the number of system calls they entered, or a negative value if
/// tracing failed (-errno) or the child did not exit with 0 (-1000 - status). The caller must
/// be single-threaded; `body` must not depend on other threads of the caller.
long peers_count_syscalls(void (*body)(void *context), void *context);

/// Bytes malloc has handed out and not had back (mallinfo2: uordblks + hblkhd).
long peers_malloc_in_use(void);
#endif
