"""What each thread's frames say beyond registers: lock claims read from
the source, the objects the frames point to, and the handle of a handle
loop thread.  Runs while the thread is selected (gdb.Frame objects are
only valid then); stores plain data on the ``model.Snapshot``.
"""

import re

import gdb  # pylint: disable=import-error

from ..target import codereader
from ..target import gdbtarget
from . import classify
from . import lockset
from . import stackframes
from ..janus import janusdb
from ..janus import objects
from ..target import logname

# Application frames analysed per thread (the newest ones hold the most).
MAX_SCANNED_FRAMES = 48
# Frames whose variables are scanned for object references.
MAX_REF_FRAMES = 16
FUTEX_SYSCALL = 202  # x86_64; elsewhere every thread's references are read
RESTART_SYSCALL = 219  # x86_64: a timed futex wait resumed after an attach


class Scanner(object):
    """Callable for ``gdbtarget.snapshot_threads``; one per analysis."""

    def __init__(self, kind_of_type):
        self.sources = lockset.Sources()
        self.types = objects.TypeCache(kind_of_type)
        self.kind_of_type = kind_of_type
        self.frame_cache = {}
        self.code = codereader.CodeReader()
        self.namer = logname.Namer(self.code)
        self._mem = None
        # {thread num: (entry function, unwound frame index, address of the
        # variable its role object was read from)}
        self.role_vars = {}

    def __call__(self, snap, gframes):
        claims = []
        refs = {}
        scanned = 0
        # The objects a thread points to name the locks it waits for and
        # break ties between claimants.  Threads whose source holds a lock
        # (or whose state is unknown) need them now; a thread in a futex
        # wait only if the lock it waits for is not a variable: they are
        # read later, for a few waiters of such a lock (read_deferred_refs);
        # a thousand idle handle loops in poll never need them.
        sysno = snap.regs.get("sysno")
        ref_frames = []
        for pos, (info, frame) in enumerate(zip(snap.frames, gframes)):
            if info.system:
                continue
            scanned += 1
            if scanned > MAX_SCANNED_FRAMES:
                break
            if info.function is None and info.log_name is None and not info.log_names:
                _name_from_log(self.namer, frame, info)
            if info.line is None:
                got, complete = self._code_claims(frame, info)
            else:
                got = lockset.frame_claims(frame, info, self.sources, self.kind_of_type,
                                           self.frame_cache)
                complete = got is not None
                if got is None and not _inline(frame):
                    # line info but no readable source: its machine code
                    got, complete = self._code_claims(frame, info)
            if info.function == "operator()":
                self._lambda_line(snap, info)
            if got:
                claims.extend(got)
            if complete:
                snap.analysed = True
                snap.analysed_levels += (info.level,)
            else:
                snap.unanalysed += 1
            if scanned <= MAX_REF_FRAMES and info.line is not None:
                ref_frames.append((frame, info.level))
            if info.function in ROLE_OBJECT_FUNCTIONS:
                snap.role_detail, where = self._role_of(frame, info.function, info.level)
                if where is not None:
                    # where the object's pointer is, for the threads with
                    # the same stack (analysis/clones.py)
                    self.role_vars[snap.num] = (info.function, _real_frames(gframes[:pos]),
                                                where)
        if snap.stack_calls:
            # gdb could not unwind to the application's frames (musl): their
            # return addresses on the stack name them, their source what they hold
            claims.extend(stackframes.stack_claims(snap, self.sources, self.kind_of_type))
        if sysno in (FUTEX_SYSCALL, RESTART_SYSCALL, None):
            snap.lock_call = self._rwlock_call(snap.frames, gframes)
            snap.queue_call = self._queue_call(snap.frames, gframes)
        if claims or sysno is None:
            for frame, level in ref_frames:
                objects.frame_refs(frame, level, refs, self.types)
        elif sysno in (FUTEX_SYSCALL, RESTART_SYSCALL) and ref_frames:
            snap.refs_deferred = True
        snap.claims = claims
        snap.refs = refs

    def _lambda_line(self, snap, info):
        """Where the C++ lambda of frame INFO starts (its source was read by
        lockset.frame_claims), for the thread's label."""
        got = self.frame_cache.get(info)
        lockset_ = got[3] if got else None
        if lockset_ is not None and lockset_.lambda_line:
            if snap.lambda_lines is None:
                snap.lambda_lines = {}
            snap.lambda_lines[info.level] = lockset_.lambda_line

    def _rwlock_call(self, infos, gframes):
        """The lock a thread inside pthread_rwlock_* or g_rw_lock_* waits for,
        as its first application frame's source names it: (address, kind,
        expression) or None.  It sleeps on a word inside the rwlock, or for
        a GRWLock on the pthread_rwlock_t glib allocated for it."""
        inside = False
        for info, frame in zip(infos, gframes):
            if info.system:
                name = info.function or ""
                inside = inside or "g_rw_lock_" in name or "pthread_rwlock_" in name
                continue
            if not inside or info.line is None:
                return None
            return lockset.frame_lock_call(frame, self.sources, self.kind_of_type)
        return None

    def _queue_call(self, infos, gframes):
        """The GAsyncQueue a thread inside a glib queue pop pops from, as a
        frame gives it: glib's own ``queue`` argument (glib with debug
        info), else the pop call's argument on the first application
        frame's line, evaluated there.  (address, expression, frame level,
        how read) or None."""
        kind, idx, _name = classify.frame_hint(infos)
        if kind != "queue":
            return None
        for info, frame in zip(infos, gframes):
            if info.system:
                if classify.normalize(info.function) in classify.QUEUE_CALLS:
                    got = _queue_argument(frame)
                    if got:
                        return got, "queue", info.level, "%s's argument" % info.function
                continue
            if info.line is None:
                return None
            got = lockset.frame_lock_call(frame, self.sources, self.kind_of_type,
                                          names=classify.QUEUE_CALLS)
            if got is None or not got[0]:
                return None
            return got[0], got[2], info.level, "evaluated in %s" % info.function
        return None

    def _code_claims(self, frame, info):
        """(claims, complete) of a frame without line info, read from its
        machine code (``codereader``).  Claims are None when the code could
        not be analysed; an incomplete frame (a lock address unknown, or a
        call to a function that could be a lock wrapper) gives its claims but
        counts in ``unanalysed``: it is no proof that the frame holds nothing
        else."""
        return self.code.claims(frame, info)

    def _role_of(self, frame, entry, level):
        """(label of the object the thread of ENTRY serves, where it was
        read from): ``handle 424242`` for a handle loop, e.g. ``AudioBridge
        room 4321 "lobby"`` for the plugin threads of janusdb.THREAD_OBJECTS.
        Where: ("mem", address of the variable, its value) or ("reg",
        register, value); ("none",) when no variable is there at this pc
        (optimized out: the same in every thread stopped at this pc);
        None when that is not known.  No label: None."""
        struct, var_names = ROLE_OBJECTS[entry]
        t = self.types.get(struct)
        if t is None:
            return None, ("none",)
        static = True       # every miss so far is a property of the pc
        for var in var_names:
            try:
                v = frame.read_var(var)
            except ValueError:
                continue    # no such variable here
            except (gdb.error, RuntimeError):
                static = False
                continue
            try:
                if v.is_optimized_out:
                    continue
                addr = int(v.cast(t.pointer())) & ((1 << 64) - 1)
                where = v.address
                where = (("mem", int(where) & ((1 << 64) - 1)) if where is not None
                         else _register_of(frame, var, level))
            except (gdb.error, RuntimeError, ValueError, OverflowError, TypeError):
                static = False
                continue
            label = self.role_label(entry, addr)
            if label is not None:
                return label, (where + (addr,) if where is not None else None)
            static = False
        return None, (("none",) if static else None)

    def role_label(self, entry, addr):
        """The label of the object at ADDR served by a thread of ENTRY, or None."""
        struct = ROLE_OBJECTS[entry][0]
        t = self.types.get(struct)
        if t is None or not addr:
            return None
        if entry == "janus_ice_handle_thread":
            try:
                hid = int(gdb.Value(addr).cast(t.pointer()).dereference()["handle_id"])
            except (gdb.error, RuntimeError, ValueError, OverflowError, TypeError):
                return None
            return "handle %d" % hid
        via = janusdb.THREAD_OBJECTS[entry][2]
        if self._mem is None:
            self._mem = gdbtarget.Memory(gdb.selected_inferior())
        objs = objects.Objects(self.types, self._mem)
        key = (struct, addr)
        if via is not None:
            objs.expand({key: 0})
            linked = [(n, a) for f, n, a in objs.links.get(key, ()) if f == via]
            if not linked:
                return None
            key = linked[0]
        return objs.label(key)

    def static_holds(self, snap):
        """Whether the source of any of SNAP's frames holds or releases a
        lock at its line: the claims of another thread in the same frames
        would be evaluated from its own variables.  (Frames read from
        machine code give their claims, if any, to SNAP itself.)"""
        for info in snap.frames:
            got = self.frame_cache.get(info)
            if got:
                lockset_ = got[3]
                if lockset_.held or lockset_.released:
                    return True
        return False


# Thread entry functions whose argument names the object the thread serves:
# {entry: (struct, variables that may point to it)}.
ROLE_OBJECTS = dict([("janus_ice_handle_thread", ("janus_ice_handle", ("handle", "data")))] + [
    (entry, (struct, names)) for entry, (struct, names, _via) in janusdb.THREAD_OBJECTS.items()])
ROLE_OBJECT_FUNCTIONS = frozenset(ROLE_OBJECTS)


_IN_REGISTER = re.compile(r"a variable in \$(\w+)")
_RANGE = re.compile(r"Range (0x[0-9a-f]+)-(0x[0-9a-f]+): (.*)")


def _register_of(frame, var, level):
    """("reg", name) when gdb reads variable VAR of FRAME from a register
    at the frame's pc (`info address`, its location list entry for that
    pc), else None."""
    try:
        pc = frame.pc()
        if level > 0:
            pc -= 1     # a return address: the call is before it
        frame.select()
        text = gdb.execute("info address %s" % var, to_string=True)
    except (gdb.error, RuntimeError, ValueError):
        return None
    ranges = _RANGE.findall(text)
    if ranges:
        for low, high, what in ranges:
            if int(low, 16) <= pc < int(high, 16):
                m = _IN_REGISTER.match(what.strip())
                return ("reg", m.group(1)) if m else None
        return None
    m = _IN_REGISTER.search(text)
    return ("reg", m.group(1)) if m and "multi-location" not in text else None


def _real_frames(gframes):
    """How many of GFRAMES are real (not inlined) frames: the index of the
    unwound frame the next gdb frame belongs to."""
    return sum(1 for f in gframes if not _inline(f))


def _name_from_log(namer, frame, info):
    """Mark a frame without a symbol with the name its log calls give
    (``logname``; never a symbol, and never used for roles)."""
    got = namer.name(frame, info)
    if got is not None:
        if got.name:
            info.log_name = got.name
        else:
            info.log_names = got.candidates


def _inline(frame):
    try:
        return frame.type() == gdb.INLINE_FRAME
    except (gdb.error, RuntimeError):
        return True


# Waiters of one unnamed lock whose frames are read for its name.
DEFERRED_WAITERS_PER_LOCK = 4


def _queue_argument(frame):
    """The ``queue`` argument of a glib pop frame (glib's debug info), or None."""
    try:
        value = frame.read_var("queue")
        if value.is_optimized_out:
            return None
        return int(value) & ((1 << 64) - 1)
    except (gdb.error, RuntimeError, ValueError, OverflowError, TypeError):
        return None


def ref_levels(frames):
    """Levels of the frames whose variables are read for references: the
    newest MAX_REF_FRAMES application frames with line information."""
    levels = []
    for info in frames:
        if info.system or info.line is None:
            continue
        levels.append(info.level)
        if len(levels) >= MAX_REF_FRAMES:
            break
    return levels


def read_deferred_refs(locks, threads, types, gthreads):
    """Read the references of a few waiters of every lock still unnamed
    (not a variable), into their ``refs``; GTHREADS maps thread numbers to
    gdb.InferiorThread.  Restores the selected thread and frame."""
    wanted = set(l.addr for l in locks if l.obj is None and l.name_text is None)
    if not wanted:
        return
    picked = {}
    chosen = []
    for t in threads:
        w = t.wait
        if not t.refs_deferred or w is None or w.lock_addr not in wanted:
            continue
        if picked.get(w.lock_addr, 0) >= DEFERRED_WAITERS_PER_LOCK:
            continue
        picked[w.lock_addr] = picked.get(w.lock_addr, 0) + 1
        chosen.append(t)
    _read_refs(chosen, types, gthreads)


# Idle threads whose references are read to name the queue they wait on.
DEFERRED_QUEUE_WAITERS = 32


def read_queue_refs(threads, types, gthreads):
    """Read the references of a few threads waiting on a GAsyncQueue that no
    variable or reachable object names yet (their frames may hold the one
    object that points to it); returns those threads."""
    chosen = []
    seen = set()
    for t in threads:
        w = t.wait
        q = w.queue if w is not None else None
        if q is None or q.name is not None or not t.refs_deferred or q.addr in seen:
            continue
        if len(chosen) >= DEFERRED_QUEUE_WAITERS:
            break
        seen.add(q.addr)
        chosen.append(t)
    _read_refs(chosen, types, gthreads)
    return chosen


def _read_refs(chosen, types, gthreads):
    """Read the frame references of the threads CHOSEN into their ``refs``."""
    if not chosen:
        return
    from ..target import gdbtarget
    with gdbtarget.SelectionKept():
        for t in chosen:
            th = gthreads.get(t.num)
            levels = ref_levels(t.frames)
            if th is None or not levels:
                continue
            refs = {}
            try:
                th.switch()
                frame = gdb.newest_frame()
                level = 0
                for want in levels:
                    while frame is not None and level < want:
                        frame = frame.older()
                        level += 1
                    if frame is None:
                        break
                    objects.frame_refs(frame, level, refs, types)
            except gdb.error:
                pass
            t.refs = refs
            t.refs_deferred = False
