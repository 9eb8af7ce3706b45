"""The gdb commands: they parse arguments, call the analysis and print.

Nothing here reads the target directly.
"""

import argparse
import os

import gdb  # pylint: disable=import-error

from ..analysis import analyze
from . import charset
from . import fastcheck
from ..report import json as render_json
from ..report import text as render_text
from ..model import MAX_DEPTH

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
OPTIONS = ("--format", "--all", "--depth", "--lock-log", "--no-source-check", "--gdb-only")


def _parser(prog):
    p = _Parser(prog=prog, add_help=False)
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument("--all", action="store_true", dest="show_all")
    p.add_argument("--depth", type=int, default=DEFAULT_DEPTH)
    p.add_argument("--lock-log", dest="lock_log", default=None)
    p.add_argument("--no-source-check", action="store_true", dest="no_source_check")
    p.add_argument("--gdb-only", action="store_true", dest="gdb_only")
    return p


def parse(prog, arg):
    """The options of command PROG from its argument string; gdb.GdbError
    with one line when they are wrong."""
    try:
        opts = _parser(prog).parse_args(gdb.string_to_argv(arg))
    except _ArgumentError as exc:
        raise gdb.GdbError("%s (see `help %s`)" % (exc, prog))
    if opts.depth < 1 or opts.depth > MAX_DEPTH:
        raise gdb.GdbError("%s: --depth must be between 1 and %d (see `help %s`)"
                           % (prog, MAX_DEPTH, prog))
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


class Settings(object):
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
    from ..janus import locklog
    try:
        return locklog.read_file(path)
    except locklog.LockLogError as exc:
        raise gdb.GdbError("--lock-log: %s" % exc)


def analyze_target(opts):
    """The Report of the selected inferior, under Settings; gdb.GdbError
    with one line when the target cannot be read."""
    from ..target.gdbtarget import NoTarget
    log = _read_lock_log(opts.lock_log) if opts.lock_log else None
    try:
        with Settings() as settings:
            report = analyze.collect(max_frames=opts.depth, locklog=log,
                                     source_check=not opts.no_source_check,
                                     gdb_only=opts.gdb_only)
            if fastcheck.wanted() and not opts.gdb_only:
                fastcheck.check(report, lambda: analyze.collect(
                    max_frames=opts.depth, locklog=log, source_check=not opts.no_source_check,
                    gdb_only=True), gdb.selected_inferior())
        report.warnings[:0] = settings.warnings
        return report
    except NoTarget as exc:
        raise gdb.GdbError(str(exc))
    except gdb.MemoryError as exc:
        raise gdb.GdbError("Cannot read the target's memory: %s" % exc)
    except gdb.error as exc:
        raise gdb.GdbError("janus-gdb: gdb could not read the target: %s" % exc)


def complete_args(text, word):
    """Completions for TEXT (the arguments typed so far); WORD is the part
    gdb replaces (None while gdb asks which characters break words).

    Option names; the formats after --format; file names after --lock-log."""
    words = text.split()
    token = "" if not words or text[-1:].isspace() else words[-1]
    before = words[:-1] if token else words
    prev = before[-1] if before else ""
    if word is None:
        # gdb then breaks words as in file names ("/" and "." included)
        if prev == "--lock-log" or token.startswith("--lock-log="):
            return gdb.COMPLETE_FILENAME
        return None
    if prev == "--lock-log" or token.startswith("--lock-log="):
        # gdb's own file completer would see all of TEXT, not the file name
        head = "--lock-log=" if token.startswith("--lock-log=") else ""
        candidates = [head + f for f in file_names(token[len(head):])]
    elif prev == "--format":
        candidates = FORMATS
    elif token.startswith("--format="):
        candidates = ["--format=" + f for f in FORMATS]
    elif prev == "--depth":
        return []
    else:
        used = set(w.split("=", 1)[0] for w in before)
        candidates = [o for o in OPTIONS if o not in used]
    cut = max(len(token) - len(word), 0)
    return [c[cut:] for c in candidates if c.startswith(token)]


MAX_FILE_NAMES = 1000


def file_names(path):
    """The file names that complete PATH (directories with a "/")."""
    folder, base = os.path.split(path)
    try:
        names = sorted(os.listdir(os.path.expanduser(folder) or "."))[:MAX_FILE_NAMES]
    except OSError:
        return []
    out = []
    for name in names:
        if not name.startswith(base) or (name.startswith(".") and not base.startswith(".")):
            continue
        full = os.path.join(folder, name)
        if os.path.isdir(os.path.expanduser(full)):
            full += "/"
        out.append(full)
    return out


# Terminal emphasis comes only from gdb's own style settings: the text of
# `style title` (bold unless the user changed it) for the verdict line.
COLORS = ("black", "red", "green", "yellow", "blue", "magenta", "cyan", "white")


def _param(name):
    try:
        return gdb.parameter(name)
    except (RuntimeError, gdb.error, ValueError):
        return None


def _color_code(value, base):
    value = str(value or "none").lower()
    if value in COLORS:
        return str(base + COLORS.index(value))
    if value.isdigit() and int(value) < 256:
        return "%d;5;%s" % (base + 8, value)
    if len(value) == 7 and value.startswith("#"):
        try:
            rgb = [int(value[i:i + 2], 16) for i in (1, 3, 5)]
        except ValueError:
            return None
        return "%d;2;%d;%d;%d" % ((base + 8,) + tuple(rgb))
    return None


def style_escape(style, from_tty):
    """The escape sequence for gdb's STYLE ("title", ...), or "" when gdb
    would not style: `set style enabled off`, gdb without styling, output
    not a terminal (batch, pipe, a string capture) or TERM=dumb."""
    if not from_tty or _param("style enabled") is not True:
        return ""
    try:
        if not os.isatty(1) or os.environ.get("TERM") == "dumb":
            return ""
    except (OSError, ValueError):
        return ""
    codes = []
    intensity = _param("style %s intensity" % style)
    if intensity == "bold":
        codes.append("1")
    elif intensity == "dim":
        codes.append("2")
    for attr, code in (("italic", "3"), ("underline", "4"), ("reverse", "7")):
        if _param("style %s %s" % (style, attr)) is True:
            codes.append(code)
    for attr, base in (("foreground", 30), ("background", 40)):
        code = _color_code(_param("style %s %s" % (style, attr)), base)
        if code:
            codes.append(code)
    return "\033[%sm" % ";".join(codes) if codes else ""


def emphasize_first_line(text, from_tty):
    """TEXT with its first line (the verdict) in gdb's title style."""
    esc = style_escape("title", from_tty)
    if not esc or not text:
        return text
    head, sep, rest = text.partition("\n")
    return "%s%s\033[m%s%s" % (esc, head, sep, rest)


class _Base(gdb.Command):
    prog = None
    render = None

    def __init__(self):
        super(_Base, self).__init__(self.prog, gdb.COMMAND_STATUS)

    def complete(self, text, word):
        return complete_args(text, word)

    def invoke(self, arg, from_tty):
        opts = parse(self.prog, arg)
        charset.apply()     # escape non-ASCII unless gdb's host charset is UTF-8
        try:
            report = analyze_target(opts)
            text = render(self.prog, opts, report, from_tty)
        except gdb.GdbError:
            raise
        except KeyboardInterrupt:
            raise gdb.GdbError("%s: interrupted" % self.prog)
        except Exception as exc:  # a bug of ours: one line, never a traceback
            raise gdb.GdbError(internal_error(self.prog, exc))
        gdb.write(text)


def render(prog, opts, report, from_tty=False):
    """The report of command PROG in the format OPTS asks for (the text
    report's first line in gdb's title style when FROM_TTY allows it)."""
    if opts.format == "json":
        return render_json.render(report, prog)
    if opts.format == "dot":
        from ..report import dot as render_dot
        return render_dot.render(report, prog)
    text = COMMAND_RENDERERS[prog](report, show_all=opts.show_all)
    return emphasize_first_line(text, from_tty)


COMMAND_RENDERERS = {"janus-locks": render_text.locks, "janus-waitgraph": render_text.waitgraph}


def internal_error(prog, exc):
    """One line for an unexpected exception, with where it happened."""
    import traceback
    where = ""
    tb = traceback.extract_tb(exc.__traceback__)
    if tb:
        last = tb[-1]
        # the path inside the package (report/text.py): basenames repeat
        where = " at %s:%d" % (last[0].rsplit("/janus_gdb/", 1)[-1], last[1])
    return ("%s: internal error %s%s: %s (please report it with the output of "
            "`%s --format json`)" % (prog, type(exc).__name__, where,
                                     str(exc).split("\n")[0][:200], prog))


class JanusLocks(_Base):
    """Show every lock a thread holds or waits for, its owner and its waiters.

Usage: janus-locks [--format text|json|dot] [--all] [--depth N] [--lock-log FILE]
                [--no-source-check] [--gdb-only]

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
probably leaked (an unlock is missing).  Under the first line come the
known Janus bug a hang matches, if any, and the fingerprints of the hang
findings, as in janus-waitgraph.

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
  --format text|json|dot
                       text for people (default), json with every field,
                       dot: the wait-for graph for Graphviz (dot -Tsvg)
  --all                list every waiting thread instead of the first few
  --depth N            unwind at most N frames per thread (default 64)
  --lock-log FILE      Janus's log with lock debugging on (admin API
                       set_locking_debug): the last lock of each address
                       without an unlock is cited as evidence
  --no-source-check    do not read the program's C sources (named by its
                       debug info) for the exits that can leak a leaked
                       lock ("possible missing unlock") and the source
                       lines of a deadlock's lock orders
  --gdb-only           read every thread through gdb (by default, on a
                       core or a live process of 32 threads or more, gdb
                       reads one of each group of identical stacks, the
                       core file or /proc the rest)

TAB completes the options, the formats and the --lock-log file name.
The first line is in gdb's `style title` when styling is on and the
output is a terminal; `set style enabled off` gives plain text.

Examples:
  janus-locks                                  (in gdb, live or core)
  janus-locks --all --lock-log /var/log/janus.log
  gdb -p $(pidof janus) -x gdbinit.py          (live: attach, then the command)
  gdb -batch -x gdbinit.py -ex janus-locks /usr/bin/janus core.1234
  gdb -batch -x gdbinit.py -ex 'janus-locks --format json' -p $(pidof janus)
"""
    prog = "janus-locks"
    render = render_text.locks


class JanusWaitgraph(_Base):
    """Find deadlocks: the wait-for graph of all threads, verdict first.

Usage: janus-waitgraph [--format text|json|dot] [--all] [--depth N] [--lock-log FILE]
                [--no-source-check] [--gdb-only]

Builds the graph thread -> lock -> owner thread (and thread -> joined
thread) and reports, in this order:
  - the verdict, a stable line for scripts: "Found 1 deadlock",
    "Found N deadlocks", "No deadlock found" or, when nothing was found
    but threads could not be read, "Undetermined: ...", then (without a cycle)
    the root that blocks the most threads and why, e.g. "T7 holds 3
    locks while waiting on a queue (...); 212 threads are blocked behind
    it";
  - when a hang is one of Janus's known lock bugs (the package's
    catalogue, docs/known-hangs.md): "This is janus-gateway #3510 (...;
    affects 1.0.4 to 1.3.0, fixed in 1.3.1): upgrade ..." with the
    strength of the match; only "Similar to ..." when the target's Janus
    version (read from the core or binary, shown on the first line) is not
    an affected release or is unknown;
  - "Fingerprint: cycle-ac044a3fd1 (deadlock #1)": a stable id of each
    hang finding (lock classes and functions, not addresses or counts),
    the same for the same bug on any host or build;
  - each deadlock (wait cycle): its threads, the lock each waits for and
    who holds it, the locks each holds, and their top frames;
  - the threads blocked behind each root (a deadlock, a holder, a leaked
    lock, a dead owner, a lock whose owner is unknown, with the threads
    that could hold it), most blocked first, grouped by lock and call
    site with a count;
  - a summary of the other threads (idle, polling, sleeping, running);
  - next steps: how to get the evidence that is missing, or where to look.

Every thread gets a state from its registers at the system call (no
debug symbols needed): lock-wait, join, idle (condition or queue wait),
waiting (the same, while holding a lock), poll, io, sleep, signal-wait,
running, or unknown with a reason.  docs/evidence.md says what backs
each verdict word.

Options:
  --format text|json|dot
                       text for people (default), json with every thread,
                       lock, edge and cycle, dot: the wait-for graph for
                       Graphviz (dot -Tsvg)
  --all                list every thread, not only the groups
  --depth N            unwind at most N frames per thread (default 64)
  --lock-log FILE      Janus's log with lock debugging on (admin API
                       set_locking_debug): evidence for owners and leaks
  --no-source-check    do not read the program's C sources (named by its
                       debug info): without it, a leaked lock lists the
                       exits of the source that can leak its class
                       ("possible missing unlock") and a deadlock cites
                       where the source takes its locks in each order
  --gdb-only           read every thread through gdb; by default, on a
                       core or a live process of 32 threads or more, the
                       core file or /proc is read directly and gdb reads
                       one thread of each group of identical stacks (the
                       same report, much faster with many threads)

Owners of GMutex locks (Janus's default janus_mutex) are inferred, with
the evidence printed next to each (see `help janus-locks`); Janus built
with --enable-pthread-mutex gives exact owners.

TAB completes the options, the formats and the --lock-log file name.
The verdict line is in gdb's `style title` when styling is on and the
output is a terminal; `set style enabled off` gives plain text.  Long
reports page like any gdb output (`set height`, q at the prompt stops).

Examples:
  janus-waitgraph                              (in gdb, live or core)
  janus-waitgraph --all --depth 32
  gdb -p $(pidof janus) -x gdbinit.py -ex janus-waitgraph         (live)
  gdb -batch -x gdbinit.py -ex janus-waitgraph /usr/bin/janus core.1234
  gdb -batch -p $(pidof janus) -x gdbinit.py -ex 'janus-waitgraph --format json'
  gdb -batch -x gdbinit.py -ex 'janus-waitgraph --format dot' janus core | dot -Tsvg -o wait.svg
"""
    prog = "janus-waitgraph"
    render = render_text.waitgraph


COMMANDS = (JanusLocks, JanusWaitgraph)


def _more_commands():
    """Commands defined in modules of their own (janus-lockorder)."""
    from .lockorder import JanusLockorder
    return (JanusLockorder,)


def register():
    """Create (or re-create) the commands; safe to call more than once."""
    return [cls() for cls in COMMANDS + _more_commands()]
