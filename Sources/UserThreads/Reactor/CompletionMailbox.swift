// Layer 7: how kernel threads outside the runtime hand results back to it.
//
// A list of finished jobs behind a KernelLock plus an eventfd in the runtime's epoll set. A
// producer appends and writes the eventfd only when the list was empty (the reactor drains the
// eventfd before taking the list, so a producer that sees a non-empty list knows the reactor
// has yet to take it). The reactor wakes the waiting threads itself; no other kernel thread ever
// touches the scheduler.
import CUThreads
import Glibc
import Synchronization

final class CompletionMailbox: Sendable {
    let eventFD: Int32
    private let completed = KernelLock<[OffloadJob]>([])

    init() throws(UThreadError) {
        let fd = uthreads_eventfd_create()
        if fd < 0 { throw .system(call: "eventfd", errno: .lastError) }
        eventFD = fd
    }

    deinit {
        uthreads_sys_close(eventFD)
    }

    /// Called on any kernel thread when `job` has finished.
    func post(_ job: OffloadJob) {
        let wasEmpty = completed.withLock { list in
            list.append(job)
            return list.count == 1
        }
        if wasEmpty { _ = uthreads_eventfd_signal(eventFD) }
    }

    /// Called by the reactor on the eventfd's event.
    func takeCompleted() -> [OffloadJob] {
        _ = uthreads_eventfd_drain(eventFD)
        return completed.withLock { list in
            let taken = list
            list = []
            return taken
        }
    }
}
