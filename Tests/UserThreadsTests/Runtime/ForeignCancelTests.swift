// UThreadHandle.cancel() from a kernel thread other than the runtime's (a pthread, a Foundation
// thread, a Swift task), under M:1 `run {}` and M:N: the sleeper wakes with CancellationError;
// after the runtime has ended the same cancel does nothing.
import Foundation
import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1)))
struct ForeignCancelTests {
    /// An M:1 thread's handle, cancelled from a Foundation thread while the runtime waits for it
    /// (idle: its sleep must be ended by the post), or while another thread keeps it busy
    /// (`busy`: the post is applied at `maintenance`). Not a Swift task here: this test runs on
    /// one of the cooperative pool's few threads (the child-process test below covers tasks).
    @Test(arguments: [false, true])
    func anM1ThreadIsCancelledFromAnotherKernelThread(busy: Bool) throws {
        let error = try UThreadRuntime.run { () -> String in
            let sleeper = UThread(name: "sleeper") { () -> String in
                do { try UThread.sleep(for: .seconds(3600)) } catch { return "\(type(of: error))" }
                return "slept"
            }
            let spinner = busy ? UThread(name: "spinner") { while !sleeper.isFinished { UThread.yield() } } : nil
            let handle = Handed(value: sleeper.handle)
            Thread { handle.value.cancel() }.start()
            let result = try sleeper.join()
            try spinner?.join()
            return result
        }
        #expect(error == "CancellationError")
    }

    /// An M:N thread's handle, cancelled from a kernel thread that is no worker: the sleeper
    /// wakes with CancellationError.
    @Test(arguments: [1, 2])
    func anMNThreadIsCancelledFromAnotherKernelThread(workers: Int) throws {
        let error = try UThreadRuntime.run(workers: workers) { () -> String in
            let handles = Channel<Handed<UThreadHandle>>()
            let sleeper = UThread(name: "sleeper") { () -> String in
                try handles.send(Handed(value: UThread.current))
                do { try UThread.sleep(for: .seconds(3600)) } catch { return "\(type(of: error))" }
                return "slept"
            }
            guard let handle = try handles.receive() else { return "no handle" }
            // The sleeper cannot end before the cancel reaches it, so the runtime outlives it.
            Thread { handle.value.cancel() }.start()
            return try sleeper.join()
        }
        #expect(error == "CancellationError")
    }

    /// In a fresh process (so a Swift task finds a free pool thread at once): cancelled from a
    /// pthread or a task, under `run {}` and M:N, the sleeper wakes with CancellationError; a
    /// cancel after the runtime returned does nothing (no crash, no use after free).
    @Test(arguments: ["thread", "task"], [[], ["1"], ["2"]])
    func aCancelFromAnyKernelThreadWakesTheSleeper(via: String, workers: [String]) throws {
        let r = try ChildProcess.run(ChildProcess.uthreadsPath, ["selftest", "foreign-cancel", via] + workers)
        #expect(r.status == 0 && !r.crashed, "status \(r.status), stderr \(r.stderr)")
        #expect(r.stdout.contains("sleeper: CancellationError"), "\(r.stdout)")
        #expect(r.stdout.contains("cancel after the runtime returned"), "\(r.stdout)")
    }
}
