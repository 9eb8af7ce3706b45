"""The gdb commands: they parse arguments, call the analysis and print.

Nothing here reads the target directly.
"""

import argparse

import gdb  # pylint: disable=import-error

from . import analyze
from . import render_json
from . import render_text

DEFAULT_DEPTH = 64


class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line instead of exiting gdb."""

    def error(self, message):
        raise _ArgumentError("%s: %s" % (self.prog, message))

    def exit(self, status=0, message=None):
        raise _ArgumentError(message.strip() if message else "%s: bad arguments" % self.prog)


FORMATS = ("text", "json", "dot")


def _parser(prog):
    p = _Parser(prog=prog, add_help=False)
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument("--all", action="store_true", dest="show_all")
    p.add_argument("--depth", type=int, default=DEFAULT_DEPTH)
    p.add_argument("--lock-log", dest="lock_log", default=None)
    return p


def _parse(prog, arg):
    try:
        opts = _parser(prog).parse_args(gdb.string_to_argv(arg))
    except _ArgumentError as exc:
        raise gdb.GdbError("%s (see `help %s`)" % (exc, prog))
    if opts.depth < 1 or opts.depth > 100000:
        raise gdb.GdbError("%s: --depth must be between 1 and 100000 (see `help %s`)"
                           % (prog, prog))
    return opts


# gdb settings that make writes to the target and calls into it impossible
# while a command runs (each only where this gdb has it).
READ_ONLY_SETTINGS = ("may-call-functions", "may-write-memory", "may-write-registers")
# Reads of a core are slow in gdb 13: each walks the core's list of
# sections, two per thread (bench/run.py, docs/performance.md).  While a
# command runs, janus-gdb asks gdb for fewer of them:
# - a page per dcache line, so one miss brings a page of stack;
# - code and read-only data read from the executable and libraries instead
#   of the core (`set trust-readonly-sections on`: they are not in a core
#   made by gcore, so each read missed all of its sections first);
# - one memory region over the whole address space, read-only and cached
#   (`mem 0 0 ro cache`), when the user has defined none: gdb then serves
#   every read through its dcache, so the code byte its unwinder reads four
#   times per thread costs one read, and memory writes are refused as well.
#   gdb flushes the dcache at every thread switch, so a few lines suffice.
DCACHE_LINE = 4096
DCACHE_LINES = 64


def _gdb_set(name, value):
    gdb.execute("set %s %s" % (name, value), to_string=True)


class _Settings(object):
    """For the duration of a command: READ_ONLY_SETTINGS off, the memory
    settings above; the user's values are restored afterwards."""

    def __enter__(self):
        self.saved = []
        self.region = False
        self.warnings = []
        for name in READ_ONLY_SETTINGS:
            self._change(name, lambda old: bool(old), "off")
        self._change("dcache line-size", lambda old: int(old) < DCACHE_LINE, DCACHE_LINE)
        self._change("trust-readonly-sections", lambda old: not old, "on")
        self.region = _add_cache_region(self.warnings)
        if self.region:
            self._change("dcache size", lambda old: int(old) > DCACHE_LINES, DCACHE_LINES)
        self.unwinders = _skip_python_unwinders()
        return self

    def _change(self, name, wanted, value):
        try:
            old = gdb.parameter(name)
            if old is None or not wanted(old):
                return
            _gdb_set(name, value)
        except (gdb.error, RuntimeError, ValueError, TypeError):
            return
        if isinstance(old, bool):
            old = "on" if old else "off"
        self.saved.append((name, str(old)))

    def __exit__(self, *exc):
        if self.unwinders is not None:
            gdb._execute_unwinders = self.unwinders
        if self.region:
            _drop_cache_region()
        for name, value in reversed(self.saved):
            try:
                _gdb_set(name, value)
            except (gdb.error, RuntimeError):
                pass
        return False


def _no_unwinder(_pending_frame):
    return None


def _skip_python_unwinders():
    """gdb asks Python for an unwinder at every frame it unwinds, and the
    Python side walks every objfile's list: when no Python unwinder is
    registered anywhere, answer "none" at once while a command runs (a
    tenth of the unwinding time).  Returns gdb's function, to restore, or
    None when it was left alone."""
    execute = getattr(gdb, "_execute_unwinders", None)
    if execute is None:
        return None
    try:
        lists = [getattr(gdb, "frame_unwinders", []),
                 getattr(gdb.current_progspace(), "frame_unwinders", [])]
        lists.extend(getattr(o, "frame_unwinders", []) for o in gdb.objfiles())
        if any(lists):
            return None
    except (gdb.error, RuntimeError):
        return None
    gdb._execute_unwinders = _no_unwinder
    return execute


def _add_cache_region(warnings):
    """Define the read-only cached region over all memory, unless the user
    has memory regions of their own; True when it was defined."""
    try:
        if "user-defined" in gdb.execute("info mem", to_string=True):
            if gdb.parameter("mem inaccessible-by-default"):
                warnings.append("gdb's user-defined memory regions (`info mem`) make memory "
                                "outside them unreadable; `mem auto` or `set mem "
                                "inaccessible-by-default off` lifts that")
            return False
        gdb.execute("mem 0 0 ro cache", to_string=True)
        rows = gdb.execute("info mem", to_string=True).strip().splitlines()
        fields = rows[-1].split() if rows else []
        # "1 y 0x0000000000000000 0x10000000000000000 ro cache": the region
        # must cover everything, or gdb would refuse reads outside it.
        if len(fields) >= 4 and int(fields[2], 16) == 0 and int(fields[3], 16) >= 1 << 32:
            return True
    except (gdb.error, RuntimeError, ValueError):
        pass
    _drop_cache_region()
    return False


def _drop_cache_region():
    try:
        gdb.execute("mem auto", to_string=True)
    except (gdb.error, RuntimeError):
        pass


def _read_lock_log(path):
    from . import locklog
    try:
        return locklog.read_file(path)
    except locklog.LockLogError as exc:
        raise gdb.GdbError("--lock-log: %s" % exc)


def _analyze(opts):
    from .target import NoTarget
    log = _read_lock_log(opts.lock_log) if opts.lock_log else None
    try:
        with _Settings() as settings:
            report = analyze.collect(max_frames=opts.depth, locklog=log)
        report.warnings[:0] = settings.warnings
        return report
    except NoTarget as exc:
        raise gdb.GdbError(str(exc))
    except gdb.MemoryError as exc:
        raise gdb.GdbError("Cannot read the target's memory: %s" % exc)
    except gdb.error as exc:
        raise gdb.GdbError("janus-gdb: gdb could not read the target: %s" % exc)


class _Base(gdb.Command):
    prog = None
    render = None

    def __init__(self):
        super(_Base, self).__init__(self.prog, gdb.COMMAND_STATUS)

    def invoke(self, arg, from_tty):
        opts = _parse(self.prog, arg)
        try:
            report = _analyze(opts)
            if opts.format == "json":
                text = render_json.render(report, self.prog)
            elif opts.format == "dot":
                from . import render_dot
                text = render_dot.render(report, self.prog)
            else:
                text = type(self).render(report, show_all=opts.show_all)
        except gdb.GdbError:
            raise
        except KeyboardInterrupt:
            raise gdb.GdbError("%s: interrupted" % self.prog)
        except Exception as exc:  # a bug of ours: one line, never a traceback
            raise gdb.GdbError(internal_error(self.prog, exc))
        gdb.write(text)


def internal_error(prog, exc):
    """One line for an unexpected exception, with where it happened."""
    import traceback
    where = ""
    tb = traceback.extract_tb(exc.__traceback__)
    if tb:
        last = tb[-1]
        where = " at %s:%d" % (last[0].rsplit("/", 1)[-1], last[1])
    return ("%s: internal error %s%s: %s (please report it with the output of "
            "`%s --format json`)" % (prog, type(exc).__name__, where,
                                     str(exc).split("\n")[0][:200], prog))


class JanusLocks(_Base):
    """Show every lock a thread holds or waits for, its owner and its waiters.

Usage: janus-locks [--format text|json] [--all] [--depth N] [--lock-log FILE]

For each lock that some thread is blocked on, and (with debug info) each
held global or file-static lock variable of the source files on the stacks:
its address and symbol, its kind (pthread mutex and its kind, GMutex,
pthread rwlock), its state decoded from the lock word, its owner with the
evidence, and the waiting threads.  Lock words that no valid lock can hold
are reported as corrupt, never trusted.

Evidence for an owner:
  exact     read from the lock itself (pthread mutex __data.__owner,
            rwlock __cur_writer)
  inferred  the lock records no owner (GMutex): the source of a frame on
            the owner's stack locked it on the way to the frame's current
            line and has not unlocked it, and the lock expression evaluates
            there to this lock ("locked at janus_videoroom.c:5382 in
            janus_videoroom_process_synchronous_request (frame #2)"); or,
            when the variable is optimized out, it is the only held lock of
            that type and field; or Janus's lock-debug log (--lock-log)
            shows its last lock in a function on only one stack
  unknown   no evidence (no debug info or source, read-locked rwlock), or
            the memory is unreadable or corrupt; the reason is printed
A held lock that no live thread can be shown to hold is reported as
probably leaked (an unlock is missing).

Locks are named as Janus's code names them: global locks by file and
symbol ("janus_videoroom.c: rooms_mutex"), locks inside Janus objects by
the object found through the frames' variables ("participant->
streams_mutex of publisher 5678 "alice" in room 1234", "handle->mutex of
handle 424242"); without debug info as library+offset.  Threads get a
role from their entry function (hloop, request worker, sessions
requests, videoroom handler, session watchdog, ...).

Works on a live process (gdb -p PID) and on a core file (gdb EXE CORE),
with or without debug symbols: the wait is read from the registers of
each thread at its futex system call.  Nothing is written to the target
and no function of the target is called.

Options:
  --format text|json   text for people (default), json with every field
  --all                list every waiting thread instead of the first few
  --depth N            unwind at most N frames per thread (default 64)
  --lock-log FILE      Janus's log with lock debugging on (admin API
                       set_locking_debug): the last lock of each address
                       without an unlock is cited as evidence

Examples:
  janus-locks
  janus-locks --format json
"""
    prog = "janus-locks"
    render = render_text.locks


class JanusWaitgraph(_Base):
    """Find deadlocks: the wait-for graph of all threads, verdict first.

Usage: janus-waitgraph [--format text|json] [--all] [--depth N] [--lock-log FILE]

Builds the graph thread -> lock -> owner thread (and thread -> joined
thread) and reports, in this order:
  - the verdict, a stable line for scripts: "Found 1 deadlock",
    "Found N deadlocks" or "No deadlock found";
  - each deadlock (wait cycle): its threads, the lock each waits for and
    who holds it, the locks each holds, and their top frames;
  - the threads blocked behind a deadlock or behind a held lock, grouped
    by lock and call site with a count;
  - locks whose owner thread no longer exists (never released);
  - a summary of the other threads (idle, polling, sleeping, running).

Every thread gets a state from its registers at the system call (no
debug symbols needed): lock-wait, join, idle (condition or queue wait),
poll, io, sleep, signal-wait, running, or unknown with a reason.

Options:
  --format text|json   text for people (default), json with every thread,
                       lock, edge and cycle
  --all                list every thread, not only the groups
  --depth N            unwind at most N frames per thread (default 64)
  --lock-log FILE      Janus's log with lock debugging on (admin API
                       set_locking_debug): evidence for owners and leaks

Owners of GMutex locks (Janus's default janus_mutex) are inferred, with
the evidence printed next to each (see `help janus-locks`); Janus built
with --enable-pthread-mutex gives exact owners.

Examples:
  gdb -p $(pidof janus) -batch -x gdbinit.py -ex janus-waitgraph
  gdb -batch -x gdbinit.py -ex 'janus-waitgraph --format json' janus core.1234
"""
    prog = "janus-waitgraph"
    render = render_text.waitgraph


COMMANDS = (JanusLocks, JanusWaitgraph)


def register():
    """Create (or re-create) the commands; safe to call more than once."""
    return [cls() for cls in COMMANDS]
