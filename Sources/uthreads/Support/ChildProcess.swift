// Child processes of the CLI's benchmarks (wrk, `uthreads serve`): started with posix_spawn,
// standard output on a pipe to the caller.
import ArgumentParser
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
        let rc =
            searchPath
            ? posix_spawnp(&pid, args[0], &actions, nil, &cargs, environ)
            : posix_spawn(&pid, args[0], &actions, nil, &cargs, environ)
        posix_spawn_file_actions_destroy(&actions)
        Glibc.close(fds[1])
        guard rc == 0 else {
            Glibc.close(fds[0])
            throw UThreadError.system(call: searchPath ? "posix_spawnp" : "posix_spawn", errno: .init(rawValue: rc))
        }
        return (pid, fds[0])
    }

    /// Starts `uthreads serve --port 0 <arguments>` and reads its port from the line it prints.
    /// The caller kills and reaps the returned pid.
    /// - Throws: `ValidationError` when the server does not say where it listens.
    static func startServe(_ arguments: [String]) throws -> (pid_t, UInt16) {
        let (pid, out) = try spawnWithStdoutPipe(
            ["/proc/self/exe", "serve", "--port", "0"] + arguments, searchPath: false)
        defer { Glibc.close(out) }  // the server's later output goes nowhere (it prints nothing more)
        var line: [UInt8] = []
        var byte: UInt8 = 0
        while Glibc.read(out, &byte, 1) == 1, byte != UInt8(ascii: "\n") { line.append(byte) }
        let text = String(decoding: line, as: UTF8.self)
        // "uthreads serve: listening on http://127.0.0.1:PORT/ ..."
        guard let range = text.firstRange(of: "127.0.0.1:"),
            let port = UInt16(text[range.upperBound...].prefix { $0.isNumber })
        else {
            kill(pid, SIGTERM)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            throw ValidationError("uthreads serve did not start: \(text)")
        }
        return (pid, port)
    }
}
