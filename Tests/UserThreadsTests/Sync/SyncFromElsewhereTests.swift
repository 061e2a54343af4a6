// The operations of a sync object that do not wait (a semaphore's signal, a condition's signal
// and broadcast, destroy) called from a kernel thread that is not the object's: a thread outside
// every runtime, or a user thread of another runtime. An object made inside an M:1 runtime is
// bound to it (SyncSupport.swift, "Bare or locked"): such a call is posted to that runtime and
// applied on its kernel thread; under two workers the object is shared and the call takes its
// lock. Either way every signal arrives and nothing is raced (scripts/tsan.sh sees no report).
// A wait group's `add` and `done` answer at once from anywhere (its count is an atomic word;
// only the wake at zero is posted: UWaitGroup.swift), also from a `blocking {}` body.
import CUThreads
import Foundation
import Synchronization
import Testing

@testable import UserThreads

/// Where a call from elsewhere runs: a kernel thread outside every runtime, or the main thread
/// of an M:1 runtime of its own on another kernel thread.
enum Elsewhere: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case kernelThread = "a kernel thread"
    case anotherRuntime = "another runtime"
    var testDescription: String { rawValue }

    /// Runs `body` there, on a new kernel thread; the returned flag is set once it returned.
    func run(_ body: @escaping @Sendable () -> Void) -> ElsewhereDone {
        runElsewhere(workers: self == .kernelThread ? nil : 1, body)
    }
}

/// Runs `body` on a new kernel thread: outside every runtime when `workers` is nil, else as the
/// main thread of a runtime of its own with that many workers. The returned flag is set once
/// it returned (with the runtime's error, if it failed).
func runElsewhere(workers: Int?, _ body: @escaping @Sendable () -> Void) -> ElsewhereDone {
    let done = ElsewhereDone()
    Thread {
        do {
            if let workers { try UThreadRuntime.run(workers: workers) { body() } } else { body() }
        } catch { done.failure.withLock { $0 = "\(error)" } }
        done.flag.store(true, ordering: .releasing)
    }.start()
    return done
}

/// Set when a body run elsewhere has returned; the error of its runtime, if it failed.
final class ElsewhereDone: Sendable {
    let flag = Atomic<Bool>(false)
    let failure = KernelLock<String?>(nil)
    var isSet: Bool { flag.load(ordering: .acquiring) }
}

/// A counter any kernel thread may bump.
final class SharedCount: Sendable {
    private let n = Atomic<Int>(0)
    func add() { n.add(1, ordering: .relaxed) }
    var value: Int { n.load(ordering: .relaxed) }
}

/// What a wait ended with: "closed", "timed out", "returned", or another error.
private func outcome(_ body: () throws -> Void) -> String {
    do {
        try body()
        return "returned"
    } catch let error as UThreadError {
        if case .closed = error { return "closed" }
        return "\(error)"
    } catch { return "\(type(of: error))" }
}

/// Where a wait group is counted from in the wait group tests: a kernel thread outside every
/// runtime, a `blocking {}` body of the group's own runtime, or the main thread of an M:1
/// runtime of its own.
enum Counter: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case kernelThread = "a kernel thread"
    case blockingBody = "a blocking {} body"
    case anotherRuntime = "another runtime"
    var testDescription: String { rawValue }

    /// Runs `body` there; the returned flag is set once it returned. Called on a user thread
    /// (a `blocking {}` body is started by a thread of the caller's runtime).
    func run(_ body: @escaping @Sendable () -> Void) -> ElsewhereDone {
        switch self {
        case .kernelThread: return Elsewhere.kernelThread.run(body)
        case .anotherRuntime: return Elsewhere.anotherRuntime.run(body)
        case .blockingBody:
            let done = ElsewhereDone()
            _ = UThread(name: "blocking") {
                do { try blocking { body() } } catch { done.failure.withLock { $0 = "\(error)" } }
                done.flag.store(true, ordering: .releasing)
            }
            return done
        }
    }
}

/// Runs `body`, recording what it threw in `errors` (for calls made where `#expect` cannot).
private func noting(_ errors: SyncLog<String>, _ body: () throws -> Void) {
    do { try body() } catch { errors.add("\(error)") }
}

@Suite(.timeLimit(.minutes(1)))
struct SyncFromElsewhereTests {
    /// Permits signalled from elsewhere while the runtime's own threads signal and take them
    /// all arrive: the taker gets every one of them and none is left over.
    @Test(arguments: syncWorkerCounts, Elsewhere.allCases)
    func semaphoreSignalsFromElsewhereAllArrive(workers: Int, from: Elsewhere) throws {
        let rounds = 1_000
        let (left, failure) = try runOn(workers: workers) { () -> (Int, String?) in
            let permits = USemaphore(name: "permits")
            let taker = UThread(name: "taker") {
                for _ in 0..<(2 * rounds) { try permits.wait(timeout: .seconds(20)) }
            }
            let done = from.run { for _ in 0..<rounds { permits.signal() } }
            for _ in 0..<rounds {
                permits.signal()
                UThread.yield()
            }
            try taker.join()
            try waitFor { done.isSet }
            return (permits.value, done.failure.withLock { $0 })
        }
        #expect(left == 0)
        #expect(failure == nil)
    }

    /// Waiters that wait on a condition round after round are woken by signals (or broadcasts)
    /// from elsewhere, sent until every waiter has done all its rounds.
    @Test(arguments: syncWorkerCounts, Elsewhere.allCases)
    func conditionSignalsFromElsewhereWakeWaiters(workers: Int, from: Elsewhere) throws {
        for broadcast in [false, true] {
            let waiters = 3
            let rounds = 100
            let (finished, failure) = try runOn(workers: workers) { () -> (Int, String?) in
                let m = UMutex(name: "m")
                let ready = UCondition(name: "ready")
                let finished = SharedCount()
                let threads = (0..<waiters).map { i in
                    UThread(name: "waiter \(i)") {
                        for _ in 0..<rounds {
                            try m.lock()
                            defer { try? m.unlock() }
                            try ready.wait(m, timeout: .seconds(20))
                        }
                        finished.add()
                    }
                }
                let done = from.run {
                    while finished.value < waiters {
                        if broadcast { ready.broadcast() } else { ready.signal() }
                        sched_yield()
                    }
                }
                for t in threads { try t.join() }
                try waitFor { done.isSet }
                return (finished.value, done.failure.withLock { $0 })
            }
            #expect(finished == waiters, "broadcast: \(broadcast)")
            #expect(failure == nil)
        }
    }

    /// `destroy()` from elsewhere closes a semaphore, a condition and a barrier: their waiters
    /// (parked already, or arriving later) throw `UThreadError.closed`.
    @Test(arguments: syncWorkerCounts, Elsewhere.allCases)
    func destroyFromElsewhereClosesEveryWaiter(workers: Int, from: Elsewhere) throws {
        let outcomes = try runOn(workers: workers) { () -> [String] in
            let permits = USemaphore(name: "permits")
            let ready = UCondition(name: "ready")
            let m = UMutex(name: "m")
            let phase = try UBarrier(parties: 3, name: "phase")
            let threads = [
                UThread(name: "semaphore") { outcome { try permits.wait(timeout: .seconds(20)) } },
                UThread(name: "condition") {
                    outcome {
                        try m.lock()
                        defer { try? m.unlock() }
                        try ready.wait(m, timeout: .seconds(20))
                    }
                },
                UThread(name: "barrier") { outcome { _ = try phase.arriveAndWait(timeout: .seconds(20)) } },
            ]
            let done = from.run {
                permits.destroy()
                ready.destroy()
                phase.destroy()
            }
            let outcomes = try threads.map { try $0.join() }
            try waitFor { done.isSet }
            return outcomes + [done.failure.withLock { $0 } ?? "ok"]
        }
        #expect(outcomes == ["closed", "closed", "closed", "ok"])
    }

    /// `close()` from elsewhere ends a channel's parked receivers (nil) and senders
    /// (`closed`), as a close on the channel's own runtime does.
    @Test(arguments: syncWorkerCounts, Elsewhere.allCases)
    func closeFromElsewhereEndsEveryParkedThread(workers: Int, from: Elsewhere) throws {
        let outcomes = try runOn(workers: workers) { () -> [String] in
            let jobs = Channel<Int>(name: "jobs")
            let results = try Channel<Int>(capacity: 1, name: "results")
            try results.send(0)  // full: the sender below parks
            let threads = [
                UThread(name: "receiver") { (try jobs.receive(timeout: .seconds(20))).map { "\($0)" } ?? "nil" },
                UThread(name: "sender") { outcome { try results.send(1, timeout: .seconds(20)) } },
            ]
            let done = from.run {
                jobs.close()
                results.close()
            }
            let outcomes = try threads.map { try $0.join() }
            try waitFor { done.isSet }
            return outcomes + [done.failure.withLock { $0 } ?? "ok"]
        }
        #expect(outcomes == ["nil", "closed", "ok"])
    }

    /// `done()` from elsewhere, one task at a time, while the group's own runtime adds and
    /// finishes tasks of its own on the same count: every call is accepted (none is refused
    /// as foreign, none finds the count out of range), and both waiters, parked before the
    /// first `done`, return once the count is zero, which it is at the end.
    @Test(arguments: syncWorkerCounts, Counter.allCases)
    func waitGroupDoneFromElsewhereWakesEveryWaiter(workers: Int, from: Counter) throws {
        let rounds = 1_000
        let (outcomes, pending, errors) = try runOn(workers: workers) { () -> ([String], Int, [String]) in
            let tasks = UWaitGroup(name: "tasks")
            try tasks.add(rounds)
            let waiters = (0..<2).map { i in
                UThread(name: "waiter \(i)") { outcome { try tasks.wait(timeout: .seconds(20)) } }
            }
            for w in waiters { #expect(try waitUntilParked(w, .waitGroup)) }
            let errors = SyncLog<String>()
            let done = from.run { for _ in 0..<rounds { noting(errors) { try tasks.done() } } }
            for _ in 0..<rounds {
                try tasks.add()
                UThread.yield()
                try tasks.done()
            }
            let outcomes = try waiters.map { try $0.join() }
            try waitFor { done.isSet }
            return (outcomes + [done.failure.withLock { $0 } ?? "ok"], tasks.pending, errors.all)
        }
        #expect(outcomes == ["returned", "returned", "ok"])
        #expect(pending == 0)
        #expect(errors.isEmpty, "\(errors)")
    }

    /// From elsewhere, `add` changes the count at once: the caller reads it back, and a wait
    /// the group's runtime starts after it (Go's rule: add before wait) parks instead of
    /// returning, until a `done` from elsewhere ends it. A `done` too many throws
    /// `invalidArgument` to that caller and leaves the count at zero.
    @Test(arguments: syncWorkerCounts, Counter.allCases)
    func waitGroupAddFromElsewhereIsSeenAtOnce(workers: Int, from: Counter) throws {
        let (seen, ended, pending, errors) = try runOn(workers: workers) { () -> ([Int], String, Int, [String]) in
            let tasks = UWaitGroup(name: "tasks")
            let added = ElsewhereDone()  // set by the caller elsewhere once it added
            let parked = ElsewhereDone()  // set here once the waiter parked
            let seen = SyncLog<Int>()
            let errors = SyncLog<String>()
            let done = from.run {
                noting(errors) { try tasks.add(2) }
                seen.add(tasks.pending)
                noting(errors) { try tasks.done() }
                seen.add(tasks.pending)
                added.flag.store(true, ordering: .releasing)
                while !parked.isSet { sched_yield() }
                noting(errors) { try tasks.done() }
                seen.add(tasks.pending)
                noting(errors) { try tasks.done() }  // one too many
                seen.add(tasks.pending)
            }
            try waitFor { added.isSet }
            let waiter = UThread(name: "waiter") { outcome { try tasks.wait(timeout: .seconds(20)) } }
            #expect(try waitUntilParked(waiter, .waitGroup))
            parked.flag.store(true, ordering: .releasing)
            let ended = try waiter.join()
            try waitFor { done.isSet }
            #expect(done.failure.withLock { $0 } == nil)
            return (seen.all, ended, tasks.pending, errors.all)
        }
        #expect(seen == [2, 1, 0, 0])
        #expect(ended == "returned")
        #expect(pending == 0)
        #expect(errors.count == 1)
        #expect(
            errors.first?.contains("UWaitGroup.add(-1): wait group 'tasks' would go negative (0 pending)") == true,
            "\(errors)")
    }

    /// A channel made outside every runtime and never used is closed by a kernel thread outside
    /// every runtime (it becomes shared): no runtime is needed.
    @Test func anUnusedChannelIsClosedOutsideEveryRuntime() {
        let c = Channel<Int>(name: "unused")
        #expect(c.close())
        #expect(!c.close())
    }

    /// Once the runtime an object belongs to has ended, a signal, broadcast, destroy or close
    /// from another kernel thread finds no runtime to post to and is dropped (its threads are
    /// gone, nobody waits): no crash, no change.
    @Test func operationsAfterTheRuntimeEndedAreDropped() throws {
        let (permits, ready, jobs) = try UThreadRuntime.run { () -> (USemaphore, UCondition, Channel<Int>) in
            (USemaphore(name: "permits"), UCondition(name: "ready"), Channel<Int>(name: "jobs"))
        }
        permits.signal()
        permits.destroy()
        #expect(!ready.signal())
        #expect(ready.broadcast() == 0)
        ready.destroy()
        #expect(!jobs.close())
        #expect(permits.value == 0)
        #expect(ready.waiting == 0)
    }
}
