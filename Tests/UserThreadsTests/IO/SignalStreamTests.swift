import Glibc
import Testing
import UserThreads

/// Leaves the calling test thread's mask as it was before a SignalStream blocked `signal`
/// (call it once no such signal is pending).
func unblockSignal(_ signal: Int32) {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, signal)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
}

@Suite(.timeLimit(.minutes(1))) struct SignalStreamTests {
    /// A signal sent to this kernel thread is read by a parked user thread, which another user
    /// thread of the runtime ran meanwhile (the wait parks on the reactor, not the kernel thread).
    @Test func signalWakesAParkedReader() throws {
        let (signal, ranMeanwhile) = try UThreadRuntime.run {
            let stream = try SignalStream(signals: [SIGUSR1])
            defer { unblockSignal(SIGUSR1) }
            let reader = UThread { try stream.next(timeout: .seconds(20)) }
            var ranMeanwhile = false
            let other = UThread.local { ranMeanwhile = true }
            try other.join()
            pthread_kill(pthread_self(), SIGUSR1)  // pending on this thread, blocked: for the stream
            return (try reader.join(), ranMeanwhile)
        }
        #expect(signal == SIGUSR1)
        #expect(ranMeanwhile)
    }

    @Test func waitTimesOut() throws {
        try UThreadRuntime.run {
            let stream = try SignalStream(signals: [SIGUSR1])
            defer { unblockSignal(SIGUSR1) }
            #expect(throws: UThreadError.timedOut) { _ = try stream.next(timeout: .milliseconds(50)) }
        }
    }

    /// Includes the signals a fault raises: blocked in a signalfd's mask, a stack overflow would
    /// kill the process silently instead of reaching the runtime's report (Configuration
    /// refuses them as the dump signal for the same reason). Nothing is blocked when it throws.
    @Test(
        arguments: [
            [], [SIGKILL], [SIGSTOP], [0], [-1], [65], [SIGTERM, 1000], [SIGSEGV], [SIGBUS], [SIGTERM, SIGILL],
            [SIGFPE],
        ] as [[Int32]])
    func badSignalListsAreRejected(_ signals: [Int32]) {
        expectError(sameCaseAs: .invalidArgument("")) { _ = try SignalStream(signals: signals) }
    }
}
