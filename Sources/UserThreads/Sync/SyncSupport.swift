// Layer 8: what every synchronization primitive shares — object ids, deadlines, labels — and
// the design essay of the sync layer as a whole.
//
// Design essay (the sync layer as a whole)
// ========================================
//
// One family. UMutex, UCondition, USemaphore, URWLock, UWaitGroup, UBarrier and UOnce work
// inside `run { }` (M:1) and between threads on any worker of `run(workers: N)`, with the same
// signatures, and are `Sendable`. Each is a small state machine plus one or more FIFOs of
// waiters (a `FIFO` of `Waiter`), and each rule (handoff, rwlock phases, barrier
// generations) is written once. Threads park and are woken through one protocol
// (Waiter.swift: register under the object's lock, park, withdraw on timeout or cancel, the
// wake wins); a wake on the waiter's own worker is direct, across workers it goes through the
// mailbox. (Channels and select build on the same waiters: Channel.swift, Select.swift.)
//
// Bare or locked (`SyncState`). Under one M:1 runtime all threads run on one kernel thread,
// one at a time, and a switch happens only inside a park or a yield: so a state change that
// does not park needs no lock and no atomic. Between workers it needs a lock. Each object
// decides once which it is, in an atomic `binding`:
//   * made inside an M:1 runtime, or first used (entered) by a thread of one: *bound* to that
//     runtime (its scheduler's `serial`, unique in the process: an address could be reused
//     by a later runtime, which would then inherit an ended one's waiters), state held bare;
//   * made or first used on an M:N worker, or by a kernel thread outside any runtime:
//     *shared*, state held under the object's lock (a futex word in C, which ThreadSanitizer
//     sees: CUThreads/sync_lock.c), taken for a few loads and stores, never across a park.
// The decision is a compare-and-swap from "undecided" and never changes afterwards. Channels
// and select use the same `SyncState` (Channel.swift). Proof
// that bare state is never raced: every access to an object's state goes through `enter`
// (or the fast paths, which compare the binding with the caller's runtime first); `enter`
// returns without the lock only when the binding equals the caller's own M:1 runtime, whose
// threads all run on one kernel thread; any other caller finds a binding that is not its own
// and not "shared" and gets `UThreadError.foreignRuntime` before it reads or writes a field.
// The binding itself is an atomic, and the state's initial values were written before the
// object was published. So a bare object is touched by one kernel thread only, and a shared
// one only under its lock. Snapshot reads from elsewhere follow the same proof: next part.
//
// From elsewhere. An operation that neither waits nor fails — a semaphore's `signal`, a
// condition's `signal` and `broadcast`, `destroy`, a thread group's `cancelAll` — may be called
// from any kernel thread, and on a bare object bound to another runtime it is not refused but
// *posted* to that runtime (`SyncState.enter(orPost:)`: its inbox, found by the binding's serial,
// Scheduler/ForeignCancels.swift) and run there, on its kernel thread, at its next safe point,
// where `enter` admits it bare; as a cancel from outside is. Posts from one kernel thread apply
// in the order posted. Applied later, it cannot say what it did: a posted condition `signal`
// returns false and `broadcast` 0. When the runtime has ended the post is dropped: its threads
// are gone, nobody waits. Operations that wait, or must answer now (lock, unlock, wait, send,
// receive, a group's spawn), keep throwing `.foreignRuntime` on another runtime's bare object: a
// wait needs a user thread of the object's runtime, and an answer from a post would block the
// caller's kernel thread (its whole runtime, if it has one) until the owner's next safe point.
// A wait group's `add` and `done` answer now from anywhere: its count is an atomic word outside
// the bare state, and only the wake at zero is posted (UWaitGroup.swift).
// Consequence for users: an object made inside `run { }` belongs to that runtime (hand it to a
// `blocking {}` body or another runtime and its waits throw `.foreignRuntime`, its signals are
// posted); an object made outside any runtime and first used by a pthread or a worker is
// shared by all of them, and an M:1 thread waiting on it is woken from other kernel threads
// through its runtime's inbox (Waiter.swift).
//
// Reads from elsewhere. A snapshot (`USemaphore.value`, `UWaitGroup.pending`,
// `UBarrier.arrived`, a thread group's `isCancelled` and `running`, `UMutex.holder`,
// `isLocked` and `waiting`, `UCondition.waiting`, `URWLock.readerCount` and `isWriteLocked`,
// a channel's `count` and `isClosed`, `holders`, their descriptions) may be read from any
// kernel thread, and from one other than a bare object's runtime it never touches the bare
// state: it reads only `Relaxed` words, which whoever may change the state (the bound
// runtime's kernel thread, or a holder of the lock) writes with a relaxed load and store, never
// a read-modify-write. On x86-64 those are the plain `mov`s of a non-atomic field: a word
// that is the state costs the owner's paths no instruction, a word beside a field one store
// per change, and the reader gets a value the object had a moment ago, never a torn one, and
// no data race. Three shapes, each written once:
//   * a count or flag that is the state is the word itself (a semaphore's permits, a
//     barrier's arrivals, a group's cancel flag, a mutex's owner id, a read–write lock's
//     writer id; a wait group's counter too, though it is changed by compare-and-swap from
//     anywhere: UWaitGroup.swift), and
//     so is the mutex's fast word: its holder is decoded from the two words (UMutex.swift), so
//     the fast path inlined into user code stores nothing more;
//   * what lives in a structure gets a word beside it, kept by a simple `didSet` on the field
//     (no `oldValue`, so the queue or dictionary is still changed in place): a queue's length
//     (mutex, condition, semaphore, a read–write lock's writers), a read–write lock's readers,
//     the id of a row-valued holder (a once's runner), and a channel's buffered
//     count and closed flag, which its handoff tests against memory (Channel.swift: as words
//     alone they cost ~2 instructions a handoff); a thread group counts its children whose
//     body has not returned where they start and end. A reader never measures the structure:
//     a queue's count would read its array's buffer, which the runtime may free meanwhile;
//   * what has no word is read only through `SyncState.read` (the state under the lock or on
//     the owner's kernel thread), and its `elsewhere` shows less: a holder by its id alone
//     (never its row's name: `describeHolder`), a condition's description without its mutex's
//     label, a read–write lock's `holders` without the readers, a bare channel's parked
//     lists never (a shared one's are walked under its lock).
// Exact where it must be: `isHeldByCurrentThread` reads the words, and only the caller can
// make them name or stop naming itself. Not a round trip to the runtime: it would block the
// reader until the owner's next safe point. The thread table and dumps call the descriptions
// on the kernel thread that owns the waiting row (which passed `enter`: the object is bound to
// its runtime or shared), so they see everything; `elsewhere` serves users' own calls, and
// SyncReadsFromElsewhereTests reads every one of these from a pthread under ThreadSanitizer.
//
// Waiting never enters the kernel: a blocked thread is a row in the thread table with a wait
// kind, an object id and a `WaitTarget` that describes the wait ("mutex 'db' held by #12"),
// which is how the thread table and the deadlock report explain every wait (across workers
// too: the holders are rows, whatever worker runs them). Every wait takes a `timeout:` and a
// `deadline:` (both optional; the earlier wins: `Deadline.earliest`) and is cancellable. Bad
// arguments (negative permits, zero parties) throw from the initialisers; misuse (unlock by a
// non-owner, a recursive once, a wait outside a user thread) throws
// `UThreadError.invalidArgument`.
//
// Invariants, checked behind the flag. Each primitive states its invariants as a
// `checkInvariants()` (at the end of its file, in the style of swift-collections'
// `Heap+Invariants.swift`) and runs it after each change of its state, inside the access
// (bare or under its lock, so it sees a consistent state), only when the calling runtime runs
// with `UThreadRuntime.Configuration.checkInvariants` (the scheduler's `checks`). Off, the
// cost is a load of the flag and a predicted branch: the runtime is found through the
// thread-local pointer on the slow paths (`syncChecking()`); a channel's `offer` and `take`
// test the scheduler they hold, which costs its handoff 9 instructions (391 → 400, callgrind,
// docs/BENCHMARKS.md "Sync invariants behind the flag"). The inlined fast paths of the mutex
// are not checked (38 instructions per lock+unlock, as before): they move
// only between "free, no waiter" and "held, no waiter", which satisfy every rule, and a test
// there would cost every uncontended lock. A kernel thread outside any runtime has no flag:
// its changes are checked by the next runtime thread that changes the object. A broken
// invariant is a bug in the runtime, not bad input: it stops the process with a diagnostic
// written with write(2) that names the object and the rule (`syncInvariant`). What is checked
// is what holds between operations; what a post from elsewhere may leave pending until the
// runtime's next safe point (a wait group's wake at zero) is not an invariant of the bare state.
//
// Handoff instead of barging. Where a resource is released to a waiter (mutex, semaphore,
// rwlock), the releaser gives it *directly* to the first waiter before waking it. The woken
// thread does not compete again when it runs, so FIFO order is the acquisition order and no
// waiter starves. The price (a convoy when the woken thread is slow to run) is small here: a
// wake is an O(1) queue move on the same worker, a mailbox post across workers, and the
// releaser keeps running. A waiter that gives up after it was handed the resource keeps it
// (the wake wins), so nothing is ever passed on or undone.
//
// Rejected designs:
//   * Two families (M:1 primitives, not Sendable, beside M:N ones behind a lock): every rule
//     was written twice and the two drifted.
//   * A lock on every object, always: an M:1 program would pay a pthread mutex per operation
//     (~20 ns) for sharing it never does.
//   * A spin lock per object: a preempted holder on a 2-vCPU VM spins the other CPU for a
//     whole time slice.
//   * An atomic compare-and-swap in the mutex fast path instead of the binding test: a locked
//     instruction on every M:1 lock, and the waiter queue would still need a lock.
//   * Deciding the binding per operation from the caller (bare when the caller is on an M:1
//     runtime): two runtimes could then touch one object's state at once.
//   * A signal from elsewhere on a bare object done in place (what this had, through the
//     snapshot path): a data race with the runtime's own accesses (ThreadSanitizer saw it).
//     Refusing it with a thrown error instead: `signal()` would need `try` everywhere for
//     what only an outside caller can get wrong, and waking a runtime's waiter from a pthread
//     is a normal thing to want (a pthread cancels the same way). Blocking the caller until
//     the runtime applied it: stalls a caller that is itself a runtime, and needs a timeout
//     the call does not have.
//   * The scheduler's intrusive wait queues for these primitives: only the row's own kernel
//     thread may touch its queue links (Waiter.swift).
import CUThreads
import Synchronization

/// Process-wide ids for sync objects, shown as the wait reason's object.
enum SyncObjectID {
    private static let next = Atomic<UInt64>(1)
    static func allocate() -> UInt64 { next.wrappingAdd(1, ordering: .relaxed).oldValue }
}

/// Turns the public timeout/deadline arguments into a deadline on the scheduler's clock
/// (`Deadline.earliest`: the earlier of the two wins; nil when neither limits).
@usableFromInline
func syncDeadline(timeout: Duration?, deadline: ContinuousClock.Instant?, now: @autoclosure () -> UInt64) -> UInt64? {
    Deadline.earliest(timeout: timeout, deadline: deadline, now: now())
}

/// The same, on the calling thread's scheduler clock (CLOCK_MONOTONIC outside a runtime and on
/// M:N workers; the virtual clock in a simulated M:1 runtime).
@usableFromInline
func syncDeadline(timeout: Duration?, deadline: ContinuousClock.Instant?) -> UInt64? {
    if timeout == nil && deadline == nil { return nil }
    return Deadline.earliest(
        timeout: timeout, deadline: deadline, now: Scheduler.active?.now() ?? uthreads_monotonic_ns())
}

/// Whether the calling kernel thread's runtime checks invariants
/// (`UThreadRuntime.Configuration.checkInvariants`): the thread-local runtime pointer, one load
/// and a predicted branch; false outside any runtime. (The essay: "Invariants".)
@inline(__always)
func syncChecking() -> Bool {
    guard let p = uthreads_get_runtime() else { return false }
    return Unmanaged<Scheduler>.fromOpaque(p)._withUnsafeGuaranteedRef { $0.checks }
}

/// Stops the process unless `holds`: a sync object's invariant is broken (a bug in the
/// runtime). `object` is the object's label, `invariant` the rule as the code states it.
@inline(__always)
func syncInvariant(_ holds: Bool, _ object: @autoclosure () -> String, _ invariant: StaticString) {
    if _slowPath(!holds) { syncInvariantBroken(object(), invariant) }
}

/// The stop of `syncInvariant`: the diagnostic goes to standard error with write(2) first (a
/// crash loses buffered output).
@inline(never)
func syncInvariantBroken(_ object: String, _ invariant: StaticString) -> Never {
    let message = "UserThreads: internal error: \(object) broke its invariant: \(invariant)"
    uthreads_write_stderr("\n\(message)\n")
    fatalError(message)
}

/// Renders a sync object's label: `mutex 'accounts'` or `mutex 17`.
func syncLabel(_ kind: String, name: String, id: UInt64) -> String {
    name.isEmpty ? "\(kind) \(id)" : "\(kind) '\(name)'"
}

/// Renders a list of threads for a wait description: `#12 "worker"`.
func describeThread(_ t: ControlBlock) -> String {
    let name = t.cName
    return name.isEmpty ? "#\(t.pointee.id)" : "#\(t.pointee.id) \"\(name)\""
}

/// Names the thread `id` that holds an object (a mutex's owner, a read–write lock's writer, a
/// once's runner) from the row it ran on when it took it: "#12 \"db\"" while the row still
/// runs it, "#12 (finished)" once it ended holding it, "#12" when the row belongs to another
/// kernel thread. The row's id and state are written by the kernel thread that owns the row (a
/// worker that runs it, reuses it or frees it with its table), so they are read only when the
/// calling scheduler's table owns the row; from anywhere else only the id is certain. Call it
/// inside the object's `sync` (the row field is the runtime's: SyncState's `read`).
func describeHolder(_ id: UInt64, row: ControlBlock?) -> String {
    guard let row, let here = Scheduler.active, here.table.owns(row) else { return "#\(id)" }
    if row.pointee.id == id, row.pointee.state != .stateFinished, row.pointee.state != .stateFree {
        return describeThread(row)
    }
    return "#\(id) (finished)"
}
