"""Threads of a core file with identical stacks, found without gdb (issue
14's fast path).

Every thread's registers and stack are read straight from the core
(``coremem``) and unwound by the CFI of the mapped files (``coreunwind``):
0.7 s for 10,000 threads, where gdb takes milliseconds a thread.  Threads
whose stacks are the same, return address for return address, and that sit
in the same system call (the same futex word, for a futex wait) form a
group; gdb reads one of them, and the analysis copies what it found to the
others where nothing it read can differ between them
(``analysis/clones.py``).  A thread whose walk did not reach its outermost
frame (no CFI, a DWARF expression, a stack not in the core) is never
grouped: gdb reads it.

Stdlib only; what gdb-independent code can tell is all that is here.
"""

import array

from . import coremem
from . import coreunwind
from .corefile import CoreFileError

# System calls whose arguments say what the thread waits for (the futex
# word), per architecture's system call numbers: the arguments are part of
# the group key.  Other calls (poll, epoll_wait, nanosleep) are keyed by
# their number only: their arguments point into each thread's own stack.
# restart_syscall (219: a wait resumed after a debugger or SIGSTOP
# interrupted it) keeps the first call's arguments, a futex word or each
# poll's own array: keyed by its number, each copy gets its own arguments.
X86_64_FUTEX_CALLS = (202,)             # futex
X86_64_OWN_ARGS = (219,)                # restart_syscall
X86_64_ARGS = ("rdi", "rsi", "rdx")
OUTERMOST = "outermost (return address undefined)"
# at most this many threads are listed in one group's key table
MAX_THREADS = 1 << 20


class CoreThread(object):
    """One thread of the core as the reader sees it."""
    __slots__ = ("num", "lwp", "pcs", "cfas", "complete", "core_thread")

    def __init__(self, num, lwp, pcs, cfas, complete, core_thread):
        self.num = num              # gdb's thread number (note order + 1)
        self.lwp = lwp
        self.pcs = pcs              # return addresses, newest first (frame 0: the pc)
        self.cfas = cfas            # each frame's CFA (its caller's stack pointer; 0: unknown)
        self.complete = complete    # the walk reached the outermost frame
        self.core_thread = core_thread  # coremem.Thread

    @property
    def regs(self):
        """General registers {name: int}."""
        return self.core_thread.regs

    def sp(self, machine):
        names = coremem.PC_SP_FP.get(machine)
        return self.core_thread.regs.get(names[1]) if names else None


class CoreGroups(object):
    """The threads of one core and its groups of identical stacks.  Keep it
    open while the analysis reads through ``memory``; close() it after."""

    def __init__(self, core, threads, groups, unwinder):
        self.core = core            # coremem.CoreMemory or livemem.LiveMemory (open)
        self.machine = core.machine
        self.threads = threads      # {num: CoreThread}
        self.groups = groups        # {representative num: [member nums]}, members > 1
        self.rep_of = {}            # {member num: representative num}
        self.unwinder = unwinder
        self.unread = set()         # numbers of threads gdb has and the reader did not see
        for rep, members in groups.items():
            for num in members:
                if num != rep:
                    self.rep_of[num] = rep

    def close(self):
        """Close the core file and let go of every thread's stack."""
        self.core.close()
        self.threads = {}
        self.groups = {}
        self.rep_of = {}
        self.unwinder = None

    def first_pass(self):
        """Numbers of the threads gdb must read: every thread but the group
        members, except each group's representative (its first thread) and
        witness (its last: read to check that gdb sees it as the reader
        does)."""
        witnesses = set(self.witness(rep) for rep in self.groups)
        return sorted(set(n for n in self.threads if n not in self.rep_of or n in witnesses)
                      | self.unread)

    def witness(self, rep):
        """The thread of REP's group that gdb reads besides REP."""
        return self.groups[rep][-1]

    def register(self, num, index, name):
        """The value register NAME had in frame INDEX of thread NUM, as the
        CFI recovers it (frame 0: the core's; older frames: callee-saved
        registers only), or None."""
        t = self.threads.get(num)
        arch = coreunwind.ARCHES.get(self.machine)
        if t is None or arch is None or name not in arch.columns:
            return None
        if index > 0 and name not in coreunwind.CALLEE_SAVED.get(self.machine, ()):
            return None
        frames, _why = self.unwinder.unwind(t.core_thread, want_regs=True, limit=index + 1)
        if index >= len(frames) or frames[index][0] != t.pcs[index]:
            return None
        return frames[index][3].get(arch.columns[name])

    def own_args(self, num):
        """The system call arguments of thread NUM that its copy keeps (they
        are not in the group key), as gdb reads them, or None."""
        t = self.threads.get(num)
        if t is None or self.machine != coremem.EM_X86_64:
            return None
        regs = t.regs
        if regs.get("orig_rax") not in X86_64_OWN_ARGS:
            return None
        return tuple(regs.get(r) for r in X86_64_ARGS)


def group_key(thread, machine):
    """What must be equal for two threads to be read as one, or None when
    THREAD cannot be grouped (its walk is incomplete, registers unknown)."""
    if not thread.complete or not thread.pcs:
        return None
    regs = thread.regs
    if machine == coremem.EM_X86_64:
        nr = regs.get("orig_rax")
        if nr is None:
            return None
        args = None
        if nr in X86_64_FUTEX_CALLS:
            args = tuple(regs.get(r) for r in X86_64_ARGS)
        return (thread.pcs, nr, args)
    if machine == coremem.EM_AARCH64:
        # the system call is decoded from the instruction at pc and x8, and
        # x0 is its first argument or its result: all of them are the key
        return (thread.pcs, regs.get("x8"), regs.get("x0"), regs.get("x1"), regs.get("x2"))
    return None


def read_groups(path, exe=None):
    """CoreGroups of the core file PATH (EXE: its executable, for cores
    without NT_FILE).  CoreFileError when the core cannot be read or its
    architecture is not unwound here."""
    return group_threads(coremem.CoreMemory(path), exe, path)


def group_threads(mem, exe, what):
    """CoreGroups of the threads of MEM (a coremem.CoreMemory, or a
    livemem.LiveMemory: the same queries), which it then owns.
    CoreFileError (naming WHAT) when they cannot be unwound here."""
    try:
        un = coreunwind.Unwinder(mem, exe=exe)
        if not un.supported():
            raise CoreFileError("%s: threads are unwound here for x86_64 and aarch64 only"
                                % what)
        if not mem.threads:
            raise CoreFileError("%s holds no threads" % what)
        threads = {}
        by_key = {}
        same_pcs = {}
        for t in mem.threads[:MAX_THREADS]:
            frames, why = un.unwind(t)
            pcs = tuple(f[0] for f in frames)
            pcs = same_pcs.setdefault(pcs, pcs)     # one tuple for identical stacks
            ct = CoreThread(t.index + 1, t.lwp, pcs,
                            array.array("Q", (f[1] or 0 for f in frames)), why == OUTERMOST, t)
            threads[ct.num] = ct
            key = group_key(ct, mem.machine)
            if key is not None:
                by_key.setdefault(key, []).append(ct.num)
        groups = dict((nums[0], nums) for nums in by_key.values() if len(nums) > 1)
        return CoreGroups(mem, threads, groups, un)
    except CoreFileError:
        mem.close()
        raise
    except (OSError, ValueError, OverflowError, IndexError, KeyError) as exc:
        mem.close()
        raise CoreFileError("%s: cannot unwind its threads: %s" % (what, exc))
