// cjacketprobe.h — plain C calls to the C library, as a C dependency makes them: in the jacket's
// probe binary they reach the jacket's definitions. Each returns the call's value and the errno
// it left, read at once (Swift code may change errno before it could look).
#ifndef CJACKETPROBE_H
#define CJACKETPROBE_H

#include <stddef.h>
#include <stdint.h>

typedef struct probe_result {
    long value;  ///< the call's return value
    int error;   ///< errno right after it (0 when the call succeeded)
    int extra;   ///< revents for poll, the new descriptor for accept
} probe_result;

probe_result probe_read(int fd, void *buffer, size_t count);
probe_result probe_write(int fd, const void *buffer, size_t count);
probe_result probe_recv(int fd, void *buffer, size_t count, int flags);
probe_result probe_poll(int fd, short events, int timeout_ms);
probe_result probe_poll2(int fd1, int fd2, int timeout_ms);  ///< extra: revents of fd1 | revents of fd2 << 16
probe_result probe_select_read(int fd, long timeout_ms);
probe_result probe_select_read_timeval(int fd, long seconds, long microseconds);  ///< the timeout as given
/// The runtime's crash-diagnostic write to stderr (CUThreads' uthreads_write_stderr).
void probe_runtime_stderr(const char *message);
/// Writes to the (blocking) pipe end `fd` until it is full, leaving it blocking: bytes written, or -errno.
int probe_fill_pipe(int fd);
probe_result probe_usleep(unsigned microseconds);
probe_result probe_nanosleep(long seconds, long nanoseconds);
probe_result probe_connect_loopback(int fd, uint16_t port);  ///< 127.0.0.1:port
probe_result probe_accept(int fd);
probe_result probe_close(int fd);
/// A blocking TCP listener on 127.0.0.1 (ephemeral port in *port), or -errno.
int probe_tcp_listener(uint16_t *port);
/// A blocking TCP socket, or -errno.
int probe_tcp_socket(void);
/// Sets SO_RCVTIMEO on fd; 0 or errno.
int probe_set_receive_timeout(int fd, long milliseconds);
/// The kernel threads of this process (/proc/self/status Threads:), or -1.
int probe_kernel_threads(void);
/// fcntl(fd, F_GETFL) & O_NONBLOCK through the C library (the caller's view): 1, 0, or -errno.
int probe_nonblocking(int fd);
/// The same flag as the kernel has it (the fcntl system call itself, past the jacket).
int probe_kernel_nonblocking(int fd);
/// Sets or clears O_NONBLOCK with fcntl (F_GETFL, then F_SETFL): 0 or errno.
int probe_set_nonblocking(int fd, int on);
/// ioctl(fd, FIONBIO, &on): 0 or errno.
int probe_fionbio(int fd, int on);
/// Forks; the child reports `fd`'s O_NONBLOCK as the kernel has it and as fcntl says, and
/// exits: kernel + 2 * fcntl's view, or -errno when fork or waitpid failed.
int probe_fork_nonblocking(int fd);

/// The blocking calls of the signal scenarios (probe_signal_call).
enum {
    PROBE_SIGNAL_READ = 0,             ///< read(fd, 1 byte)
    PROBE_SIGNAL_POLL = 1,             ///< poll(fd, POLLIN, -1)
    PROBE_SIGNAL_NANOSLEEP = 2,        ///< nanosleep(30 s); extra: 1 when the time left is in (0, 30] s
    PROBE_SIGNAL_PPOLL_BLOCKING = 3,   ///< ppoll(fd, POLLIN, no timeout, a mask blocking SIGUSR1)
    PROBE_SIGNAL_PPOLL_EMPTY_MASK = 4, ///< ppoll(fd, POLLIN, no timeout, an empty mask)
    PROBE_SIGNAL_PSELECT_EMPTY_MASK = 5,   ///< pselect(fd readable, no timeout, an empty mask)
    PROBE_SIGNAL_EPOLL_PWAIT_BLOCKING = 6, ///< epoll_pwait on a set of fd, no timeout, a mask blocking SIGUSR1
};
/// probe_signal_handler's other ways to install the handler (`restart` 0 and 1: sigaction).
enum {
    PROBE_HANDLER_SIGNAL = 2,                 ///< signal(3): SA_RESTART, the C library's BSD semantics
    PROBE_HANDLER_SIGNAL_SIGINTERRUPT = 3,    ///< signal(3), then siginterrupt(sig, 1): no SA_RESTART
};
/// Installs a handler for `sig` that counts its runs, with sigaction, SA_RESTART when
/// `restart` is 1 (0: without), or with signal(3) (PROBE_HANDLER_*): 0 or errno.
int probe_signal_handler(int sig, int restart);
/// How many times the handler ran.
int probe_signal_count(void);
/// 1 when sigaction reads back the handler as installed (the handler, SA_RESTART when `restart`).
int probe_signal_readback(int sig, int restart);
/// The blocking call `which` (PROBE_SIGNAL_*) on `fd`.
probe_result probe_signal_call(int which, int fd);
/// The real calls: runs the call `which` on the pipe end `r` on a new kernel thread, sends it
/// `sig` (pthread_kill) once it sleeps in the kernel, and once it sleeps again (a call the
/// signal did not end) writes a byte to `w`; returns the call's result.
probe_result probe_signal_real(int which, int r, int w, int sig);

/// close(2) as the system call itself, unseen by the jacket: 0 or errno.
int probe_raw_close(int fd);
/// A non-blocking eventfd made by the system call itself (unseen by the jacket), or -errno.
int probe_raw_eventfd_nonblocking(void);
/// /dev/null opened (blocking) by the system call itself, or -errno.
int probe_raw_open_null(void);
/// read(fd) of 8 bytes (an eventfd's counter).
probe_result probe_read8(int fd);

/// A new FIFO at `path`, opened blocking for reading and writing with open(2) (then
/// unlinked), or -errno.
int probe_open_fifo(const char *path);

#endif
