// Layer 2: stacks.
import CUThreads

/// How a thread's stack is mapped.
public enum StackMode: String, Sendable, Codable, CaseIterable {
    /// Its own mapping with a `PROT_NONE` guard page below it: an overflow faults at once and is
    /// reported by the fault handler. Costs two kernel mappings (VMAs) per stack, so at most
    /// about `vm.max_map_count / 2` (≈ 32k with the default 65530) guarded stacks fit.
    case guarded
    /// Carved from a large slab shared with other stacks, with no guard page: one mapping per
    /// slab, so a million threads fit. Overflow is caught by a canary checked on every switch
    /// (after the fact: an overflow that never reaches a switch point is not seen).
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
