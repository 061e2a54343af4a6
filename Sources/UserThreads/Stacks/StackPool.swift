// Layer 3: the stack pool.
//
// Design. A spawn must not cost a system call: mmap + mprotect of a fresh guarded stack costs
// ~7 µs here, a pooled spawn ~60 ns. So stacks are recycled: a finished thread's stack goes on a
// free list (per size and mode) and the next spawn of that size pops it. Pages a previous thread
// touched stay resident while pooled (that is what makes reuse cheap); the pool is bounded, and
// stacks beyond the bound are unmapped (guarded) or given back with MADV_DONTNEED (dense).
//
// Memory is reserved, not committed: MAP_NORESERVE, no MAP_POPULATE. A parked thread that used
// 2 KiB of stack costs one resident page, whatever its stack size.
//
// Guarded stacks: one mmap per stack, PROT_NONE, then mprotect of the usable part. The guard
// costs a second VMA; with vm.max_map_count = 65530 about 32k guarded stacks fit. Running
// the process out of mappings would not only fail the next spawn: malloc, dlopen and every other
// mmap in the process would start failing too. So guarded stacks have a process-wide budget
// (`GuardedBudget`): vm.max_map_count minus a reserve of 1/8 (at least 4096 mappings) for the
// rest of the process, halved. Past it, `.guarded` throws `UThreadError.resourceExhausted` and
// `.automatic` switches to dense stacks for the rest of the runtime's life (logged once). A
// kernel refusal (ENOMEM) is handled the same way.
//
// The guard region is 1 MiB (`guardRegionSize`), not one page. A function's frame is carved by
// one `sub rsp, N`; its first store may land anywhere in those N bytes. With a 4 KiB guard page,
// a function with a 64 KiB local buffer stepped over the guard and wrote into whatever mapping
// lay below (often another thread's stack): no fault, no report, silent corruption (the "stack
// clash" of Qualys, 2017). C compilers answer with probes (-fstack-clash-protection touches every
// page of a large frame in order); Swift on Linux x86-64 emits none (checked with swiftc 6.3.1
// -O and -Onone: a 64 KiB local is one `subq $65680, %rsp` and no probe; swiftc and its LLVM
// have no option to ask for them). So the guard itself must be wider than the frames we mean
// to catch. PROT_NONE costs address space only: no memory, no page tables, no commit charge and
// no extra mapping (the guard is one VMA whatever its size). 1 MiB is what Linux itself keeps
// below a growing stack since the stack-clash fix (`stack_guard_gap`, 256 pages); 32k guarded
// stacks then reserve ~40 GiB of the 128 TiB user address space (only a process limited by
// `ulimit -v`, RLIMIT_AS, counts it). Caught for sure: any frame of
// up to 1 MiB - 128 bytes (the red zone a leaf function may use below its stack pointer), from
// any depth: the frame's lowest byte lies at most that far below `lo`, inside the guard.
// Larger frames are caught when their first touched byte still lies in the guard, or (by the
// fault handler, from the stack pointer) when they fault anywhere further down; a frame of more
// than 1 MiB whose stores all land in another writable mapping is not caught. Rejected: 64 KiB
// (the issue's own probe frame size; any larger buffer would jump it again), a per-thread
// configurable guard (one more knob for a cost that is only address space).
//
// C code (CUThreads) runs on user threads' stacks too. clang offers -fstack-clash-protection,
// but only as `.unsafeFlags` in Package.swift, and SwiftPM refuses a versioned dependency whose
// product uses unsafe flags: UserThreads would stop being usable as a package. It is not needed:
// no C function here has a frame of a page or more (the 12 KiB epoll array went; a test compiles
// every C file with -Werror=frame-larger-than=4095 at -O0 and -O2), and clang probes only frames
// larger than a page, so the flag changes nothing (the assembly of every file is identical with
// and without it). Such a frame cannot step over the guard, nor far past a dense canary.
//
// Dense stacks: slabs of `slotsPerSlab` equal slots in one mapping, no guard pages between
// slots. Each slot reserves its top 64 bytes for the canary of the slot above it (see
// `Stack.canaryAddress`): the top page of a slot is touched by its own thread anyway, so
// canaries cost no memory. Below each slab lies a guard region as above (one more VMA per slab
// of 1024 slots, ~2,000 mappings at a million threads), so an overflow that runs through the
// slab faults there instead of writing into the heap below it, and the fault handler (signals.c)
// finds the overflowing thread from its stack pointer and reports it. What dense mode can and
// cannot catch:
//   - deep recursion: the recursion writes down through the slots below (each a neighbour's
//     stack) and faults at the slab's guard, at most one slab (64 MiB with 64 KiB slots) further
//     down; the handler names the running thread (its stack pointer is below its slot) and
//     the slot the fault hit. Neighbours are corrupted, but none of them runs again on this
//     worker: the report ends the process. The canary alone would not do: in the recursion
//     test (`selftest stack-overflow dense recursion`, ~600-byte frames) the recursion passed
//     the canary word without writing it.
//   - a thread that switches out (parks, yields, ends) while overflowed: the check at every
//     switch and exit of a dense thread compares its stack pointer with its slot, beside the
//     canary (one `mov` and one compare more, on dense threads only), and reports it before
//     another thread of that worker runs.
//   - a large frame: if it writes the canary word (a buffer that crosses the slot's limit and
//     is initialised does), the check at the thread's next switch or exit reports it. A frame
//     that reaches past the slab faults and is reported as above.
//   - not caught: a frame that ends in a neighbour slot, writes only below the canary word and
//     returns before the thread switches, e.g. a debug-built function with
//     `withUnsafeTemporaryAllocation(capacity: 65536)` (at -Onone the whole buffer is in the
//     frame even when the heap is used, and the first store is a spill at the frame's bottom):
//     the neighbour's stack is corrupted silently. Catching that needs a guard page per slot
//     (two mappings each: at most ~32k, which is what guarded mode is) or compiler probes (which
//     Swift lacks). Under M:N a neighbour may also run on another worker before the
//     overflowing thread's next switch. Use guarded stacks for code with large frames.
//
// Rejected: malloc'd stacks (no guard page, no lazy commit, and glibc would hand out memory
// that other code may share pages with); one big mapping for all guarded stacks with
// mprotect'ed holes (the same VMA count, and a much harder free path); growable/segmented
// stacks as in early Go (needs compiler support for stack checks, which Swift lacks); a canary
// zone of many words per slot checked at every switch (each check costs loads on the switch
// path and the zone pages become resident, and it still misses a frame that jumps it).
import CUThreads
import Glibc
import Synchronization
import SystemPackage
import Logging

/// The process-wide budget of guarded stacks, shared by every runtime (they share the
/// process's vm.max_map_count).
enum GuardedBudget {
    static let limit: Int = {
        var maxMapCount = 65530
        if let f = fopen("/proc/sys/vm/max_map_count", "r") {
            var value = 0
            if withUnsafeMutablePointer(to: &value, { p in withVaList([p]) { vfscanf(f, "%ld", $0) } }) == 1 {
                maxMapCount = value
            }
            fclose(f)
        }
        let reserve = max(4096, maxMapCount / 8)
        return max(0, (maxMapCount - reserve) / 2)
    }()
    static let used = Atomic<Int>(0)

    /// Takes one guarded stack from the budget; false when it is spent.
    static func take() -> Bool {
        var current = used.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = used.compareExchange(
                expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    static func give() { used.subtract(1, ordering: .relaxed) }
}

final class StackPool {
    let pageSize: Int
    let mode: StackMode
    let defaultSize: Int
    let denseSlotSize: Int
    let maxPooled: Int

    /// The mode new stacks get now (`.automatic` resolves to `.guarded` until it must not).
    @exclusivity(unchecked) private(set) var effectiveMode: StackMode
    private(set) var switchedToDense = false

    @exclusivity(unchecked) private var freeDefault = StackFreeList()  // guarded, defaultSize
    private var freeGuarded: [Int: [Stack]] = [:]  // other usable sizes
    @exclusivity(unchecked) private var pooledGuarded = 0
    @exclusivity(unchecked) private var freeDense = StackFreeList()
    /// Dense stacks set aside with their finished rows (`keepAside`): pooled, but not on
    /// `freeDense`, and counted against `maxPooled` with it.
    @exclusivity(unchecked) private var keptDense = 0
    private var slabs: [(base: UnsafeMutableRawPointer, length: Int)] = []
    static let slotsPerSlab = Int(UTHREADS_DENSE_SLAB_SLOTS)
    /// Bytes of `PROT_NONE` below every guarded stack and below every dense slab (the essay says
    /// why 1 MiB).
    static let guardRegionSize = Int(UTHREADS_GUARD_REGION_SIZE)
    private let guardSize: Int

    /// Stacks currently handed out.
    @exclusivity(unchecked) private(set) var inUse = 0
    private(set) var mappedGuarded = 0
    /// Stacks mapped now, in use or pooled: guarded ones and every slot of the dense slabs.
    var mappedStacks: Int { mappedGuarded + slabs.count * Self.slotsPerSlab }

    /// Where the switch to dense stacks is reported.
    let logger: Logger

    init(mode: StackMode, defaultSize: Int, denseSize: Int, maxPooled: Int, logger: Logger = RuntimeLog.makeDefault()) {
        self.logger = logger
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        self.pageSize = page
        self.mode = mode
        self.defaultSize = StackPool.round(defaultSize, to: page)
        self.denseSlotSize = StackPool.round(denseSize, to: page)
        self.maxPooled = maxPooled
        self.effectiveMode = mode == .dense ? .dense : .guarded
        self.guardSize = StackPool.round(StackPool.guardRegionSize, to: page)
    }

    static func round(_ n: Int, to page: Int) -> Int { (n + page - 1) / page * page }

    /// A stack of at least `size` usable bytes (`nil`: the default). O(1) when pooled.
    ///
    /// The common spawn (default size, a pooled stack) is inlined into the caller; the rest
    /// is `allocateSlow`.
    @inline(__always)
    func allocate(size: Int?) throws(UThreadError) -> Stack {
        if size == nil {
            if effectiveMode == .dense {
                if let s = freeDense.pop() {
                    inUse &+= 1
                    return s
                }
            } else if let s = freeDefault.pop() {
                pooledGuarded &-= 1
                inUse &+= 1
                return s
            }
        }
        return try allocateSlow(size: size)
    }

    @inline(never)
    private func allocateSlow(size: Int?) throws(UThreadError) -> Stack {
        if effectiveMode == .dense && (size == nil || size! <= denseSlotSize - 64) {
            let s = try allocateDense()
            inUse += 1
            return s
        }
        let usable = size.map { StackPool.round($0, to: pageSize) } ?? defaultSize
        if usable == defaultSize, let s = freeDefault.pop() {
            pooledGuarded -= 1
            inUse += 1
            return s
        }
        if usable != defaultSize, let s = freeGuarded[usable]?.popLast() {  // in place: no copy
            pooledGuarded -= 1
            inUse += 1
            return s
        }
        do {
            let s = try mapGuarded(usable: usable)
            inUse += 1
            return s
        } catch {
            guard mode == .automatic, !switchedToDense else { throw error }
            switchedToDense = true
            effectiveMode = .dense
            logger.notice(
                "no more guarded stacks; new threads get dense stacks without guard pages",
                metadata: ["error": "\(error)", "denseStackKiB": "\(denseSlotSize / 1024)"])
            if size == nil || size! <= denseSlotSize - 64 {
                let s = try allocateDense()
                inUse += 1
                return s
            }
            throw error
        }
    }

    /// Returns a stack to the pool (or to the kernel when the pool is full). O(1).
    ///
    /// The common case (a default-size or dense stack into a pool with room) is inlined into
    /// the caller; the rest is `releaseSlow`.
    @inline(__always)
    func release(_ stack: Stack) {
        if poolsAsIs(stack) {
            if stack.mode == .dense {
                freeDense.push(stack)
            } else {
                freeDefault.push(stack)
                pooledGuarded &+= 1
            }
            inUse &-= 1
            return
        }
        releaseSlow(stack)
    }

    /// Whether `release(stack)` takes the common case: the stack goes into the pool untouched
    /// (no munmap, no madvise). A finishing thread may then return the stack it still runs on,
    /// just before its last switch (Scheduler's cheap exit).
    @inline(__always)
    func poolsAsIs(_ stack: Stack) -> Bool {
        stack.mode == .dense
            ? freeDense.count &+ keptDense < maxPooled : pooledGuarded < maxPooled && stack.size == defaultSize
    }

    /// Counts a stack `poolsAsIs` accepted as pooled while its owner keeps it aside, outside the
    /// free lists: the scheduler keeps a finished thread's row with its stack for the next
    /// spawn (ThreadObjectSlab), which takes it back with `takeBack`. Touches neither the stack
    /// nor its mapping. O(1).
    @inline(__always)
    func keepAside(dense: Bool) {
        if dense { keptDense &+= 1 } else { pooledGuarded &+= 1 }
        inUse &-= 1
    }

    /// A stack set aside with `keepAside` is in use again. O(1).
    @inline(__always)
    func takeBack(dense: Bool) {
        if dense { keptDense &-= 1 } else { pooledGuarded &-= 1 }
        inUse &+= 1
    }

    /// A stack set aside with `keepAside` goes onto its free list (the runtime ends, or its row
    /// is given up). O(1).
    func returnKept(_ stack: Stack) {
        takeBack(dense: stack.mode == .dense)
        release(stack)
    }

    @inline(never)
    private func releaseSlow(_ stack: Stack) {
        inUse -= 1
        switch stack.mode {
        case .dense:
            if freeDense.count >= maxPooled {
                // Give the touched pages back, all but the slot's top page: that page also holds
                // the canary of the slot above, which may be in use.
                let slotTop = stack.hi + 64
                let keepFrom = slotTop - pageSize
                if keepFrom > stack.lo { madvise(stack.lo, keepFrom - stack.lo, MADV_DONTNEED) }
            }
            freeDense.push(stack)
        default:
            if pooledGuarded < maxPooled {
                if stack.size == defaultSize {
                    freeDefault.push(stack)
                } else {
                    freeGuarded[stack.size, default: []].append(stack)
                }
                pooledGuarded += 1
            } else {
                munmap(stack.lo - stack.guardSize, stack.size + stack.guardSize)
                mappedGuarded -= 1
                GuardedBudget.give()
            }
        }
    }

    private func mapGuarded(usable: Int) throws(UThreadError) -> Stack {
        guard GuardedBudget.take() else {
            throw .resourceExhausted(
                "the process's budget of \(GuardedBudget.limit) guarded stacks is spent (each costs 2 of vm.max_map_count's mappings); use StackMode.dense or .automatic"
            )
        }
        let total = usable + guardSize
        let base = mmap(nil, total, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0)
        if base == MAP_FAILED || base == nil {
            let e = Errno.lastError
            GuardedBudget.give()
            throw .resourceExhausted("mmap of a \(usable / 1024) KiB stack failed: \(e)")
        }
        let lo = base! + guardSize
        if mprotect(lo, usable, PROT_READ | PROT_WRITE) != 0 {
            let e = Errno.lastError
            munmap(base, total)
            GuardedBudget.give()
            throw .resourceExhausted(
                "mprotect of a stack failed: \(e) (vm.max_map_count reached? each guarded stack costs 2 mappings)")
        }
        mappedGuarded += 1
        return Stack(lo: lo, hi: lo + usable, guardSize: guardSize, mode: .guarded)
    }

    private func allocateDense() throws(UThreadError) -> Stack {
        if let s = freeDense.pop() { return s }
        let slots = StackPool.slotsPerSlab
        // [guard region][one page: the canary of slot 0][slot 0]...[slot n-1]
        let usable = pageSize + slots * denseSlotSize
        let length = guardSize + usable
        guard let base = mmap(nil, length, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0),
            base != MAP_FAILED
        else {
            let e = Errno.lastError
            throw .resourceExhausted("mmap of a dense stack slab (\(length >> 20) MiB) failed: \(e)")
        }
        if mprotect(base + guardSize, usable, PROT_READ | PROT_WRITE) != 0 {
            let e = Errno.lastError
            munmap(base, length)
            throw .resourceExhausted("mprotect of a dense stack slab failed: \(e) (vm.max_map_count reached?)")
        }
        slabs.append((base, length))
        let first = base + guardSize + pageSize
        // Hand out from the top of the slab first, so that slot i's canary (in slot i-1) is in a
        // page that is already resident when slot i-1 is in use.
        for i in 0..<slots {
            let slotLo = first + i * denseSlotSize
            // usable: [slotLo, slotLo + slot - 64): the top 64 bytes hold the canary of the slot above.
            freeDense.push(Stack(lo: slotLo, hi: slotLo + denseSlotSize - 64, guardSize: 0, mode: .dense))
        }
        return freeDense.pop()!
    }

    /// Unmaps everything. Only when no stack is in use (the runtime has ended).
    func destroy() {
        let unmap = { [self] (s: Stack) in
            munmap(s.lo - s.guardSize, s.size + s.guardSize)
            mappedGuarded -= 1
            GuardedBudget.give()
        }
        freeDefault.drain(unmap)
        freeGuarded.values.joined().forEach(unmap)
        freeGuarded = [:]
        pooledGuarded = 0
        for slab in slabs { munmap(slab.base, slab.length) }
        slabs = []
        freeDense.drain { _ in }  // their memory went with the slabs
    }

    deinit {
        destroy()
        freeDefault.deallocate()
        freeDense.deallocate()
    }
}
