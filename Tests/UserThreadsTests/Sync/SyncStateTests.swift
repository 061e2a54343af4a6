import CUThreads
import Foundation
import Testing
@testable import UserThreads

/// A shared object's lock and the plain counter it guards.
private final class Guarded: @unchecked Sendable {
    let state = SyncState()
    var counter = 0
}

/// The lock of a shared sync object (CUThreads/sync_lock.c): mutual exclusion between kernel
/// threads, including when one of them has to sleep on the word.
@Suite(.timeLimit(.minutes(1))) struct SyncStateTests {
    /// A counter read and written without atomics under the lock by several kernel threads ends
    /// exact; holders that sometimes keep the lock across a short sleep make the others wait in
    /// FUTEX_WAIT (the contended path), and every one of them is woken again.
    @Test(arguments: [2, 4])
    func lockExcludesKernelThreads(threads: Int) {
        let g = Guarded()
        let rounds = 20_000
        let done = DispatchGroup()
        for t in 0..<threads {
            done.enter()
            let thread = Thread {
                for i in 0..<rounds {
                    g.state.lock()
                    let v = g.counter
                    if i % 1_000 == t { usleep(100) }  // a holder that is slow: the others sleep
                    g.counter = v + 1
                    g.state.unlock()
                }
                done.leave()
            }
            thread.start()
        }
        done.wait()
        g.state.lock()
        #expect(g.counter == threads * rounds)
        g.state.unlock()
    }
}
