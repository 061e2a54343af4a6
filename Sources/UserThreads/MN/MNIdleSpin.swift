// Layer 10: how long an idle M:N worker spins before it sleeps, learnt from what woke it.
//
// Design essay: the spin adapts
// =============================
//
// An idle worker spins briefly before it sleeps (MNWorker.swift, "Idle workers spin briefly"):
// a handoff from another worker (a join, a channel, a steal, a migrant batch) usually arrives
// within microseconds, and catching it spinning saves a doorbell (an eventfd write) and an epoll
// wake-up on each side. The spin watches only what other workers post: its mailbox and the
// queues. It does not poll the worker's epoll set (that would be a system call per look), so
// readiness that arrives during a spin waits for the spin to end.
//
// For a worker whose threads wait on sockets and are woken by the network, not by other
// workers (`uthreads serve --workers 2`: each worker's connection threads are its own), the
// spin never finds anything: it burns up to the whole spin (20 µs) of CPU on every idle pass
// and delays the requests that arrive meanwhile. Measured (docs/BENCHMARKS.md, "`serve
// --workers 2`: where the CPU per request went"): the same system calls per request at 1 and 2
// workers (2.04 and 2.05, no futex, no doorbell), yet 1.29× the server CPU per request at 100
// connections; with the spin off (`UTHREADS_SPIN_NS=0`) 0.93×.
//
// So the spin's length follows the evidence of the worker's own idle passes:
//   * a spin that found work, or a sleep that another worker's doorbell ended within one spin's
//     length of its start: a spin would have paid, so the next one is the full spin;
//   * a sleep that readiness ended (the poll made threads ready, and nobody rang): the spin, had
//     it been longer, would only have delayed them; the next one is half as long, and after
//     `off` such sleeps in a row the worker does not spin at all;
//   * a doorbell that came later than a spin's length: one step back toward the full spin (the
//     worker still serves other workers, only not at once);
//   * anything else (a timer, a time-out): no change.
// Cost: one clock read per sleep (the sleep itself is an epoll_wait) and one load of the
// worker's own `sleeping` flag. A worker that stopped spinning still sleeps with its `sleeping`
// announcement, so whoever posts to it rings it as before: nothing is lost, only no longer
// caught by the spin.
//
// Rejected: polling the epoll set during the spin (an epoll_wait per look, more than the spin
// saves); no spin at all when the worker waits for descriptors (`pendingWakeups > 0`: a worker
// that both serves sockets and hands off to other workers would lose the spin it needs); a
// fixed shorter spin (the cross-worker handoffs the spin is for take up to ~20 µs here, and the
// cost for I/O-driven workers would only shrink, not go).

/// The adaptive length of one worker's idle spin (the essay above). Owned by the worker's
/// kernel thread: plain fields, no atomics.
struct MNIdleSpin {
    /// 0: the full spin; each step halves it; `off`: no spin.
    private(set) var shift = 0
    /// Readiness-ended sleeps in a row after which a worker no longer spins.
    static let off = 4

    /// How long the next spin may take, given the full spin (`MNRuntime.spinNanoseconds`).
    func nanoseconds(full: UInt64) -> UInt64 {
        shift >= MNIdleSpin.off ? 0 : full >> UInt64(shift)
    }

    /// A spin ended; `found`: it found work (it paid).
    mutating func spun(found: Bool) {
        if found { shift = 0 }
    }

    /// A sleep ended after `nanoseconds`: `rung` if another worker's doorbell ended it,
    /// `wokeThreads` if the poll made threads ready (readiness or an offload completion).
    mutating func slept(rung: Bool, nanoseconds: UInt64, wokeThreads: Bool, full: UInt64) {
        if rung {
            shift = nanoseconds < full ? 0 : max(0, shift - 1)
        } else if wokeThreads && shift < MNIdleSpin.off {
            shift += 1
        }
    }
}
