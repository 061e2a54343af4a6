// Layer 3: the thread table itself — the per-runtime array of control blocks.
//
// Design. The textbook's thread table: one row per thread with its saved registers (here the
// saved stack pointer; the registers are on the thread's own stack, see the frame table in
// switch_x86_64_sysv_elf_gas.S), state, stack and accounting. Rows are C structs
// (`uthreads_tcb`) in chunks of `chunkSize` that are never moved or freed while the runtime
// lives, so a row's address is a stable handle that queues link through (intrusive lists: no
// allocation to enqueue) and that the fault handler and gdb can read. Free rows form a free
// list through `next`. Iteration walks the chunks and skips free rows.
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
    /// Rows in use (threads not yet finished).
    private(set) var liveCount = 0
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
        liveCount += 1
        return row
    }

    /// Returns a row to the free list. O(1).
    func release(_ row: ControlBlock) {
        row.pointee.state = .stateFree
        row.pointee.object = nil
        row.pointee.next = freeList
        freeList = row
        liveCount -= 1
    }

    private func grow() {
        let chunk = ControlBlock.allocate(capacity: Self.chunkSize)
        chunk.initialize(repeating: uthreads_tcb(), count: Self.chunkSize)
        for i in stride(from: Self.chunkSize - 1, through: 0, by: -1) {
            chunk[i].next = freeList
            freeList = chunk + i
        }
        chunks.append(chunk)
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

    /// Calls `body` for every live row, in table order. O(capacity).
    func forEachLive(_ body: (ControlBlock) throws -> Void) rethrows {
        for chunk in chunks {
            for i in 0..<Self.chunkSize where chunk[i].state != .stateFree {
                try body(chunk + i)
            }
        }
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
