// Layer 7: what makes a runtime visible from outside — the debugger registry and the dump
// signal — set up when `run` starts and undone when it ends (never on the switch path).
import CUThreads
import Glibc

enum Observability {
    /// Registers the runtime's table for debuggers and installs the dump signal handler.
    /// Returns the registry slot (-1: not registered).
    static func attach(_ scheduler: Scheduler) -> Int32 {
        let slot = uthreads_registry_add(scheduler.table.view, Unmanaged.passUnretained(scheduler).toOpaque())
        if slot < 0 {
            RuntimeLog.notice("more than \(UTHREADS_REGISTRY_SLOTS) live runtimes; this one is not visible to debuggers")
        }
        if let signal = scheduler.configuration.dumpSignal {
            let e = uthreads_install_dump_signal(signal)
            if e != 0 {
                RuntimeLog.notice("thread dumps on signal \(signal) are off: " +
                    (e == EBUSY ? "the program has its own handler for it" : "sigaction failed (errno \(e))"))
            }
        }
        return slot
    }

    static func detach(_ slot: Int32) {
        uthreads_registry_remove(slot)
    }
}
