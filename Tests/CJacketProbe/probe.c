// probe.c — see cjacketprobe.h.
#define _GNU_SOURCE
#include "cjacketprobe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RESULT(expr) do { errno = 0; long v = (long)(expr); probe_result r = {v, v < 0 ? errno : 0, 0}; return r; } while (0)

probe_result probe_read(int fd, void *buffer, size_t count) { RESULT(read(fd, buffer, count)); }
probe_result probe_write(int fd, const void *buffer, size_t count) { RESULT(write(fd, buffer, count)); }
probe_result probe_recv(int fd, void *buffer, size_t count, int flags) { RESULT(recv(fd, buffer, count, flags)); }
probe_result probe_usleep(unsigned microseconds) { RESULT(usleep(microseconds)); }
probe_result probe_close(int fd) { RESULT(close(fd)); }

probe_result probe_nanosleep(long seconds, long nanoseconds) {
    struct timespec ts = {seconds, nanoseconds};
    RESULT(nanosleep(&ts, NULL));
}

probe_result probe_poll(int fd, short events, int timeout_ms) {
    struct pollfd p = {fd, events, 0};
    errno = 0;
    int v = poll(&p, 1, timeout_ms);
    probe_result r = {v, v < 0 ? errno : 0, p.revents};
    return r;
}

probe_result probe_poll2(int fd1, int fd2, int timeout_ms) {
    struct pollfd p[2] = {{fd1, POLLIN, 0}, {fd2, POLLIN, 0}};
    errno = 0;
    int v = poll(p, 2, timeout_ms);
    probe_result r = {v, v < 0 ? errno : 0, (unsigned short)p[0].revents | ((unsigned short)p[1].revents << 16)};
    return r;
}

probe_result probe_select_read(int fd, long timeout_ms) {
    fd_set set;
    FD_ZERO(&set);
    FD_SET(fd, &set);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    errno = 0;
    int v = select(fd + 1, &set, NULL, NULL, timeout_ms < 0 ? NULL : &tv);
    probe_result r = {v, v < 0 ? errno : 0, v > 0 && FD_ISSET(fd, &set)};
    return r;
}

probe_result probe_select_read_timeval(int fd, long seconds, long microseconds) {
    fd_set set;
    FD_ZERO(&set);
    FD_SET(fd, &set);
    struct timeval tv = {seconds, microseconds};
    errno = 0;
    int v = select(fd + 1, &set, NULL, NULL, &tv);
    probe_result r = {v, v < 0 ? errno : 0, v > 0 && FD_ISSET(fd, &set)};
    return r;
}

void uthreads_write_stderr(const char *message);  // CUThreads, linked into the probe

void probe_runtime_stderr(const char *message) { uthreads_write_stderr(message); }

int probe_fill_pipe(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) return -errno;
    char chunk[4096] = {0};
    int total = 0;
    ssize_t n;
    while ((n = write(fd, chunk, sizeof chunk)) > 0) total += (int)n;
    int e = errno;
    fcntl(fd, F_SETFL, flags);
    return e == EAGAIN ? total : -e;
}

probe_result probe_connect_loopback(int fd, uint16_t port) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    RESULT(connect(fd, (struct sockaddr *)&a, sizeof a));
}

probe_result probe_accept(int fd) {
    errno = 0;
    int v = accept(fd, NULL, NULL);
    probe_result r = {v, v < 0 ? errno : 0, v};
    return r;
}

int probe_tcp_socket(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
}

int probe_tcp_listener(uint16_t *port) {
    int fd = probe_tcp_socket();
    if (fd < 0) return fd;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 64) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

int probe_set_receive_timeout(int fd, long milliseconds) {
    struct timeval tv = {milliseconds / 1000, (milliseconds % 1000) * 1000};
    return setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ? errno : 0;
}

int probe_kernel_threads(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    int n = -1;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "Threads: %d", &n) == 1) break;
    }
    fclose(f);
    return n;
}

int probe_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -errno : (flags & O_NONBLOCK) != 0;
}

int probe_kernel_nonblocking(int fd) {
    long flags = syscall(SYS_fcntl, fd, F_GETFL);
    return flags < 0 ? -errno : (flags & O_NONBLOCK) != 0;
}

int probe_set_nonblocking(int fd, int on) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return errno;
    return fcntl(fd, F_SETFL, on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK) < 0 ? errno : 0;
}

int probe_fionbio(int fd, int on) { return ioctl(fd, FIONBIO, &on) < 0 ? errno : 0; }

int probe_fork_nonblocking(int fd) {
    pid_t child = fork();
    if (child < 0) return -errno;
    if (child == 0) {
        int kernel = probe_kernel_nonblocking(fd), view = probe_nonblocking(fd);
        _exit(kernel < 0 || view < 0 ? 100 : kernel + 2 * view);
    }
    int status = 0;
    if (waitpid(child, &status, 0) < 0) return -errno;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
