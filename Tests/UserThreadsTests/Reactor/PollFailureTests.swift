// What the idle loop does when epoll_wait fails (Reactor.swift, "epoll_wait failures").
import Glibc
import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1)))
struct PollFailureTests {
    @Test func eachErrorHasItsAnswer() {
        #expect(Reactor.pollFailure(errno: EINTR, epollFD: 9) == .retry)
        #expect(Reactor.pollFailure(errno: ENOMEM, epollFD: 9) == .backOff(nanoseconds: 10_000_000))
        for e in [EBADF, EINVAL, EFAULT] {
            guard case .fatal(let message) = Reactor.pollFailure(errno: e, epollFD: 9) else {
                Issue.record("errno \(e) is not fatal")
                continue
            }
            #expect(message.contains("epoll_wait") && message.contains("descriptor 9"), "\(message)")
        }
    }

    /// A raw close(2) of the reactor's epoll descriptor while a thread waits for I/O stops the
    /// process with the diagnostic (written with write(2)), instead of spinning or hanging.
    @Test func aClosedEpollSetStopsTheProcessWithADiagnostic() throws {
        let r = try ChildProcess.run(ChildProcess.uthreadsPath, ["selftest", "epoll-closed"])
        #expect(r.crashed || r.status != 0, "status \(r.status)")
        #expect(
            r.stderr.contains("epoll_wait on the reactor's descriptor") && r.stderr.contains("Bad file descriptor"),
            "\(r.stderr)")
    }
}
