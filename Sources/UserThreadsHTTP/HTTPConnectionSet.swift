// Layer 14: the connections one `HTTPServer.run()` serves, for the cap and the stop.
//
// All of a server's threads (its acceptor, its stop watcher, its connections) are user threads
// of one kernel thread (under M:N, worker-local threads of the acceptor's worker), so this
// state needs no lock against other kernel threads; the mutex only exists because a condition
// wait takes one. A connection is *idle* while it waits for the first byte of a new request
// after answering one: a stop cancels idle connections at once, as Go's `Server.Shutdown`
// closes idle connections, and lets the others finish their request. A new connection that has
// sent nothing yet is not idle (its request may be in flight): like Go's StateNew, it gets the
// grace period (and its head deadline).
import UserThreads

/// The live connections of one server run, the cap's wait and the graceful stop's drain.
final class HTTPConnectionSet {
    /// One connection: its thread (set once spawned) and whether it waits for a new request.
    final class Entry {
        var thread: UThreadHandle?
        var idle = false
    }

    private var entries: [Int: Entry] = [:]
    private var nextID = 0
    /// Set by `beginStop()`: responses say `Connection: close`, idle connections end.
    private(set) var stopping = false
    private let mutex = UMutex(name: "http connections")
    private let changed = UCondition(name: "http connections")

    /// Live connections.
    var count: Int { entries.count }

    /// Registers a connection about to be spawned.
    func add() -> (id: Int, entry: Entry) {
        nextID += 1
        let entry = Entry()
        entries[nextID] = entry
        return (nextID, entry)
    }

    /// Unregisters a finished connection and wakes a waiting acceptor.
    func remove(_ id: Int) {
        entries[id] = nil
        changed.broadcast()
    }

    /// Parks until fewer than `cap` connections are live or a stop began; returns false for the stop.
    func waitForRoom(below cap: Int) throws -> Bool {
        try mutex.withLock {
            try changed.wait(mutex, until: { entries.count < cap || stopping })
        }
        return !stopping
    }

    /// Starts a graceful stop: idle connections are cancelled, busy ones close after their
    /// response. Idempotent.
    func beginStop() {
        if stopping { return }
        stopping = true
        for entry in entries.values where entry.idle { entry.thread?.cancel() }
        changed.broadcast()
    }

    /// A connection became idle: during a stop it is cancelled (its read ends at once).
    func becameIdle(_ entry: Entry) {
        entry.idle = true
        if stopping { entry.thread?.cancel() }
    }

    /// Waits up to `grace` for every connection to end, then cancels the rest and waits up to
    /// `cancelWait` for them to go. Returns how many connections were cut off.
    func drain(grace: Duration, cancelWait: Duration = .seconds(5)) -> Int {
        beginStop()
        if waitUntilEmpty(timeout: grace) { return 0 }
        let cut = entries.count
        for entry in entries.values { entry.thread?.cancel() }
        _ = waitUntilEmpty(timeout: cancelWait)
        return cut
    }

    private func waitUntilEmpty(timeout: Duration) -> Bool {
        guard timeout > .zero else { return entries.isEmpty }
        do {
            try mutex.withLock { try changed.wait(mutex, until: { entries.isEmpty }, timeout: timeout) }
        } catch {
            return entries.isEmpty  // timed out (or the draining thread was cancelled)
        }
        return true
    }
}
