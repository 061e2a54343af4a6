# tools/gdb/uthreads.py — gdb support for UserThreads: list the user threads of a live process
# or a core file, and show the backtrace of any one of them from its saved registers.
#
#   (gdb) source tools/gdb/uthreads.py      # or: gdb -x tools/gdb/uthreads.py ...
#   (gdb) info uthreads                     # every user thread of every runtime
#   (gdb) uthread bt 2                      # backtrace of user thread #2
#
# How it finds them, and how a suspended thread's frames are walked from its saved registers:
# tools/common/uthreads_memory.py, shared with the LLDB script. Nothing runs in the inferior:
# everything is read from memory, so it works on core files and on a process stopped anywhere.
# Field offsets come from the debug info when it is there, else from the shared fallback layout.
# Each address is named with gdb's own symbol tables (gdb.block_for_pc, gdb.find_pc_line).
# Swift names are demangled with swift-demangle when it is on PATH (or in /opt/swift/usr/bin).
# The running thread's registers are live: `uthread bt` of it shows gdb's `bt` of its kernel
# thread.
import os
import shutil
import subprocess
import sys

import gdb

sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), "..", "common"))
import uthreads_memory as M  # noqa: E402  (the layout and walks both debugger scripts share)


def _read(address, size):
    return bytes(gdb.selected_inferior().read_memory(address, size))


def _tcb_layout():
    try:
        t = gdb.lookup_type("uthreads_tcb")
    except gdb.error:
        return M.FALLBACK_TCB
    layout = dict(M.FALLBACK_TCB)
    layout.update({f.name: f.bitpos // 8 for f in t.fields()})
    layout["sizeof"] = t.sizeof
    layout["name_max"] = t["name"].type.sizeof
    return layout


def _address_of(symbol):
    try:
        return int(gdb.parse_and_eval("(unsigned long)&%s" % symbol))
    except gdb.error:
        return None


def _architecture():
    name = gdb.selected_inferior().architecture().name()
    return "aarch64" if "aarch64" in name else "x86_64"


def user_threads():
    """Every live user thread of every registered runtime, in table order."""
    registry = _address_of("uthreads_runtime_registry")
    if registry is None:
        raise gdb.GdbError("no uthreads_runtime_registry: is UserThreads linked into this program?")
    return M.rows(_read, registry, _tcb_layout())


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
thread waits for, its M:N worker, its saved stack pointer, the kernel thread (LWP) of its runtime
and its switches."""

    def __init__(self):
        super().__init__("info uthreads", gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        threads = user_threads()
        if not threads:
            print("No user threads (no runtime is live).")
            return
        for line in M.table_lines(threads):
            print(line)


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
        if t.state == M.RUNNING:
            print("It is running: its registers are live in kernel thread LWP %d." % t.kernel_tid)
            for th in gdb.selected_inferior().threads():
                if th.ptid[1] == t.kernel_tid:
                    th.switch()
                    gdb.execute("bt")
            return
        pcs = M.saved_frames(_read, t, _architecture())
        described = [_describe(pc, not (i == 0 and t.switches == 0)) for i, pc in enumerate(pcs)]
        pretty = _demangle([n for n, _ in described])
        for i, (pc, (name, where)) in enumerate(zip(pcs, described)):
            shown = pretty.get(name, name) if name else "??"
            print("#%-3d 0x%016x in %s%s" % (i, pc, shown, where))


InfoUThreads()
UThreadPrefix()
UThreadBacktrace()
