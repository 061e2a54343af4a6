// Layer 3: stacks.
import CUThreads

/// How a thread's stack is mapped.
public enum StackMode: String, Sendable, Codable, CaseIterable {
    /// Its own mapping with 1 MiB of `PROT_NONE` below it: an overflow by recursion, or by a
    /// single frame of up to 1 MiB, faults in that guard region and the fault handler reports
    /// the thread and aborts (the `StackPool` essay gives the exact bound). Costs two kernel
    /// mappings (VMAs) per stack, so at most about `vm.max_map_count / 2` (≈ 32k with the
    /// default 65530) guarded stacks fit.
    case guarded
    /// Carved from a large slab shared with other stacks, with no guard page between slots: one
    /// mapping per slab (plus its guard region), so a million threads fit. A canary under each
    /// slot is checked at every switch and exit, and the fault handler names the thread whose
    /// stack pointer left its slot; but a large frame that writes only into a neighbour slot,
    /// below the canary, corrupts it silently (see the `StackPool` essay for what is caught).
    case dense
    /// Guarded stacks until the kernel refuses more mappings, then dense ones (logged once).
    case automatic
}

/// One stack: `[lo, hi)` is usable, the thread starts at `hi` and grows down.
struct Stack {
    /// Lowest usable byte.
    var lo: UnsafeMutableRawPointer
    /// One past the highest usable byte: the initial stack pointer.
    var hi: UnsafeMutableRawPointer
    /// Bytes of `PROT_NONE` below `lo` (0 for dense stacks).
    var guardSize: Int
    /// `.guarded` or `.dense` (never `.automatic`).
    var mode: StackMode

    var size: Int { hi - lo }

    /// Dense mode: where the canary lives. It sits in the top 16 bytes of the slot *below* this
    /// one in the slab (the page that thread touches anyway), right under `lo`, so that writing
    /// it costs no extra resident page; an overflow of this stack overwrites it first.
    var canaryAddress: UnsafeMutablePointer<UInt64> {
        (lo - 16).assumingMemoryBound(to: UInt64.self)
    }
}
