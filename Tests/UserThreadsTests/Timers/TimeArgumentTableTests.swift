// Every public call that takes a `timeout:` or `deadline:` (and the sleeps), run with time
// arguments over their whole range: negative (below and above a second), zero, one nanosecond,
// `.seconds(Int64.max)`, a deadline 300 ms past and one far ahead. The list of calls is checked
// against the sources, so a new timed call fails `everyTimedCallIsInTheTable` until it has a row.
import Foundation
import CUThreads
import Glibc
import Synchronization
import Testing
@testable import UserThreads

/// A time argument of the table.
enum TimeArgument: String, CaseIterable, Sendable, CustomStringConvertible {
    case minusOneNanosecond = "-1 ns"
    case minusHalfSecond = "-500 ms"
    case minusSecondAndHalf = "-1.5 s"
    case zero = "0"
    case oneNanosecond = "1 ns"
    case int64MaxSeconds = "Int64.max s"
    case pastDeadline = "300 ms ago"
    case farFuture = "in 10 years"

    var description: String { rawValue }

    /// Due at once: the call tries once, then times out. The others never come due in a test.
    var isDue: Bool { self != .int64MaxSeconds && self != .farFuture }

    /// As a duration from now.
    var duration: Duration {
        switch self {
        case .minusOneNanosecond: .nanoseconds(-1)
        case .minusHalfSecond: .milliseconds(-500)
        case .minusSecondAndHalf: .milliseconds(-1500)
        case .zero: .zero
        case .oneNanosecond: .nanoseconds(1)
        case .int64MaxSeconds: .seconds(Int64.max)
        case .pastDeadline: .milliseconds(-300)
        case .farFuture: .seconds(10 * 365 * 86_400)
        }
    }

    /// The values given to a call with parameters `parameters`: a call with both labels gets
    /// the two deadline cases as `deadline:` and the rest as `timeout:`.
    func limit(for parameters: TimedCall.Parameters) -> Limit {
        switch parameters {
        case .timeout: Limit(timeout: duration, deadline: nil)
        case .deadline: Limit(timeout: nil, deadline: .now + duration)
        case .both:
            self == .pastDeadline || self == .farFuture
                ? Limit(timeout: nil, deadline: .now + duration) : Limit(timeout: duration, deadline: nil)
        }
    }
}

/// What a call gets: a timeout, a deadline, or (for calls with both labels) either.
struct Limit: Sendable {
    var timeout: Duration?
    var deadline: ContinuousClock.Instant?
    /// For `timeout:`-only calls (`limit(for: .timeout)` always sets it).
    var t: Duration { timeout! }
    /// For `deadline:`-only calls.
    var d: ContinuousClock.Instant { deadline! }
}

/// How a call ended.
enum Outcome: Sendable, Equatable, CustomStringConvertible {
    case returned, timedOut, cancelled
    case failed(String)

    init(_ body: () throws -> Void) {
        do {
            try body()
            self = .returned
        } catch UThreadError.timedOut {
            self = .timedOut
        } catch is CancellationError {
            self = .cancelled
        } catch {
            self = .failed("\(error)")
        }
    }

    var description: String {
        switch self {
        case .returned: "returned"
        case .timedOut: "timed out"
        case .cancelled: "cancelled"
        case .failed(let e): "failed: \(e)"
        }
    }
}

/// The call, ready to run on a thread of its own, and what to undo after it.
struct Prepared {
    var call: (Limit) throws -> Void
    var cleanup: () throws -> Void = {}
}

/// Moves a value into an M:N thread's `@Sendable` closure. Sound here: the harness's threads
/// run one at a time (one worker), and each value is used by one thread after the other.
struct Handed<T>: @unchecked Sendable {
    let value: T
}

/// One row of the table.
struct TimedCall: @unchecked Sendable, CustomStringConvertible {
    /// The labels the call takes.
    enum Parameters: Sendable { case timeout, deadline, both }
    /// What the call finds.
    enum Resource: Sendable {
        /// Never available: due arguments time out, the others wait until cancelled.
        case unavailable
        /// Available: every argument returns.
        case available
        /// Available or not, depending on the machine (connect, standard streams): due
        /// arguments return or time out, the others return or wait until cancelled.
        case either
        /// A sleep: due arguments return at once, the others sleep until cancelled.
        case sleep
    }
    enum Runtime: Sendable { case m1, mn }

    /// The call as `scannedKeys` names it ("File.swift name(labels:)"), or a name of its own
    /// for calls the scan does not look for (sleeps, EDF deadlines).
    var key: String
    var parameters: Parameters
    var resource: Resource
    var runtime: Runtime = .m1
    /// The call waits for a Swift task to end (UThread.await): it cannot finish before a switch.
    var waitsForTask = false
    /// Due, the call still parks: a thread group waits for the children its limit cancelled
    /// (structured: the scope never returns while a child runs).
    var parksWhenDue = false
    /// Runs on the runtime's main thread: builds the resource and returns the call.
    var prepare: () throws -> Prepared

    var description: String { "\(key) [\(resource)\(runtime == .mn ? ", M:N" : "")]" }

    /// The outcomes allowed for `argument`.
    func allowed(_ argument: TimeArgument) -> [Outcome] {
        switch (resource, argument.isDue) {
        case (.unavailable, true): [.timedOut]
        case (.unavailable, false): [.cancelled]
        case (.available, _): [.returned]
        case (.either, true): [.returned, .timedOut]
        case (.either, false): [.returned, .cancelled]
        case (.sleep, true): [.returned]
        case (.sleep, false): [.cancelled]
        }
    }
}

/// Descriptors on which reads and writes cannot proceed (and a few that can).
final class BlockedDescriptors {
    /// Nothing is ever written into it.
    let emptyPipe: (read: Int32, write: Int32)
    /// A socketpair whose first end's send buffer is full and which has nothing to read.
    let full: (Int32, Int32)
    /// A datagram socket bound at `datagramPath` whose queue is full, and the socket that filled it.
    let datagramReceiver: Int32, datagramSender: Int32
    let datagramPath = "/tmp/uthreads-timeargs-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
    let datagramAddress: SocketAddress
    /// A listener with no pending connection.
    let listener: TCPListener
    let unixListener: UnixListener
    /// Stream objects over the same kinds of descriptors.
    let pipeReader: PipeReader, pipeWriter: PipeWriter
    let stream: (UnixStream, UnixStream)
    var buffer = [UInt8](repeating: 0, count: 64)

    init() throws {
        emptyPipe = try IO.pipe()
        full = try IO.socketpair()
        datagramAddress = try SocketAddress(unixPath: datagramPath)
        datagramReceiver = try IO.socket(family: .unix, type: Int32(SOCK_DGRAM.rawValue))
        let receiver = datagramReceiver
        guard (datagramAddress.withSockAddr { Glibc.bind(receiver, $0, $1) }) == 0 else {
            throw UThreadError.system(call: "bind", errno: .lastError)
        }
        datagramSender = try IO.socket(family: .unix, type: Int32(SOCK_DGRAM.rawValue))
        listener = try TCPListener(host: "127.0.0.1", port: 0)
        unixListener = try UnixListener(path: datagramPath + ".listener")
        (pipeReader, pipeWriter) = try Pipe.make()
        stream = try UnixStream.pair()
        // Fill: every descriptor here is non-blocking, so each loop ends at EAGAIN.
        let chunk = [UInt8](repeating: 1, count: 1 << 16)
        for fd in [full.0, stream.0.fileDescriptor] {
            while (chunk.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }) > 0 {}
        }
        let (sender, address) = (datagramSender, datagramAddress)
        while (address.withSockAddr { a, l in
            chunk.withUnsafeBytes { Glibc.sendto(sender, $0.baseAddress, 512, 0, a, l) }
        }) > 0 {}
    }

    func close() {
        for fd in [emptyPipe.read, emptyPipe.write, full.0, full.1, datagramReceiver, datagramSender] {
            try? IO.close(fd)
        }
        try? listener.close()
        try? unixListener.close()
        for s in [pipeReader, pipeWriter, stream.0, stream.1] as [DescriptorStream] { try? s.close() }
        unlink(datagramPath)
    }
}

extension TimedCall {
    /// A row whose call needs the blocked descriptors.
    static func io(
        _ key: String, _ resource: Resource = .unavailable,
        _ call: @escaping (BlockedDescriptors, Limit) throws -> Void
    ) -> TimedCall {
        TimedCall(key: key, parameters: .both, resource: resource) {
            let f = try BlockedDescriptors()
            return Prepared(call: { try call(f, $0) }, cleanup: { f.close() })
        }
    }

    /// A row whose call needs nothing prepared.
    static func plain(
        _ key: String, _ parameters: Parameters = .timeout, _ resource: Resource, runtime: Runtime = .m1,
        _ call: @escaping (Limit) throws -> Void
    ) -> TimedCall {
        TimedCall(key: key, parameters: parameters, resource: resource, runtime: runtime) { Prepared(call: call) }
    }
}

@Suite(.timeLimit(.minutes(3)))
struct TimeArgumentTableTests {
    // MARK: The table

    static let m1Sync: [TimedCall] = [
        TimedCall(key: "UMutex.swift lock(timeout:deadline:)", parameters: .both, resource: .unavailable) {
            let m = UMutex()
            try m.lock()  // held by the main thread
            return Prepared(
                call: { try m.lock(timeout: $0.timeout, deadline: $0.deadline) }, cleanup: { try m.unlock() })
        },
        TimedCall(key: "UMutex.swift lock(timeout:deadline:)", parameters: .both, resource: .available) {
            let m = UMutex()
            return Prepared(call: {
                try m.lock(timeout: $0.timeout, deadline: $0.deadline)
                try m.unlock()
            })
        },
        TimedCall(key: "UThread+Workers.swift join(timeout:deadline:)", parameters: .both, resource: .unavailable) {
            let gate = Channel<Int>()
            let t = UThread { _ = try gate.receive() }
            return Prepared(
                call: { try t.join(timeout: $0.timeout, deadline: $0.deadline) },
                cleanup: {
                    gate.close()
                    try t.join()
                })
        },
        TimedCall(key: "UThread+Workers.swift join(timeout:deadline:)", parameters: .both, resource: .available) {
            let t = UThread {}
            try t.join()
            return Prepared(call: { try t.join(timeout: $0.timeout, deadline: $0.deadline) })
        },
        TimedCall(key: "USemaphore.swift wait(timeout:deadline:)", parameters: .both, resource: .unavailable) {
            let s = USemaphore()
            return Prepared(call: { try s.wait(timeout: $0.timeout, deadline: $0.deadline) })
        },
        TimedCall(key: "USemaphore.swift wait(timeout:deadline:)", parameters: .both, resource: .available) {
            let s = try USemaphore(value: 1)
            return Prepared(call: { try s.wait(timeout: $0.timeout, deadline: $0.deadline) })
        },
        TimedCall(key: "UWaitGroup.swift wait(timeout:deadline:)", parameters: .both, resource: .unavailable) {
            let g = UWaitGroup()
            try g.add(1)
            return Prepared(call: { try g.wait(timeout: $0.timeout, deadline: $0.deadline) }, cleanup: { try g.done() })
        },
        TimedCall(key: "UWaitGroup.swift wait(timeout:deadline:)", parameters: .both, resource: .available) {
            let g = UWaitGroup()
            return Prepared(call: { try g.wait(timeout: $0.timeout, deadline: $0.deadline) })
        },
        TimedCall(key: "UBarrier.swift arriveAndWait(timeout:deadline:)", parameters: .both, resource: .unavailable) {
            let b = try UBarrier(parties: 2)
            return Prepared(call: { _ = try b.arriveAndWait(timeout: $0.timeout, deadline: $0.deadline) })
        },
        TimedCall(key: "UBarrier.swift arriveAndWait(timeout:deadline:)", parameters: .both, resource: .available) {
            let b = try UBarrier(parties: 1)
            return Prepared(call: { _ = try b.arriveAndWait(timeout: $0.timeout, deadline: $0.deadline) })
        },
        // A child that waits for a value nobody sends: the limit (or the caller's cancel)
        // cancels it, and the scope waits for it before it throws.
        TimedCall(
            key: "ThreadGroup.swift withThreadGroup(name:timeout:deadline:_:)", parameters: .both,
            resource: .unavailable, parksWhenDue: true
        ) {
            let never = Channel<Int>()
            return Prepared(call: { limit in
                try withThreadGroup(timeout: limit.timeout, deadline: limit.deadline) { g in
                    try g.spawn { _ = try never.receive() }
                }
            })
        },
        TimedCall(
            key: "ThreadGroup.swift withThreadGroup(name:timeout:deadline:_:)", parameters: .both, resource: .available
        ) {
            Prepared(call: { limit in try withThreadGroup(timeout: limit.timeout, deadline: limit.deadline) { _ in } })
        },
        TimedCall(key: "URWLock.swift readLock(timeout:deadline:)", parameters: .both, resource: .unavailable) {
            let l = URWLock()
            try l.writeLock()
            return Prepared(
                call: { try l.readLock(timeout: $0.timeout, deadline: $0.deadline) }, cleanup: { try l.writeUnlock() })
        },
        TimedCall(key: "URWLock.swift writeLock(timeout:deadline:)", parameters: .both, resource: .unavailable) {
            let l = URWLock()
            try l.readLock()
            return Prepared(
                call: { try l.writeLock(timeout: $0.timeout, deadline: $0.deadline) }, cleanup: { try l.readUnlock() })
        },
        TimedCall(key: "URWLock.swift readLock(timeout:deadline:)", parameters: .both, resource: .available) {
            let l = URWLock()
            return Prepared(call: {
                try l.readLock(timeout: $0.timeout, deadline: $0.deadline)
                try l.readUnlock()
            })
        },
        TimedCall(key: "UCondition.swift wait(_:timeout:deadline:)", parameters: .both, resource: .unavailable) {
            let (m, c) = (UMutex(), UCondition())
            return Prepared(call: { limit in
                try m.lock()
                defer { try? m.unlock() }
                try c.wait(m, timeout: limit.timeout, deadline: limit.deadline)
            })
        },
        TimedCall(key: "UCondition.swift wait(_:until:timeout:deadline:)", parameters: .both, resource: .unavailable) {
            let (m, c) = (UMutex(), UCondition())
            return Prepared(call: { limit in
                try m.lock()
                defer { try? m.unlock() }
                try c.wait(m, until: { false }, timeout: limit.timeout, deadline: limit.deadline)
            })
        },
        TimedCall(key: "UCondition.swift wait(_:until:timeout:deadline:)", parameters: .both, resource: .available) {
            let (m, c) = (UMutex(), UCondition())
            return Prepared(call: { limit in
                try m.lock()
                defer { try? m.unlock() }
                try c.wait(m, until: { true }, timeout: limit.timeout, deadline: limit.deadline)
            })
        },
        TimedCall(key: "Channel.swift send(_:timeout:)", parameters: .timeout, resource: .unavailable) {
            let c = Channel<Int>()  // rendezvous, no receiver
            return Prepared(call: { try c.send(1, timeout: $0.t) })
        },
        TimedCall(key: "Channel.swift send(_:timeout:)", parameters: .timeout, resource: .available) {
            let c = try Channel<Int>(capacity: 1)
            return Prepared(call: { try c.send(1, timeout: $0.t) })
        },
        TimedCall(key: "Channel.swift send(_:deadline:)", parameters: .deadline, resource: .unavailable) {
            let c = Channel<Int>()
            return Prepared(call: { try c.send(1, deadline: $0.d) })
        },
        TimedCall(key: "Channel.swift send(_:deadline:)", parameters: .deadline, resource: .available) {
            let c = try Channel<Int>(capacity: 1)
            return Prepared(call: { try c.send(1, deadline: $0.d) })
        },
        TimedCall(key: "Channel.swift receive(timeout:)", parameters: .timeout, resource: .unavailable) {
            let c = Channel<Int>()
            return Prepared(call: { _ = try c.receive(timeout: $0.t) })
        },
        TimedCall(key: "Channel.swift receive(timeout:)", parameters: .timeout, resource: .available) {
            let c = try Channel<Int>(capacity: 1)
            try c.send(7)
            return Prepared(call: { _ = try c.receive(timeout: $0.t) })
        },
        TimedCall(key: "Channel.swift receive(deadline:)", parameters: .deadline, resource: .unavailable) {
            let c = Channel<Int>()
            return Prepared(call: { _ = try c.receive(deadline: $0.d) })
        },
        TimedCall(key: "Channel.swift receive(deadline:)", parameters: .deadline, resource: .available) {
            let c = try Channel<Int>(capacity: 1)
            try c.send(7)
            return Prepared(call: { _ = try c.receive(deadline: $0.d) })
        },
        TimedCall(key: "Select.swift channelSelect(timeout:deadline:_:)", parameters: .both, resource: .unavailable) {
            let c = Channel<Int>()
            return Prepared(call: { limit in
                _ = try channelSelect(timeout: limit.timeout, deadline: limit.deadline) { (s: ChannelSelect<Int>) in
                    s.receive(from: c) { $0 ?? 0 }
                }
            })
        },
        TimedCall(key: "Select.swift channelSelect(timeout:deadline:_:)", parameters: .both, resource: .available) {
            let c = try Channel<Int>(capacity: 1)
            try c.send(7)
            return Prepared(call: { limit in
                _ = try channelSelect(timeout: limit.timeout, deadline: limit.deadline) { (s: ChannelSelect<Int>) in
                    s.receive(from: c) { $0 ?? 0 }
                }
            })
        },
        TimedCall(
            key: "AwaitAsync.swift await(timeout:deadline:_:)", parameters: .both, resource: .unavailable,
            waitsForTask: true
        ) {
            Prepared(call: { limit in
                _ = try UThread.await(timeout: limit.timeout, deadline: limit.deadline) {
                    try await Task.sleep(for: .seconds(3600))
                }
            })
        },
        .plain("UThread.sleep(for:)", .timeout, .sleep) { try UThread.sleep(for: $0.t) },
        .plain("UThread.sleep(until:)", .deadline, .sleep) { try UThread.sleep(until: $0.d) },
        // EDF deadlines: never waited on, only stored; any value must be accepted.
        .plain("UThread.setDeadline(_:)", .timeout, .available) { UThread.setDeadline($0.t) },
        .plain("SchedulingPolicy.swift init(priority:nice:tickets:deadline:)", .timeout, .available) { limit in
            _ = UThread(name: "edf", scheduling: .init(deadline: limit.t)) {}  // runs after the call
        },
    ]

    static let m1IO: [TimedCall] = [
        .io("IO+ReadWrite.swift read(_:into:timeout:deadline:)") { f, l in
            _ = try f.buffer.withUnsafeMutableBytes {
                try IO.read(f.emptyPipe.read, into: $0, timeout: l.timeout, deadline: l.deadline)
            }
        },
        .io("IO+ReadWrite.swift read(_:into:timeout:deadline:)", .available) { f, l in
            _ = try [UInt8(1)].withUnsafeBytes { try IO.write(f.emptyPipe.write, from: $0) }
            _ = try f.buffer.withUnsafeMutableBytes {
                try IO.read(f.emptyPipe.read, into: $0, timeout: l.timeout, deadline: l.deadline)
            }
        },
        .io("IO+ReadWrite.swift write(_:from:timeout:deadline:)") { f, l in
            _ = try f.buffer.withUnsafeBytes {
                try IO.write(f.full.0, from: $0, timeout: l.timeout, deadline: l.deadline)
            }
        },
        .io("IO+ReadWrite.swift write(_:all:timeout:deadline:)") { f, l in
            try f.buffer.withUnsafeBytes { try IO.write(f.full.0, all: $0, timeout: l.timeout, deadline: l.deadline) }
        },
        .io("IO+ReadWrite.swift readv(_:_:timeout:deadline:)") { f, l in
            try f.buffer.withUnsafeMutableBytes { b in
                let v = [iovec(iov_base: b.baseAddress, iov_len: b.count)]
                _ = try v.withUnsafeBufferPointer {
                    try IO.readv(f.full.0, $0, timeout: l.timeout, deadline: l.deadline)
                }
            }
        },
        .io("IO+ReadWrite.swift writev(_:_:timeout:deadline:)") { f, l in
            try f.buffer.withUnsafeMutableBytes { b in
                let v = [iovec(iov_base: b.baseAddress, iov_len: b.count)]
                _ = try v.withUnsafeBufferPointer {
                    try IO.writev(f.full.0, $0, timeout: l.timeout, deadline: l.deadline)
                }
            }
        },
        .io("IO+ReadWrite.swift waitReadable(_:timeout:deadline:)") { f, l in
            try IO.waitReadable(f.emptyPipe.read, timeout: l.timeout, deadline: l.deadline)
        },
        .io("IO+ReadWrite.swift waitWritable(_:timeout:deadline:)") { f, l in
            try IO.waitWritable(f.full.0, timeout: l.timeout, deadline: l.deadline)
        },
        .io("IO+Sockets.swift recv(_:into:flags:timeout:deadline:)") { f, l in
            _ = try f.buffer.withUnsafeMutableBytes {
                try IO.recv(f.full.0, into: $0, timeout: l.timeout, deadline: l.deadline)
            }
        },
        .io("IO+Sockets.swift send(_:from:flags:timeout:deadline:)") { f, l in
            _ = try f.buffer.withUnsafeBytes {
                try IO.send(f.full.0, from: $0, timeout: l.timeout, deadline: l.deadline)
            }
        },
        .io("IO+Sockets.swift send(_:all:flags:timeout:deadline:)") { f, l in
            try f.buffer.withUnsafeBytes { try IO.send(f.full.0, all: $0, timeout: l.timeout, deadline: l.deadline) }
        },
        .io("IO+Sockets.swift recvfrom(_:into:flags:timeout:deadline:)") { f, l in
            _ = try f.buffer.withUnsafeMutableBytes {
                try IO.recvfrom(f.full.0, into: $0, timeout: l.timeout, deadline: l.deadline)
            }
        },
        .io("IO+Sockets.swift sendto(_:from:to:flags:timeout:deadline:)") { f, l in
            _ = try f.buffer.withUnsafeBytes {
                try IO.sendto(
                    f.datagramSender, from: $0, to: f.datagramAddress, timeout: l.timeout, deadline: l.deadline)
            }
        },
        .io("IO+Sockets.swift recvmsg(_:_:flags:timeout:deadline:)") { f, l in
            try withMessage(&f.buffer) { _ = try IO.recvmsg(f.full.0, $0, timeout: l.timeout, deadline: l.deadline) }
        },
        .io("IO+Sockets.swift sendmsg(_:_:flags:timeout:deadline:)") { f, l in
            try withMessage(&f.buffer) { _ = try IO.sendmsg(f.full.0, $0, timeout: l.timeout, deadline: l.deadline) }
        },
        .io("IO+Sockets.swift accept(_:timeout:deadline:)") { f, l in
            _ = try IO.accept(f.listener.fileDescriptor, timeout: l.timeout, deadline: l.deadline)
        },
        .io("IO+Sockets.swift acceptWithAddress(_:timeout:deadline:)") { f, l in
            _ = try IO.acceptWithAddress(f.listener.fileDescriptor, timeout: l.timeout, deadline: l.deadline)
        },
        .io("TCPListener.swift accept(timeout:deadline:)") { f, l in
            _ = try f.listener.accept(timeout: l.timeout, deadline: l.deadline)
        },
        .io("UnixListener.swift accept(timeout:deadline:)") { f, l in
            _ = try f.unixListener.accept(timeout: l.timeout, deadline: l.deadline)
        },
        .io("IO+Sockets.swift connect(_:to:timeout:deadline:)", .either) { f, l in
            let fd = try IO.socket(family: .ipv4)
            defer { try? IO.close(fd) }
            try IO.connect(fd, to: f.listener.localAddress, timeout: l.timeout, deadline: l.deadline)
        },
        .io("TCPStream.swift connect(to:timeout:deadline:)", .either) { f, l in
            try TCPStream.connect(to: f.listener.localAddress, timeout: l.timeout, deadline: l.deadline).close()
        },
        .io("TCPStream.swift connect(host:port:timeout:deadline:)", .either) { f, l in
            try TCPStream.connect(
                host: "127.0.0.1", port: f.listener.localAddress.port, timeout: l.timeout, deadline: l.deadline
            ).close()
        },
        // A pool call held on a semaphore until the cleanup: due arguments throw without
        // running it, the others wait until cancelled (the call is then abandoned to the pool).
        TimedCall(key: "Blocking.swift blocking(timeout:deadline:_:)", parameters: .both, resource: .unavailable) {
            let gate = DispatchSemaphore(value: 0)
            return Prepared(
                call: { l in _ = try blocking(timeout: l.timeout, deadline: l.deadline) { gate.wait() } },
                cleanup: { gate.signal() })
        },
        // A call that returns at once: due arguments still throw (it never runs), the others
        // return unless the cancel comes first.
        .plain("Blocking.swift blocking(timeout:deadline:_:)", .both, .either) { l in
            _ = try blocking(timeout: l.timeout, deadline: l.deadline) { 1 }
        },
        // Regular files on the pool: due arguments throw without touching the file, the
        // others read or write it unless the cancel comes first.
        TimedCall(key: "Files.swift readFile(_:timeout:deadline:)", parameters: .both, resource: .either) {
            Prepared(call: { l in _ = try IO.readFile("/proc/self/stat", timeout: l.timeout, deadline: l.deadline) })
        },
        TimedCall(key: "Files.swift writeFile(_:_:timeout:deadline:)", parameters: .both, resource: .either) {
            let path = "/tmp/uthreads-timeargs-file-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
            return Prepared(
                call: { l in try IO.writeFile(path, [1, 2, 3], timeout: l.timeout, deadline: l.deadline) },
                cleanup: { unlink(path) })
        },
        // A name, with the resolver held (the tests' seam), and a numeric host (never waits).
        TimedCall(
            key: "NameResolution.swift resolve(host:port:timeout:deadline:)", parameters: .both, resource: .unavailable
        ) {
            let gate = DispatchSemaphore(value: 0)
            return Prepared(
                call: { l in
                    _ = try SocketAddress.resolve(
                        host: "held.invalid", port: 80, timeout: l.timeout, deadline: l.deadline,
                        using: { _, _ in
                            gate.wait()
                            return []
                        })
                }, cleanup: { gate.signal() })
        },
        .plain("NameResolution.swift resolve(host:port:timeout:deadline:)", .both, .available) { l in
            _ = try SocketAddress.resolve(host: "127.0.0.1", port: 80, timeout: l.timeout, deadline: l.deadline)
        },
        .io("UnixStream.swift connect(path:timeout:deadline:)", .either) { f, l in
            try UnixStream.connect(path: f.unixListener.path, timeout: l.timeout, deadline: l.deadline).close()
        },
        .io("DescriptorStream.swift read(into:timeout:deadline:)") { f, l in
            _ = try f.buffer.withUnsafeMutableBytes {
                try f.pipeReader.read(into: $0, timeout: l.timeout, deadline: l.deadline)
            }
        },
        .io("DescriptorStream.swift read(upTo:timeout:deadline:)") { f, l in
            _ = try f.pipeReader.read(upTo: 16, timeout: l.timeout, deadline: l.deadline)
        },
        .io("DescriptorStream.swift readToEnd(timeout:deadline:)") { f, l in
            _ = try f.pipeReader.readToEnd(timeout: l.timeout, deadline: l.deadline)
        },
        .io("SignalStream.swift next(timeout:deadline:)") { _, l in
            let stream = try SignalStream(signals: [SIGUSR1])  // blocks it in this kernel thread; none is sent
            defer { unblockSignal(SIGUSR1) }
            _ = try stream.next(timeout: l.timeout, deadline: l.deadline)
        },
        .io("DescriptorStream.swift write(_:timeout:deadline:)") { f, l in
            _ = try f.buffer.withUnsafeBytes { try f.stream.0.write($0, timeout: l.timeout, deadline: l.deadline) }
        },
        .io("DescriptorStream.swift write(all:timeout:deadline:)") { f, l in
            try f.stream.0.write(all: f.buffer, timeout: l.timeout, deadline: l.deadline)
        },
        .io("DescriptorStream.swift send(_:timeout:deadline:)") { f, l in
            _ = try f.buffer.withUnsafeBytes { try f.stream.0.send($0, timeout: l.timeout, deadline: l.deadline) }
        },
        // The standard streams belong to whoever runs the tests (a terminal, /dev/null, a
        // pipe): nothing is written, and reading may or may not find input.
        .plain("IO+StandardStreams.swift readStandardInput(into:timeout:deadline:)", .both, .either) { l in
            var b = [UInt8](repeating: 0, count: 1)
            _ = try b.withUnsafeMutableBytes {
                try IO.readStandardInput(into: $0, timeout: l.timeout, deadline: l.deadline)
            }
        },
        .plain("IO+StandardStreams.swift writeStandardOutput(_:timeout:deadline:)", .both, .available) { l in
            try IO.writeStandardOutput(
                UnsafeRawBufferPointer(start: nil, count: 0), timeout: l.timeout, deadline: l.deadline)
        },
        .plain("IO+StandardStreams.swift writeStandardError(_:timeout:deadline:)", .both, .available) { l in
            try IO.writeStandardError(
                UnsafeRawBufferPointer(start: nil, count: 0), timeout: l.timeout, deadline: l.deadline)
        },
        .plain("IO+StandardStreams.swift print(_:toStandardError:timeout:deadline:)", .both, .available) { l in
            try IO.print("", timeout: l.timeout, deadline: l.deadline)
        },
    ]

    static let mn: [TimedCall] = [
        TimedCall(
            key: "UThread+Workers.swift join(timeout:deadline:)", parameters: .timeout, resource: .unavailable,
            runtime: .mn
        ) {
            let gate = Channel<Int>()
            let t = UThread { _ = try gate.receive() }
            return Prepared(
                call: { try t.join(timeout: $0.t) },
                cleanup: {
                    gate.close()
                    try t.join()
                })
        },
        TimedCall(
            key: "UMutex.swift lock(timeout:deadline:)", parameters: .timeout, resource: .unavailable, runtime: .mn
        ) {
            let m = UMutex()
            try m.lock()
            return Prepared(call: { try m.lock(timeout: $0.t) }, cleanup: { try m.unlock() })
        },
        TimedCall(key: "UMutex.swift lock(timeout:deadline:)", parameters: .timeout, resource: .available, runtime: .mn)
        {
            let m = UMutex()
            return Prepared(call: {
                try m.lock(timeout: $0.t)
                try m.unlock()
            })
        },
        TimedCall(
            key: "USemaphore.swift wait(timeout:deadline:)", parameters: .timeout, resource: .unavailable, runtime: .mn
        ) {
            let s = USemaphore()
            return Prepared(call: { try s.wait(timeout: $0.t) })
        },
        TimedCall(
            key: "USemaphore.swift wait(timeout:deadline:)", parameters: .timeout, resource: .available, runtime: .mn
        ) {
            let s = try USemaphore(value: 1)
            return Prepared(call: { try s.wait(timeout: $0.t) })
        },
        TimedCall(
            key: "UWaitGroup.swift wait(timeout:deadline:)", parameters: .timeout, resource: .unavailable, runtime: .mn
        ) {
            let g = UWaitGroup()
            try g.add(1)
            return Prepared(call: { try g.wait(timeout: $0.t) }, cleanup: { try g.done() })
        },
        TimedCall(
            key: "UBarrier.swift arriveAndWait(timeout:deadline:)", parameters: .timeout, resource: .unavailable,
            runtime: .mn
        ) {
            let b = try UBarrier(parties: 2)
            return Prepared(call: { _ = try b.arriveAndWait(timeout: $0.t) })
        },
        TimedCall(
            key: "ThreadGroup.swift withThreadGroup(name:timeout:deadline:_:)", parameters: .timeout,
            resource: .unavailable, runtime: .mn
        ) {
            let never = Channel<Int>()
            return Prepared(call: { limit in
                try withThreadGroup(timeout: limit.t) { g in
                    try g.spawn { _ = try never.receive() }
                    try g.spawnLocal { _ = try never.receive() }
                }
            })
        },
        TimedCall(
            key: "URWLock.swift readLock(timeout:deadline:)", parameters: .timeout, resource: .unavailable, runtime: .mn
        ) {
            let l = URWLock()
            try l.writeLock()
            return Prepared(call: { try l.readLock(timeout: $0.t) }, cleanup: { try l.writeUnlock() })
        },
        TimedCall(
            key: "URWLock.swift writeLock(timeout:deadline:)", parameters: .timeout, resource: .unavailable,
            runtime: .mn
        ) {
            let l = URWLock()
            try l.readLock()
            return Prepared(call: { try l.writeLock(timeout: $0.t) }, cleanup: { try l.readUnlock() })
        },
        TimedCall(
            key: "UCondition.swift wait(_:timeout:deadline:)", parameters: .timeout, resource: .unavailable,
            runtime: .mn
        ) {
            let (m, c) = (UMutex(), UCondition())
            return Prepared(call: { limit in
                try m.lock()
                defer { try? m.unlock() }
                try c.wait(m, timeout: limit.t)
            })
        },
        TimedCall(
            key: "UCondition.swift wait(_:until:timeout:deadline:)", parameters: .timeout, resource: .available,
            runtime: .mn
        ) {
            let (m, c) = (UMutex(), UCondition())
            return Prepared(call: { limit in
                try m.lock()
                defer { try? m.unlock() }
                try c.wait(m, until: { true }, timeout: limit.t)
            })
        },
        // The same channel calls between M:N threads (the channel is shared, under its lock).
        TimedCall(key: "Channel.swift send(_:timeout:)", parameters: .timeout, resource: .unavailable, runtime: .mn) {
            let c = Channel<Int>()
            return Prepared(call: { try c.send(1, timeout: $0.t) })
        },
        TimedCall(key: "Channel.swift send(_:deadline:)", parameters: .deadline, resource: .unavailable, runtime: .mn) {
            let c = Channel<Int>()
            return Prepared(call: { try c.send(1, deadline: $0.d) })
        },
        TimedCall(key: "Channel.swift receive(timeout:)", parameters: .timeout, resource: .unavailable, runtime: .mn) {
            let c = Channel<Int>()
            return Prepared(call: { _ = try c.receive(timeout: $0.t) })
        },
        TimedCall(key: "Channel.swift receive(timeout:)", parameters: .timeout, resource: .available, runtime: .mn) {
            let c = try Channel<Int>(capacity: 1)
            try c.send(7)
            return Prepared(call: { _ = try c.receive(timeout: $0.t) })
        },
        TimedCall(key: "Channel.swift receive(deadline:)", parameters: .deadline, resource: .unavailable, runtime: .mn)
        {
            let c = Channel<Int>()
            return Prepared(call: { _ = try c.receive(deadline: $0.d) })
        },
        TimedCall(
            key: "Select.swift channelSelect(timeout:deadline:_:)", parameters: .both, resource: .unavailable,
            runtime: .mn
        ) {
            let c = Channel<Int>()
            return Prepared(call: { limit in
                _ = try channelSelect(timeout: limit.timeout, deadline: limit.deadline) { (s: ChannelSelect<Int>) in
                    s.receive(from: c) { $0 ?? 0 }
                }
            })
        },
        TimedCall(
            key: "UOnce.swift run(timeout:deadline:_:)", parameters: .timeout, resource: .unavailable, runtime: .mn
        ) {
            // Another thread is inside the once's body until the cleanup lets it out. Pinned:
            // it starts at once, so the table lists it (a queued thread has no row yet).
            let (once, gate) = (UOnce(), USemaphore())
            let holder = UThread(name: "once holder", pinned: true) { try once.run { try gate.wait() } }
            try TimeArgumentTableTests.waitUntilParked { holder.id }
            return Prepared(
                call: { try once.run(timeout: $0.t) {} },
                cleanup: {
                    gate.signal()
                    try holder.join()
                })
        },
        TimedCall(
            key: "Blocking.swift blocking(timeout:deadline:_:)", parameters: .both, resource: .unavailable, runtime: .mn
        ) {
            let gate = DispatchSemaphore(value: 0)
            return Prepared(
                call: { l in _ = try blocking(timeout: l.timeout, deadline: l.deadline) { gate.wait() } },
                cleanup: { gate.signal() })
        },
        TimedCall(
            key: "AwaitAsync.swift await(timeout:deadline:_:)", parameters: .both, resource: .unavailable,
            runtime: .mn, waitsForTask: true
        ) {
            Prepared(call: { limit in
                _ = try UThread.await(timeout: limit.timeout, deadline: limit.deadline) {
                    try await Task.sleep(for: .seconds(3600))
                }
            })
        },
        .plain("UThread.sleep(for:) under M:N", .timeout, .sleep, runtime: .mn) { try UThread.sleep(for: $0.t) },
    ]

    /// Calls made from any kernel thread (they block it; they are not cancellable). Their far
    /// deadlines must end by an answer.
    static let kernelSide: [TimedCall] = [
        TimedCall(
            key: "ControlSocket.swift queryControlSocket(_:request:timeout:)", parameters: .timeout, resource: .either
        ) {
            let server = try AnsweringSocket()
            return Prepared(
                call: { _ = try UThreadRuntime.queryControlSocket(server.path, timeout: $0.t) },
                cleanup: { server.stop() })
        }
    ]

    static let table = m1Sync + m1IO + mn + kernelSide

    // MARK: The runs

    @Test(arguments: table, TimeArgument.allCases)
    func outcome(_ row: TimedCall, _ argument: TimeArgument) async throws {
        let (outcome, parkedAfterASwitch) =
            switch row.runtime {
            case .m1 where row.waitsForTask: try await Self.runOnExecutor(row, argument, workers: 1)
            case .m1: try UThreadRuntime.run { try Self.runM1(row, argument) }
            case .mn where row.waitsForTask: try await Self.runOnExecutor(row, argument, workers: 2)
            case .mn: try UThreadRuntime.run(workers: 2) { try Self.runMN(row, argument) }
            }
        #expect(row.allowed(argument).contains(outcome), "\(row) with \(argument): \(outcome)")
        // Already due: the call must not park. Under M:1 the caller yields once after
        // spawning the call's thread, which by then has finished, yielded, or parked.
        // (1 ns is positive: it may park, for a nanosecond.)
        if row.runtime == .m1 && argument.isDue && argument != .oneNanosecond && !row.waitsForTask
            && !row.parksWhenDue && row.resource != .either
        {
            #expect(!parkedAfterASwitch, "\(row) with \(argument) waited")
        }
    }

    /// Runs the row's call on a thread of its own, from a user thread of an M:1 runtime.
    /// Returns its outcome and whether it was parked when the caller next ran. Arguments
    /// that never come due are cancelled once the thread is parked.
    static func runM1(_ row: TimedCall, _ argument: TimeArgument) throws -> (Outcome, Bool) {
        let prepared = try row.prepare()
        defer { try? prepared.cleanup() }
        let limit = argument.limit(for: row.parameters)
        let thread = UThread.local(name: "timed call") { Outcome { try prepared.call(limit) } }
        UThread<Never>.yield()
        let parkedAfterASwitch = isParked(thread.id)
        if !argument.isDue {
            try waitUntilParked { thread.id }
            thread.cancel()
        }
        return (try thread.join(), parkedAfterASwitch)
    }

    /// `runM1` or `runMN` on an executor's runtime (a kernel thread of its own, with `workers`
    /// workers), awaited: for calls that need a Swift task to run meanwhile. A runtime run
    /// directly in a test occupies one of the cooperative pool's few threads, and with every
    /// pool thread so occupied the task would never run.
    static func runOnExecutor(_ row: TimedCall, _ argument: TimeArgument, workers: Int) async throws -> (
        Outcome, Bool
    ) {
        let executor = try UThreadExecutor(name: "time arguments", workers: workers)
        defer { executor.shutdown() }
        let handed = Handed(value: row)
        return try await executor.run {
            workers == 1 ? try runM1(handed.value, argument) : try runMN(handed.value, argument)
        }
    }

    /// The same from a thread of a runtime with several workers (the primitives' paths for
    /// several kernel threads).
    static func runMN(_ row: TimedCall, _ argument: TimeArgument) throws -> (Outcome, Bool) {
        let prepared = Handed(value: try row.prepare())
        defer { try? prepared.value.cleanup() }
        let limit = argument.limit(for: row.parameters)
        let thread = UThread(name: "timed call") { Outcome { try prepared.value.call(limit) } }
        if !argument.isDue {
            try waitUntilParked { thread.id }
            thread.cancel()
        }
        return (try thread.join(), false)
    }

    /// Whether thread `id` is blocked or sleeping (false when it has finished).
    static func isParked(_ id: ThreadID) -> Bool {
        let state = UThreadRuntime.threadTable().threads.first { $0.id == id }?.state
        return state == .blocked || state == .sleeping
    }

    /// Yields until the thread `id()` names is parked or has finished.
    static func waitUntilParked(_ id: () -> ThreadID?) throws {
        while true {
            if let id = id() {
                let state = UThreadRuntime.threadTable().threads.first { $0.id == id }?.state
                if state == nil || state == .finished || state == .blocked || state == .sleeping { return }
            }
            UThread<Never>.yield()
        }
    }

    // MARK: Coverage

    /// Every public function, initialiser and subscript of the library with a `timeout:` or
    /// `deadline:` parameter, as "File.swift name(labels:)", read from the sources.
    static func scannedKeys() throws -> Set<String> {
        let root = ChildProcess.repositoryRoot.appendingPathComponent("Sources/UserThreads")
        guard let files = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil) else { return [] }
        var keys: Set<String> = []
        let declaration =
            /public\s+(?:(?:static|override|final|class|mutating|nonisolated|convenience|required)\s+)*(?:func\s+`?(\w+)`?|(init)[?!]?|(subscript))\s*(?:<[^(]*>)?\s*\(/
        for case let url as URL in files where url.pathExtension == "swift" {
            let text = try String(contentsOf: url, encoding: .utf8)
            for match in text.matches(of: declaration) {
                let labels = parameterLabels(text[match.range.upperBound...])
                if labels.contains("timeout") || labels.contains("deadline") {
                    let name = match.output.1 ?? match.output.2 ?? match.output.3 ?? ""
                    keys.insert("\(url.lastPathComponent) \(name)(\(labels.map { $0 + ":" }.joined()))")
                }
            }
        }
        return keys
    }

    /// The argument labels of a parameter list that starts right after its "(".
    static func parameterLabels(_ text: Substring) -> [String] {
        var labels: [String] = []
        var current = ""
        var depth = 0
        var previous: Character = " "
        for c in text {
            switch c {
            case "(", "[", "<": depth += 1
            case ")", "]": depth -= 1
            case ">" where previous != "-": depth -= 1
            default: break
            }
            if depth < 0 || (c == "," && depth == 0) {
                if let label = current.split(separator: ":").first?.split(separator: " ").first {
                    labels.append(String(label))
                }
                current = ""
                if depth < 0 { break }
            } else {
                current.append(c == "\n" ? " " : c)
            }
            previous = c
        }
        return labels
    }

    @Test func everyTimedCallIsInTheTable() throws {
        let scanned = try Self.scannedKeys()
        #expect(scanned.count > 40, "the scan found only \(scanned.sorted())")
        let covered = Set(Self.table.map(\.key))
        let missing = scanned.subtracting(covered)
        #expect(missing.isEmpty, "timed calls with no row in TimeArgumentTableTests.table: \(missing.sorted())")
        // A row for a call that no longer exists is a typo or a leftover.
        let unknown = covered.subtracting(scanned).filter { $0.contains(".swift ") }
        #expect(unknown.isEmpty, "rows for calls the scan does not find: \(unknown.sorted())")
    }
}

/// Runs `body` with a one-element message header over `buffer`.
func withMessage(_ buffer: inout [UInt8], _ body: (UnsafeMutablePointer<msghdr>) throws -> Void) throws {
    try buffer.withUnsafeMutableBytes { b in
        var v = iovec(iov_base: b.baseAddress, iov_len: b.count)
        try withUnsafeMutablePointer(to: &v) { vp in
            var m = msghdr()
            m.msg_iov = vp
            m.msg_iovlen = 1
            try body(&m)
        }
    }
}

/// A Unix socket served by a kernel thread of its own that answers every request line with
/// "{}" (a control socket that always answers).
final class AnsweringSocket: @unchecked Sendable {
    let path = "/tmp/uthreads-timeargs-answer-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
    private let listener: Int32
    private let done = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)

    init() throws {
        listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw UThreadError.system(call: "socket", errno: .lastError) }
        let address = try SocketAddress(unixPath: path)
        guard (address.withSockAddr { Glibc.bind(listener, $0, $1) }) == 0, listen(listener, 16) == 0 else {
            Glibc.close(listener)
            throw UThreadError.system(call: "bind/listen", errno: .lastError)
        }
        let thread = Thread { [self] in serve() }
        thread.start()
    }

    private func serve() {
        defer { done.signal() }
        while true {
            let client = accept(listener, nil, nil)
            if stopping.load(ordering: .acquiring) {
                if client >= 0 { Glibc.close(client) }
                return
            }
            guard client >= 0 else { continue }
            var byte: UInt8 = 0
            while Glibc.read(client, &byte, 1) == 1 && byte != UInt8(ascii: "\n") {}
            let reply = Array("{}\n".utf8)
            _ = reply.withUnsafeBytes { Glibc.write(client, $0.baseAddress, $0.count) }
            Glibc.close(client)
        }
    }

    /// Ends the serving thread (a last connection wakes its accept) and removes the socket.
    func stop() {
        stopping.store(true, ordering: .releasing)
        let fd = uthreads_unix_connect(path)
        if fd >= 0 { Glibc.close(fd) }
        done.wait()
        Glibc.close(listener)
        unlink(path)
    }
}
