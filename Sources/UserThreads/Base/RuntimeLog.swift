// Layer 1: the runtime's own diagnostics, through swift-log.
//
// Diagnostics the runtime reports on its own: configuration problems (a dump signal the
// program already handles, a fault handler that could not be installed), mode switches (out
// of stack mappings: dense stacks from now on), a runtime invisible to debuggers. They go
// through swift-log, to `UThreadRuntime.Configuration.logger` (label "uthreads"; the default
// handler of swift-log writes to stderr), so a server routes them with the rest of its logs.
//
// Not through here: reports that end the process (stack overflow, a clobbered canary). They
// are written with write(2) from C (signals.c) before abort, because a logging backend may
// allocate, lock or buffer, none of which is safe in a signal handler or survives the abort.
// The deadlock report is also written with write(2): `run` throws it too.
import Logging

enum RuntimeLog {
    /// The label of the runtime's default logger.
    static let label = "uthreads"

    /// The logger of a runtime that was given none.
    static func makeDefault() -> Logger { Logger(label: label) }
}
