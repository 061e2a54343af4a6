// Layer 7: what makes a runtime visible from outside — the debugger registry and the dump
// signal — set up when `run` starts and undone when it ends (never on the switch path).
import CUThreads
import Glibc
import Logging

enum Observability {
    /// Registers the runtime's table for debuggers and installs the dump signal handler.
    /// Returns the registry slot (-1: not registered).
    static func attach(_ scheduler: Scheduler) -> Int32 {
        let logger = scheduler.configuration.logger
        let slot = uthreads_registry_add(scheduler.table.view, Unmanaged.passUnretained(scheduler).toOpaque())
        if slot < 0 {
            logger.notice("too many live runtimes; this one is not visible to debuggers",
                          metadata: ["slots": "\(UTHREADS_REGISTRY_SLOTS)"])
        }
        if let signal = scheduler.configuration.dumpSignal {
            let e = uthreads_install_dump_signal(signal)
            if e == EBUSY {
                logger.notice("thread dumps on a signal are off: the program has its own handler for it",
                              metadata: ["signal": "\(signal)"])
            } else if e != 0 {
                logger.warning("thread dumps on a signal are off: sigaction failed",
                               metadata: ["signal": "\(signal)", "errno": "\(e)"])
            }
        }
        return slot
    }

    static func detach(_ slot: Int32) {
        uthreads_registry_remove(slot)
    }
}
