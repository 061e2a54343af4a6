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
            let done = MNSemaphore()
            Thread {
                handle.value.cancel()
                done.signal()
            }.start()
            try done.wait()
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
