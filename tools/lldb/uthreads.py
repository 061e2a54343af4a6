# tools/lldb/uthreads.py — LLDB support for UserThreads: list the user threads of a live process
# or a core file, and show the backtrace of any one of them from its saved registers.
#
#   (lldb) command script import tools/lldb/uthreads.py
#   (lldb) uthreads list                    # every user thread of every runtime
#   (lldb) uthread bt 2                     # backtrace of user thread #2
#   (lldb) uthread regs 2                   # its saved registers (the frame table of the .S file)
#
# LLDB is the debugger the Swift toolchain ships (/opt/swift/usr/bin/lldb); it links libpython3.10,
# so on a system without that library start it with LD_LIBRARY_PATH pointing at one (the tests
# look in pyenv's versions). The gdb script (tools/gdb/uthreads.py) does the same for gdb.
#
# Where the threads are. The library exports `uthreads_runtime_registry` (Sources/CUThreads/
# registry.c): one slot per live runtime {scheduler, table view, kernel thread id}; a table view
# is an array of pointers to chunks of `uthreads_tcb` rows (cuthreads.h). Everything is read from
# memory with SBProcess.ReadMemory: nothing runs in the inferior, so it works on a core file and
# on a process stopped anywhere (even inside the switch). Field offsets come from the debug info
# when LLDB finds the C type, else from the layout below (field order is the scripts' contract,
# `uthreads_debug_layout_version` names it).
#
# How the backtrace works. A suspended thread's registers are on its own stack, at its saved sp,
# in the frame table of the switch (x86-64: [48] rbp, [56] return address; AArch64: [0xa0] x29,
# [0xa8] x30). From there the frame-pointer chain is walked inside the thread's stack bounds,
# and each address is named by LLDB's own symbol tables (SBTarget.ResolveLoadAddress), which
# demangle Swift names as `bt` shows them. The running thread's registers are live in the CPU:
# `uthread bt` of it prints LLDB's own backtrace of the kernel thread it runs on.
#
# `uthread select N` makes a user thread an LLDB thread, so that `bt`, `frame variable`, `up` and
# the rest work in it with LLDB's own unwinder. LLDB learns of threads the process plugin does not
# report through an operating-system plugin: a Python class (OperatingSystemPlugIn, below) named
# by the setting target.process.python-os-plugin-path, asked on every stop for extra threads and
# for their registers as bytes. This file is that plugin too: `uthread select` sets the path to
# it, and every suspended user thread appears as a thread with id USER_TID_BASE + its id, its
# registers those of its saved frame (the rest read as 0); the kernel threads stay as they are
# (LLDB keeps every core thread that no plugin thread claims). It works on core files as on live
# processes (checked with LLDB 21 of Swift 6.3.1). A user thread's LLDB thread can be inspected,
# not run: continuing runs the kernel threads, which switch user threads as before.
# Rejected: a scripted process (process launch -C), which replaces the process plugin and so
# cannot be laid over a live process or a core file; and writing a user thread's registers into
# its kernel thread, which would change the inferior.
import os

import lldb

LAYOUT_VERSION = 1
STATES = {0: "free", 1: "ready", 2: "running", 3: "blocked", 4: "sleeping", 5: "finished"}
# WaitReason.Kind, in raw-value order (Sources/UserThreads/ThreadTable/WaitReason.swift).
WAIT_KINDS = ["-", "join", "sleep", "mutex", "condition", "semaphore", "rwlock", "channel send",
              "channel receive", "select", "wait group", "barrier", "once", "read", "write",
              "accept", "connect", "poll", "blocking call", "async", "wait"]
FD_KINDS = ("read", "write", "accept", "connect", "poll")
# uthreads_tcb on LP64 (cuthreads.h), used when LLDB has no debug info for it.
FALLBACK_TCB = {"sp": 0, "id": 24, "state": 32, "stack_mode": 33, "wait_kind": 34, "flags": 36,
                "priority": 40, "wait_object": 48, "stack_lo": 64, "stack_hi": 72,
                "parent_id": 104, "switches": 136, "runtime": 168, "name": 192, "worker": 232,
                "sizeof": 256, "name_max": 24}
REGISTRY_SLOTS = 256
USER_TID_BASE = 0x7500000000  # LLDB thread id of user thread N: USER_TID_BASE + N
ENTRY_SIZE = 24  # runtime, table, kernel_tid
FLAG_CANCELLED, FLAG_MAIN = 1 << 0, 1 << 2

# The saved frame of a suspended thread, per architecture: (name, offset) of every saved
# register, the offsets of the frame pointer and the return address, and the frame's size.
FRAMES = {
    "x86_64": {
        "registers": [("mxcsr", 0, 4), ("x87cw", 4, 2), ("r15", 8, 8), ("r14", 16, 8), ("r13", 24, 8),
                      ("r12", 32, 8), ("rbx", 40, 8), ("rbp", 48, 8), ("rip", 56, 8)],
        "fp": 48, "pc": 56, "size": 64, "sp": "rsp",
        # The general registers an OS-plugin thread has, with their DWARF numbers; the generic
        # roles LLDB's unwinder needs.
        "gpr": ["rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12",
                "r13", "r14", "r15", "rip"],
        "generic": {"rip": "pc", "rsp": "sp", "rbp": "fp"},
    },
    "aarch64": {
        "registers": [("d%d" % (8 + i), 8 * i, 8) for i in range(8)]
                     + [("x%d" % (19 + i), 0x40 + 8 * i, 8) for i in range(10)]
                     + [("fpcr", 0x90, 8), ("x29", 0xa0, 8), ("x30", 0xa8, 8)],
        "fp": 0xa0, "pc": 0xa8, "size": 0xb0, "sp": "sp",
        "gpr": ["x%d" % i for i in range(29)] + ["x29", "x30", "sp", "pc"],
        "generic": {"x29": "fp", "x30": "ra", "sp": "sp", "pc": "pc"},
    },
}


class Memory:
    """Reads the inferior's memory; raises RuntimeError with the address on failure."""

    def __init__(self, process):
        self.process = process

    def read(self, addr, size):
        error = lldb.SBError()
        data = self.process.ReadMemory(addr, size, error)
        if not error.Success() or data is None:
            raise RuntimeError("cannot read %d bytes at 0x%x: %s" % (size, addr, error.GetCString()))
        return bytes(data)

    def uint(self, addr, size):
        return int.from_bytes(self.read(addr, size), "little")

    def u64(self, addr):
        return self.uint(addr, 8)


def _architecture(target):
    triple = target.GetTriple() or ""
    return "aarch64" if triple.startswith(("aarch64", "arm64")) else "x86_64"


def _tcb_layout(target):
    t = target.FindFirstType("uthreads_tcb")
    if not t.IsValid() or t.GetNumberOfFields() == 0:
        return FALLBACK_TCB
    layout = dict(FALLBACK_TCB)
    for i in range(t.GetNumberOfFields()):
        f = t.GetFieldAtIndex(i)
        layout[f.GetName()] = f.GetOffsetInBytes()
        if f.GetName() == "name":
            layout["name_max"] = f.GetType().GetByteSize()
    layout["sizeof"] = t.GetByteSize()
    return layout


def _registry_address(target):
    for symbol_context in target.FindSymbols("uthreads_runtime_registry"):
        address = symbol_context.GetSymbol().GetStartAddress().GetLoadAddress(target)
        if address != lldb.LLDB_INVALID_ADDRESS:
            return address
    value = target.FindFirstGlobalVariable("uthreads_runtime_registry")
    if value.IsValid() and value.GetLoadAddress() != lldb.LLDB_INVALID_ADDRESS:
        return value.GetLoadAddress()
    return None


class UThread:
    """One row of a thread table, read from the inferior."""

    def __init__(self, mem, addr, L, kernel_tids):
        self.addr = addr
        self.id = mem.u64(addr + L["id"])
        self.state = mem.uint(addr + L["state"], 1)
        self.wait_kind = mem.uint(addr + L["wait_kind"], 1)
        self.wait_object = mem.u64(addr + L["wait_object"])
        self.flags = mem.uint(addr + L["flags"], 4)
        self.sp = mem.u64(addr + L["sp"])
        self.stack_lo = mem.u64(addr + L["stack_lo"])
        self.stack_hi = mem.u64(addr + L["stack_hi"])
        self.switches = mem.u64(addr + L["switches"])
        worker = mem.uint(addr + L["worker"], 4)
        self.worker = None if worker >= 1 << 31 else worker  # int32_t, -1 under M:1
        self.kernel_tid = kernel_tids.get(mem.u64(addr + L["runtime"]))
        raw = mem.read(addr + L["name"], L["name_max"])
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


def user_threads(target):
    """Every live user thread of every registered runtime, in table order."""
    process = target.GetProcess()
    if not process.IsValid():
        raise RuntimeError("no process: run the program, attach to it, or load a core file")
    registry = _registry_address(target)
    if registry is None:
        raise RuntimeError("no uthreads_runtime_registry: is UserThreads linked into this program?")
    mem, layout = Memory(process), _tcb_layout(target)
    entries = []
    for slot in range(REGISTRY_SLOTS):
        runtime, view, tid = (mem.u64(registry + slot * ENTRY_SIZE + 8 * i) for i in range(3))
        if runtime and view:
            entries.append((runtime, view, tid))
    kernel_tids = {runtime: tid for runtime, _, tid in entries}
    threads = []
    for _, view, _ in entries:
        chunks, count, size = mem.u64(view), mem.u64(view + 8), mem.u64(view + 16)
        for c in range(count):
            chunk = mem.u64(chunks + 8 * c)
            for i in range(size):
                addr = chunk + i * layout["sizeof"]
                if mem.uint(addr + layout["state"], 1) != 0:
                    threads.append(UThread(mem, addr, layout, kernel_tids))
    return threads


def saved_registers(target, t):
    """(name, value) of every register saved in the frame of a suspended thread, then its sp."""
    frame = FRAMES[_architecture(target)]
    mem = Memory(target.GetProcess())
    regs = [(name, mem.uint(t.sp + off, size)) for name, off, size in frame["registers"]]
    return regs + [(frame["sp"], t.sp + frame["size"])]


class OperatingSystemPlugIn(object):
    """LLDB's operating-system plugin interface: every suspended user thread as an LLDB thread
    (see `uthread select` in the essay above). LLDB instantiates it per process."""

    def __init__(self, process):
        self.process = process
        self.registers = {}

    def _arch(self):
        return FRAMES[_architecture(self.process.GetTarget())]

    def get_thread_info(self):
        target = self.process.GetTarget()
        self.registers = {}
        try:
            threads = user_threads(target)
        except RuntimeError:
            return []  # no runtime (yet): only the kernel threads
        infos = []
        for t in threads:
            if t.state not in (1, 3, 4):  # suspended only: a running thread's registers are in the CPU
                continue
            try:
                saved = dict(saved_registers(target, t))
            except RuntimeError:
                continue
            if "x30" in saved:
                saved["pc"] = saved["x30"]  # AArch64: it resumes at the saved link register
            tid = USER_TID_BASE + t.id
            self.registers[tid] = saved
            infos.append({"tid": tid, "name": "uthread #%d %s (%s)" % (t.id, t.name, t.state_name),
                          "state": "stopped", "stop_reason": "none"})
        return infos

    def get_register_info(self):
        frame = self._arch()
        registers = []
        for i, name in enumerate(frame["gpr"]):
            info = {"name": name, "bitsize": 64, "offset": 8 * i, "encoding": "uint", "format": "hex",
                    "set": 0, "dwarf": i, "gcc": i}
            if name in frame["generic"]:
                info["generic"] = frame["generic"][name]
            registers.append(info)
        return {"sets": ["User thread registers (saved by the switch)"], "registers": registers}

    def get_register_data(self, tid):
        saved = self.registers.get(tid, {})
        return b"".join(saved.get(name, 0).to_bytes(8, "little") for name in self._arch()["gpr"])


def saved_frames(target, t):
    """Return addresses of a suspended thread, innermost first, walked from its saved frame."""
    frame = FRAMES[_architecture(target)]
    mem = Memory(target.GetProcess())
    lo, hi, sp = t.stack_lo, t.stack_hi, t.sp
    if not (lo <= sp <= hi - frame["size"]):
        return []
    pcs = [mem.u64(sp + frame["pc"])]
    fp = mem.u64(sp + frame["fp"])
    while fp and len(pcs) < 128:
        if fp < lo or fp > hi - 16 or fp % 8:
            break
        ret = mem.u64(fp + 8)
        if ret == 0:
            break
        pcs.append(ret)
        nxt = mem.u64(fp)
        if nxt and nxt <= fp:
            break
        fp = nxt
    return pcs


def describe(target, pc, is_return):
    """`module`function + offset at file:line`, named by LLDB (demangled as `bt` shows it)."""
    look = pc - 1 if is_return else pc
    address = target.ResolveLoadAddress(look)
    module = address.GetModule().GetFileSpec().GetFilename() if address.GetModule().IsValid() else None
    function = address.GetFunction()
    symbol = address.GetSymbol()
    name, start = None, None
    if function.IsValid():
        name, start = function.GetDisplayName() or function.GetName(), function.GetStartAddress()
    elif symbol.IsValid():
        name, start = symbol.GetDisplayName() or symbol.GetName(), symbol.GetStartAddress()
    text = "??"
    if name:
        offset = pc - start.GetLoadAddress(target)
        text = ("%s`" % module if module else "") + name + (" + %d" % offset if offset else "")
    line = address.GetLineEntry()
    if line.IsValid() and line.GetLine():
        text += " at %s:%d" % (line.GetFileSpec().GetFilename(), line.GetLine())
    return text


def _parse_id(command, usage):
    try:
        return int(command.strip().lstrip("#"))
    except ValueError:
        raise RuntimeError(usage)


def _find(target, wanted):
    match = [t for t in user_threads(target) if t.id == wanted]
    if not match:
        raise RuntimeError("no live user thread #%d" % wanted)
    return match[0]


def _command(function):
    """Runs `function(target, command, out)`; turns RuntimeError into an LLDB error result."""
    def run(debugger, command, result, internal_dict):
        lines = []
        try:
            function(debugger.GetSelectedTarget(), command, lines.append)
        except RuntimeError as error:
            result.SetError(str(error))
            return
        result.AppendMessage("\n".join(lines))
    run.__doc__ = function.__doc__
    return run


def _list(target, command, out):
    """List the user threads of every UserThreads runtime: id, name, state, what a parked thread
waits for, the M:N worker that runs it, its saved stack pointer, the kernel thread (LWP) of its
runtime and its switches. Usage: uthreads list"""
    threads = user_threads(target)
    if not threads:
        out("No user threads (no runtime is live).")
        return
    rows = [("ID", "NAME", "STATE", "WAIT", "WORKER", "SAVED SP", "LWP", "SWITCHES")]
    for t in threads:
        name = t.name or "-"
        if t.flags & FLAG_MAIN and name != "main":
            name += " (main)"
        wait = t.wait + (", cancelled" if t.flags & FLAG_CANCELLED else "")
        sp = "in the CPU" if t.state == 2 else "0x%x" % t.sp
        rows.append(("#%d" % t.id, name, t.state_name, wait, "-" if t.worker is None else str(t.worker),
                     sp, str(t.kernel_tid or "-"), str(t.switches)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def _backtrace(target, command, out):
    """Backtrace of user thread N (its id, as `uthreads list` shows it) from its saved registers;
for the running thread, LLDB's backtrace of the kernel thread it runs on. Usage: uthread bt N"""
    t = _find(target, _parse_id(command, "usage: uthread bt N (a user thread id from `uthreads list`)"))
    out('User thread #%d "%s" %s%s' % (t.id, t.name, t.state_name, "" if t.wait == "-" else ": " + t.wait))
    if t.state == 2:
        out("It is running: its registers are live in the CPU of kernel thread LWP %s." % t.kernel_tid)
        for thread in target.GetProcess():
            if thread.GetThreadID() == t.kernel_tid:
                for i, frame in enumerate(thread):
                    out("  frame #%d: 0x%016x %s" % (i, frame.GetPC(), describe(target, frame.GetPC(), i > 0)))
        return
    for i, pc in enumerate(saved_frames(target, t)):
        # A thread that never ran "resumes" at the trampoline's first byte: not a return address.
        out("  frame #%d: 0x%016x %s" % (i, pc, describe(target, pc, not (i == 0 and t.switches == 0))))


def _select(target, command, out):
    """Make user thread N LLDB's selected thread: `bt`, `frame variable`, `up` then work in it
with LLDB's own unwinder (an operating-system plugin shows every suspended user thread as an
LLDB thread; this file is that plugin). For the running thread, selects the kernel thread it runs
on. Usage: uthread select N"""
    t = _find(target, _parse_id(command, "usage: uthread select N (a user thread id from `uthreads list`)"))
    process = target.GetProcess()
    if t.state == 2:
        if not process.SetSelectedThreadByID(t.kernel_tid):
            raise RuntimeError("user thread #%d runs on kernel thread %s, which LLDB does not list" % (t.id, t.kernel_tid))
        out('User thread #%d "%s" is running: selected kernel thread LWP %s, where its registers are.'
            % (t.id, t.name, t.kernel_tid))
        return
    debugger = target.GetDebugger()
    setting = "target.process.python-os-plugin-path"
    value = lldb.SBDebugger.GetInternalVariableValue(setting, debugger.GetInstanceName())
    current = (value.GetStringAtIndex(0) or "") if value.GetSize() else ""
    if os.path.realpath(current.strip('"')) != os.path.realpath(__file__):
        debugger.HandleCommand('settings set %s "%s"' % (setting, __file__))
    if not process.SetSelectedThreadByID(USER_TID_BASE + t.id):
        raise RuntimeError("LLDB did not take user thread #%d as a thread (is its operating-system plugin "
                           "setting, %s, taken by another plugin?)" % (t.id, setting))
    thread = process.GetSelectedThread()
    out('Selected user thread #%d "%s" (%s) as LLDB thread #%d: `bt`, `frame variable`, `up` work in it.'
        % (t.id, t.name, t.state_name, thread.GetIndexID()))
    frame = thread.GetFrameAtIndex(0)
    out("  frame #0: 0x%016x %s" % (frame.GetPC(), describe(target, frame.GetPC(), t.switches > 0)))


def _registers(target, command, out):
    """The registers user thread N saved when it was switched out (the frame table in the
switch's .S file), with the program counter named. Usage: uthread regs N"""
    t = _find(target, _parse_id(command, "usage: uthread regs N (a user thread id from `uthreads list`)"))
    out('User thread #%d "%s" %s' % (t.id, t.name, t.state_name))
    if t.state == 2:
        out("It is running: its registers are in the CPU (`register read` in kernel thread LWP %s)." % t.kernel_tid)
        return
    pc_name = FRAMES[_architecture(target)]["registers"][-1][0]
    for name, value in saved_registers(target, t):
        note = "  " + describe(target, value, t.switches > 0) if name == pc_name else ""
        out("  %6s = 0x%016x%s" % (name, value, note))


def __lldb_init_module(debugger, internal_dict):
    module = __name__
    commands = (("uthreads list", _list), ("uthread bt", _backtrace), ("uthread regs", _registers),
                ("uthread select", _select))
    for name, function in commands:
        globals()[name.replace(" ", "_")] = _command(function)
    # -o: importing again (LLDB re-imports this file as the operating-system plugin) replaces them.
    debugger.HandleCommand('command container add -o -h "UserThreads: the runtime\'s user threads." uthreads')
    debugger.HandleCommand('command container add -o -h "UserThreads: one user thread." uthread')
    for name, _ in commands:
        debugger.HandleCommand("command script add -o -f %s.%s %s" % (module, name.replace(" ", "_"), name))
