import Glibc
import Synchronization
import Testing
@testable import UserThreads

/// The runtime's descriptor registry, seen from an M:N thread.
private func registry() -> DescriptorRegistry { MNWorker.current()!.worker.runtime.descriptors }

/// A regression fails rather than hangs: waits that only an event should end time out after this.
private let generous: Duration = .seconds(30)

/// Reads one byte from `fd` (waiting for it); -1 at end of stream.
private func readByte(_ fd: Int32) throws -> Int {
    var byte: UInt8 = 0
    let n = try withUnsafeMutableBytes(of: &byte) { try IO.read(fd, into: $0, timeout: generous) }
    return n == 1 ? Int(byte) : -1
}

private func writeByte(_ fd: Int32, _ value: UInt8) throws {
    var byte = value
    try withUnsafeBytes(of: &byte) { try IO.write(fd, all: $0, timeout: generous) }
}

/// Threads pinned on worker 0 that yield until `stop` is set: worker 0 stays busy with ready
/// threads that cannot move, so the only threads it can give up to the idle worker 1 are the
/// migratable ones under test.
private func keepWorker0Busy(_ count: Int, until stop: MNFlag) throws -> [UThread<Void>] {
    try (0..<count).map { _ in
        try UThread.spawn(onWorker: 0) {
            var n = 0
            while !stop.isSet && n < 20_000_000 {
                UThread.yield()
                n += 1
            }
        }
    }
}

/// Yields (the computing part) until the calling thread runs on another worker than `first`,
/// or `limit` yields passed; whether it moved.
private func computeUntilMoved(from first: Int, limit: Int = 5_000_000) -> Bool {
    var n = 0
    while UThread.worker == first && n < limit {
        UThread.yield()
        n += 1
    }
    return UThread.worker != first
}

/// Threads that waited on a descriptor stay migratable: the registration follows the thread
/// (Reactor.swift, "Threads that waited on a descriptor move").
@Suite(.timeLimit(.minutes(1))) struct MNDescriptorMigrationTests {
    /// Threads that waited on their pipe, then compute with yields while their worker is busy,
    /// move to the idle worker (at least one; the runtime decides how many), and every thread
    /// still reads and writes its pipe afterwards, wherever it runs: a round trip, then a wait
    /// that times out on its current worker's reactor. Only that worker watches the pipe then:
    /// the worker a thread left dropped its entry.
    @Test func aThreadThatWaitedOnAPipeMovesAndKeepsUsingIt() throws {
        let (results, teardown) = try MNRuntime.runInspecting(workers: 2) { () -> [String] in
            let stop = MNFlag()
            let busy = try keepWorker0Busy(3, until: stop)
            let pipes = try (0..<4).map { _ in try IO.pipe() }
            let threads = pipes.map { p in
                UThread.startingHere { () -> String in
                    let first = UThread.worker
                    guard try readByte(p.read) == 1 else { return "first byte" }  // waits here
                    guard UThread.isMigratable else { return "pinned by its wait" }
                    let moved = computeUntilMoved(from: first, limit: 1_000_000)
                    let now = UThread.worker
                    try writeByte(p.write, 2)
                    guard try readByte(p.read) == 2 else { return "round trip" }
                    var byte: UInt8 = 0
                    do {
                        // An empty pipe: a wait on the current worker's reactor, until the deadline.
                        _ = try withUnsafeMutableBytes(of: &byte) {
                            try IO.read(p.read, into: $0, timeout: .milliseconds(1))
                        }
                        return "read from an empty pipe"
                    } catch UThreadError.timedOut {}
                    let watchers = registry().watchers(of: p.read).workers
                    guard watchers == [now] else { return "watched by \(watchers) on \(now)" }
                    return moved ? "moved" : "stayed"
                }
            }
            for (t, p) in zip(threads, pipes) {
                #expect(try waitUntilParked(t, .read))
                try writeByte(p.write, 1)
            }
            let results = try threads.map { try $0.join() }
            stop.set()
            for b in busy { try b.join() }
            for p in pipes {
                try IO.close(p.read)
                try IO.close(p.write)
            }
            return results
        }
        #expect(results.allSatisfy { $0 == "moved" || $0 == "stayed" }, "\(results)")
        #expect(results.contains("moved"))
        #expect(teardown.statistics.migrations > 0)
        #expect(teardown.rowsLeft == 0 && teardown.stacksLeft == 0)
    }

    /// A thread that waited on a pipe on worker 0 moves to worker 1 and waits on it again
    /// there; a close from worker 0 (where it no longer waits) wakes it with `.closed`, and the
    /// descriptor is closed for the whole runtime afterwards.
    @Test func aCloseFromAnotherWorkerWakesAWaiterThatMigrated() throws {
        let outcome = try UThreadRuntime.run(workers: 2) { () -> String in
            let stop = MNFlag()
            let busy = try keepWorker0Busy(2, until: stop)
            let p = try IO.pipe()
            let waiter = UThread.startingHere { () -> String in
                let first = UThread.worker
                guard try readByte(p.read) == 1 else {
                    stop.set()
                    return "first byte"
                }
                let moved = computeUntilMoved(from: first)
                stop.set()
                guard moved else { return "did not move" }
                do {
                    let b = try readByte(p.read)  // waits on the new worker until the close
                    return "read \(b)"
                } catch UThreadError.closed {
                    return "closed on \(UThread.worker)"
                }
            }
            #expect(try waitUntilParked(waiter, .read))
            try writeByte(p.write, 1)
            for b in busy { try b.join() }
            // Parked again, now on worker 1 (the first wait was on worker 0).
            #expect(try waitUntilParked(waiter, .read))
            let closer = try UThread.spawn(onWorker: 0) { () -> [Int] in
                try IO.close(p.read)
                return registry().watchers(of: p.read).workers
            }
            let left = try closer.join()
            let result = try waiter.join()
            try IO.close(p.write)
            return left.isEmpty ? result : "still watched by \(left)"
        }
        #expect(outcome == "closed on 1")
    }

    /// Connection threads of one acceptor (all started on worker 0) spread over both workers:
    /// each waits for its request on its socket, computes with yields, and answers from
    /// wherever it runs then; every client gets its own answer (loopback).
    @Test func connectionThreadsOfOneAcceptorSpread() throws {
        let connections = 6
        let (seen, teardown) = try MNRuntime.runInspecting(workers: 2) { () -> [Int] in
            let stop = MNFlag()
            let busy = try keepWorker0Busy(2, until: stop)
            let listener = try TCPListener(host: "127.0.0.1", port: 0)
            let fd = listener.fileDescriptor
            let address = listener.localAddress
            let acceptor = try UThread.spawn(onWorker: 0) { () -> [Int] in
                let listener = try TCPListener(borrowing: fd)
                var handlers: [UThread<Int>] = []
                for _ in 0..<connections {
                    let accepted = try listener.accept(timeout: generous).release()
                    handlers.append(
                        UThread.startingHere { () -> Int in
                            let conn = TCPStream(owning: accepted)
                            let request = try conn.read(upTo: 64, timeout: generous)  // waits here
                            let first = UThread.worker
                            _ = computeUntilMoved(from: first)
                            try conn.write(all: request + Array(" from \(UThread.worker)".utf8))
                            try conn.close()
                            return UThread.worker
                        })
                }
                return try handlers.map { try $0.join() }
            }
            let clients = try (0..<connections).map { k in
                try UThread.spawn(onWorker: 0) { () -> Bool in
                    let c = try TCPStream.connect(to: address)
                    try c.write(all: "hello \(k)")
                    let reply = String(decoding: try c.readToEnd(timeout: generous), as: UTF8.self)
                    return reply.hasPrefix("hello \(k) from ")
                }
            }
            let answered = try clients.map { try $0.join() }
            let workers = try acceptor.join()
            stop.set()
            for b in busy { try b.join() }
            try listener.close()
            return answered.allSatisfy { $0 } ? workers : []
        }
        #expect(seen.count == connections)
        #expect(seen.contains(1))
        #expect(teardown.statistics.migrations > 0)
    }
}
