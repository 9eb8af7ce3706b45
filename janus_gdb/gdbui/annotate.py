"""`bt` annotations: what a blocked thread waits for and who holds it.

A frame filter appends to one frame of a blocked thread (its first
application frame, else the frame where the wait was identified) a note such as
``[waits for M1 m2, held by Thread 3 (LWP 4267)]``.  The analysis behind it
(``analyze.collect``) runs once per stop and is cached here; the pretty
printers (``printers.py``) reuse the cache when it exists.

Switch it with ``set janus-annotate on|off``.  Nothing here raises into gdb:
any failure leaves the backtrace as gdb prints it.
"""

import gdb  # pylint: disable=import-error

FILTER_NAME = "janus-annotate"
FILTER_PRIORITY = 100
# bounds of the analysis run for annotations (janus-locks --depth default)
MAX_FRAMES = 64
# frames searched for the annotated one (levels of a backtrace)
MAX_LEVEL = 10000


class StopCache(object):
    """Values computed once per stop of the target (cleared on resume, stop,
    new objfiles, exit) and keyed by the selected inferior and its pid, so a
    switch of inferior or a new process does not reuse them.  A core never
    resumes: its values stay valid."""

    def __init__(self):
        self.generation = 0
        self.values = {}
        self.connected = False

    def clear(self, *_args):
        self.generation += 1
        self.values.clear()

    def connect(self):
        if self.connected:
            return
        events = getattr(gdb, "events", None)
        for name in ("cont", "stop", "exited", "new_objfile", "clear_objfiles",
                     "new_inferior", "inferior_deleted", "memory_changed",
                     "register_changed"):
            registry = getattr(events, name, None)
            if registry is not None:
                try:
                    registry.connect(self.clear)
                except (RuntimeError, TypeError):
                    pass
        self.connected = True

    @staticmethod
    def key():
        try:
            inf = gdb.selected_inferior()
            return (inf.num, inf.pid)
        except (gdb.error, RuntimeError, AttributeError):
            return None

    def get(self, name):
        key = self.key()
        got = self.values.get((name, key))
        return got

    def put(self, name, value):
        self.values[(name, self.key())] = value
        return value


CACHE = StopCache()
_BUSY = [False]   # the analysis is running: the frame filter must not recurse


def busy():
    return _BUSY[0]


class _Failed(object):
    """Cached marker: the analysis failed for this stop (do not retry)."""

    def __init__(self, why):
        self.why = why


def cached_report():
    """The analysis of the current stop if it was already made, else None."""
    got = CACHE.get("report")
    return None if got is None or isinstance(got, _Failed) else got


def report():
    """The analysis of the current stop (made once per stop), or None."""
    got = CACHE.get("report")
    if got is not None:
        return None if isinstance(got, _Failed) else got
    if _BUSY[0]:
        return None
    from ..analysis import analyze
    from . import commands
    _BUSY[0] = True
    try:
        try:
            with commands.Settings():
                rep = analyze.collect(max_frames=MAX_FRAMES, source_check=False)
        except KeyboardInterrupt:
            return None       # not cached: the user may ask again
        except Exception as exc:  # NoTarget, gdb.error, a bug: no annotation
            CACHE.put("report", _Failed(str(exc)))
            return None
    finally:
        _BUSY[0] = False
    return CACHE.put("report", rep)


def _owner_text(rep, lock):
    if lock.owner_num is not None or lock.owner_lwp:
        owner = rep.thread(lock.owner_num) if lock.owner_num is not None else None
        if owner is not None:
            who = "Thread %d (LWP %d)" % (owner.num, owner.lwp)
        else:
            who = "LWP %d (not a thread of the target: exited?)" % lock.owner_lwp
        if lock.evidence == "exact":
            return "held by " + who
        return "owner inferred: %s" % who
    if lock.state == "free":
        return "free now"
    if lock.state in ("corrupt", "unreadable"):
        return "lock %s, owner unknown" % lock.state
    if lock.readers:
        text = "read-held by %d thread%s" % (lock.readers, "" if lock.readers == 1 else "s")
        if lock.reader_infs:
            text += " (inferred: %s%s)" % (
                ", ".join("Thread %d" % i.num for i in lock.reader_infs),
                ", %d not shown" % lock.readers_unknown if lock.readers_unknown else "")
        return text
    return "owner unknown"


def annotation(rep, thread):
    """The note for THREAD (a model.Thread) of REP, or None."""
    from ..report.textsafe import escape
    w = thread.wait
    if w is None:
        return None
    if w.is_lock and w.lock_addr is not None:
        lock = rep.lock_by_addr.get(w.lock_addr)
        if lock is None:
            return "[waits for lock 0x%x]" % w.lock_addr
        name = escape(lock.name(), 80)
        label = "%s %s" % (lock.id, name) if lock.id else name
        text = "[waits for %s, %s" % (label, _owner_text(rep, lock))
        if lock.owner_num is not None and lock.owner_num == thread.num:
            text += " (itself)"
        cyc = [i + 1 for i, c in enumerate(rep.cycles) if any(e.src == thread.num for e in c)]
        if cyc:
            text += "; deadlock #%d" % cyc[0]
        return text + "]"
    if w.kind == "join" and w.target_lwp:
        other = rep.thread_by_lwp(w.target_lwp)
        if other is not None:
            return "[joins Thread %d (LWP %d)]" % (other.num, other.lwp)
        return "[joins LWP %d]" % w.target_lwp
    return None


def _level(frame):
    """The level of a gdb.Frame (gdb.Frame.level where this gdb has it)."""
    if hasattr(frame, "level"):
        return frame.level()
    level = 0
    f = frame.newer()
    while f is not None and level < MAX_LEVEL:
        level += 1
        f = f.newer()
    return level


def _target_of_thread():
    """(level, text) to annotate in the selected thread, or None."""
    rep = report()
    if rep is None:
        return None
    th = gdb.selected_thread()
    if th is None:
        return None
    lwp = th.ptid[1] or th.ptid[2]
    t = rep.thread_by_lwp(lwp)
    if t is None:
        return None
    from . import charset
    charset.apply()
    text = annotation(rep, t)
    if text is None:
        return None
    # the first application frame (where the user looks), else the frame
    # where the wait was identified (a libc or glib lock function)
    idx = t.site
    if idx is None and t.wait is not None:
        idx = t.wait.frame
    if idx is None or idx >= len(t.frames):
        idx = 0
    return t.frames[idx].level, t.frames[idx].pc, text


def _frame_name(base):
    """The name gdb prints for the frame BASE (a FrameDecorator): its
    function, else its minimal symbol (FrameDecorator.function gives the pc
    then, which gdb's frame-filter printing shows as an empty name), else
    None (gdb's ``??``)."""
    name = base.function()
    if isinstance(name, str):
        return name
    try:
        return base.inferior_frame().name()
    except (gdb.error, RuntimeError, AttributeError):
        return None


def _decorator_classes():
    """(Plain, Annotated) FrameDecorator classes (gdb.FrameDecorator is
    imported when first needed)."""
    from gdb.FrameDecorator import FrameDecorator  # pylint: disable=import-error

    class Plain(FrameDecorator):
        """A frame of the annotated thread as gdb prints it without frame
        filters, as far as they allow: a frame without a symbol is ``??``
        (gdb's frame-filter printing would show an empty name)."""

        def __init__(self, base):
            super(Plain, self).__init__(base)
            self._base = base

        def function(self):
            name = _frame_name(self._base)
            return "??" if name is None else name

    class Annotated(Plain):
        """A frame whose function name is followed by the annotation; for a
        frame without a symbol, ``?? () at LIB [annotation]``: gdb's own
        ``?? () from LIB`` as a frame filter can print it (gdb prints " at "
        before any file name a frame filter gives)."""

        def __init__(self, base, text):
            super(Annotated, self).__init__(base)
            self._text = text
            self._nameless = _frame_name(base) is None

        def function(self):
            name = _frame_name(self._base)
            if name is None:
                if self._lib() is not None:
                    return "??"
                return "?? %s" % self._text
            return "%s %s" % (name, self._text)

        def _lib(self):
            try:
                name = self._base.filename()
            except (gdb.error, RuntimeError):
                return None
            return name if isinstance(name, str) else None

        def filename(self):
            lib = self._lib()
            if self._nameless and lib is not None:
                return "%s %s" % (lib, self._text)
            return lib

    return Plain, Annotated


class AnnotateFilter(object):
    """The frame filter (see the module doc).  It is enabled only while the
    selected thread has an annotation: every other backtrace is printed by
    gdb itself (a frame filter changes gdb's printing: ``from LIB`` becomes
    ``at LIB``, a frame without a symbol loses its ``??``)."""

    def __init__(self):
        self.name = FILTER_NAME
        self.priority = FILTER_PRIORITY
        self._enabled = True
        self.classes = None

    @property
    def enabled(self):
        if not self._enabled or _BUSY[0] or not enabled():
            return False
        try:
            return _target_of_thread() is not None
        except Exception:   # never break a backtrace
            return False

    @enabled.setter
    def enabled(self, value):       # `enable/disable frame-filter`
        self._enabled = bool(value)

    def filter(self, frame_iter):
        if _BUSY[0] or not enabled():
            return frame_iter
        try:
            target = _target_of_thread()
            if target is None:
                return frame_iter
            if self.classes is None:
                self.classes = _decorator_classes()
        except Exception:   # never break a backtrace
            return frame_iter
        return self._wrap(frame_iter, target)

    def _wrap(self, frame_iter, target):
        level, pc, text = target
        plain, annotated = self.classes
        done = False
        for dec in frame_iter:
            try:
                if not done:
                    frame = dec.inferior_frame()
                    if frame.pc() == pc and _level(frame) == level:
                        dec = annotated(dec, text)
                        done = True
                        yield dec
                        continue
                dec = plain(dec)
            except Exception:   # a frame gdb cannot describe: leave it
                pass
            yield dec


class AnnotateParameter(gdb.Parameter):
    """Whether `bt` shows what blocked threads wait for and who holds it.

When on (the default once janus-gdb is loaded), a blocked thread's
backtrace gets a note on its first application frame (else on the frame
where the wait was found), e.g.
  #2  ... in take_second_lock [waits for M1 m2, held by Thread 3 (LWP 4267)] ...
The analysis behind it (that of janus-locks) runs once per stop of the
target and is cached; on a core file it is made once."""

    set_doc = "Set whether bt annotates blocked threads with the lock they wait for."
    show_doc = "Show whether bt annotates blocked threads with the lock they wait for."

    def __init__(self):
        super(AnnotateParameter, self).__init__("janus-annotate", gdb.COMMAND_STACK,
                                                gdb.PARAM_BOOLEAN)
        self.value = True

    def get_set_string(self):
        return ""

    def get_show_string(self, svalue):
        return "Annotation of backtraces by janus-gdb is %s." % svalue


_STATE = {"param": None, "filter": None}


def enabled():
    param = _STATE["param"]
    return param is None or bool(param.value)


def register():
    """Create the parameter and the frame filter (once; safe to call again)."""
    CACHE.connect()
    if _STATE["param"] is None:
        try:
            _STATE["param"] = AnnotateParameter()
        except (RuntimeError, TypeError, AttributeError):
            pass
    if not hasattr(gdb, "frame_filters"):
        return None            # this gdb has no frame filter API
    try:
        __import__("gdb.FrameDecorator")
    except ImportError:
        return None
    if _STATE["filter"] is None:
        _STATE["filter"] = AnnotateFilter()
    gdb.frame_filters[FILTER_NAME] = _STATE["filter"]
    return _STATE["filter"]
