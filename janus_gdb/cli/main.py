"""The ``janus-gdb`` command-line tool: janus-waitgraph (or janus-locks) on a
core file or a live process, without typing gdb commands.

    janus-gdb CORE [--exe PATH]      a core file (the executable is found
                                     from the core when --exe is absent)
    janus-gdb --pid PID              a live process (left running)
    janus-gdb watch ...              janus_gdb.cli.watch

It runs ``gdb -nx -batch`` with this package loaded from its own location
(gdbui/batch.py) and prints only the report.  Exit status: 0 no deadlock and no
hang, 1 deadlock found, 2 usage or input error (one line on stderr), 3 a
hang that is not a cycle, 4 threads blocked behind a lock whose owner cannot
be shown (see EPILOG and docs/cli.md).  Runs without
gdb's Python: stdlib only, Python 3.6 syntax.  See docs/cli.md.
"""

import argparse
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile

from .. import __version__
from ..model import MAX_DEPTH
from ..report.textsafe import escape, set_utf8
from . import userlocale

PROG = "janus-gdb"
EXIT_OK = 0
EXIT_DEADLOCK = 1
EXIT_ERROR = 2
EXIT_HANG = 3           # no cycle, but threads blocked for good behind a root with evidence
EXIT_UNDETERMINED = 4   # threads blocked behind a lock whose owner cannot be shown
# the verdict kinds of janus_gdb/analysis/verdict.py (not imported: it is gdb-free but
# this module loads nothing of the analysis)
EXIT_OF_VERDICT = {"none": EXIT_OK, "deadlock": EXIT_DEADLOCK, "hang": EXIT_HANG,
                   "undetermined": EXIT_UNDETERMINED}

# the janus_gdb package (this file is janus_gdb/cli/main.py)
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORMATS = ("text", "json", "dot")


class CliError(Exception):
    """A usage or input error: one line for stderr, exit status 2."""


# --- arguments ---------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CliError("%s (see %s --help)" % (message, PROG))


USAGE = ("%(prog)s CORE [--exe PATH] [options]\n"
         "       %(prog)s --pid PID [options]\n"
         "       %(prog)s watch ...")

DESCRIPTION = """\
Explain why a Janus WebRTC server (or any glib/pthread program) is hung:
runs janus-waitgraph (or janus-locks) in gdb on a core file or a live
process and prints only the report."""

EPILOG = """\
exit status:
  0  no deadlock and no hang: nothing blocked, or only briefly (a running
     holder, a lock that is free now)
  1  deadlock found (a wait cycle)
  2  usage or input error (one line on stderr)
  3  a hang that is not a cycle: threads blocked behind a leaked lock, an
     owner that no longer exists, or a holder that waits for something else
     (queue, condition variable, join, sleep, poll, I/O) while holding locks
  4  threads blocked behind a lock whose owner cannot be shown (no debug
     info, unreadable sources): a hang or passing contention, undetermined

examples:
  janus-gdb core.1234                       # executable found from the core
  janus-gdb core.1234 --exe /usr/bin/janus --format json > report.json
  janus-gdb --pid "$(pidof janus)" --locks
  janus-gdb --pid 1234 --format dot --output waitgraph.dot
"""


def parser():
    p = _Parser(prog=PROG, usage=USAGE, description=DESCRIPTION, epilog=EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("core", nargs="?", metavar="CORE", help="core file to analyse")
    p.add_argument("--exe", metavar="PATH",
                   help="the executable the core was made from (default: found from the core)")
    p.add_argument("--pid", metavar="PID", help="analyse the live process PID (gdb attaches, "
                   "stops it during the analysis and detaches)")
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="text (default), json or dot")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="write the report to FILE instead of stdout (stdout stays empty)")
    p.add_argument("--locks", action="store_true",
                   help="run janus-locks (every lock, owner, waiters) instead of janus-waitgraph")
    p.add_argument("--all", action="store_true", dest="show_all",
                   help="list every thread instead of groups")
    p.add_argument("--depth", type=int, metavar="N",
                   help="unwind at most N frames per thread (default 64)")
    p.add_argument("--lock-log", metavar="FILE", dest="lock_log",
                   help="Janus's log written with lock debugging on")
    p.add_argument("--no-source-check", action="store_true", dest="no_source_check",
                   help="do not read the program's C sources for the exits that can leak a "
                        "leaked lock and the lines of a deadlock's lock orders")
    p.add_argument("--gdb-only", action="store_true", dest="gdb_only",
                   help="read every thread through gdb (by default gdb reads one of each "
                        "group of identical stacks, the core file or /proc the rest)")
    p.add_argument("--gdb", metavar="PATH", default=None,
                   help="the gdb to run (default: gdb; gdb-multiarch for a core of another "
                   "architecture)")
    p.add_argument("--version", action="version", version="%s %s" % (PROG, __version__))
    return p


def parse_args(argv):
    opts = parser().parse_args(argv)
    if opts.pid is not None and opts.core is not None:
        raise CliError("give either a CORE or --pid PID, not both (see %s --help)" % PROG)
    if opts.pid is None and opts.core is None:
        raise CliError("nothing to analyse: give a CORE file or --pid PID (see %s --help)" % PROG)
    if opts.pid is not None:
        if opts.exe is not None:
            raise CliError("--exe is for core files; with --pid gdb finds the executable")
        try:
            opts.pid = int(opts.pid, 10)
        except ValueError:
            opts.pid = -1
        if opts.pid <= 0:
            raise CliError("--pid wants a process id (a positive number)")
    if opts.depth is not None and not 1 <= opts.depth <= MAX_DEPTH:
        raise CliError("--depth must be between 1 and %d" % MAX_DEPTH)
    return opts


# --- inputs ------------------------------------------------------------------

from ..target.corefile import (ET_CORE, HOST_MACHINES, MACHINES, CoreFileError,  # noqa: E402
                               comm_matches, machine_name, read_core)  # (gdb-free, light)


def find_executable(core, info):
    """The executable the core was made from, by its notes; CliError when
    it cannot be found here."""
    candidates = []
    if info.fname:
        for path in info.files:
            if comm_matches(info.fname, os.path.basename(path.replace(" (deleted)", ""))):
                candidates.append(path)
                break
    if info.psargs:
        argv0 = info.psargs.split(" ", 1)[0]
        if argv0.startswith("/") and argv0 not in candidates:
            candidates.append(argv0)
    if not candidates and info.files:
        candidates.append(info.files[0])  # the lowest mapping: usually the executable
    for path in candidates:
        if os.path.isfile(path) and os.access(path, os.R_OK):
            return path
    if not candidates:
        named = ""
        if info.fname:
            # the core's notes: what the target wrote, escaped
            named = ", only the command \"%s\"" % escape(info.psargs or info.fname, 200)
        raise CliError("cannot find the executable of core %s: its notes name no executable "
                       "file%s (pass --exe PATH)" % (core, named))
    raise CliError("cannot find the executable of core %s: it was %s, not readable here "
                   "(pass --exe PATH)" % (core, " or ".join(escape(c, 300) for c in candidates)))


def check_executable(path):
    """PATH, made absolute; CliError unless it is a readable ELF executable."""
    path = _readable_file(path, "executable")
    try:
        with open(path, "rb") as f:
            ident = f.read(18)
    except OSError as exc:
        raise CliError("cannot read executable %s: %s" % (path, exc.strerror or exc))
    if len(ident) < 18 or ident[:4] != b"\x7fELF" or ident[5] not in (1, 2):
        raise CliError("--exe %s is not an ELF executable" % path)
    e_type = struct.unpack_from("<H" if ident[5] == 1 else ">H", ident, 16)[0]
    if e_type == ET_CORE:
        raise CliError("--exe %s is a core file, not an executable (the core comes first: "
                       "janus-gdb CORE --exe EXECUTABLE)" % path)
    return path


def _readable_file(path, what):
    if not os.path.exists(path):
        raise CliError("%s %s does not exist" % (what, path))
    if os.path.isdir(path):
        raise CliError("%s %s is a directory" % (what, path))
    if not os.access(path, os.R_OK):
        raise CliError("%s %s is not readable" % (what, path))
    return os.path.abspath(path)


def _status_fields(pid):
    fields = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return fields


def _ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _is_ancestor_of(pid):
    me = os.getpid()
    for _ in range(4096):
        pid = _ppid(pid)
        if pid <= 1:
            return False
        if pid == me:
            return True
    return False


CAP_SYS_PTRACE = 19


def check_process(pid):
    """CliError unless PID is a process this user may attach to."""
    try:
        status = _status_fields(pid)
    except OSError:
        raise CliError("no process with PID %d" % pid)
    tgid = int((status.get("Tgid") or [pid])[0])
    if tgid != pid:
        raise CliError("%d is a thread of process %d: use --pid %d" % (pid, tgid, tgid))
    if pid == os.getpid():
        raise CliError("--pid %d is janus-gdb itself" % pid)
    state = (status.get("State") or ["?"])[0]
    if state in ("Z", "X"):
        raise CliError("process %d has exited (it is a zombie): nothing to attach to" % pid)
    tracer = int((status.get("TracerPid") or ["0"])[0])
    if tracer:
        raise CliError("process %d is already being traced by process %d (another debugger?)"
                       % (pid, tracer))
    try:
        with open("/proc/self/status") as f:
            caps = [l.split()[1] for l in f if l.startswith("CapEff:")]
        privileged = bool(int(caps[0], 16) >> CAP_SYS_PTRACE & 1) if caps else os.geteuid() == 0
    except (OSError, ValueError, IndexError):
        privileged = os.geteuid() == 0
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            scope = int(f.read().strip())
    except (OSError, ValueError):
        scope = 0
    if scope >= 3:
        raise CliError("cannot attach to process %d: ptrace is disabled on this machine "
                       "(kernel.yama.ptrace_scope = 3); analyse a core instead" % pid)
    if privileged:
        return
    uid = os.getuid()
    uids = [int(u) for u in (status.get("Uid") or [])]
    if any(u != uid for u in uids):
        raise CliError("no permission to attach to process %d (it runs as uid %s): run as that "
                       "user or as root" % (pid, uids[0] if uids else "?"))
    if scope == 2:
        raise CliError("cannot attach to process %d: kernel.yama.ptrace_scope = 2 allows it "
                       "only with CAP_SYS_PTRACE (run as root)" % pid)
    if scope == 1 and not _is_ancestor_of(pid):
        raise CliError("cannot attach to process %d: kernel.yama.ptrace_scope = 1 allows it only "
                       "to its parent processes (run as root, or `sysctl "
                       "kernel.yama.ptrace_scope=0`)" % pid)


def find_gdb(name):
    if os.sep in name:
        if os.path.isfile(name) and os.access(name, os.X_OK):
            return os.path.abspath(name)
        raise CliError("gdb not found: %s is not an executable file" % name)
    path = shutil.which(name)
    if path is None:
        raise CliError("gdb not found: no %r on PATH (install gdb or pass --gdb PATH)" % name)
    return path


def _gdb_reads(gdb, arch):
    """Whether GDB knows the architecture ARCH (gdb's name): built for it or
    with --enable-targets=all (a feature, not a version, is asked)."""
    try:
        out = subprocess.run([gdb, "-nx", "-batch", "-ex", "set architecture %s" % arch],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, universal_newlines=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and "Undefined" not in out.stdout


def choose_gdb(opts, machine):
    """(path of the gdb to run, note for the user or None).  --gdb wins; a
    core of this machine's architecture gets gdb; another architecture's
    (MACHINE: its ELF e_machine) gets gdb-multiarch, or gdb when it reads
    that architecture too, else a CliError saying to install gdb-multiarch."""
    if opts.gdb is not None:
        return find_gdb(opts.gdb), None
    host = HOST_MACHINES.get(platform.machine())
    if machine is None or host is None or machine == host:
        return find_gdb("gdb"), None
    name = machine_name(machine)
    what = "the core is %s (this machine is %s)" % (name, platform.machine())
    multi = shutil.which("gdb-multiarch")
    if multi is not None:
        return multi, "%s: using gdb-multiarch (%s)" % (what, multi)
    plain = shutil.which("gdb")
    arch = MACHINES.get(machine, (None, None))[1]
    if plain is not None and arch is not None and _gdb_reads(plain, arch):
        return plain, "%s: using %s, which reads %s" % (what, plain, name)
    raise CliError("%s and gdb cannot read it: install gdb-multiarch (or pass --gdb PATH)"
                   % what)


def check_output(path):
    """CliError unless PATH can be written (checked before the analysis)."""
    if path == "-":
        return path
    path = os.path.abspath(path)
    if os.path.isdir(path):
        raise CliError("--output %s is a directory" % path)
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise CliError("--output %s: directory %s does not exist" % (path, parent))
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise CliError("--output %s is not writable" % path)
    if not os.path.exists(path) and not os.access(parent, os.W_OK | os.X_OK):
        raise CliError("--output %s: directory %s is not writable" % (path, parent))
    return path


# --- running gdb -------------------------------------------------------------

def _gdb_quote(arg):
    """ARG as one word for gdb.string_to_argv (libiberty's buildargv)."""
    return "".join(c if c.isalnum() or c in "-_./=:," else "\\" + c for c in arg)


def command_args(opts):
    args = ["--format", opts.format]
    if opts.show_all:
        args.append("--all")
    if opts.depth is not None:
        args += ["--depth", str(opts.depth)]
    if opts.lock_log is not None:
        args += ["--lock-log", opts.lock_log]
    if getattr(opts, "no_source_check", False):
        args.append("--no-source-check")
    if getattr(opts, "gdb_only", False):
        args.append("--gdb-only")
    return " ".join(_gdb_quote(a) for a in args)


NO_THREAD_DB = 'set libthread-db-search-path ""'


def gdb_command(gdb, opts, exe, out_path, status_path):
    """The gdb command line that analyses the target and writes the files."""
    prog = "janus-locks" if opts.locks else "janus-waitgraph"
    bootstrap = (
        "python import importlib.util as _u, sys as _s; "
        "_spec = _u.spec_from_file_location('janus_gdb', %r, submodule_search_locations=[%r]); "
        "_m = _u.module_from_spec(_spec); _s.modules['janus_gdb'] = _m; "
        "_spec.loader.exec_module(_m); import janus_gdb.gdbui.batch; "
        "janus_gdb.gdbui.batch.run(%r, %r, %r, %r)"
        % (os.path.join(PACKAGE_DIR, "__init__.py"), PACKAGE_DIR, prog, command_args(opts),
           out_path, status_path))
    cmd = [gdb, "-nx", "-batch",
           "-iex", "set pagination off", "-iex", "set width 0", "-iex", "set confirm off"]
    if opts.pid is not None:
        cmd += ["-p", str(opts.pid)]
    else:
        # libthread_db gives a core's threads their pthread_t, which the
        # analysis never uses, at a cost that grows faster than the thread
        # count (10,000 threads: 3 s of 3.6 to open the core; every thread
        # switch pays again): not loaded for cores (docs/performance.md)
        cmd += ["-iex", NO_THREAD_DB, exe, "-c", opts.core]
    cmd += ["-ex", bootstrap]
    if opts.pid is not None:
        cmd += ["-ex", "detach"]
    return cmd


def _gdb_complaint(stderr, pid):
    """The line of gdb's stderr that best says why it could not start."""
    lines = [l.strip() for l in stderr.splitlines() if l.strip()]
    for l in lines:
        if pid is not None and (l.startswith("ptrace:") or "Could not attach" in l):
            return escape(l, 300)
    errors = [l for l in lines if not l.startswith("warning:")]
    # gdb's messages quote file names and strings of the core: escaped
    return escape((errors or lines or [""])[-1], 300)


def run_gdb(opts, exe, machine=None):
    """Run the analysis in gdb: (report bytes, exit status of its verdict);
    MACHINE, the core's ELF e_machine, picks the gdb (choose_gdb)."""
    gdb, note = choose_gdb(opts, machine)
    if note:
        sys.stderr.write("%s: %s\n" % (PROG, note))
    tmp = tempfile.mkdtemp(prefix="janus-gdb.")
    out_path = os.path.join(tmp, "report")
    status_path = os.path.join(tmp, "status.json")
    try:
        cmd = gdb_command(gdb, opts, exe, out_path, status_path)
        try:
            # gdb's host charset decides how non-ASCII names are printed
            # (gdbui/charset.py): it gets the user's locale, not Python's
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, universal_newlines=True,
                                    errors="replace", env=userlocale.child_env())
        except OSError as exc:
            raise CliError("cannot run gdb %s: %s" % (gdb, exc.strerror or exc))
        try:
            _, stderr = proc.communicate()
        except KeyboardInterrupt:
            # gdb got the SIGINT too: it stops the analysis and detaches
            try:
                proc.communicate(timeout=30)
            except (subprocess.TimeoutExpired, KeyboardInterrupt):
                proc.kill()
                proc.wait()
            raise CliError("interrupted")
        try:
            with open(status_path) as f:
                status = json.load(f)
        except (OSError, ValueError):
            why = _gdb_complaint(stderr, opts.pid)
            raise CliError("gdb failed (exit status %s)%s" % (proc.returncode,
                                                              ": " + why if why else ""))
        if not status.get("ok"):
            error = str(status.get("error") or "analysis failed").splitlines()[0]
            if error.startswith("No process or core file"):
                why = _gdb_complaint(stderr, opts.pid)
                what = ("attach to process %d" % opts.pid if opts.pid is not None
                        else "open core %s" % opts.core)
                error = "gdb could not %s%s" % (what, ": " + why if why else "")
            raise CliError(error)
        with open(out_path, "rb") as f:
            data = f.read()
        code = EXIT_OF_VERDICT.get(status.get("verdict"))
        if code is None:   # a status without a verdict: cycles decide
            code = EXIT_DEADLOCK if int(status.get("cycles") or 0) else EXIT_OK
        return data, code
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- main --------------------------------------------------------------------

def watch(argv):
    try:
        from . import watch as watch_mod
    except ImportError as exc:
        if getattr(exc, "name", None) in (__package__ + ".watch",):
            raise CliError("watch: not available in this installation "
                           "(janus_gdb/cli/watch.py is missing)")
        raise CliError("watch: cannot load %s.watch: %s" % (__package__, exc))
    return watch_mod.main(argv)


def analyse(opts):
    """Check the inputs, run the analysis; (report bytes, exit status)."""
    exe = None
    machine = None
    if opts.pid is not None:
        check_process(opts.pid)
    else:
        opts.core = _readable_file(opts.core, "core file")
        try:
            info = read_core(opts.core)
        except CoreFileError as exc:
            raise CliError(str(exc))
        machine = info.machine
        exe = (check_executable(opts.exe) if opts.exe is not None
               else find_executable(opts.core, info))
    if opts.lock_log is not None:
        opts.lock_log = _readable_file(opts.lock_log, "--lock-log file")
    if opts.output is not None:
        opts.output = check_output(opts.output)
    return run_gdb(opts, exe, machine)


def _write(data, path):
    if path is None or path == "-":
        out = sys.stdout.buffer
        out.write(data)
        out.flush()
        return
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as exc:
        raise CliError("cannot write --output %s: %s" % (path, exc.strerror or exc))


def main(argv=None):
    """Run the tool with ARGV (default sys.argv[1:]); returns the exit status."""
    # names from the target in the tool's own messages: raw non-ASCII only
    # for a UTF-8 locale (report/textsafe.py)
    old = set_utf8(userlocale.is_utf8())
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    finally:
        set_utf8(old)


def _main(argv):
    try:
        if argv and argv[0] == "lockorder":
            from . import lockorder
            return lockorder.main(argv[1:])
        if argv and argv[0] == "watch":
            code = watch(argv[1:])
            return 0 if code is None else code
        try:
            opts = parse_args(argv)
        except SystemExit as exc:  # --help, --version
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        report, code = analyse(opts)
        _write(report, opts.output)
        return code
    except CliError as exc:
        sys.stderr.write("%s: %s\n" % (PROG, str(exc).replace("\n", " ")))
        return EXIT_ERROR
    except BrokenPipeError:
        # the reader went away (`janus-gdb core | head`): not worth a message
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write("%s: interrupted\n" % PROG)
        return EXIT_ERROR
