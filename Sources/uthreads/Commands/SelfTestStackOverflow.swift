// `uthreads selftest stack-overflow MODE KIND [WORKERS]`: a user thread overflows its stack on
// purpose, and the process must die by the runtime's report naming it (the test suite checks
// the report: Tests/UserThreadsTests/Stacks/StackOverflowTests.swift).
import ArgumentParser
import UserThreads

struct StackOverflowScenario {
    /// How the thread overflows.
    enum Kind: String {
        /// Unbounded recursion of small frames (~600 bytes each).
        case recursion
        /// Unbounded recursion that parks (sleeps 1 µs) at every level: in dense mode the check
        /// at the switch finds the stack pointer below the slot before another thread runs.
        case parking
        /// Half the stack used, then one function with a 64 KiB local buffer: its frame reaches
        /// 32 KiB below the stack, past where a one-page guard would end (in a debug build its
        /// first store, a spill, lands at the frame's bottom, 64 KiB down).
        case frame
    }

    let mode: StackMode
    let kind: Kind
    /// M:N workers; nil runs the M:1 runtime.
    let workers: Int?

    init(arguments: [String]) throws {
        guard arguments.count == 2 || arguments.count == 3,
            let mode = StackMode(rawValue: arguments[0]), mode != .automatic,
            let kind = Kind(rawValue: arguments[1])
        else {
            throw ValidationError(
                "stack-overflow needs MODE (guarded | dense) KIND (recursion | parking | frame) [WORKERS]")
        }
        var workers: Int?
        if arguments.count == 3 {
            guard let n = Int(arguments[2]), n >= 1 else { throw ValidationError("WORKERS must be a positive number") }
            workers = n
        }
        (self.mode, self.kind, self.workers) = (mode, kind, workers)
    }

    // A second thread is spawned right after the overflowing one and runs after it: its stack
    // is mapped next, usually directly below (the kernel hands out mappings top-down; in dense
    // mode it is the slot below), so an overflow that steps over a too-small guard lands in a
    // live stack, as in a real server, rather than in unmapped memory that faults anyway.

    /// The overflowing thread's name, which the report must show.
    var threadName: String { "overflow-\(kind.rawValue)" }
    /// Guarded: the smallest stack a 64 KiB frame at half depth overflows. Dense: the slot's.
    var stackSize: Int? { mode == .guarded ? 64 * 1024 : nil }

    func run() throws {
        var configuration = UThreadRuntime.Configuration()
        configuration.stackMode = mode
        let kind = self.kind
        let body: @Sendable () -> Void = {
            switch kind {
            case .recursion: _ = recurse(1_000_000)
            case .parking: _ = recurseParking(1_000_000)
            case .frame: _ = consume(32 * 1024) { largeFrame(7) }
            }
        }
        if let workers {
            let (name, size) = (threadName, stackSize)
            // On the last worker: with two or more, a kernel thread other than the process's
            // first, so the handler must find the thread through that kernel thread's current.
            try UThreadRuntime.run(workers: workers, configuration) {
                let overflowing = try UThread.spawn(name: name, onWorker: workers - 1, stackSize: size, body)
                let neighbour = try UThread.spawn(name: "neighbour", onWorker: workers - 1, stackSize: size) {}
                try overflowing.join()
                try neighbour.join()
            }
        } else {
            try UThreadRuntime.run(configuration) {
                let overflowing = UThread(name: threadName, stackSize: stackSize, body)
                let neighbour = UThread(name: "neighbour", stackSize: stackSize) {}
                try overflowing.join()
                try neighbour.join()
            }
        }
        // Reached only if the overflow went unnoticed.
        print("no overflow was reported")
    }
}

/// Recursion of ~300-byte frames that parks at every level.
@inline(never)
func recurseParking(_ n: Int) -> Int {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { buffer in
        buffer.initialize(repeating: UInt8(truncatingIfNeeded: n))
        try? UThread.sleep(for: .microseconds(1))  // a switch
        return n == 0 ? 0 : recurseParking(n - 1) &+ Int(buffer[n % 256])
    }
}

/// Uses about `bytes` of stack in 1 KiB frames, then calls `body` at that depth.
@inline(never)
func consume(_ bytes: Int, then body: () -> Int) -> Int {
    if bytes <= 0 { return body() }
    return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { buffer in  // on the stack (<= 1 KiB)
        buffer.initialize(repeating: UInt8(truncatingIfNeeded: bytes))
        return consume(bytes - 1024, then: body) &+ Int(buffer[bytes % 1024])
    }
}

/// A function whose frame holds a 64 KiB buffer, initialised from its lowest byte up (as any
/// buffer is): the first store lands 64 KiB below the caller's stack pointer.
@inline(never)
func largeFrame(_ seed: UInt8) -> Int {
    var buffer = InlineArray<65536, UInt8>(repeating: seed)
    buffer[Int(seed)] = seed &+ 1
    return withUnsafeBytes(of: &buffer) { sumOf($0) }
}

@inline(never)
func sumOf(_ bytes: UnsafeRawBufferPointer) -> Int {
    var sum = 0
    for i in stride(from: 0, to: bytes.count, by: 4096) { sum &+= Int(bytes[i]) }
    return sum
}
