# tools/common/uthreads_memory.py — what the debugger scripts (tools/gdb/uthreads.py and
# tools/lldb/uthreads.py) share: the layout of the thread table in the inferior's memory, how to
# find every row through the exported registry, how to name a row's state and wait, and how to
# walk a suspended thread's frames from its saved registers. Each debugger supplies one function,
# read(address, size) -> bytes, and its own symbol lookup; nothing here runs in the inferior.
#
# The layout is the C one: `uthreads_runtime_registry` (Sources/CUThreads/registry.c) has one
# slot per live runtime {scheduler, table view, kernel thread id}; a table view is an array of
# pointers to chunks of `uthreads_tcb` rows (cuthreads.h, whose field order is this file's
# contract; `uthreads_debug_layout_version` names it). The saved frames are the boxed tables in
# Sources/CUThreads/switch_x86_64_sysv_elf_gas.S and switch_aarch64_aapcs_elf_gas.S.

LAYOUT_VERSION = 1
STATES = {0: "free", 1: "ready", 2: "running", 3: "blocked", 4: "sleeping", 5: "finished"}
RUNNING = 2
SUSPENDED = (1, 3, 4)
# WaitReason.Kind, in raw-value order (Sources/UserThreads/ThreadTable/WaitReason.swift).
WAIT_KINDS = ["-", "join", "sleep", "mutex", "condition", "semaphore", "rwlock", "channel send",
              "channel receive", "select", "wait group", "barrier", "once", "read", "write",
              "accept", "connect", "poll", "blocking call", "async", "wait"]
FD_KINDS = ("read", "write", "accept", "connect", "poll")
# uthreads_tcb on LP64, for an inferior without debug info for it.
FALLBACK_TCB = {"sp": 0, "id": 24, "state": 32, "stack_mode": 33, "wait_kind": 34, "flags": 36,
                "priority": 40, "wait_object": 48, "stack_lo": 64, "stack_hi": 72,
                "parent_id": 104, "switches": 136, "runtime": 168, "name": 192, "worker": 232,
                "sizeof": 256, "name_max": 24}
REGISTRY_SLOTS = 256
ENTRY_SIZE = 24  # runtime, table, kernel_tid
FLAG_CANCELLED, FLAG_MAIN = 1 << 0, 1 << 2

# The saved frame of a suspended thread, per architecture: every saved register (name, offset,
# bytes), the slots of the frame pointer and of the return address, the frame's size and the
# name of the stack pointer.
FRAMES = {
    "x86_64": {
        "registers": [("mxcsr", 0, 4), ("x87cw", 4, 2), ("r15", 8, 8), ("r14", 16, 8), ("r13", 24, 8),
                      ("r12", 32, 8), ("rbx", 40, 8), ("rbp", 48, 8), ("rip", 56, 8)],
        "fp": 48, "pc": 56, "size": 64, "sp": "rsp",
    },
    "aarch64": {
        "registers": [("d%d" % (8 + i), 8 * i, 8) for i in range(8)]
                     + [("x%d" % (19 + i), 0x40 + 8 * i, 8) for i in range(10)]
                     + [("fpcr", 0x90, 8), ("x29", 0xa0, 8), ("x30", 0xa8, 8)],
        "fp": 0xa0, "pc": 0xa8, "size": 0xb0, "sp": "sp",
    },
}


def uint(read, address, size):
    return int.from_bytes(read(address, size), "little")


def u64(read, address):
    return uint(read, address, 8)


class Row:
    """One row of a thread table, read from the inferior."""

    def __init__(self, read, address, layout, kernel_tids):
        L = layout
        self.addr = address
        self.id = u64(read, address + L["id"])
        self.state = uint(read, address + L["state"], 1)
        self.wait_kind = uint(read, address + L["wait_kind"], 1)
        self.wait_object = u64(read, address + L["wait_object"])
        self.flags = uint(read, address + L["flags"], 4)
        self.sp = u64(read, address + L["sp"])
        self.stack_lo = u64(read, address + L["stack_lo"])
        self.stack_hi = u64(read, address + L["stack_hi"])
        self.switches = u64(read, address + L["switches"])
        worker = uint(read, address + L["worker"], 4)
        self.worker = None if worker >= 1 << 31 else worker  # int32_t, -1 under M:1
        # The kernel thread of the scheduler that owns the row now (M:N: maybe not its home's).
        self.kernel_tid = kernel_tids.get(u64(read, address + L["runtime"]))
        raw = read(address + L["name"], L["name_max"])
        self.name = raw.split(b"\0", 1)[0].decode("utf-8", "replace")

    @property
    def state_name(self):
        return STATES.get(self.state, "?%d" % self.state)

    @property
    def parked(self):
        return self.state in (3, 4)

    @property
    def wait(self):
        if not self.parked:
            return "-"
        kind = WAIT_KINDS[self.wait_kind] if self.wait_kind < len(WAIT_KINDS) else "wait"
        if kind == "join":
            return "join #%d" % self.wait_object
        if kind in FD_KINDS:
            return "%s fd %d" % (kind, self.wait_object)
        if kind in ("sleep", "-") or self.wait_object == 0:
            return kind
        return "%s %d" % (kind, self.wait_object)

    @property
    def display_name(self):
        name = self.name or "-"
        return name + " (main)" if self.flags & FLAG_MAIN and name != "main" else name

    @property
    def display_wait(self):
        return self.wait + (", cancelled" if self.flags & FLAG_CANCELLED else "")


def _buffered(read, base, data):
    """A reader that answers from `data` (the bytes at `base`) and asks `read` for the rest."""
    def read_buffered(address, size):
        offset = address - base
        if 0 <= offset and offset + size <= len(data):
            return data[offset:offset + size]
        return read(address, size)
    return read_buffered


def rows(read, registry, layout):
    """Every live row of every registered runtime, in table order. Each chunk of rows is read
    at once: on a live process every read is a round trip to the debugger's server."""
    entries = []
    slots = read(registry, REGISTRY_SLOTS * ENTRY_SIZE)
    for slot in range(REGISTRY_SLOTS):
        runtime, view, tid = (int.from_bytes(slots[slot * ENTRY_SIZE + 8 * i:slot * ENTRY_SIZE + 8 * i + 8],
                                             "little") for i in range(3))
        if runtime and view:
            entries.append((runtime, view, tid))
    kernel_tids = {runtime: tid for runtime, _, tid in entries}
    found = []
    for _, view, _ in entries:
        chunks, count, size = u64(read, view), u64(read, view + 8), u64(read, view + 16)
        for c in range(count):
            chunk = u64(read, chunks + 8 * c)
            rows_read = _buffered(read, chunk, read(chunk, size * layout["sizeof"]))
            for i in range(size):
                address = chunk + i * layout["sizeof"]
                if uint(rows_read, address + layout["state"], 1) != 0:
                    found.append(Row(rows_read, address, layout, kernel_tids))
    return found


def saved_registers(read, row, architecture):
    """(name, value) of every register in a suspended row's saved frame, then its stack pointer."""
    frame = FRAMES[architecture]
    saved = [(name, uint(read, row.sp + offset, size)) for name, offset, size in frame["registers"]]
    return saved + [(frame["sp"], row.sp + frame["size"])]


def saved_frames(read, row, architecture):
    """Return addresses of a suspended row, innermost first: the saved one, then the frame-pointer
    chain ([fp] = caller's fp, [fp + 8] = return address), kept inside the row's stack and moving
    up, so a corrupt stack ends the walk."""
    frame = FRAMES[architecture]
    lo, hi, sp = row.stack_lo, row.stack_hi, row.sp
    if not (lo <= sp <= hi - frame["size"]):
        return []
    pcs = [u64(read, sp + frame["pc"])]
    fp = u64(read, sp + frame["fp"])
    while fp and len(pcs) < 128:
        if fp < lo or fp > hi - 16 or fp % 8:
            break
        ret = u64(read, fp + 8)
        if ret == 0:
            break
        pcs.append(ret)
        nxt = u64(read, fp)
        if nxt and nxt <= fp:
            break
        fp = nxt
    return pcs


def table_lines(threads):
    """`uthreads list` / `info uthreads`: one aligned line per row, under a header."""
    table = [("ID", "NAME", "STATE", "WAIT", "WORKER", "SAVED SP", "LWP", "SWITCHES")]
    for t in threads:
        sp = "in the CPU" if t.state == RUNNING else "0x%x" % t.sp
        table.append(("#%d" % t.id, t.display_name, t.state_name, t.display_wait,
                      "-" if t.worker is None else str(t.worker), sp, str(t.kernel_tid or "-"), str(t.switches)))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
