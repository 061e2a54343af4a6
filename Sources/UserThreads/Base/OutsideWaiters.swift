// Layer 1: how a kernel thread that runs no runtime (a pthread, a Foundation `Thread`, the
// offload pool) waits for an event of an object that a user thread brings about — a thread's
// end, for `join()` called from outside — without a field for it in every object.
//
// Design. 64 futex words (futex.c), one cache line each, picked by the object's address (as
// MNJoinerLocks picks its stripe). The object keeps one bit of its own atomic state for "an
// outside waiter announced itself". The waiter sets that bit with a read-modify-write, then
// loops: read its stripe's word, check the event (an acquire load of the object's state),
// sleep on the word while it still has the value read. The finisher publishes the event with
// a read-modify-write of the same state; when that RMW's old value has the bit, it bumps the
// stripe's word and wakes every sleeper on it (`wake`).
//
// No lost wake-up: the waiter's announcing RMW and the finisher's publishing RMW are ordered in
// the state's modification order. If the finisher's comes first, the waiter's check sees the
// event and it never sleeps. Otherwise the finisher sees the bit and bumps the word after its
// RMW, which acquired the waiter's announcement, so the bump comes after every value the waiter
// read: either the waiter's check sees the event, or its FUTEX_WAIT finds the word changed and
// returns at once, or the bump's wake finds it asleep. A wake for another object of the same
// stripe is a spurious wake-up: the waiter checks again and sleeps again.
//
// Rejected: a futex word (or a condition variable) in every thread object — 4 bytes and a store
// on every spawn, the hottest path there is, for what almost no program does; a pthread
// condition variable per stripe — the finisher would have to take its mutex; polling with a
// sleep — late by up to the step, or a busy CPU.
import CUThreads

enum OutsideWaiters {
    private static let count = 64
    private static let stride = 64
    nonisolated(unsafe) private static let words: UnsafeMutableRawPointer = {
        let p = UnsafeMutableRawPointer.allocate(byteCount: count * stride, alignment: stride)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: count * stride)
        return p
    }()

    /// The stripe's word of `object`.
    private static func word(_ object: AnyObject) -> UnsafeMutablePointer<UInt32> {
        let address = UInt(bitPattern: ObjectIdentifier(object))
        let i = Int((address >> 6) ^ (address >> 12)) & (count - 1)
        return (words + i * stride).assumingMemoryBound(to: UInt32.self)
    }

    /// Wakes the outside waiters of `object` (the finisher, after its RMW saw their bit).
    static func wake(_ object: AnyObject) {
        uthreads_futex_bump_and_wake(word(object))
    }

    /// Blocks the calling kernel thread until `done()` holds (returns true) or `deadline`
    /// (CLOCK_MONOTONIC nanoseconds; nil: none) has passed (returns false). The caller has set
    /// its object's outside-waiter bit first (see the essay).
    static func wait(for object: AnyObject, deadline: UInt64?, until done: () -> Bool) -> Bool {
        let word = word(object)
        while true {
            let seen = uthreads_futex_load(word)
            if done() { return true }
            var wait = UInt64.max
            if let deadline {
                let now = uthreads_monotonic_ns()
                guard now < deadline else { return false }
                wait = deadline - now
            }
            _ = uthreads_futex_wait(word, seen, wait)
        }
    }
}
