import CUThreads
import Testing
@testable import UserThreads

/// The scheduling parameters given at spawn (`UThread(priority:)`, `UThread(scheduling:)`)
/// reach the policy of the worker that starts the thread, on any number of workers, and move
/// with the thread when it migrates.
@Suite(.timeLimit(.minutes(1))) struct MNSchedulingParametersTests {
    /// A policy that orders threads by a parameter, and four spawns whose parameters it ranks
    /// 4, 1, 3, 2 in spawn order (4 runs first).
    enum Ordered: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case priority, edf
        var testDescription: String { rawValue }

        var factory: @Sendable () -> any SchedulingPolicy {
            switch self {
            // No aging: the order must be the parameters' alone.
            case .priority: return { try! PriorityPolicy(agingInterval: nil) }
            case .edf: return { try! EDFPolicy() }
            }
        }

        /// Spawns the thread of rank `rank` (higher runs first) with this policy's parameter.
        func spawn(rank: Int, _ body: sending @escaping () -> Void) -> UThread<Void> {
            switch self {
            case .priority: return UThread(name: "rank \(rank)", priority: rank, body)
            case .edf:
                return UThread(name: "rank \(rank)", scheduling: .init(deadline: .seconds(100 - rank)), body)
            }
        }
    }

    /// Main spawns four threads in an order the policy must change, then joins them: on every
    /// worker the threads ran in the policy's order (with two workers the spawner's worker may
    /// have shed some to the idle one at the join, the ones it would run last), and on the
    /// spawner's worker the first to run was the highest ranked.
    @Test(arguments: Ordered.allCases, [1, 2])
    func theHighestRankedRunsFirstOnItsWorker(policy: Ordered, workers: Int) throws {
        let log = try UThreadRuntime.run(workers: workers, policy: policy.factory) { () -> [(rank: Int, worker: Int)] in
            UThread.pin()  // main stays on worker 0: "the spawner's worker" is 0
            let log = KernelLock<[(rank: Int, worker: Int)]>([])
            let threads = [4, 1, 3, 2].map { rank in
                policy.spawn(rank: rank) { log.withLock { $0.append((rank, UThread.worker)) } }
            }
            for t in threads { try t.join() }
            return log.withLock { $0 }
        }
        #expect(log.map(\.rank).sorted() == [1, 2, 3, 4])
        for w in 0..<workers {
            let ranks = log.filter { $0.worker == w }.map(\.rank)
            #expect(ranks == ranks.sorted(by: >), "worker \(w) ran ranks \(ranks)")
        }
        #expect(log.first { $0.worker == 0 }?.rank == 4)
    }

    /// Threads spawned with parameters on worker 0 under round-robin (worker 1 idle) are
    /// started there with them; each yields until some thread has run on worker 1 (it migrated:
    /// shed at the spawner's join or later; or for a bounded number of yields), checking after
    /// every yield that its row still holds what the spawn gave, the deadline counted from the
    /// spawn. "Ran on worker 1", not "ran on two workers": a thread shed at the spawner's park
    /// first runs on worker 1, and once both workers are busy nothing moves again.
    @Test func parametersGivenAtSpawnSurviveAMigration() throws {
        let (results, teardown) = try MNRuntime.runInspecting(
            workers: 2, policy: { try! RoundRobinPolicy(quantum: .microseconds(200)) }
        ) { () -> [Bool] in
            UThread.pin()
            let moved = MNFlag()
            let before = uthreads_monotonic_ns()
            let threads = (0..<6).map { i in
                UThread(scheduling: .init(priority: 5 + i, nice: -3, tickets: 300 + i, deadline: .seconds(100))) {
                    () -> Bool in
                    var intact = true
                    var yields = 0
                    repeat {
                        let row = Scheduler.active!.current
                        intact =
                            intact && row.pointee.priority == Int32(5 + i) && row.pointee.nice == -3
                            && row.pointee.tickets == UInt32(300 + i)
                            && row.pointee.sched_deadline_ns >= before + 100_000_000_000
                            && row.pointee.sched_deadline_ns <= uthreads_monotonic_ns() + 100_000_000_000
                        if UThread.worker != 0 { moved.set() }
                        UThread.yield()
                        yields += 1
                    } while !moved.isSet && yields < 2_000_000
                    return intact
                }
            }
            return try threads.map { try $0.join() } + [moved.isSet]
        }
        #expect(results.allSatisfy { $0 })
        #expect(teardown.statistics.migrations > 0)
        #expect(teardown.rowsLeft == 0 && teardown.stacksLeft == 0)
    }

    /// A spawn with tickets above the maximum fails on several workers as on one: `join()`
    /// throws `.invalidArgument`, and nothing is left behind.
    @Test(arguments: [1, 2])
    func invalidParametersFailTheThread(workers: Int) throws {
        let error = try UThreadRuntime.run(workers: workers, policy: { try! StridePolicy() }) { () -> UThreadError? in
            let t = UThread(scheduling: .init(tickets: SchedulingParameters.maximumTickets + 1)) { 1 }
            do {
                _ = try t.join()
                return nil
            } catch let e as UThreadError {
                return e
            }
        }
        guard case .invalidArgument = error else {
            Issue.record("expected invalidArgument, got \(String(describing: error))")
            return
        }
    }
}
