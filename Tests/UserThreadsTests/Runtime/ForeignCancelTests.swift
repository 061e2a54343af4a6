// UThreadHandle.cancel() from a kernel thread other than the runtime's: it works for M:N
// threads and stops the process with a message for M:1 threads (never a silent no-op).
import Foundation
import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1)))
struct ForeignCancelTests {
    /// An M:N thread's handle, cancelled from a kernel thread that is no worker (a Foundation
    /// thread; not a Swift task: this test itself runs on one of the cooperative pool's few
    /// threads, and a task could wait for a free one for as long as the runtime runs): the
    /// sleeper wakes with CancellationError.
    @Test(arguments: [1, 2])
    func anMNThreadIsCancelledFromAnotherKernelThread(workers: Int) throws {
        let error = try UThreadRuntime.run(workers: workers) { () -> String in
            let handles = MNChannel<Handed<UThreadHandle>>()
            let sleeper = MNThread(name: "sleeper") { () -> String in
                try handles.send(Handed(value: UThread.current))
                do { try UThread.sleep(for: .seconds(3600)) } catch { return "\(type(of: error))" }
                return "slept"
            }
            guard let handle = try handles.receive() else { return "no handle" }
            // The worker waits in the kernel until cancel() has returned on the other thread
            // (an M:N wait here would be a deadlock to the runtime, which cannot see that
            // thread, and the runtime must outlive the cancel's post to its mailbox).
            let returned = DispatchSemaphore(value: 0)
            Thread {
                handle.value.cancel()
                returned.signal()
            }.start()
            returned.wait()
            return try sleeper.join()
        }
        #expect(error == "CancellationError")
    }

    @Test func anM1ThreadCancelledFromAnotherKernelThreadStopsWithAMessage() throws {
        let r = try ChildProcess.run(ChildProcess.uthreadsPath, ["selftest", "foreign-cancel"])
        #expect(r.crashed, "status \(r.status), stdout \(r.stdout)")
        #expect(r.stderr.contains("UThreadHandle.cancel()") && r.stderr.contains("M:1 runtime"), "\(r.stderr)")
        #expect(!r.stdout.contains("returned"))
    }
}
