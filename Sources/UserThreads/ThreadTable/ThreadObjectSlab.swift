// Layer 4: the slab of finished thread objects a runtime keeps for reuse.
//
// Design. A spawn+join that allocates its thread object pays malloc, free, init and deinit
// (~300 instructions, ThreadObject.swift). The scheduler therefore keeps the objects of
// threads that finished with a trivial result (ThreadObject's "Reuse": nothing observable is
// kept) and hands them to later spawns. This slab is where it keeps them: a LIFO array of
// unretained references that own the row's former +1, `capacity` at most. `take` pops the
// most recently kept object and returns it only if nothing else references it any more
// (`isKnownUniquelyReferenced`); an object a handle still references is let go (its handles
// free it), not put back, so a slab never fills with objects it cannot use. The most recent
// first: the object whose handle was dropped last is the likeliest to be free, and to be in
// the cache.
//
// Capacity. 1,024 objects (~200 bytes each: ~200 KiB at most per runtime, against a stack
// pool of up to 4,096 stacks), so that "spawn a batch, then join it" reuses every object of a
// batch of up to 1,024 threads, not one.
//
// M:1 only (Scheduler.release): under M:N a handle may be released on another kernel thread,
// and the uniqueness test would have to synchronise with it.
//
// Rejected: one slot (reused the object of a spawn-join loop, but a batch allocated all but
// one); a free list recycled from the object's deinit (Swift has no hook between a class
// instance's deinit and its deallocation); a Swift Array (its append and popLast check
// uniqueness and capacity on every call).

/// A struct stored in its scheduler (not a class it points to: one load less on the spawn and
/// exit paths); the scheduler calls `destroy` when it goes.
struct ThreadObjectSlab {
    /// The most objects kept.
    static let capacity = 1024
    private let slots = UnsafeMutablePointer<Unmanaged<ThreadObject>>.allocate(capacity: capacity)
    /// Objects kept now.
    private(set) var count = 0

    /// Whether `keep` has no room.
    var isFull: Bool {
        @inline(__always) get { count == Self.capacity }
    }

    /// Keeps `object`, taking over the caller's reference. The slab must not be full. O(1).
    @inline(__always)
    mutating func keep(_ object: Unmanaged<ThreadObject>) {
        slots[count] = object
        count &+= 1  // below `capacity`
    }

    /// The most recently kept object, if nothing else references it; else nil, and the slab
    /// lets go of that object (its handles free it). O(1).
    @inline(__always)
    mutating func take() -> ThreadObject? {
        guard count > 0 else { return nil }
        count &-= 1
        var object = slots[count].takeRetainedValue()
        guard isKnownUniquelyReferenced(&object) else { return nil }
        return object
    }

    /// Lets go of every object (the runtime ends).
    mutating func removeAll() {
        while count > 0 {
            count -= 1
            slots[count].release()
        }
    }

    /// Lets go of every object and frees the slots. The slab is unusable after it.
    mutating func destroy() {
        removeAll()
        slots.deallocate()
    }
}
