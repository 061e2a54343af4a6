// Layer 4: the thread table itself — the per-runtime array of control blocks.
//
// Design. The textbook's thread table: one row per thread with its saved registers (here the
// saved stack pointer; the registers are on the thread's own stack, see the frame table in
// switch_x86_64_sysv_elf_gas.S), state, stack and accounting. Rows are C structs
// (`uthreads_tcb`) in chunks of `chunkSize` that are never moved or freed while the runtime
// lives, so a row's address is a stable handle that queues link through (intrusive lists: no
// allocation to enqueue) and that the fault handler and gdb can read. Free rows form a free
// list through `next`. Iteration walks the chunks and skips free rows.
//
// M:N migration. A row never moves: code on the thread's own stack holds its address
// across every switch. When an M:N thread migrates, its *ownership* moves instead: the home
// table (whose chunk holds the row, and whose stack pool holds its stack) marks it abroad
// (`mn_abroad`, written only by the home worker) and stops listing or counting it; the
// adopting worker's table lists it as an immigrant (`immigrants`, flag UTHREADS_FLAG_IMMIGRANT)
// and counts it. A row that finishes abroad is returned home (`returned`) and freed there.
// Only the owner reads or writes a row's other fields; the home reads `mn_abroad` alone.
//
// Rejected: a Swift class per thread with the table as an array of references (ARC traffic on
// every queue operation, no stable C layout for gdb or the signal handler); putting the control
// block at the top of the thread's own stack (saves 200 bytes per thread but a finished thread's
// row then vanishes with its stack, and pooled stacks would carry stale rows).
import CUThreads

final class ControlBlockTable {
    static let chunkSize = 1024
    private var chunks: [ControlBlock] = []
    private var freeList: ControlBlock?
    /// Rows this table owns (threads not yet finished): its own rows not abroad, plus immigrants.
    private(set) var liveCount = 0
    /// M:N: rows of other tables this one owns now (their threads migrated here).
    private(set) var immigrants = Set<ControlBlock>()
    /// M:N: rows of this table owned by another worker's table (they must come home before
    /// this table's runtime ends: their stacks belong to its pool).
    private(set) var abroadCount = 0
    /// Chunk address ranges, sorted, for `contains`. Unchecked: read on every same-worker
    /// wake of a waiter (`owns`), touched only on the table's own kernel thread; the dynamic
    /// check cost ~75 instructions per read (callgrind).
    @exclusivity(unchecked) private var ranges: [(lo: UInt, hi: UInt)] = []
    /// The first chunk's range again: `contains` tests it first (most tables never grow a
    /// second chunk), four instructions instead of the search's ~35.
    @exclusivity(unchecked) private var firstRange: (lo: UInt, hi: UInt) = (0, 0)
    /// The chunks again, as a C array a debugger can read (registry.c); changes only in grow.
    let view: UnsafeMutablePointer<uthreads_table_view> = {
        let v = UnsafeMutablePointer<uthreads_table_view>.allocate(capacity: 1)
        v.initialize(to: uthreads_table_view(chunks: nil, chunk_count: 0, chunk_size: UInt64(chunkSize)))
        return v
    }()

    /// A zeroed row. O(1) amortised.
    func allocate() -> ControlBlock {
        if freeList == nil { grow() }
        let row = freeList!
        freeList = row.pointee.next
        row.initialize(to: uthreads_tcb())
        liveCount &+= 1  // bounded by the rows allocated: no overflow check on the spawn path
        return row
    }

    /// Returns a row to the free list. O(1).
    func release(_ row: ControlBlock) {
        row.pointee.state = .stateFree
        row.pointee.object = nil
        row.pointee.next = freeList
        freeList = row
        liveCount &-= 1
    }

    /// A finished row leaves the live rows but not the table's hands: free (every walk skips
    /// it), yet off the free list, with its stack and `object` still in place, for its owner to
    /// hand to a later spawn (`revive`) or give up (`release`). ThreadObjectSlab. O(1).
    @inline(__always)
    func retire(_ row: ControlBlock) {
        row.pointee.state = .stateFree
        liveCount &-= 1
    }

    /// A retired row is live again (its spawn fills in the rest). O(1).
    @inline(__always)
    func revive(_ row: ControlBlock) {
        liveCount &+= 1
    }

    private func grow() {
        let chunk = ControlBlock.allocate(capacity: Self.chunkSize)
        chunk.initialize(repeating: uthreads_tcb(), count: Self.chunkSize)
        for i in stride(from: Self.chunkSize - 1, through: 0, by: -1) {
            chunk[i].next = freeList
            freeList = chunk + i
        }
        chunks.append(chunk)
        let lo = UInt(bitPattern: chunk)
        ranges.append((lo, lo + UInt(Self.chunkSize * MemoryLayout<uthreads_tcb>.stride)))
        if chunks.count == 1 { firstRange = ranges[0] }
        ranges.sort { $0.lo < $1.lo }
        publishView()
    }

    /// Copies the chunk pointers into a new C array for debuggers, then frees the old one.
    private func publishView() {
        let array = UnsafeMutablePointer<ControlBlock?>.allocate(capacity: chunks.count)
        for (i, chunk) in chunks.enumerated() { (array + i).initialize(to: chunk) }
        let old = view.pointee.chunks
        view.pointee.chunks = array
        view.pointee.chunk_count = UInt64(chunks.count)
        old?.deallocate()
    }

    /// Calls `body` for every row this table owns: its own live rows in table order (not those
    /// abroad), then its immigrants. O(capacity + immigrants).
    func forEachLive(_ body: (ControlBlock) throws -> Void) rethrows {
        for chunk in chunks {
            // `mn_abroad` first: the other fields of a row abroad belong to another kernel thread.
            for i in 0..<Self.chunkSize where chunk[i].mn_abroad == 0 && chunk[i].state != .stateFree {
                try body(chunk + i)
            }
        }
        for t in immigrants { try body(t) }
    }

    // MARK: M:N migration: ownership moves, rows stay

    /// Whether `row` is one of this table's own rows (wherever it runs). O(log chunks).
    @inline(__always)
    func contains(_ row: ControlBlock) -> Bool {
        let a = UInt(bitPattern: row)
        if a &- firstRange.lo < firstRange.hi &- firstRange.lo { return true }
        return searchRanges(a)
    }

    /// `contains` for rows outside the first chunk: a binary search of the sorted ranges.
    @inline(never)
    private func searchRanges(_ a: UInt) -> Bool {
        var lo = 0
        var hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].hi <= a { lo = mid + 1 } else { hi = mid }
        }
        return lo < ranges.count && ranges[lo].lo <= a
    }

    /// Whether this table owns `row` now (an own row not abroad, or an immigrant), reading no
    /// field another kernel thread may write. O(log chunks).
    func owns(_ row: ControlBlock) -> Bool {
        contains(row) ? row.pointee.mn_abroad == 0 : hasImmigrant(row)
    }

    /// `owns` for a row of another table. Out of line: inlined, the compiler began the
    /// (dynamically checked) read of `immigrants` ahead of a caller's loop, on every call of a
    /// channel's take (~150 instructions in swift_beginAccess per handoff, callgrind).
    @inline(never)
    private func hasImmigrant(_ row: ControlBlock) -> Bool { immigrants.contains(row) }

    /// A ready row leaves this table's ownership (its thread migrates). O(1).
    func emigrate(_ row: ControlBlock) {
        if row.has(.flagImmigrant) {
            immigrants.remove(row)
        } else {
            row.pointee.mn_abroad = 1
            abroadCount += 1
        }
        liveCount -= 1
    }

    /// This table takes ownership of a migrating row (an own row coming home, or an immigrant).
    func immigrate(_ row: ControlBlock) {
        if contains(row) {
            row.clear(.flagImmigrant)
            row.pointee.mn_abroad = 0
            abroadCount -= 1
        } else {
            row.set(.flagImmigrant)
            immigrants.insert(row)
        }
        liveCount += 1
    }

    /// A finished immigrant leaves (its row goes home to be freed there). O(1).
    func leave(_ row: ControlBlock) {
        immigrants.remove(row)
        liveCount -= 1
    }

    /// One of this table's rows finished abroad and came home: free it. O(1).
    func returned(_ row: ControlBlock) {
        row.pointee.mn_abroad = 0
        abroadCount -= 1
        liveCount += 1
        release(row)
    }

    /// Bytes of control-block storage (for the memory figures).
    var bytesReserved: Int { chunks.count * Self.chunkSize * MemoryLayout<uthreads_tcb>.stride }

    deinit {
        view.pointee.chunks?.deallocate()
        view.deallocate()
        for chunk in chunks {
            chunk.deinitialize(count: Self.chunkSize)
            chunk.deallocate()
        }
    }
}

extension UnsafeMutablePointer where Pointee == uthreads_tcb {
    var threadID: ThreadID { ThreadID(rawValue: pointee.id) }

    /// The C copy of the name (truncated to UTHREADS_NAME_MAX - 1 bytes).
    func setName(_ name: String) {
        withUnsafeMutableBytes(of: &pointee.name) { buffer in
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            let all = Array(name.utf8)
            var n = min(all.count, buffer.count - 1)
            // Never cut a UTF-8 sequence in half: back up to the start of the cut one.
            if n < all.count { while n > 0 && all[n] & 0xC0 == 0x80 { n -= 1 } }
            buffer.copyBytes(from: all[0..<n])
        }
    }

    var cName: String {
        withUnsafeBytes(of: pointee.name) { buffer in
            let bytes = buffer.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    @inline(__always) func has(_ flag: UInt32) -> Bool { pointee.flags & flag != 0 }
    @inline(__always) func set(_ flag: UInt32) { pointee.flags |= flag }
    @inline(__always) func clear(_ flag: UInt32) { pointee.flags &= ~flag }
}
