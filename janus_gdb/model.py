"""The plain data model janus-gdb builds from a target: no gdb in here.

``Snapshot`` and ``FrameInfo`` are what was read from the target;
``Wait``, ``Lock`` and ``Thread`` are what the analysis concluded.
"""

# Evidence levels for an owner
EXACT = "exact"
INFERRED = "inferred"
UNKNOWN = "unknown"


class FrameInfo(object):
    """One stack frame as read from the target."""
    __slots__ = ("level", "pc", "function", "file", "line", "lib", "system")

    def __init__(self, level, pc, function=None, file=None, line=None, lib=None, system=False):
        self.level = level
        self.pc = pc
        self.function = function      # None when no symbol covers the pc
        self.file = file              # source file basename, when line info exists
        self.line = line
        self.lib = lib                # basename of the shared library, None = executable
        self.system = system          # libc, libpthread, glib, the dynamic loader

    def where(self):
        """``func (file.c:12)``, ``func () from libfoo.so`` or ``?? () from lib``."""
        name = self.function or "??"
        if self.file and self.line:
            return "%s (%s:%d)" % (name, self.file, self.line)
        if self.lib:
            return "%s () from %s" % (name, self.lib)
        return "%s ()" % name if self.function else "?? (0x%x)" % self.pc

    def to_dict(self):
        return {"level": self.level, "pc": self.pc, "function": self.function,
                "file": self.file, "line": self.line, "lib": self.lib}


class Snapshot(object):
    """Registers and frames of one thread, as read from the target."""
    __slots__ = ("num", "global_num", "lwp", "name", "regs", "frames", "frames_truncated")

    def __init__(self, num, lwp, name=None, regs=None, frames=None, frames_truncated=False,
                 global_num=None):
        self.num = num
        self.global_num = global_num if global_num is not None else num
        self.lwp = lwp
        self.name = name
        self.regs = regs or {}        # 'sysno', 'args' (tuple of 3), 'pc'
        self.frames = frames or []
        self.frames_truncated = frames_truncated


class Wait(object):
    """What a blocked thread waits for.

    ``kind`` is one of: mutex, gmutex, rwlock-read, rwlock-write, lock
    (a futex lock of unknown type), libc-lock, join, condvar, gcond, queue,
    semaphore, futex (an unrecognised futex wait).
    """
    __slots__ = ("kind", "futex", "lock_addr", "target_lwp", "how", "frame")

    LOCK_KINDS = ("mutex", "gmutex", "rwlock-read", "rwlock-write", "lock", "libc-lock")

    def __init__(self, kind, futex=None, lock_addr=None, target_lwp=None, how="", frame=None):
        self.kind = kind
        self.futex = futex            # futex address from the syscall registers
        self.lock_addr = lock_addr    # address of the lock object (may differ for rwlocks)
        self.target_lwp = target_lwp  # for joins
        self.how = how                # how we know, e.g. "futex wait in pthread_mutex_lock"
        self.frame = frame            # index of the frame that identified it

    @property
    def is_lock(self):
        return self.kind in self.LOCK_KINDS


class Thread(object):
    """A thread of the target with its state."""

    def __init__(self, snap):
        self.num = snap.num
        self.global_num = snap.global_num
        self.lwp = snap.lwp
        self.name = snap.name
        self.frames = snap.frames
        self.frames_truncated = snap.frames_truncated
        self.entry = None             # entry function (under start_thread), or main
        self.state = "unknown"        # lock-wait, join, idle, io, poll, sleep, running, ...
        self.detail = ""              # one phrase for people
        self.wait = None              # Wait, when blocked on something we understand
        self.syscall = None           # syscall name, when inside one
        self.holds = []               # lock ids
        self.site = None              # index of the first application frame

    def label(self):
        return "T%d" % self.num

    def describe(self):
        """``T3 (LWP 1234) "name" entry``."""
        text = "T%d (LWP %d)" % (self.num, self.lwp)
        if self.name:
            text += ' "%s"' % self.name
        if self.entry:
            text += " " + self.entry
        return text


class Lock(object):
    """A lock some thread holds or waits for."""

    def __init__(self, addr, kind):
        self.addr = addr
        self.kind = kind              # pthread_mutex, gmutex, pthread_rwlock, libc-lock, lock
        self.id = None                # M1, M2, ... assigned in report order
        self.symbol = None            # e.g. rooms_mutex, handle+8, libfoo.so+0x1234
        self.subkind = None           # normal, recursive, ... for pthread mutexes
        self.word = None              # raw futex word
        self.state = "unknown"
        self.owner_lwp = None         # exact or inferred owner LWP
        self.owner_num = None         # gdb thread number of the owner, when alive
        self.owner_alive = None       # False: owner LWP is not a thread of the target
        self.evidence = UNKNOWN       # exact, inferred, unknown
        self.evidence_detail = ""
        self.readers = None           # rwlocks: number of read holders
        self.waiters = []             # thread numbers
        self.details = {}             # raw decoded fields

    def name(self):
        """Symbol when known, else the address."""
        return self.symbol or "0x%x" % self.addr

    def kind_text(self):
        if self.kind == "pthread_mutex":
            return "pthread mutex (%s)" % self.subkind if self.subkind else "pthread mutex"
        return {"gmutex": "GMutex", "pthread_rwlock": "pthread rwlock",
                "libc-lock": "libc internal lock", "lock": "futex lock (type unknown)"}.get(
                    self.kind, self.kind)
