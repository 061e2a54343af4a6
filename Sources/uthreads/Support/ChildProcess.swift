// Child processes of the CLI's benchmarks (wrk, `uthreads serve`): started with posix_spawn,
// standard output on a pipe to the caller.
import Glibc
import UserThreads

enum ChildProcess {
    /// Starts `args` (args[0] looked up in PATH when `searchPath`) with its standard output on
    /// a pipe; returns the child's pid and the pipe's read end (the caller closes it and reaps
    /// the child).
    /// - Throws: `UThreadError.system` naming `pipe` or `posix_spawn`/`posix_spawnp`.
    static func spawnWithStdoutPipe(_ args: [String], searchPath: Bool) throws -> (pid: pid_t, stdout: Int32) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw UThreadError.system(call: "pipe", errno: .init(rawValue: errno)) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        var cargs = args.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var pid = pid_t()
        let rc = searchPath ? posix_spawnp(&pid, args[0], &actions, nil, &cargs, environ)
                            : posix_spawn(&pid, args[0], &actions, nil, &cargs, environ)
        posix_spawn_file_actions_destroy(&actions)
        Glibc.close(fds[1])
        guard rc == 0 else {
            Glibc.close(fds[0])
            throw UThreadError.system(call: searchPath ? "posix_spawnp" : "posix_spawn", errno: .init(rawValue: rc))
        }
        return (pid, fds[0])
    }
}
