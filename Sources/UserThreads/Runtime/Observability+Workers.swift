// Layer 11: what makes an M:N runtime (`run(workers:)`) visible from outside — the debugger
// registry, the dump signal with a bell per worker, the control socket and metrics — set up
// before its workers run and undone when they have stopped, as Observability.swift does for
// `run {}`. How the workers answer a dump or a control-socket request, and why it is done so:
// the essay of MN/MNObservability.swift.
import CUThreads

enum MNObservability {
    /// What `detach` undoes.
    struct Attachment {
        var registrySlot: Int32
        var bells: [Int32]
        var server: ControlSocketServer?
    }

    /// Registers the runtime, installs the dump signal handler with a bell per worker, starts
    /// the control socket and gives every worker a metrics sampler, as configured. Called
    /// before any worker runs.
    static func attach(_ runtime: MNRuntime, _ configuration: UThreadRuntime.Configuration) throws(UThreadError)
        -> Attachment
    {
        let slot = runtime.workers[0].scheduler.map(Observability.register) ?? -1
        var bells: [Int32] = []
        if configuration.dumpSignal != nil {
            Observability.installDumpSignal(configuration)
            bells = runtime.workers.map { uthreads_dump_bell_add($0.dumpBell) }
        }
        if let metrics = configuration.metrics {
            // Runtime/RuntimeMetrics.swift. Unowned: the workers' samplers die with the runtime.
            let runtimeWide = RuntimeWideMetrics(metrics) { [unowned runtime] in
                [
                    runtime.stolen.load(ordering: .relaxed), runtime.migrations.load(ordering: .relaxed),
                    runtime.deadlockEpoch.load(ordering: .relaxed),
                ].map { UInt64($0) }
            }
            for worker in runtime.workers {
                worker.scheduler?.sampler = SchedulerMetrics(metrics, worker: worker.index, runtimeWide: runtimeWide)
            }
        }
        var server: ControlSocketServer?
        if let path = configuration.controlSocket {
            do {
                server = try ControlSocketServer(path: path) { request, stop in
                    runtime.controlResponse(
                        request, stop: stop, timeoutNanoseconds: ControlSocketServer.answerTimeoutNanoseconds)
                }
            } catch {
                detach(Attachment(registrySlot: slot, bells: bells, server: nil))
                throw error
            }
        }
        return Attachment(registrySlot: slot, bells: bells, server: server)
    }

    /// Stops the control socket and unregisters the bells (before the reactors close them).
    static func detach(_ attachment: Attachment) {
        attachment.server?.stop()
        for bell in attachment.bells { uthreads_dump_bell_remove(bell) }
        uthreads_registry_remove(attachment.registrySlot)
    }
}
