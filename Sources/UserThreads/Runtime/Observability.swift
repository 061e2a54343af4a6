// Layer 11: what makes a runtime visible from outside — the debugger registry, the dump signal,
// the control socket and metrics — set up when `run` starts and undone when it ends (never on the
// switch path). The M:N runtime's counterpart is Observability+Workers.swift.
import CUThreads
import Glibc
import Logging

enum Observability {
    /// What `detach` undoes.
    struct Attachment {
        var registrySlot: Int32
        var server: ControlSocketServer?
    }

    /// Registers the runtime's table for debuggers, installs the dump signal handler, starts
    /// the control socket and the metrics sampler, as configured.
    static func attach(_ scheduler: Scheduler, _ configuration: UThreadRuntime.Configuration) throws(UThreadError)
        -> Attachment
    {
        let slot = register(scheduler)
        installDumpSignal(configuration)
        var server: ControlSocketServer?
        if let path = configuration.controlSocket {
            // A request rings the runtime's inbox: an idle runtime answers at once.
            var bell: (@Sendable () -> Void)?
            if let inbox = scheduler.foreignCancels { bell = { inbox.ring() } }
            guard let channel = SnapshotChannel(bell: bell) else {
                uthreads_registry_remove(slot)
                throw .resourceExhausted("no pipe for the control socket")
            }
            do {
                server = try ControlSocketServer(path: path) { request, stop in
                    channel.ask(request, timeoutNanoseconds: ControlSocketServer.answerTimeoutNanoseconds, stop: stop)
                }
            } catch {
                uthreads_registry_remove(slot)
                throw error
            }
            scheduler.snapshotChannel = channel
        }
        if let metrics = configuration.metrics {
            scheduler.sampler = SchedulerMetrics(metrics, worker: 0, runtimeWide: nil)
            // RuntimeMetrics.swift: staleness
            scheduler.idleWakeLimit = metrics.intervalNanoseconds
        }
        return Attachment(registrySlot: slot, server: server)
    }

    /// Puts `scheduler`'s table in the debugger registry (which also makes the runtime live for
    /// the dump handler); returns the slot, or -1 (logged) when every slot is taken.
    static func register(_ scheduler: Scheduler) -> Int32 {
        let slot = uthreads_registry_add(scheduler.table.view, Unmanaged.passUnretained(scheduler).toOpaque())
        if slot < 0 {
            scheduler.settings.logger.notice(
                "too many live runtimes; this one is not visible to debuggers",
                metadata: ["slots": "\(UTHREADS_REGISTRY_SLOTS)"])
        }
        return slot
    }

    /// Installs the dump signal's handler as configured; logs why it could not.
    static func installDumpSignal(_ configuration: UThreadRuntime.Configuration) {
        guard let signal = configuration.dumpSignal else { return }
        let logger = configuration.logger
        let e = uthreads_install_dump_signal(signal)
        if e == EBUSY {
            logger.notice(
                "thread dumps on a signal are off: the program has its own handler for it",
                metadata: ["signal": "\(signal)"])
        } else if e == ENOTSUP {
            logger.notice(
                "thread dumps on a signal are off: the signal is ignored in this process",
                metadata: ["signal": "\(signal)"])
        } else if e != 0 {
            logger.warning(
                "thread dumps on a signal are off: sigaction failed",
                metadata: ["signal": "\(signal)", "errno": "\(e)"])
        }
    }

    static func detach(_ attachment: Attachment) {
        attachment.server?.stop()
        uthreads_registry_remove(attachment.registrySlot)
    }
}
