import Dispatch
import Testing
@testable import UserThreads

/// Name resolution with a timeout, a deadline and cancellation. A real slow DNS server cannot
/// be arranged deterministically (the host's resolv.conf, nscd and network decide), so these
/// tests hold an injected resolver (the seam: NameResolution.swift) on a semaphore.
@Suite(.timeLimit(.minutes(1))) struct NameResolutionTests {
    /// A resolver that waits on `gate` and then answers 127.0.0.1; `entered` when called.
    final class HeldResolver: Sendable {
        let entered = DispatchSemaphore(value: 0)
        let gate = DispatchSemaphore(value: 0)
        let returned = DispatchSemaphore(value: 0)

        var resolve: @Sendable (String, UInt16) throws -> [SocketAddress] {
            { [entered, gate, returned] _, port in
                entered.signal()
                gate.wait()
                defer { returned.signal() }
                return [try SocketAddress(host: "127.0.0.1", port: port)]
            }
        }

        /// Off the runtime: lets the resolver answer and waits (bounded) for it to return.
        func openAndWaitForReturn() -> Bool {
            gate.signal()
            return returned.wait(timeout: .now() + 20) == .success
        }
    }

    @Test(arguments: [1, 2]) func aResolutionEndsAtItsDeadline(workers: Int) throws {
        let resolver = HeldResolver()
        try UThreadRuntime.run(workers: workers) {
            #expect(throws: UThreadError.timedOut) {
                try SocketAddress.resolve(
                    host: "slow.invalid", port: 80, timeout: nil, deadline: .now + .milliseconds(30),
                    using: resolver.resolve)
            }
        }
        #expect(resolver.openAndWaitForReturn())
    }

    @Test(arguments: [1, 2]) func aResolutionEndsAtItsTimeout(workers: Int) throws {
        let resolver = HeldResolver()
        try UThreadRuntime.run(workers: workers) {
            #expect(throws: UThreadError.timedOut) {
                try SocketAddress.resolve(
                    host: "slow.invalid", port: 80, timeout: .milliseconds(30), deadline: nil, using: resolver.resolve)
            }
        }
        #expect(resolver.openAndWaitForReturn())
    }

    /// `TCPStream.connect(host:)` cancelled while its resolver runs: it throws at once.
    @Test(arguments: [1, 2]) func aConnectByNameIsCancelledWhileResolving(workers: Int) throws {
        let resolver = HeldResolver()
        let cancelled = try UThreadRuntime.run(workers: workers) { () -> Bool in
            let connector = UThread { () -> Bool in
                do {
                    _ = try TCPStream.connect(
                        host: "slow.invalid", port: 9, timeout: nil, deadline: nil, using: resolver.resolve)
                } catch is CancellationError {
                    return true
                }
                return false
            }
            while resolver.entered.wait(timeout: .now()) != .success { try UThread.sleep(for: .milliseconds(1)) }
            connector.cancel()
            return try connector.join()
        }
        #expect(cancelled)
        #expect(resolver.openAndWaitForReturn())
    }

    /// A numeric host is parsed on the calling thread: it never waits, even with a due limit.
    @Test(arguments: [1, 2]) func aNumericHostNeverWaits(workers: Int) throws {
        let addresses = try UThreadRuntime.run(workers: workers) {
            try SocketAddress.resolve(host: "127.0.0.1", port: 80, timeout: .zero, deadline: nil)
        }
        #expect(addresses == [try SocketAddress(host: "127.0.0.1", port: 80)])
    }

    /// Within its limits a held resolver's answer is used: the connect reaches the listener.
    @Test(arguments: [1, 2]) func aResolutionWithinItsLimitsIsUsed(workers: Int) throws {
        let resolver = HeldResolver()
        resolver.gate.signal()
        let greeting = try UThreadRuntime.run(workers: workers) { () -> [UInt8] in
            let listener = try TCPListener(host: "127.0.0.1", port: 0)
            let port = listener.port
            let server = UThread(pinned: true) { try listener.accept().write(all: "hi") }
            let s = try TCPStream.connect(
                host: "held.invalid", port: port, timeout: .seconds(30), deadline: .now + .seconds(30),
                using: resolver.resolve)
            try server.join()
            return try s.read(upTo: 10)
        }
        #expect(greeting == Array("hi".utf8))
    }
}
