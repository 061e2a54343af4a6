import Glibc
import Synchronization
import Testing
@testable import UserThreads

/// The runtime's descriptor registry, seen from an M:N thread.
private func registry() -> DescriptorRegistry { MNWorker.current()!.worker.runtime.descriptors }

/// Yields until the workers whose reactors watch `fd` are exactly `workers` (the waiters have
/// registered: each parks right after, with no safe point in between, so a close request can
/// only reach its worker after the park).
private func waitUntilWatched(_ fd: Int32, by workers: [Int]) -> Bool {
    let r = registry()
    for _ in 0..<5_000_000 {
        if r.watchers(of: fd).workers == workers { return true }
        UThread.yield()
    }
    return false
}

/// A regression fails rather than hangs: waits that only a close should end time out after this.
private let generous: Duration = .seconds(30)

/// Reads one byte from `fd`; "closed" when the wait ended with `UThreadError.closed`.
private func readOutcome(_ fd: Int32) -> String {
    var byte: UInt8 = 0
    do {
        let n = try withUnsafeMutableBytes(of: &byte) { try IO.read(fd, into: $0, timeout: generous) }
        return "read \(n)"
    } catch UThreadError.closed {
        return "closed"
    } catch {
        return "\(error)"
    }
}

/// Whether `file` (a `fileIdentity` taken while its descriptor was open) is no longer open in
/// this process (/proc/self/fd): proof that close(2) ran on the descriptor, whatever other tests
/// do with descriptor numbers. Not EPIPE on the peer: a child that another test forks at that
/// moment holds a copy of every descriptor until its exec, so the peer may stay open after a
/// close that did its part (seen under load: a whole round of the stress test, 16 peers).
private func isClosedHere(_ file: String?) -> Bool {
    guard let file else { return false }
    return !openFiles().contains(file)
}

/// The file of `fd` (device and inode: sockets and pipes have unique ones while they exist),
/// so that other tests reusing descriptor numbers meanwhile cannot confuse a leak check.
private func fileIdentity(_ fd: Int32) -> String? {
    var st = stat()
    guard fstat(fd, &st) == 0 else { return nil }
    return "\(st.st_dev):\(st.st_ino)"
}

/// The files of every descriptor open in the process now (/proc/self/fd).
private func openFiles() -> Set<String> {
    guard let dir = opendir("/proc/self/fd") else { return [] }
    defer { closedir(dir) }
    var result: Set<String> = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if let fd = Int32(name), let file = fileIdentity(fd) { result.insert(file) }
    }
    return result
}

/// A reader parked on `fd` on worker 1, then a thread that keeps worker 1 busy without a
/// safe point (so it answers no mail) until `release` is set.
private func readerAndBusyWorker1(_ fd: Int32) throws -> (
    reader: UThread<String>, busy: UThread<Bool>, release: MNFlag
) {
    let reader = try UThread.spawn(name: "reader", onWorker: 1) { readOutcome(fd) }
    #expect(try waitUntilParked(reader, .read))
    let running = MNFlag()
    let release = MNFlag()
    let busy = try UThread.spawn(name: "busy", onWorker: 1) { () -> Bool in
        running.set()
        return spinUntil(release)
    }
    #expect(spinUntil(running))
    return (reader, busy, release)
}

/// `IO.close` under M:N wakes the threads waiting on the descriptor on every worker; when
/// other workers watch it the close is deferred to the last of them (DescriptorRegistry.swift).
@Suite(.timeLimit(.minutes(1))) struct MNDescriptorCloseTests {
    enum Kind: String, CaseIterable { case socketpair, pipe }

    /// A reader parked on worker 1 is woken with `.closed` when a thread on worker 0 closes
    /// the descriptor; by the time the reader sees it, the descriptor is really closed (worker
    /// 1 answered, closing it, before it resumed the reader).
    @Test(arguments: Kind.allCases) func closeOnWorker0WakesReaderOnWorker1(kind: Kind) throws {
        let (outcome, closed, watched) = try UThreadRuntime.run(workers: 2) { () -> (String, Bool, Int) in
            let (r, w) = kind == .pipe ? try IO.pipe() : try IO.socketpair()
            let reader = try UThread.spawn(name: "reader", onWorker: 1) { readOutcome(r) }
            #expect(try waitUntilParked(reader, .read))
            let closer = try UThread.spawn(name: "closer", onWorker: 0) { () throws in try IO.close(r) }
            try closer.join()
            let outcome = try reader.join()
            // The write end sees the close: EPIPE (socket or pipe with no reader left).
            var byte: UInt8 = 1
            var closed = false
            do {
                _ = try withUnsafeBytes(of: &byte) { try kind == .pipe ? IO.write(w, from: $0) : IO.send(w, from: $0) }
            } catch UThreadError.system(_, let e) { closed = e == .brokenPipe || e == .connectionReset }
            try IO.close(w)
            return (outcome, closed, registry().watchedCount)
        }
        #expect(outcome == "closed")
        #expect(closed)
        #expect(watched == 0)
    }

    /// The close of a deinit (`IO.close(_:waiting: false)`, which must never park) returns at
    /// once while the worker that watches the descriptor is busy (a thread without a safe
    /// point), and the descriptor is marked closing: a new wait on it throws `.closed` (no
    /// watcher is resurrected), a second close throws EBADF, the file is still open. The close
    /// completes when that worker drains its mail.
    @Test func aDeinitsCloseReturnsAtOnceAndMarksTheDescriptorClosing() throws {
        let (results, outcome, closed, watched) = try UThreadRuntime.run(workers: 2) {
            () -> ([String], String, Bool, Int) in
            let (a, b) = try IO.socketpair()
            let fileA = fileIdentity(a)
            let (reader, busy, release) = try readerAndBusyWorker1(a)
            let results = try UThread.spawn(name: "closer", onWorker: 0) { () -> [String] in
                var results: [String] = []
                do {
                    try IO.close(a, waiting: false)
                    results.append("closed")
                } catch { results.append("\(error)") }
                results.append(registry().watchers(of: a).isClosing ? "marked" : "not marked")
                results.append(readOutcome(a))  // the read says EAGAIN, the wait must not register
                do {
                    try IO.close(a)
                    results.append("closed twice")
                } catch UThreadError.system("close", let e) {
                    results.append(e == .badFileDescriptor ? "EBADF" : "\(e)")
                } catch { results.append("\(error)") }
                results.append(isClosedHere(fileA) ? "closed here" : "open here")
                return results
            }.join()
            release.set()
            #expect(try busy.join())
            let outcome = try reader.join()
            let closed = isClosedHere(fileA)
            try IO.close(b)
            return (results, outcome, closed, registry().watchedCount)
        }
        #expect(results == ["closed", "marked", "closed", "EBADF", "open here"])
        #expect(outcome == "closed")
        #expect(closed)
        #expect(watched == 0)
    }

    /// `IO.close` itself waits, as Go's `FD.Close` does: while the other watching worker is
    /// busy, the closer is parked (the thread table says on what) and the file is still open;
    /// once that worker answers, the closer returns and the file is closed.
    @Test func closeWaitsUntilTheOtherWorkersLetGo() throws {
        let (parked, openMeanwhile, closedAfter, outcome) = try UThreadRuntime.run(workers: 2) {
            () -> (String?, Bool, Bool, String) in
            let (a, b) = try IO.socketpair()
            let fileA = fileIdentity(a)
            let (reader, busy, release) = try readerAndBusyWorker1(a)
            let closer = try UThread.spawn(name: "closer", onWorker: 0) { () throws in try IO.close(a) }
            // The closer and this thread share worker 0: its own table answers at once.
            var parked: String?
            for _ in 0..<20_000 where parked == nil {
                let row = MNWorker.current()!.scheduler.snapshot().threads.first { $0.id == closer.id }
                if row?.state == .blocked { parked = row?.waitReason?.description }
                UThread.yield()
            }
            let openMeanwhile = !isClosedHere(fileA)
            release.set()
            #expect(try busy.join())
            try closer.join()
            let closedAfter = isClosedHere(fileA)  // right after the close returned
            let outcome = try reader.join()
            try IO.close(b)
            return (parked, openMeanwhile, closedAfter, outcome)
        }
        #expect(parked?.contains("close of descriptor") == true, "\(parked ?? "never parked")")
        #expect(openMeanwhile)
        #expect(closedAfter)
        #expect(outcome == "closed")
    }

    /// When `TCPListener.close()` returns, its port is free again, even though an acceptor on
    /// the other worker watched it (the close was deferred to that worker's answer).
    @Test func aClosedListenersPortCanBeBoundAgainAtOnce() throws {
        let (outcome, rebound) = try UThreadRuntime.run(workers: 2) { () -> (String, Bool) in
            let listener = try TCPListener(host: "127.0.0.1", port: 0)
            let fd = listener.fileDescriptor
            let port = listener.port
            let acceptor = try UThread.spawn(name: "acceptor", onWorker: 1) { () -> String in
                do {
                    _ = try IO.accept(fd, timeout: generous)
                    return "accepted"
                } catch UThreadError.closed { return "closed" } catch { return "\(error)" }
            }
            #expect(waitUntilWatched(fd, by: [1]))
            try listener.close()  // main runs on worker 0
            let rebound = (try? TCPListener(host: "127.0.0.1", port: port)) != nil
            return (try acceptor.join(), rebound)
        }
        #expect(outcome == "closed")
        #expect(rebound)
    }

    /// Per-worker acceptors on one listening socket (`uthreads serve --workers 2`'s shape) both
    /// end with `.closed` when another thread closes the listener, and the runtime ends.
    @Test func perWorkerAcceptorsEndWhenTheListenerCloses() throws {
        let outcomes = try UThreadRuntime.run(workers: 2) { () -> [String] in
            let listener = try TCPListener(host: "127.0.0.1", port: 0)
            let fd = listener.fileDescriptor
            let acceptors = try (0..<2).map { k in
                try UThread.spawn(name: "acceptor \(k)", onWorker: k) { () -> String in
                    do {
                        _ = try IO.accept(fd, timeout: generous)
                        return "accepted"
                    } catch UThreadError.closed {
                        return "closed"
                    } catch {
                        return "\(error)"
                    }
                }
            }
            #expect(waitUntilWatched(fd, by: [0, 1]))
            try listener.close()
            return try acceptors.map { try $0.join() }
        }
        #expect(outcomes == ["closed", "closed"])
    }

    /// The same with a Unix-domain listener closed from worker 1 (through its owner: a raw
    /// `IO.close` of its descriptor would leave the listener's deinit to close the number
    /// again, by then perhaps another test's descriptor).
    @Test func unixAcceptorsEndWhenTheListenerCloses() throws {
        let path = "/tmp/uthreads-close-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let outcomes = try UThreadRuntime.run(workers: 2) { () -> [String] in
            let listener = Mutex<UnixListener?>(try UnixListener(path: path))
            let fd = listener.withLock { $0!.fileDescriptor }
            let acceptors = try (0..<2).map { k in
                try UThread.spawn(onWorker: k) { () -> String in
                    do {
                        _ = try IO.accept(fd, timeout: generous)
                        return "accepted"
                    } catch UThreadError.closed { return "closed" } catch { return "\(error)" }
                }
            }
            #expect(waitUntilWatched(fd, by: [0, 1]))
            let closer = try UThread.spawn(onWorker: 1) { () throws in
                try listener.withLock { (l: inout UnixListener?) throws in
                    try l?.close()
                    l = nil
                }
            }
            try closer.join()
            _ = unlink(path)
            return try acceptors.map { try $0.join() }
        }
        #expect(outcomes == ["closed", "closed"])
    }

    enum OutsideCloser: String, CaseIterable { case blockingBody, m1Runtime }

    /// A closer that is not on a worker (a `blocking {}` body, on the offload pool; a thread of
    /// an M:1 runtime on another kernel thread) still reaches the waiters on every worker
    /// through the runtime's registry.
    @Test(arguments: OutsideCloser.allCases) func closersOffTheWorkersCloseThroughTheRegistry(closer: OutsideCloser)
        throws
    {
        let (outcomes, closed) = try UThreadRuntime.run(workers: 2) { () -> ([String], Bool) in
            let (a, b) = try IO.socketpair()
            let fileA = fileIdentity(a)
            let readers = try (0..<2).map { k in try UThread.spawn(onWorker: k) { readOutcome(a) } }
            #expect(waitUntilWatched(a, by: [0, 1]))
            switch closer {
            case .blockingBody: try blocking { try IO.close(a) }
            case .m1Runtime: try blocking { try UThreadRuntime.run { try IO.close(a) } }
            }
            let outcomes = try readers.map { try $0.join() }
            let closed = isClosedHere(fileA)
            try IO.close(b)
            return (outcomes, closed)
        }
        #expect(outcomes == ["closed", "closed"])
        #expect(closed)
    }

    /// Many socketpairs, a reader on each worker per pair and the closer on either worker,
    /// round after round: every reader ends with `.closed`, every descriptor is really closed
    /// when its closer returns (its file is gone from /proc/self/fd; none of the pairs' files is
    /// left at the end) and the registry is empty at the end.
    @Test func stressReadersOnBothWorkersClosersOnEither() throws {
        let rounds = 12
        let pairs = 16
        let (outcomes, closedHere, leaked, watched) = try UThreadRuntime.run(workers: 2) {
            () -> ([String: Int], Int, Int, Int) in
            var outcomes: [String: Int] = [:]
            var closedHere = 0
            var all: Set<String> = []
            for round in 0..<rounds {
                let sockets = try (0..<pairs).map { _ in try IO.socketpair() }
                all.formUnion(sockets.flatMap { [$0.0, $0.1] }.compactMap(fileIdentity))
                let closedFiles = sockets.map { fileIdentity($0.0) }
                var readers: [UThread<String>] = []
                var closers: [UThread<Void>] = []
                for (i, (a, _)) in sockets.enumerated() {
                    for k in 0..<2 { readers.append(try UThread.spawn(onWorker: k) { readOutcome(a) }) }
                    closers.append(
                        try UThread.spawn(onWorker: (i + round) % 2) { () throws in
                            guard waitUntilWatched(a, by: [0, 1]) else { return }
                            try IO.close(a)
                        })
                }
                for c in closers { try c.join() }
                let open = openFiles()
                closedHere += closedFiles.filter { $0 != nil && !open.contains($0!) }.count
                for r in readers { outcomes[try r.join(), default: 0] += 1 }
                for (_, b) in sockets { try IO.close(b) }
            }
            let leaked = all.intersection(openFiles()).count
            return (outcomes, closedHere, leaked, registry().watchedCount)
        }
        #expect(outcomes == ["closed": rounds * pairs * 2])
        #expect(closedHere == rounds * pairs)
        #expect(leaked == 0)
        #expect(watched == 0)
    }

    /// A close with no waiter elsewhere (or only on the closer's worker) is not deferred; a bad
    /// descriptor still throws EBADF. (Not a second close of a closed number: another test
    /// running in parallel may own that number by then.)
    @Test func closeWithNobodyWaitingElsewhereAndBadDescriptors() throws {
        let (local, closed, bad, huge) = try UThreadRuntime.run(workers: 2) { () -> (String, Bool, Bool, Bool) in
            let (a, b) = try IO.socketpair()
            let fileA = fileIdentity(a)
            // A waiter on the closer's own worker only: woken locally, closed at once.
            let (local, closedA) = try UThread.spawn(onWorker: 0) { () throws -> (String, Bool) in
                let reader = UThread.local { readOutcome(a) }
                UThread.yield()  // the reader parks
                try IO.close(a)
                let closedNow = isClosedHere(fileA)
                return (try reader.join(), closedNow)
            }.join()
            // Nobody waits at all.
            let (c, d) = try IO.socketpair()
            let fileC = fileIdentity(c)
            try IO.close(c)
            let closed = closedA && isClosedHere(fileC)
            try IO.close(b)
            try IO.close(d)
            var bad = false
            var huge = false
            do { try IO.close(-1) } catch UThreadError.system("close", let e) { bad = e == .badFileDescriptor }
            do { try IO.close(Int32.max) } catch UThreadError.system("close", let e) { huge = e == .badFileDescriptor }
            return (local, closed, bad, huge)
        }
        #expect(local == "closed")
        #expect(closed)
        #expect(bad)
        #expect(huge)
    }

    /// A worker-local thread closes, during the runtime's shutdown, a descriptor that a thread
    /// on the other worker once waited on (timed out: the entry stays): whether that worker
    /// still runs or has already left, the close completes and the runtime ends, and the
    /// descriptor is closed (no leak).
    @Test func closeDuringShutdownDoesNotHang() throws {
        let closedInDefer = MNFlag()
        let files = Mutex<Set<String>>([])
        try UThreadRuntime.run(workers: 2) {
            let (a, b) = try IO.socketpair()
            files.withLock { $0 = Set([a, b].compactMap(fileIdentity)) }
            let waited = try UThread.spawn(onWorker: 1) { () -> String in
                var byte: UInt8 = 0
                do {
                    _ = try withUnsafeMutableBytes(of: &byte) { try IO.read(a, into: $0, timeout: .milliseconds(1)) }
                } catch UThreadError.timedOut { return "timed out" } catch { return "\(error)" }
                return "read"
            }
            #expect(try waited.join() == "timed out")
            #expect(registry().watchers(of: a).workers == [1])
            try UThread.spawn(onWorker: 0) { () throws in
                _ = UThread.local {
                    defer {
                        try? IO.close(a)
                        try? IO.close(b)
                        closedInDefer.set()
                    }
                    try? UThread.sleep(for: .seconds(60))  // cancelled when main returns
                }
            }.join()
        }
        #expect(closedInDefer.isSet)
        let mine = files.withLock { $0 }
        #expect(mine.count == 2)
        #expect(mine.intersection(openFiles()).isEmpty)
    }

    /// A descriptor owner released inside a lock (its deinit closes the descriptor) while a
    /// thread on the other worker waits on it: the close must not wait holding the lock (the
    /// next thread of its worker to take the lock would trap on a recursive lock, or, with a
    /// pthread mutex, block the worker for good; found in review of the first version). The
    /// deferred close returns at once, and still wakes the reader and really closes the
    /// descriptor.
    @Test func aDeinitInsideALockDoesNotDeadlock() throws {
        let (outcome, writeError) = try UThreadRuntime.run(workers: 2) { () -> (String, UThreadError?) in
            let (fd, w) = try IO.pipe()
            let reader = try UThread.spawn(name: "reader", onWorker: 1) { readOutcome(fd) }
            #expect(try waitUntilParked(reader, .read))
            let box = LockedReader(owning: fd)  // a PipeReader: its deinit closes fd
            let dropper = try UThread.spawn(name: "dropper", onWorker: 0) { box.reader.withLock { $0 = nil } }
            let other = try UThread.spawn(name: "other", onWorker: 0) {
                UThread.yield()  // after the dropper, had it parked inside the lock
                box.reader.withLock { _ in }
            }
            try dropper.join()
            try other.join()
            let outcome = try reader.join()
            defer { try? IO.close(w) }
            var byte: UInt8 = 1
            do { _ = try withUnsafeBytes(of: &byte) { try IO.write(w, from: $0) } } catch let e as UThreadError {
                return (outcome, e)
            }
            return (outcome, nil)
        }
        #expect(outcome == "closed")
        #expect(writeError == .system(call: "write", errno: .brokenPipe), "the read end was really closed")
    }

    /// The same inside an `UMutex` (a lock that parks): the deinit's close returns at once.
    @Test func aDeinitInsideAUMutexAcrossWorkersDoesNotDeadlock() throws {
        let (outcome, closed) = try UThreadRuntime.run(workers: 2) { () -> (String, Bool) in
            let (a, b) = try IO.socketpair()
            let fileA = fileIdentity(a)
            let reader = try UThread.spawn(name: "reader", onWorker: 1) { readOutcome(a) }
            #expect(try waitUntilParked(reader, .read))
            let mutex = UMutex()
            let holder = MNBoxedStream(owning: a)
            try UThread.spawn(onWorker: 0) { () throws in
                try mutex.withLock { holder.stream.withLock { $0 = nil } }  // deinit → IO.close, lock held
            }.join()
            try UThread.spawn(onWorker: 0) { () throws in try mutex.withLock {} }.join()
            let outcome = try reader.join()
            let closed = isClosedHere(fileA)
            try IO.close(b)
            return (outcome, closed)
        }
        #expect(outcome == "closed")
        #expect(closed)
    }
}

/// A pipe's read end (a `PipeReader`, whose deinit closes it) behind a `Mutex`, shared by M:N
/// threads.
private final class LockedReader: Sendable {
    let reader: Mutex<PipeReader?>
    init(owning fd: Int32) { reader = Mutex(PipeReader(owning: fd)) }
}

/// A stream (its deinit closes it) that M:N threads can drop.
private final class MNBoxedStream: Sendable {
    let stream: Mutex<UnixStream?>
    init(owning fd: Int32) { stream = Mutex(UnixStream(owning: fd)) }
}
