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
            while !stop.isSet && n < 50_000_000 {
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
    /// A thread that waited on its pipe, then computes with yields while its worker is busy,
    /// moves to the idle worker, still reads and writes its pipe there (a round trip, then a
    /// wait on the new worker's reactor), and the worker it left no longer watches the pipe.
    @Test func aThreadThatWaitedOnAPipeMovesAndKeepsUsingIt() throws {
        let (results, teardown) = try MNRuntime.runInspecting(workers: 2) { () -> [String] in
            let stop = MNFlag()
            let busy = try keepWorker0Busy(3, until: stop)
            let pipes = try (0..<4).map { _ in try IO.pipe() }
            let roundTripped = pipes.map { _ in MNFlag() }
            let threads = zip(pipes, roundTripped).map { p, done in
                UThread.startingHere { () -> String in
                    let first = UThread.worker
                    guard try readByte(p.read) == 1 else { return "first byte" }  // waits here
                    guard UThread.isMigratable else { return "pinned by its wait" }
                    guard computeUntilMoved(from: first) else { return "did not move" }
                    let now = UThread.worker
                    try writeByte(p.write, 2)
                    guard try readByte(p.read) == 2 else { return "round trip" }
                    done.set()
                    guard try readByte(p.read) == 3 else { return "second byte" }  // waits on `now`
                    let watchers = registry().watchers(of: p.read).workers
                    return watchers == [now] ? "ok \(first)->\(now)" : "watched by \(watchers)"
                }
            }
            for (t, p) in zip(threads, pipes) {
                #expect(try waitUntilParked(t, .read))
                try writeByte(p.write, 1)
            }
            for ((t, p), done) in zip(zip(threads, pipes), roundTripped) {
                // The second wait: after the move and the round trip, on the new worker.
                var looks = 0
                while !done.isSet && looks < 200_000 {
                    try UThread.sleep(for: .microseconds(100))
                    looks += 1
                }
                #expect(try waitUntilParked(t, .read, looks: 200_000))
                try writeByte(p.write, 3)
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
        #expect(results == Array(repeating: "ok 0->1", count: 4))
        #expect(teardown.statistics.migrations >= 4)
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
                guard try readByte(p.read) == 1 else { return "first byte" }
                guard computeUntilMoved(from: first) else { return "did not move" }
                stop.set()
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
            #expect(try waitUntilParked(waiter, .read, looks: 200_000))
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
