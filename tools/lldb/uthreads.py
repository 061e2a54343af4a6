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
# Where the threads are, and how a suspended one's frames are walked from its saved registers:
# tools/common/uthreads_memory.py, shared with the gdb script. Here every read is
# SBProcess.ReadMemory: nothing runs in the inferior, so it works on a core file and on a process
# stopped anywhere (even inside the switch). Field offsets come from the debug info when LLDB
# finds the C type `uthreads_tcb`, else from the shared fallback layout. Each address is named by
# LLDB's own symbol tables (SBTarget.ResolveLoadAddress), which demangle Swift names as `bt`
# shows them. The running thread's registers are live in the CPU:
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
import sys

import lldb

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "common"))
import uthreads_memory as M  # noqa: E402  (the layout and walks both debugger scripts share)

USER_TID_BASE = 0x7500000000  # LLDB thread id of user thread N: USER_TID_BASE + N
# What an operating-system-plugin thread has, per architecture: its general registers in DWARF
# order (the index is the DWARF number), and the roles LLDB's unwinder needs.
PLUGIN_REGISTERS = {
    "x86_64": {"gpr": ["rax", "rdx", "rcx", "rbx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11",
                       "r12", "r13", "r14", "r15", "rip"],
               "generic": {"rip": "pc", "rsp": "sp", "rbp": "fp"}},
    "aarch64": {"gpr": ["x%d" % i for i in range(29)] + ["x29", "x30", "sp", "pc"],
                "generic": {"x29": "fp", "x30": "ra", "sp": "sp", "pc": "pc"}},
}


def _reader(process):
    """read(address, size) -> bytes over SBProcess.ReadMemory; RuntimeError names the address."""
    def read(address, size):
        error = lldb.SBError()
        data = process.ReadMemory(address, size, error)
        if not error.Success() or data is None:
            raise RuntimeError("cannot read %d bytes at 0x%x: %s" % (size, address, error.GetCString()))
        return bytes(data)
    return read


def _architecture(target):
    triple = target.GetTriple() or ""
    return "aarch64" if triple.startswith(("aarch64", "arm64")) else "x86_64"


def _tcb_layout(target):
    t = target.FindFirstType("uthreads_tcb")
    if not t.IsValid() or t.GetNumberOfFields() == 0:
        return M.FALLBACK_TCB
    layout = dict(M.FALLBACK_TCB)
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


def user_threads(target):
    """Every live user thread of every registered runtime, in table order."""
    process = target.GetProcess()
    if not process.IsValid():
        raise RuntimeError("no process: run the program, attach to it, or load a core file")
    registry = _registry_address(target)
    if registry is None:
        raise RuntimeError("no uthreads_runtime_registry: is UserThreads linked into this program?")
    return M.rows(_reader(process), registry, _tcb_layout(target))


def saved_registers(target, t):
    return M.saved_registers(_reader(target.GetProcess()), t, _architecture(target))


def saved_frames(target, t):
    return M.saved_frames(_reader(target.GetProcess()), t, _architecture(target))


class OperatingSystemPlugIn(object):
    """LLDB's operating-system plugin interface: every suspended user thread as an LLDB thread
    (see `uthread select` in the essay above). LLDB instantiates it per process."""

    def __init__(self, process):
        self.process = process
        self.registers = {}

    def _arch(self):
        return PLUGIN_REGISTERS[_architecture(self.process.GetTarget())]

    def get_thread_info(self):
        target = self.process.GetTarget()
        self.registers = {}
        try:
            threads = user_threads(target)
        except RuntimeError:
            return []  # no runtime (yet): only the kernel threads
        infos = []
        for t in threads:
            if t.state not in M.SUSPENDED:  # suspended only: a running thread's registers are in the CPU
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
    for line in M.table_lines(threads):
        out(line)


def _backtrace(target, command, out):
    """Backtrace of user thread N (its id, as `uthreads list` shows it) from its saved registers;
for the running thread, LLDB's backtrace of the kernel thread it runs on. Usage: uthread bt N"""
    t = _find(target, _parse_id(command, "usage: uthread bt N (a user thread id from `uthreads list`)"))
    out('User thread #%d "%s" %s%s' % (t.id, t.name, t.state_name, "" if t.wait == "-" else ": " + t.wait))
    if t.state == M.RUNNING:
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
    if t.state == M.RUNNING:
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
    if t.state == M.RUNNING:
        out("It is running: its registers are in the CPU (`register read` in kernel thread LWP %s)." % t.kernel_tid)
        return
    pc_name = M.FRAMES[_architecture(target)]["registers"][-1][0]
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
