import Glibc
import Testing
@testable import UserThreads

/// The idle spin's length follows what woke the worker (MN/MNIdleSpin.swift).
@Suite(.timeLimit(.minutes(1))) struct MNIdleSpinTests {
    static let full: UInt64 = 20_000

    @Test func aNewWorkerSpinsInFull() {
        #expect(MNIdleSpin().nanoseconds(full: Self.full) == Self.full)
    }

    @Test func sleepsEndedByReadinessHalveTheSpinThenStopIt() {
        var spin = MNIdleSpin()
        var lengths: [UInt64] = []
        for _ in 0..<(MNIdleSpin.off + 2) {
            spin.spun(found: false)
            spin.slept(rung: false, nanoseconds: 1_000, wokeThreads: true, full: Self.full)
            lengths.append(spin.nanoseconds(full: Self.full))
        }
        #expect(lengths == [10_000, 5_000, 2_500, 0, 0, 0])
    }

    @Test func aSpinThatFoundWorkOrATimelyDoorbellRestoresTheFullSpin() {
        var spin = MNIdleSpin()
        for _ in 0..<MNIdleSpin.off { spin.slept(rung: false, nanoseconds: 1_000, wokeThreads: true, full: Self.full) }
        spin.slept(rung: true, nanoseconds: 5_000, wokeThreads: false, full: Self.full)
        #expect(spin.nanoseconds(full: Self.full) == Self.full)
        spin.slept(rung: false, nanoseconds: 1_000, wokeThreads: true, full: Self.full)
        spin.spun(found: true)
        #expect(spin.nanoseconds(full: Self.full) == Self.full)
    }

    @Test func aLateDoorbellStepsBackOnceAndATimerChangesNothing() {
        var spin = MNIdleSpin()
        for _ in 0..<MNIdleSpin.off { spin.slept(rung: false, nanoseconds: 1_000, wokeThreads: true, full: Self.full) }
        spin.slept(rung: true, nanoseconds: 1_000_000, wokeThreads: true, full: Self.full)
        #expect(spin.nanoseconds(full: Self.full) == Self.full >> UInt64(MNIdleSpin.off - 1))
        spin.slept(rung: false, nanoseconds: 1_000_000, wokeThreads: false, full: Self.full)  // a timer
        #expect(spin.nanoseconds(full: Self.full) == Self.full >> UInt64(MNIdleSpin.off - 1))
        spin.spun(found: false)
        #expect(spin.nanoseconds(full: Self.full) == Self.full >> UInt64(MNIdleSpin.off - 1))
    }

    /// Two threads pinned on different workers ping-pong one byte over two pipes: each worker
    /// goes idle every round and is woken by its pipe's readiness, never by the other worker's
    /// doorbell. After a few rounds neither spins any more (a spin per idle pass before: about
    /// one per round).
    @Test func workersWokenByReadinessStopSpinning() throws {
        let rounds = 300
        let spins = try UThreadRuntime.run(workers: 2) { () -> Int in
            let there = try IO.pipe()
            let back = try IO.pipe()
            let echo = try UThread.spawn(onWorker: 1) { () throws in
                var byte: UInt8 = 0
                for _ in 0..<rounds {
                    _ = try withUnsafeMutableBytes(of: &byte) {
                        try IO.read(there.read, into: $0, timeout: .seconds(30))
                    }
                    try withUnsafeBytes(of: &byte) { try IO.write(back.write, all: $0, timeout: .seconds(30)) }
                }
            }
            let ping = try UThread.spawn(onWorker: 0) { () throws -> Int in
                var byte: UInt8 = 1
                let before = UThread.runtime!.statistics.idleSpins
                for _ in 0..<rounds {
                    try withUnsafeBytes(of: &byte) { try IO.write(there.write, all: $0, timeout: .seconds(30)) }
                    _ = try withUnsafeMutableBytes(of: &byte) {
                        try IO.read(back.read, into: $0, timeout: .seconds(30))
                    }
                }
                return UThread.runtime!.statistics.idleSpins - before
            }
            let spins = try ping.join()
            try echo.join()
            for fd in [there.read, there.write, back.read, back.write] { try IO.close(fd) }
            return spins
        }
        // At most `off` spins per worker before they stop, and a few around the start and the end.
        #expect(spins <= 2 * MNIdleSpin.off + 8, "\(spins) idle spins in \(rounds) rounds")
    }
}
