// Layer 4: the M:N thread objects a worker keeps for its next spawns.
//
// Design. An M:N thread's object (MN/MNThreadObject.swift) is its job while queued, its row's
// object while it runs and the target of `join`, so it cannot live in a row kept whole as the
// M:1 runtime keeps its finished threads (ThreadObjectSlab): the spawner makes the object on
// its worker, and whichever worker starts the thread takes a row there. So the worker on which
// a thread finished keeps the object here (with a trivial result, the row's +1 moved here; the
// row it keeps apart, whole with its stack, for the next thread it starts: ThreadObjectSlab),
// and a later spawn on that worker takes the most recently kept one and reuses it if nothing
// else references it any more (`isKnownUniquelyReferenced`), else lets it go (its handles free
// it).
// That saves the malloc, free, init and deinit of every spawn+join (~300 instructions, and the
// cross-arena free when the last handle drops on another worker).
//
// Why the uniqueness test is sound across kernel threads: the last other reference may have
// been dropped on another worker (a joiner's handle). Swift's release is a release-ordered
// decrement and the uniqueness test an acquiring (consume) load of the same word, so a count
// of one seen here happens after everything the other kernel thread did with the object; and
// nobody can take a new reference without holding one. ThreadSanitizer cannot see that pairing
// (the runtime's refcount atomics are not instrumented), so its builds keep nothing. The test
// is `uthreads_retain_if_unique` (cuthreads.h: inline where the count layout was checked), which
// also adds the spawn's second reference (handle and queue slot) with a plain store: with one
// reference, the kept list's, no other kernel thread can change the count meanwhile.
//
// Capacity 1,024, as the slab's: "spawn a batch, then join it" reuses a whole batch.
//
// Rejected: reusing at the finishing thread's exit (its handles are usually still held then:
// the spawner joins after); a free list filled by the object's deinit (Swift has no hook between
// a deinit and the deallocation); one process-wide pool (a lock or a CAS per spawn and exit, and
// objects bouncing between CPUs).

/// M:N thread objects, each holding +1, kept for the worker's next spawns (the essay above);
/// touched only by its scheduler's kernel thread.
typealias KeptThreadObjects = BoundedStack<Unmanaged<ThreadObject>>
