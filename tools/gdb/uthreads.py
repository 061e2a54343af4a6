# tools/gdb/uthreads.py — gdb support for UserThreads: list the user threads of a live process
# or a core file, and show the backtrace of any one of them from its saved registers.
#
#   (gdb) source tools/gdb/uthreads.py      # or: gdb -x tools/gdb/uthreads.py ...
#   (gdb) info uthreads                     # every user thread of every runtime
#   (gdb) uthread bt 2                      # backtrace of user thread #2
#
# How it finds them. The library exports `uthreads_runtime_registry` (Sources/CUThreads/
# registry.c): one slot per live runtime, each pointing at that runtime's table view (an array of
# pointers to chunks of `uthreads_tcb` rows, see cuthreads.h). Nothing runs in the inferior:
# everything is read from memory, so it works on core files and on a process stopped anywhere.
# Field offsets come from the debug info when it is there, else from the layout below (the
# header says field order is part of this script's contract; `uthreads_debug_layout_version`
# names the version).
#
# How the backtrace works. A suspended thread's registers are on its own stack (the frame table
# in Sources/CUThreads/switch_x86_64_sysv_elf_gas.S): at its saved sp, [48] = rbp and [56] = the
# return address. From there the frame-pointer chain ([rbp] = caller's rbp, [rbp+8] = return
# address) is walked inside the thread's stack bounds, and each address is named with gdb's
# own symbol tables (gdb.block_for_pc, gdb.find_pc_line). Swift names are demangled with
# swift-demangle when it is on PATH (or in /opt/swift/usr/bin). The running thread's registers
# are live: `uthread bt` of it shows gdb's `bt` of its kernel thread.
import os
import shutil
import subprocess

import gdb

LAYOUT_VERSION = 1
STATES = {0: "free", 1: "ready", 2: "running", 3: "blocked", 4: "sleeping", 5: "finished"}
WAIT_KINDS = ["-", "join", "sleep", "mutex", "condition", "semaphore", "rwlock", "channel send",
              "channel receive", "select", "wait group", "barrier", "once", "read", "write",
              "accept", "connect", "poll", "blocking call", "async", "wait"]
# uthreads_tcb on LP64 (cuthreads.h), used when the inferior has no debug info for it.
FALLBACK_TCB = {"sp": 0, "id": 24, "state": 32, "stack_mode": 33, "wait_kind": 34, "flags": 36,
                "priority": 40, "wait_object": 48, "stack_lo": 64, "stack_hi": 72,
                "parent_id": 104, "switches": 136, "name": 192, "sizeof": 216, "name_max": 24}
REGISTRY_SLOTS = 256
ENTRY_SIZE = 24  # runtime, table, kernel_tid
SAVED_RBP, SAVED_RIP = 48, 56
FLAG_MAIN, FLAG_CANCELLED = 1 << 2, 1 << 0


def _inferior():
    return gdb.selected_inferior()


def _u64(addr):
    return int.from_bytes(bytes(_inferior().read_memory(addr, 8)), "little")


def _u8(addr):
    return bytes(_inferior().read_memory(addr, 1))[0]


def _u32(addr):
    return int.from_bytes(bytes(_inferior().read_memory(addr, 4)), "little")


def _tcb_layout():
    try:
        t = gdb.lookup_type("uthreads_tcb")
    except gdb.error:
        return FALLBACK_TCB
    layout = {f.name: f.bitpos // 8 for f in t.fields()}
    layout["sizeof"] = t.sizeof
    layout["name_max"] = t["name"].type.sizeof
    return layout


def _address_of(symbol):
    try:
        return int(gdb.parse_and_eval("(unsigned long)&%s" % symbol))
    except gdb.error:
        return None


class UThread:
    def __init__(self, addr, layout, kernel_tid):
        L = layout
        self.addr = addr
        self.kernel_tid = kernel_tid
        self.id = _u64(addr + L["id"])
        self.state = _u8(addr + L["state"])
        self.wait_kind = _u8(addr + L["wait_kind"])
        self.wait_object = _u64(addr + L["wait_object"])
        self.flags = _u32(addr + L["flags"])
        self.sp = _u64(addr + L["sp"])
        self.stack_lo = _u64(addr + L["stack_lo"])
        self.stack_hi = _u64(addr + L["stack_hi"])
        self.switches = _u64(addr + L["switches"])
        raw = bytes(_inferior().read_memory(addr + L["name"], L["name_max"]))
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
        if kind in ("read", "write", "accept", "connect", "poll"):
            return "%s fd %d" % (kind, self.wait_object)
        if kind in ("sleep", "-") or self.wait_object == 0:
            return kind
        return "%s %d" % (kind, self.wait_object)


def user_threads():
    """Every live user thread of every registered runtime, in table order."""
    registry = _address_of("uthreads_runtime_registry")
    if registry is None:
        raise gdb.GdbError("no uthreads_runtime_registry: is UserThreads linked into this program?")
    layout = _tcb_layout()
    threads = []
    for slot in range(REGISTRY_SLOTS):
        entry = registry + slot * ENTRY_SIZE
        if _u64(entry) == 0:
            continue
        view, kernel_tid = _u64(entry + 8), _u64(entry + 16)
        if view == 0:
            continue
        chunks, count, size = _u64(view), _u64(view + 8), _u64(view + 16)
        for c in range(count):
            chunk = _u64(chunks + 8 * c)
            for i in range(size):
                addr = chunk + i * layout["sizeof"]
                if _u8(addr + layout["state"]) == 0:
                    continue
                threads.append(UThread(addr, layout, kernel_tid))
    return threads


def _demangle(names):
    tool = shutil.which("swift-demangle") or (
        "/opt/swift/usr/bin/swift-demangle" if os.access("/opt/swift/usr/bin/swift-demangle", os.X_OK) else None)
    swift = [n for n in names if n and (n.startswith("$s") or n.startswith("_$s"))]
    if not tool or not swift:
        return {}
    try:
        out = subprocess.run([tool, "--simplified"], input="\n".join(swift) + "\n",
                             capture_output=True, text=True, timeout=20).stdout.splitlines()
    except (OSError, subprocess.SubprocessError):
        return {}
    return dict(zip(swift, out)) if len(out) == len(swift) else {}


def _frames(t):
    """Return addresses of a suspended thread, innermost first, walked from its saved frame."""
    lo, hi, sp = t.stack_lo, t.stack_hi, t.sp
    if not (lo <= sp <= hi - 64):
        return []
    pcs = [_u64(sp + SAVED_RIP)]
    fp = _u64(sp + SAVED_RBP)
    while fp and len(pcs) < 128:
        if fp < lo or fp > hi - 16 or fp % 8:
            break
        ret = _u64(fp + 8)
        if ret == 0:
            break
        pcs.append(ret)
        nxt = _u64(fp)
        if nxt and nxt <= fp:
            break
        fp = nxt
    return pcs


def _describe(pc, is_return):
    look = pc - 1 if is_return else pc
    name, where = None, ""
    try:
        block = gdb.block_for_pc(look)
        while block is not None and block.function is None:
            block = block.superblock
        if block is not None:
            name = block.function.linkage_name or block.function.name
    except RuntimeError:
        pass
    if name is None:
        text = gdb.execute("info symbol 0x%x" % look, to_string=True).strip()
        if not text.startswith("No symbol"):
            name = text.split(" in section ")[0].split(" + ")[0]
    sal = gdb.find_pc_line(look)
    if sal.symtab is not None and sal.line:
        where = " at %s:%d" % (sal.symtab.filename, sal.line)
    return name, where


class InfoUThreads(gdb.Command):
    """List the user threads of every UserThreads runtime: id, name, state, what a parked
thread waits for, its saved stack pointer, and the kernel thread (LWP) of its runtime."""

    def __init__(self):
        super().__init__("info uthreads", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        threads = user_threads()
        if not threads:
            print("No user threads (no runtime is live).")
            return
        rows = [("ID", "NAME", "STATE", "WAIT", "SAVED SP", "LWP", "SWITCHES")]
        for t in threads:
            name = t.name or "-"
            if t.flags & FLAG_MAIN and name != "main":
                name += " (main)"
            wait = t.wait + (", cancelled" if t.flags & FLAG_CANCELLED else "")
            sp = "-" if t.state == 2 else "0x%x" % t.sp
            rows.append(("#%d" % t.id, name, t.state_name, wait, sp, str(t.kernel_tid), str(t.switches)))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


class UThreadPrefix(gdb.Command):
    """Commands for one user thread: uthread bt N."""

    def __init__(self):
        super().__init__("uthread", gdb.COMMAND_STACK, prefix=True)


class UThreadBacktrace(gdb.Command):
    """Backtrace of user thread N (its id, as `info uthreads` shows it) from its saved registers.
Usage: uthread bt N"""

    def __init__(self):
        super().__init__("uthread bt", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        try:
            wanted = int(arg.strip().lstrip("#"))
        except ValueError:
            raise gdb.GdbError("usage: uthread bt N (a user thread id from `info uthreads`)")
        match = [t for t in user_threads() if t.id == wanted]
        if not match:
            raise gdb.GdbError("no live user thread #%d" % wanted)
        t = match[0]
        print('User thread #%d "%s" %s%s' % (t.id, t.name, t.state_name,
                                             "" if t.wait == "-" else ": " + t.wait))
        if t.state == 2:
            print("It is running: its registers are live in kernel thread LWP %d." % t.kernel_tid)
            for th in _inferior().threads():
                if th.ptid[1] == t.kernel_tid:
                    th.switch()
                    gdb.execute("bt")
            return
        pcs = _frames(t)
        described = [_describe(pc, not (i == 0 and t.switches == 0)) for i, pc in enumerate(pcs)]
        pretty = _demangle([n for n, _ in described])
        for i, (pc, (name, where)) in enumerate(zip(pcs, described)):
            shown = pretty.get(name, name) if name else "??"
            print("#%-3d 0x%016x in %s%s" % (i, pc, shown, where))


InfoUThreads()
UThreadPrefix()
UThreadBacktrace()
