// withThreadGroup on one worker and on two: `spawn` children are ordinary threads (any
// worker), `spawnLocal` children stay with the caller. The group's rules (wait for all, cancel
// on the first error, a cancelled waiter cancels its children) at workers 1 and 2 are in
// ThreadGroupTests+Workers.swift.
import CUThreads
import Foundation
import Synchronization
import Testing
@testable import UserThreads

@Suite(.timeLimit(.minutes(1)))
struct ThreadGroupTests {

    /// A set any thread may add to (threads on another worker do).
    final class Seen: Sendable {
        let workers = Mutex<Set<Int>>([])
        /// Set once every worker was seen: the children's cheap test in their loop.
        let all = Atomic<Bool>(false)
        let expected: Int
        init(expected: Int) { self.expected = expected }
        func add(_ w: Int) {
            let n = workers.withLock { $0.insert(w).inserted ? $0.count : 0 }
            if n == expected { all.store(true, ordering: .releasing) }
        }
        var count: Int { workers.withLock { $0.count } }
        var isComplete: Bool { all.load(ordering: .acquiring) }
    }

    /// A counter any thread may bump.
    final class Count: Sendable {
        private let n = Atomic<Int>(0)
        func add() { n.add(1, ordering: .relaxed) }
        var value: Int { n.load(ordering: .relaxed) }
    }

    /// Children started by one thread run on every worker: each records its worker and yields
    /// (a safe point where a ready thread may move to an idle worker) until every worker was
    /// seen. Not under ThreadSanitizer: its yields are so slow there that the migration took
    /// longer than the time limit, and the other tests' races are what that run is for.
    @Test(
        .enabled(if: uthreads_tsan_enabled() == 0, "a yield loop until a migration: too slow under TSan"),
        arguments: [1, 2])
    func childrenAreSeenOnEveryWorker(workers: Int) throws {
        let seen = Seen(expected: workers)
        let finished = Count()
        try UThreadRuntime.run(workers: workers) {
            try withThreadGroup(name: "spread") { g in
                for _ in 0..<8 {
                    try g.spawn {
                        var last = UThread.worker
                        seen.add(last)
                        for _ in 0..<50_000_000 where !seen.isComplete {
                            UThread.yield()
                            if UThread.worker != last {
                                last = UThread.worker
                                seen.add(last)
                            }
                        }
                        finished.add()
                    }
                }
            }
            #expect(finished.value == 8)  // the scope waited for every child
        }
        #expect(seen.count == workers)
    }

    /// A non-`Sendable` object, handed to one child.
    final class Tally {
        var n = 0
    }

    /// `spawn` takes a `sending` body, as `UThread.init` does: a child may take a non-`Sendable`
    /// value that the caller no longer uses (this compiles only so), and run on any worker.
    @Test(arguments: [1, 2]) func aSpawnTakesASendingBody(workers: Int) throws {
        let total = Count()
        try UThreadRuntime.run(workers: workers) {
            try withThreadGroup { g in
                for i in 1...4 {
                    let tally = Tally()
                    tally.n = i
                    try g.spawn {
                        tally.n *= 10
                        for _ in 0..<tally.n { total.add() }
                    }
                }
            }
        }
        #expect(total.value == 100)
    }

    /// `spawnLocal` children share the caller's non-`Sendable` state; one spawned from a
    /// child that may move fails the group with `UThread.local`'s error (only one worker can
    /// never move a child away).
    @Test(arguments: [1, 2]) func localChildrenShareTheCallersState(workers: Int) throws {
        let (sum, nested) = try UThreadRuntime.run(workers: workers) { () -> (Int, Bool) in
            try UThread { () -> (Int, Bool) in
                var sum = 0
                try withThreadGroup { g in
                    for i in 1...10 { try g.spawnLocal { sum += i } }
                }
                var refused = false
                do {
                    try withThreadGroup { g in try g.spawn { try g.spawnLocal {} } }
                } catch UThreadError.invalidArgument { refused = true }
                return (sum, refused)
            }.join()
        }
        #expect(sum == 55)
        #expect(nested == (workers > 1))
    }

    /// A group that escaped its `withThreadGroup` refuses spawns once the scope has returned:
    /// `spawn` and `spawnLocal` throw `UThreadError.closed` naming the group, and no thread
    /// runs (none would be joined). From a kernel thread outside every runtime, even while the
    /// scope lasts, they throw `invalidArgument` (a spawn needs a user thread of the runtime).
    @Test(arguments: [1, 2]) func spawningIntoAnEscapedGroupThrows(workers: Int) throws {
        let ran = Count()
        let messages = try UThreadRuntime.run(workers: workers) { () -> [String?] in
            var escaped: UThreadGroup?
            var outside: String?
            try withThreadGroup(name: "gone") { g in
                escaped = g
                let handed = Handed(value: g)
                let message = try ControlSocketTests.onKernelThread { () -> String in
                    do {
                        try handed.value.spawn { ran.add() }
                        return "spawned"
                    } catch { return "\(error)" }
                }
                outside = message
            }
            let g = try #require(escaped)
            return [
                expectError(sameCaseAs: .closed("")) { try g.spawn { ran.add() } },
                expectError(sameCaseAs: .closed("")) { try g.spawnLocal { ran.add() } },
                outside,
            ]
        }
        #expect(messages[0]?.contains("thread group 'gone' has ended") == true, "\(messages)")
        #expect(messages[1]?.contains("thread group 'gone' has ended") == true, "\(messages)")
        #expect(messages[2]?.contains("UThreadGroup.spawn must be called on a user thread") == true, "\(messages)")
        #expect(ran.value == 0)
    }

    /// `cancelAll()` from elsewhere (a kernel thread outside every runtime, or a user thread of
    /// another runtime) while the group's caller keeps spawning: every child, those spawned
    /// before and after the call, ends cancelled, and the scope rethrows the cancellation.
    @Test(arguments: [1, 2], Elsewhere.allCases)
    func cancelAllFromElsewhereCancelsEveryChild(workers: Int, from: Elsewhere) throws {
        let children = 100
        let (outcome, cancelled, failure) = try UThreadRuntime.run(workers: workers) {
            () -> (String, Int, String?) in
            let cancelled = Count()
            var done: ElsewhereDone?
            let outcome: String
            do {
                try withThreadGroup(name: "sleepers") { g in
                    for i in 0..<children {
                        try g.spawn {
                            do { try UThread.sleep(for: .seconds(20)) } catch is CancellationError {
                                cancelled.add()
                                throw CancellationError()
                            }
                        }
                        if i == children / 4 {
                            let handed = Handed(value: g)
                            done = from.run { handed.value.cancelAll() }
                        }
                        UThread.yield()
                    }
                }
                outcome = "returned"
            } catch is CancellationError {
                outcome = "cancelled"
            }
            try waitFor { done?.isSet ?? true }
            return (outcome, cancelled.value, done?.failure.withLock { $0 })
        }
        #expect(outcome == "cancelled")
        #expect(cancelled == children)
        #expect(failure == nil)
    }

    /// Where a spawn into a group comes from when it is not from the group's own runtime.
    enum Outsider: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case kernelThread = "a kernel thread"
        case oneWorker = "a thread of another runtime of one worker"
        case twoWorkers = "a thread of another runtime of two workers"
        var testDescription: String { rawValue }

        /// Runs `body` there, on a new kernel thread (as the main thread of a runtime of its own
        /// for the runtimes); the returned flag is set once it returned.
        func run(_ body: @escaping @Sendable () -> Void) -> ElsewhereDone {
            switch self {
            case .kernelThread: runElsewhere(workers: nil, body)
            case .oneWorker: runElsewhere(workers: 1, body)
            case .twoWorkers: runElsewhere(workers: 2, body)
            }
        }
    }

    /// `spawn` and `spawnLocal` into a live group from a thread of another runtime (of one
    /// worker or two, into a group of one worker or two: the M:N group's state is shared and
    /// would not refuse it) throw `.foreignRuntime`, and from a kernel thread outside every
    /// runtime `invalidArgument`; the child never runs, the other runtime ends normally, and
    /// the group goes on: a spawn of its own after them runs and the scope returns.
    @Test(arguments: [1, 2], Outsider.allCases)
    func aSpawnFromAnotherRuntimeThrowsAndChangesNothing(workers: Int, from: Outsider) throws {
        let ran = Count()
        let (answers, failure) = try UThreadRuntime.run(workers: workers) { () -> ([String], String?) in
            let answers = KernelLock<[String]>([])
            var done: ElsewhereDone?
            try withThreadGroup(name: "home") { g in
                try g.spawn { ran.add() }
                let handed = Handed(value: g)
                done = from.run {
                    func attempt(_ spawn: () throws -> Void) {
                        let answer: String
                        do {
                            try spawn()
                            answer = "spawned"
                        } catch let error as UThreadError {
                            answer = error == .foreignRuntime ? "foreignRuntime" : "\(error)"
                        } catch { answer = "\(error)" }
                        answers.withLock { $0.append(answer) }
                    }
                    attempt { try handed.value.spawn { ran.add() } }
                    attempt { try handed.value.spawnLocal { ran.add() } }
                }
                try waitFor { done?.isSet ?? true }
                try g.spawn { ran.add() }
            }
            return (answers.withLock { $0 }, done?.failure.withLock { $0 })
        }
        if from == .kernelThread {
            #expect(answers.count == 2)
            #expect(answers.first?.contains("UThreadGroup.spawn must be called on a user thread") == true, "\(answers)")
            #expect(
                answers.last?.contains("UThreadGroup.spawnLocal must be called on a user thread") == true, "\(answers)")
        } else {
            #expect(answers == ["foreignRuntime", "foreignRuntime"])
        }
        #expect(failure == nil)
        #expect(ran.value == 2)
    }
}
