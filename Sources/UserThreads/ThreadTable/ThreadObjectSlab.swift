// Layer 4: the slab of finished threads a runtime keeps for reuse — row, stack and object.
//
// Design. A spawn+join that allocates its thread object pays malloc, free, init and deinit
// (~300 instructions, ThreadObject.swift), and one that takes a row from the table and a stack
// from the pool, and gives them back at the exit, pays two free-list pops and pushes, the
// zeroing of all 256 bytes of the row, and the row's stack, runtime and worker fields written
// again (~70 instructions, callgrind). The scheduler therefore keeps a thread that finished
// with a trivial result (ThreadObject's "Reuse": nothing observable is kept) whole: its row,
// which still names its stack and its object, goes into this slab, and a later spawn takes the
// three together. The row is free (state FREE, not counted live, skipped by every walk of the
// table, the fault handler and the debuggers); its stack counts as pooled, not in use
// (StackPool.keepAside); its `object` field owns the row's former +1 on the object. A spawn
// that takes a row resets only the fields a thread's life may have changed and spawn does not
// write (Scheduler.spawnKept); the stack's four fields, `runtime`, `worker` and `object` stay.
// (The row of a thread that a help-first join ran to its end waits in a one-row slot in front
// of the slab, its counts not yet moved: Scheduler.swift's "Thread objects".)
//
// `take` pops the most recently kept row (the likeliest to be in the cache, and whose object's
// last handle was dropped last, so the likeliest to be free): the caller reuses its object if
// nothing else references it any more (`isKnownUniquelyReferenced`) and it was made for the
// same result type (its `witness` is a `let`: ThreadObject.swift), else lets go of it (its
// handles free it, or the release does) and gives the row a new one.
//
// Capacity. 1,024 rows (a row is in the table's chunks anyway; ~200 bytes per object and the
// stack's touched pages, which the pool would keep too), so that "spawn a batch, then join it"
// reuses every row of a batch of up to 1,024 threads, not one.
//
// On an M:N worker the slab holds rows without objects: an M:N thread's object is made on its
// spawner's worker and its row on the worker that starts it, so a worker keeps the row whole
// with its stack here (its `object` field nil: Scheduler.keepRow, whatever the result) and the
// object apart (KeptThreadObjects.swift); the next thread it starts with the default stack and
// no scheduling parameters takes the row (Scheduler.takeKeptRow; a worker-local thread's spawn
// does not: `spawnKept` is M:1's). An immigrant's row is never kept (it goes home, whose pool
// owns its stack).
//
// Rejected: keeping only the object (the previous design: row and stack went back to their own
// free lists and were taken again, ~70 instructions per spawn+join); one slot (reused the
// object of a spawn-join loop, but a batch allocated all but one); a free list recycled from
// the object's deinit (Swift has no hook between a class instance's deinit and its
// deallocation); a Swift Array (its append and popLast check uniqueness and capacity on every
// call); zeroing the reused row and writing every field again (16 vector stores, and the
// stack's fields reloaded).

/// Finished rows, each with its stack and its `object` reference, kept for the next spawns
/// (the essay above); a stored struct of the scheduler (one load less on the spawn and exit
/// paths).
typealias ThreadObjectSlab = BoundedStack<ControlBlock>
