// Layer 2: the stack pool.
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
// page costs a second VMA; with vm.max_map_count = 65530 about 32k guarded stacks fit. Running
// the process out of mappings would not only fail the next spawn: malloc, dlopen and every other
// mmap in the process would start failing too. So guarded stacks have a process-wide budget
// (`GuardedBudget`): vm.max_map_count minus a reserve of 1/8 (at least 4096 mappings) for the
// rest of the process, halved. Past it, `.guarded` throws `UThreadError.resourceExhausted` and
// `.automatic` switches to dense stacks for the rest of the runtime's life (logged once). A
// kernel refusal (ENOMEM) is handled the same way.
//
// Dense stacks: slabs of `slotsPerSlab` equal slots in one mapping, no guard pages. Each slot
// reserves its top 64 bytes for the canary of the slot above it (see `Stack.canaryAddress`):
// the top page of a slot is touched by its own thread anyway, so canaries cost no memory.
//
// Rejected: malloc'd stacks (no guard page, no lazy commit, and glibc would hand out memory
// that other code may share pages with); one big mapping for all guarded stacks with
// mprotect'ed holes (the same VMA count, and a much harder free path); growable/segmented
// stacks as in early Go (needs compiler support for stack checks, which Swift lacks).
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
            if withUnsafeMutablePointer(to: &value, { p in withVaList([p]) { vfscanf(f, "%ld", $0) } }) == 1 { maxMapCount = value }
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
            let (exchanged, original) = used.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
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

    @exclusivity(unchecked) private var freeDefault = StackFreeList()   // guarded, defaultSize
    private var freeGuarded: [Int: [Stack]] = [:]                   // other usable sizes
    @exclusivity(unchecked) private var pooledGuarded = 0
    @exclusivity(unchecked) private var freeDense = StackFreeList()
    private var slabs: [(base: UnsafeMutableRawPointer, length: Int)] = []
    private static let slotsPerSlab = 256
    private let guardSize: Int

    /// Stacks currently handed out.
    @exclusivity(unchecked) private(set) var inUse = 0
    private(set) var mappedGuarded = 0

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
        self.guardSize = page
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
                if let s = freeDense.pop() { inUse &+= 1; return s }
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
            logger.notice("no more guarded stacks; new threads get dense stacks without guard pages",
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
        stack.mode == .dense ? freeDense.count < maxPooled : pooledGuarded < maxPooled && stack.size == defaultSize
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
                if stack.size == defaultSize { freeDefault.push(stack) } else { freeGuarded[stack.size, default: []].append(stack) }
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
            throw .resourceExhausted("the process's budget of \(GuardedBudget.limit) guarded stacks is spent (each costs 2 of vm.max_map_count's mappings); use StackMode.dense or .automatic")
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
            throw .resourceExhausted("mprotect of a stack failed: \(e) (vm.max_map_count reached? each guarded stack costs 2 mappings)")
        }
        mappedGuarded += 1
        return Stack(lo: lo, hi: lo + usable, guardSize: guardSize, mode: .guarded)
    }

    private func allocateDense() throws(UThreadError) -> Stack {
        if let s = freeDense.pop() { return s }
        let slots = StackPool.slotsPerSlab
        // One leading page holds the canary of slot 0.
        let length = pageSize + slots * denseSlotSize
        guard let base = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0),
              base != MAP_FAILED else {
            let e = Errno.lastError
            throw .resourceExhausted("mmap of a dense stack slab (\(length >> 20) MiB) failed: \(e)")
        }
        slabs.append((base, length))
        // Hand out from the top of the slab first, so that slot i's canary (in slot i-1) is in a
        // page that is already resident when slot i-1 is in use.
        for i in 0..<slots {
            let slotLo = base + pageSize + i * denseSlotSize
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
