"""The plain data model janus-gdb builds from a target: no gdb in here.

``Snapshot`` and ``FrameInfo`` are what was read from the target;
``Wait``, ``Lock`` and ``Thread`` are what the analysis concluded.
"""

# Lock kinds of reader/writer locks (a GRWLock wraps a pthread_rwlock_t)
RWLOCK_KINDS = ("pthread_rwlock", "grwlock")

# the largest --depth (frames read per thread), shared by the gdb commands
# and the command-line tool
MAX_DEPTH = 100000


def sha256_hex(data):
    """Hex SHA-256 of the bytes DATA.  From the interpreter's built-in
    module when it has one: ``hashlib`` loads OpenSSL's libcrypto, which
    costs gdb 2 MiB of RSS for a few hashes (docs/performance.md)."""
    try:
        from _sha256 import sha256          # Python up to 3.11
    except ImportError:
        try:
            from _sha2 import sha256        # Python 3.12 and later
        except ImportError:
            from hashlib import sha256
    return sha256(data).hexdigest()


# Evidence levels for an owner
EXACT = "exact"
INFERRED = "inferred"
UNKNOWN = "unknown"


class FrameInfo(object):
    """One stack frame as read from the target."""
    __slots__ = ("level", "pc", "function", "file", "line", "lib", "system", "log_name",
                 "log_names")

    def __init__(self, level, pc, function=None, file=None, line=None, lib=None, system=False):
        self.level = level
        self.pc = pc
        self.function = function      # None when no symbol covers the pc
        self.file = file              # source file basename, when line info exists
        self.line = line
        self.lib = lib                # basename of the shared library, None = executable
        self.system = system          # libc, libpthread, glib, the dynamic loader
        # no symbol: the name its own log calls give (logname), never a
        # symbol; or the several names they carry (no name then)
        self.log_name = None
        self.log_names = ()

    def where(self):
        """``func (file.c:12)``, ``func () from libfoo.so`` or ``?? () from lib``;
        a name read from log strings is marked (``name? ... [named from its
        log string]``)."""
        if self.function is None and self.log_name:
            name = self.log_name + "?"
            mark = " [named from its log string]"
        else:
            name = self.function or "??"
            mark = ""
            if self.function is None and self.log_names:
                mark = " [its log strings name %s]" % " or ".join(self.log_names[:3])
                if len(self.log_names) > 3:
                    mark += " (+%d)" % (len(self.log_names) - 3)
        if self.file and self.line:
            return "%s (%s:%d)%s" % (name, self.file, self.line, mark)
        if self.lib:
            return "%s () from %s%s" % (name, self.lib, mark)
        return "%s ()" % name if self.function else "%s (0x%x)%s" % (name, self.pc, mark)

    def to_dict(self):
        d = {"level": self.level, "pc": self.pc, "function": self.function,
             "file": self.file, "line": self.line, "lib": self.lib}
        if self.function is None and self.log_name:
            d["log_name"] = self.log_name
        elif self.function is None and self.log_names:
            d["log_names"] = list(self.log_names)
        return d


class Snapshot(object):
    """Registers and frames of one thread, as read from the target."""
    __slots__ = ("num", "global_num", "lwp", "name", "regs", "frames", "frames_truncated",
                 "claims", "refs", "refs_deferred", "unanalysed", "analysed", "analysed_levels",
                 "role_detail", "lambda_lines", "lock_call", "stack_calls", "queue_call")

    def __init__(self, num, lwp, name=None, regs=None, frames=None, frames_truncated=False,
                 global_num=None):
        self.num = num
        self.global_num = global_num if global_num is not None else num
        self.lwp = lwp
        self.name = name
        self.regs = regs or {}        # 'sysno', 'args' (tuple of 3), 'pc'
        self.frames = frames or []
        self.frames_truncated = frames_truncated
        self.claims = []              # Claim, outermost frame first
        self.refs = {}                # {(struct type name, address): frame level}
        self.refs_deferred = False    # refs not read yet: read if a lock it waits for needs a name
        self.unanalysed = 0           # app frames neither source nor machine code analysed
        self.analysed = False         # some frame's source was read
        self.analysed_levels = ()     # levels of the frames whose source/code was read
        self.role_detail = None       # read from the entry frame, e.g. "handle 424242"
        self.lambda_lines = None      # {frame level: line of its C++ lambda's '['}
        self.lock_call = None         # (address, kind, expr) the innermost app frame's
        #                               g_rw_lock_*() call takes (lockset.frame_lock_call)
        self.stack_calls = ()         # StackCall: return addresses found on the stack
        #                               where gdb cannot unwind (musl's wait functions)
        self.queue_call = None        # (queue address, expression, frame level, how read)
        #                               of the GAsyncQueue pop it is in, from a frame


class StackCall(object):
    """A return address found among a thread's stack words (target.stackwords):
    evidence of a call that may be active, not a frame gdb unwound."""
    __slots__ = ("slot", "pc", "function", "callee", "file", "line", "lib")

    def __init__(self, slot, pc, function, callee=None, file=None, line=None, lib=None):
        self.slot = slot              # stack address holding the return address
        self.pc = pc                  # the return address
        self.function = function      # the symbol covering it (the caller)
        self.callee = callee          # the function the call instruction calls, if direct
        self.file = file              # the caller's source file and line, if known
        self.line = line
        self.lib = lib

    def where(self):
        """``abba_first (musl_locks.c:65)`` or ``pthread_mutex_timedlock+241``."""
        if self.file and self.line:
            return "%s (%s:%d)" % (self.function, self.file, self.line)
        return self.function

    def to_dict(self):
        return {"slot": self.slot, "pc": self.pc, "function": self.function,
                "callee": self.callee, "file": self.file, "line": self.line, "lib": self.lib}


class Claim(object):
    """A lock that the source of one frame says is held (or released) there.

    ``addr`` is the lock's address, evaluated in the frame; None when the
    expression could not be evaluated (optimized out), in which case
    ``type_name`` and ``field`` still allow a match by type.
    """
    __slots__ = ("level", "function", "file", "line", "expr", "addr", "kind", "type_name",
                 "field", "conditional", "trylock", "released", "why", "at_line", "mode",
                 "origin", "code")

    def __init__(self, level, function, file, line, expr, addr=None, kind=None,
                 type_name=None, field=None, conditional=False, trylock=False, released=False,
                 why=None, at_line=None, mode=None, origin="source", code=None):
        self.level = level            # frame number
        self.function = function      # function whose source took the lock
        self.file = file              # basename of its source file
        self.line = line              # line of the lock call
        self.expr = expr              # the lock expression as written
        self.addr = addr
        self.kind = kind              # gmutex, pthread_mutex, ... from the expression's type
        self.type_name = type_name    # struct type of the expression's base variable
        self.field = field            # the lock field, e.g. streams_mutex
        self.conditional = conditional
        self.trylock = trylock
        self.released = released      # an unlock of a lock the caller took
        self.why = why                # why addr is None
        self.at_line = at_line        # the frame's current line (not unlocked before it)
        self.mode = mode              # "read" for a reader lock (rwlock, shared_mutex), else None
        self.origin = origin          # "source" (C/C++ text), "machine-code" (no line info)
        #                               or "stack-word" (source of a caller found on the stack)
        self.code = code              # machine-code evidence: {"module", "call_at", "at", "func"};
        #                               stack-word: {"pc", "slot", "callee"}

    def site(self):
        return "%s:%d in %s (frame #%d)" % (self.file, self.line, self.function, self.level)


class Wait(object):
    """What a blocked thread waits for.

    ``kind`` is one of: mutex, gmutex, rwlock-read, rwlock-write, rwlock
    (read or write not known: a musl waiter behind a writer), lock
    (a futex lock of unknown type), libc-lock, join, condvar, gcond, queue,
    semaphore, futex (an unrecognised futex wait).
    """
    __slots__ = ("kind", "futex", "lock_addr", "target_lwp", "how", "frame", "rwlock", "queue")

    LOCK_KINDS = ("mutex", "gmutex", "rwlock-read", "rwlock-write", "rwlock", "lock",
                  "libc-lock")

    def __init__(self, kind, futex=None, lock_addr=None, target_lwp=None, how="", frame=None):
        self.kind = kind
        self.futex = futex            # futex address from the syscall registers
        self.lock_addr = lock_addr    # address of the lock object (may differ for rwlocks)
        self.target_lwp = target_lwp  # for joins
        self.how = how                # how we know, e.g. "futex wait in pthread_mutex_lock"
        self.frame = frame            # index of the frame that identified it
        self.rwlock = None            # rwlock wait path (layouts.RWLOCK_WAIT_PATHS)
        self.queue = None             # QueueRef: the GAsyncQueue a "queue" wait is on

    @property
    def is_lock(self):
        return self.kind in self.LOCK_KINDS


class QueueRef(object):
    """The GAsyncQueue a thread waits on, how it was found and whose it is.

    ``evidence`` is "frame" (a frame's queue argument or the pop call's
    argument on the application frame's line, evaluated there, and the
    futex word is that queue's GCond) or "futex" (the futex word is the
    GCond of what decodes as a GAsyncQueue; no frame gives the pointer).
    ``name`` is set by the naming step: an object's field
    (``participant->outbuf of participant 77 ...``), a global variable
    (``janus_videoroom.c: messages``), else None (``a queue at 0x...``)."""
    __slots__ = ("addr", "evidence", "how", "expr", "name", "obj", "variable")

    def __init__(self, addr, evidence, how, expr=None):
        self.addr = addr
        self.evidence = evidence      # frame, futex
        self.how = how                # the words and frames that show it
        self.expr = expr              # the pop call's argument as written, when read
        self.name = None              # whose queue, when an object or variable points to it
        self.obj = None               # ObjectRef of the object whose field points to it
        self.variable = None          # "file: name" of the global variable pointing to it

    def label(self):
        """``participant->outbuf of ...`` or ``a queue at 0x...``."""
        return self.name or "a queue at 0x%x" % self.addr

    def to_dict(self):
        return {"address": self.addr, "name": self.name, "evidence": self.evidence,
                "how": self.how, "expr": self.expr, "variable": self.variable,
                "object": self.obj.to_dict() if self.obj is not None else None}


class Thread(object):
    """A thread of the target with its state."""

    # ten thousand of them at scale: slots keep each to a few hundred bytes
    __slots__ = ("num", "global_num", "lwp", "name", "frames", "frames_truncated", "entry",
                 "state", "detail", "wait", "syscall", "holds", "site", "role", "role_detail",
                 "claims", "held_claims", "refs", "refs_deferred", "unanalysed", "analysed",
                 "analysed_levels", "lock_call", "stack_calls")

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
        self.role = None              # Janus role from the entry function, e.g. "hloop"
        self.role_detail = None       # e.g. "handle 424242"
        self.claims = snap.claims     # lock claims read from the source on its stack
        self.held_claims = []         # those still in force (infer.net_claims), set once
        self.refs = snap.refs         # objects its frames point to: {(type, addr): level}
        self.refs_deferred = snap.refs_deferred
        self.unanalysed = snap.unanalysed  # app frames neither source nor machine code analysed
        self.analysed = snap.analysed  # some frame's source was read
        self.analysed_levels = snap.analysed_levels
        self.lock_call = snap.lock_call
        self.stack_calls = snap.stack_calls  # return addresses found on the stack (musl)

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
        self.readers = None           # rwlocks: number of read holders (from the lock word)
        self.reader_infs = []         # rwlocks: Inference per reader thread shown by the source
        self.pending = []             # rwlocks: threads waiting for its readers to leave
        self.readers_unknown = 0      # rwlocks: read holds no frame's source shows
        self.waiters = []             # thread numbers
        self.details = {}             # raw decoded fields
        self.name_text = None         # Janus name, e.g. "janus_videoroom.c: rooms_mutex"
        self.obj = None               # ObjectRef of the Janus object that contains it
        self.source_file = None       # basename of the C file defining it (a variable)
        self.missing_unlocks = []     # static findings (dicts) that can leak its class
        self.owner_source = None      # pthread-owner, lockset, type-match, locklog, frameref
        self.owner_claim = None       # the Claim behind an inferred owner
        self.inference = None         # Inference, also computed when the owner is exact
        self.leaked = False           # held, and no live thread can be shown to hold it
        self.leak_site = None         # last lock site from the lock-debug log
        self.leak_function = None     # the function of that site
        self.leaked_by = None         # thread number that probably leaked it
        self.candidates = []          # thread numbers that claim it when undecided
        self.possible = []            # owner unknown: threads that could hold it (bounded)
        self.possible_count = 0       # how many threads could hold it in all

    def name(self):
        """Janus name or symbol when known, else the address."""
        return self.name_text or self.symbol or "0x%x" % self.addr

    def kind_text(self):
        if self.kind == "pthread_mutex":
            return "pthread mutex (%s)" % self.subkind if self.subkind else "pthread mutex"
        if self.kind in RWLOCK_KINDS:
            text = "GRWLock" if self.kind == "grwlock" else "pthread rwlock"
            if self.subkind:
                text += " (%s)" % self.subkind
            return text
        return {"gmutex": "GMutex", "pthread_rwlock": "pthread rwlock",
                "libc-lock": "libc internal lock", "lock": "futex lock (type unknown)"}.get(
                    self.kind, self.kind)


class ObjectRef(object):
    """A lock's place inside a struct: ``participant->streams_mutex`` of publisher 5678."""
    __slots__ = ("type_name", "addr", "field", "var", "label")

    def __init__(self, type_name, addr, field, var=None, label=None):
        self.type_name = type_name    # e.g. janus_videoroom_publisher
        self.addr = addr              # address of the struct
        self.field = field            # lock field, e.g. streams_mutex
        self.var = var                # conventional variable name, e.g. participant
        self.label = label            # e.g. 'publisher 5678 "alice" in room 1234'

    def to_dict(self):
        return {"type": self.type_name, "address": self.addr, "field": self.field,
                "label": self.label}


class Inference(object):
    """Who the evidence says holds a lock that records no owner (or corroborates one)."""
    __slots__ = ("lwp", "num", "source", "detail", "claim")

    def __init__(self, lwp, num, source, detail, claim=None):
        self.lwp = lwp
        self.num = num
        self.source = source          # lockset, type-match, locklog, frameref
        self.detail = detail
        self.claim = claim

    def to_dict(self):
        c = self.claim
        return {"lwp": self.lwp, "thread": self.num, "source": self.source,
                "detail": self.detail, "file": c.file if c else None,
                "line": c.line if c else None, "frame": c.level if c else None,
                "function": c.function if c else None}
