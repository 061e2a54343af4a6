// Layer 13: the kernel-thread conformance of `ThreadingBackend`: one pthread per thread, pthread mutexes
// and condition variables, a channel built on them, nanosleep and sched_yield. Every spawn,
// join, block and wake here is a system call (clone, futex); see ThreadingBackend.swift.
import Glibc
import SystemPackage
import UserThreads

/// Kernel threads: one pthread per spawned thread. Obtain it from
/// `UThreadRuntime.run(backend: .kernelThreads)`, which joins every thread before returning.
public final class KernelThreadsBackend: ThreadingBackend {
    /// Threads not yet joined by `joinAll` (the end of `run`).
    private let live = KernelLock<[any KernelJoinable]>([])
    /// Stack size of each pthread (0: the default, 8 MiB of address space, touched lazily).
    public let stackSize: Int

    /// A backend whose pthreads get `stackSize` bytes of stack (0: the default).
    public init(stackSize: Int = 0) { self.stackSize = stackSize }
    /// `.kernelThreads`.
    public var kind: BackendKind { .kernelThreads }

    /// A pthread running `body`.
    public func spawn<R: Sendable>(name: String, _ body: @escaping @Sendable () throws -> R) -> BackendThread<R> {
        let thread = KernelThread(name: name, body)
        thread.start(stackSize: stackSize)
        live.withLock { $0.append(thread) }
        return BackendThread(.kernel(thread))
    }

    /// `sched_yield()`.
    public func yield() { sched_yield() }

    /// `nanosleep`, resumed after signals.
    public func sleep(for duration: Duration) throws {
        guard duration > .zero else {
            sched_yield()
            return
        }
        let ns = Deadline.clampedNanoseconds(duration)
        var request = timespec(tv_sec: Int(ns / 1_000_000_000), tv_nsec: Int(ns % 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 {
            guard errno == EINTR else { throw UThreadError.system(call: "nanosleep", errno: .lastError) }
            request = remaining
        }
    }

    /// A `pthread_mutex_t`.
    public func makeMutex(name: String) -> any BackendMutex { KernelMutex() }
    /// A `pthread_cond_t`.
    public func makeCondition(name: String) -> any BackendCondition { KernelCondition() }
    /// A channel on a pthread mutex and two condition variables.
    public func makeChannel<T: Sendable>(of type: T.Type, capacity: Int, name: String) throws(UThreadError)
        -> any BackendChannel<T>
    {
        guard capacity >= 0 else { throw .invalidArgument("channel capacity must be >= 0, not \(capacity)") }
        return KernelChannel<T>(capacity: capacity)
    }

    /// Joins every thread spawned so far (and any they spawn meanwhile).
    func joinAll() {
        while true {
            let threads = live.withLock { l -> [any KernelJoinable] in
                defer { l.removeAll() }
                return l
            }
            if threads.isEmpty { return }
            for t in threads { t.waitForExit() }
        }
    }
}

protocol KernelJoinable: AnyObject, Sendable {
    func waitForExit()
    /// Runs the body on the calling (new) pthread.
    func runBody()
}

/// The pthread start routine: takes the retained thread object and runs its body.
private func kernelThreadEntry(_ raw: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let object = Unmanaged<AnyObject>.fromOpaque(raw!).takeRetainedValue()
    (object as! any KernelJoinable).runBody()
    return nil
}

/// One pthread running a closure; its result is read after `pthread_join` (which orders the
/// thread's writes before the joiner's reads).
final class KernelThread<R: Sendable>: KernelJoinable, @unchecked Sendable {
    // @unchecked: `result` is written once by the thread before it exits and read only after
    // pthread_join returned (under `state`'s lock); `body` is read once by the thread.
    private var body: (@Sendable () throws -> R)?
    private var result: Result<R, any Error>?
    private let state = KernelLock<(joined: Bool, started: Bool)>((false, false))
    private var handle = pthread_t()
    let name: String

    init(name: String, _ body: @escaping @Sendable () throws -> R) {
        self.name = name
        self.body = body
    }

    /// Creates the pthread (once, right after init). On failure `join` throws the reason.
    func start(stackSize: Int) {
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        if stackSize > 0 { pthread_attr_setstacksize(&attr, max(stackSize, 16 * 1024)) }
        let context = Unmanaged.passRetained(self as AnyObject).toOpaque()
        let e = pthread_create(&handle, &attr, kernelThreadEntry, context)
        if e != 0 {
            Unmanaged<AnyObject>.fromOpaque(context).release()
            result = .failure(UThreadError.resourceExhausted("pthread_create: \(Errno(rawValue: e))"))
        } else {
            state.withLock { $0.started = true }
        }
    }

    func runBody() {
        let f = body!
        body = nil
        result = Result { try f() }
    }

    func waitForExit() {
        state.withLock { s in
            guard s.started, !s.joined else { return }
            pthread_join(handle, nil)
            s.joined = true
        }
    }

    func join() throws -> R {
        waitForExit()
        return try result!.get()
    }
}

/// A `pthread_mutex_t` (default type: not recursive), at a fixed address.
final class KernelMutex: BackendMutex, @unchecked Sendable {
    // @unchecked: the pthread mutex is the synchronisation; it never moves (heap-allocated).
    let raw: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        raw = .allocate(capacity: 1)
        raw.initialize(to: pthread_mutex_t())
        pthread_mutex_init(raw, nil)
    }

    deinit {
        pthread_mutex_destroy(raw)
        raw.deallocate()
    }

    func lock() throws {
        let e = pthread_mutex_lock(raw)
        if e != 0 { throw UThreadError.system(call: "pthread_mutex_lock", errno: Errno(rawValue: e)) }
    }

    func unlock() throws {
        let e = pthread_mutex_unlock(raw)
        if e != 0 { throw UThreadError.system(call: "pthread_mutex_unlock", errno: Errno(rawValue: e)) }
    }
}

/// A `pthread_cond_t`, at a fixed address.
final class KernelCondition: BackendCondition, @unchecked Sendable {
    let raw: UnsafeMutablePointer<pthread_cond_t>

    init() {
        raw = .allocate(capacity: 1)
        raw.initialize(to: pthread_cond_t())
        pthread_cond_init(raw, nil)
    }

    deinit {
        pthread_cond_destroy(raw)
        raw.deallocate()
    }

    func wait(_ mutex: any BackendMutex) throws {
        guard let m = mutex as? KernelMutex else {
            throw UThreadError.invalidArgument("a kernel-thread condition needs a kernel-thread mutex")
        }
        let e = pthread_cond_wait(raw, m.raw)
        if e != 0 { throw UThreadError.system(call: "pthread_cond_wait", errno: Errno(rawValue: e)) }
    }

    func signal() { pthread_cond_signal(raw) }
    func broadcast() { pthread_cond_broadcast(raw) }
}

/// A channel on one pthread mutex and two condition variables, with `Channel`'s semantics.
/// Buffered: a ring of `capacity` values. Unbuffered (capacity 0): each sender queues its value
/// with a ticket and waits until a receiver has taken that ticket (a rendezvous); on close,
/// waiting senders throw and their values are dropped, as with `Channel`.
final class KernelChannel<Element: Sendable>: BackendChannel, @unchecked Sendable {
    // @unchecked: every stored var is accessed only holding `mutex`.
    let capacity: Int
    private let mutex = KernelMutex()
    private let notEmpty = KernelCondition()
    private let notFull = KernelCondition()
    private var items: [(ticket: UInt64, value: Element)] = []
    private var head = 0
    private var nextTicket: UInt64 = 0
    private var taken: UInt64 = 0
    private var closed = false

    init(capacity: Int) { self.capacity = capacity }

    private var count: Int { items.count - head }

    private func removeFirst() -> (ticket: UInt64, value: Element) {
        let item = items[head]
        head += 1
        if head > 64 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        return item
    }

    func send(_ value: Element) throws {
        try mutex.lock()
        defer { try? mutex.unlock() }
        if closed { throw UThreadError.closed("channel") }
        if capacity > 0 {
            while count >= capacity && !closed { try notFull.wait(mutex) }
            if closed { throw UThreadError.closed("channel") }
            items.append((0, value))
            notEmpty.signal()
            return
        }
        nextTicket += 1
        let ticket = nextTicket
        items.append((ticket, value))
        notEmpty.signal()
        while taken < ticket && !closed { try notFull.wait(mutex) }
        if taken < ticket {  // closed before a receiver took it: withdraw the value
            if let i = items[head...].firstIndex(where: { $0.ticket == ticket }) { items.remove(at: i) }
            throw UThreadError.closed("channel")
        }
    }

    func receive() throws -> Element? {
        try mutex.lock()
        defer { try? mutex.unlock() }
        if capacity > 0 {
            while count == 0 && !closed { try notEmpty.wait(mutex) }
            if count == 0 { return nil }
            let item = removeFirst()
            notFull.signal()
            return item.value
        }
        while count == 0 && !closed { try notEmpty.wait(mutex) }
        if closed { return nil }  // unbuffered: waiting senders throw, nothing is delivered
        let item = removeFirst()
        taken = item.ticket
        notFull.broadcast()  // senders wait on their own ticket
        return item.value
    }

    @discardableResult
    func close() -> Bool {
        (try? mutex.withLock { () -> Bool in
            if closed { return false }
            closed = true
            notEmpty.broadcast()
            notFull.broadcast()
            return true
        }) ?? false
    }
}
