// A second kernel thread for the CLI (a server runtime next to a client runtime in `bench io`).
import CUThreads
import Glibc

enum KernelThread {
    private final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    /// Starts a detached pthread running `body`, pinned to `cpu` when given.
    static func spawn(cpu: Int? = nil, _ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(
            Box({
                if let cpu { pinCurrent(cpu: cpu) }
                body()
            })
        ).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { arg in
                let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
                box.body()
                return nil
            }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        pthread_detach(thread)
    }

    /// Pins the calling kernel thread to `cpu`.
    static func pinCurrent(cpu: Int) { _ = uthreads_pin_current_thread(Int32(cpu)) }

    /// Online CPUs.
    static var cpuCount: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
}
