// control_socket.c — the Unix-socket plumbing of the live view (`uthreads top`): sockaddr_un
// is awkward from Swift, so listening and connecting are two small C functions.
#define _GNU_SOURCE
#include "cuthreads.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int make_address(const char *path, struct sockaddr_un *addr) {
    memset(addr, 0, sizeof *addr);
    addr->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof addr->sun_path) return ENAMETOOLONG;
    strcpy(addr->sun_path, path);
    return 0;
}

int uthreads_unix_listen(const char *path) {
    struct sockaddr_un addr;
    int e = make_address(path, &addr);
    if (e) return -e;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    // A socket file left by a process that died is replaced; a live one is not (connect works),
    // and neither is a file of another kind (a regular file named by mistake stays).
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        e = errno;
        if (e != EADDRINUSE) { close(fd); return -e; }
        struct stat info;
        if (lstat(path, &info) != 0 || !S_ISSOCK(info.st_mode)) { close(fd); return -EADDRINUSE; }
        int probe = uthreads_unix_connect(path);
        if (probe >= 0) { close(probe); close(fd); return -EADDRINUSE; }
        unlink(path);
        if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { e = errno; close(fd); return -e; }
    }
    if (listen(fd, 8) != 0) { e = errno; close(fd); return -e; }
    return fd;
}

int uthreads_unix_connect(const char *path) {
    struct sockaddr_un addr;
    int e = make_address(path, &addr);
    if (e) return -e;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { e = errno; close(fd); return -e; }
    return fd;
}
