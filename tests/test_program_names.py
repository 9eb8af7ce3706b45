"""Program names of 15, 16, 17 and 40 characters (issue 11, point 8).

The core of a program records its name as the kernel keeps it: the kernel
writes its comm (the name cut at 15 characters), gdb's gcore the first 16
characters of argv[0] with no terminating NUL; the command line (pr_psargs)
may be cut too, and the mapped files (NT_FILE) name the executable in full.
Opening such a core with its own executable must not warn that it is
another program, for any name length, from gcore and from the kernel; a
core opened with another executable still warns, even when that one shares
the first 15 characters of its name.

The program is tests/fixtures/scenarios.c's binary copied under each name;
kernel cores come from `kill -ABRT` with RLIMIT_CORE raised and
/proc/sys/kernel/core_pattern as it is (skipped when it pipes cores
elsewhere or writes them outside the working directory).
"""

import os
import resource
import shutil
import signal
import sys

import pytest

import gdbrun

sys.path.insert(0, gdbrun.ROOT)
from janus_gdb.cli import main as cli
from janus_gdb.target.corefile import (comm_matches, names_in_full, program_matches, psargs_matches,
                                read_core, CoreInfo)

LONG = "scenarios_with_a_long_program_name_for_core_tests"
LENGTHS = [15, 16, 17, 40]
MODES = ["gcore", "kernel"]
WARNING = "is not the program the core was made from"


def name_of(length):
    assert len(LONG) >= length
    return LONG[:length]


def kernel_core_problem():
    """None when a SIGABRT'd process leaves a core in its working directory."""
    try:
        with open("/proc/sys/kernel/core_pattern") as f:
            pattern = f.read().strip()
    except OSError as exc:
        return "cannot read /proc/sys/kernel/core_pattern: %s" % exc
    if pattern.startswith("|"):
        return "kernel cores are piped to %r (core_pattern), not written here" % pattern
    if "/" in pattern:
        return "kernel cores are written to %r (core_pattern), not the working directory" % pattern
    if resource.getrlimit(resource.RLIMIT_CORE)[1] == 0:
        return "the hard limit of core file sizes (RLIMIT_CORE) is 0 here"
    return None


def raise_core_limit():
    """RLIMIT_CORE up to its hard limit (0 there: no kernel core, skipped)."""
    hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))


class Named(object):
    """scenarios.c's binary copied as NAME, hung in pthread_cycle; its gcore
    core and (when possible) the kernel's core of it."""

    def __init__(self, binaries, build_dir, name):
        self.dir = os.path.join(build_dir, "named-%d" % len(name))
        os.makedirs(self.dir)
        self.exe = os.path.join(self.dir, name)
        shutil.copy(binaries.debug, self.exe)
        self.cores = {}
        self.problems = {}
        sc = gdbrun.Scenario(self.exe, ["pthread_cycle"], cwd=self.dir,
                             preexec_fn=raise_core_limit)
        self.truth = sc.truth
        try:
            self.cores["gcore"] = sc.gcore(os.path.join(self.dir, "gcore.core"))
            problem = kernel_core_problem()
            if problem is None:
                before = set(os.listdir(self.dir))
                os.kill(sc.pid, signal.SIGABRT)
                sc.proc.wait(timeout=60)
                # the process exits only once its core is written
                new = [f for f in set(os.listdir(self.dir)) - before if f.startswith("core")]
                if new:
                    self.cores["kernel"] = os.path.join(self.dir, sorted(new)[0])
                else:
                    with open("/proc/sys/kernel/core_pattern") as f:
                        pattern = f.read().strip()
                    problem = ("no core appeared in %s after SIGABRT (core_pattern %r, "
                               "RLIMIT_CORE hard limit %s)" % (
                                   self.dir, pattern,
                                   resource.getrlimit(resource.RLIMIT_CORE)[1]))
            if problem:
                self.problems["kernel"] = problem
        finally:
            sc.kill()

    def core(self, mode):
        if mode not in self.cores:
            pytest.skip(self.problems.get(mode, "no %s core" % mode))
        return self.cores[mode]

    def close(self):
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def named(binaries, build_dir):
    made = {}

    def get(length):
        if length not in made:
            made[length] = Named(binaries, build_dir, name_of(length))
        return made[length]
    yield get
    for n in made.values():
        n.close()


def waitgraph(exe, core):
    res = gdbrun.gdb(["janus-waitgraph"], exe=exe, core=core, timeout=120)
    both = res.stdout + res.stderr
    assert "Traceback" not in both and "Python Exception" not in both, both
    report = gdbrun.extract_report(res.stdout)
    assert report is not None, both
    return res.stdout, report


# ---------------------------------------------------------------------------
# what the cores record (the premise of the check)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("length", LENGTHS)
def test_core_records_the_name_as_cut(named, length, mode):
    """The kernel keeps 15 characters of the name, gcore 16 (no NUL): a
    name of 16+ characters is never recorded in full in pr_fname."""
    n = named(length)
    info = read_core(n.core(mode))
    name = os.path.basename(n.exe)
    assert info.fname and name.startswith(info.fname), (info.fname, name)
    assert len(info.fname) == min(length, 15 if mode == "kernel" else 16), info.fname
    assert n.exe in info.files
    assert comm_matches(info.fname, name)
    assert program_matches(info, n.exe) is True
    # the command-line tool finds the executable from the core alone
    assert cli.find_executable(n.core(mode), info) == n.exe


# ---------------------------------------------------------------------------
# the right executable: no warning, the analysis as usual
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("length", LENGTHS)
def test_own_executable_is_not_called_another_program(named, length, mode):
    n = named(length)
    out, report = waitgraph(n.exe, n.core(mode))
    assert WARNING not in out, out
    assert report.startswith("Found 1 deadlock (2 threads)"), report
    for role in ("cycle_a", "cycle_b"):
        assert "(LWP %d)" % n.truth.lwp(role) in report, (role, report)


# ---------------------------------------------------------------------------
# another executable: still warned
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_other_executable_with_the_same_15_characters_is_warned(named, binaries, mode):
    """The 16-character program's core opened with a program whose name
    differs only in its 16th character: the kernel's 15-character name fits
    both, the mapped files tell them apart."""
    n = named(16)
    core = n.core(mode)
    other = os.path.join(os.path.dirname(n.dir), "other-16")
    if not os.path.isdir(other):
        os.makedirs(other)
    exe = os.path.join(other, name_of(15) + "Z")
    assert exe != n.exe and os.path.basename(exe)[:15] == os.path.basename(n.exe)[:15]
    shutil.copy(binaries.debug, exe)
    out, _report = waitgraph(exe, core)
    assert "warning: the executable %s %s" % (os.path.basename(exe), WARNING) in out, out


def test_other_executable_with_a_short_name_is_warned(named, binaries):
    """The 40-character program's gcore core opened with scenarios.c's own binary."""
    n = named(40)
    out, _report = waitgraph(binaries.debug, n.core("gcore"))
    assert "warning: the executable %s %s" % (os.path.basename(binaries.debug), WARNING) in out
    assert os.path.basename(n.exe)[:16] in out   # the program the core names


# ---------------------------------------------------------------------------
# the comparison itself (pure)
# ---------------------------------------------------------------------------

def info_of(fname=None, psargs=None, files=()):
    info = CoreInfo()
    info.fname, info.psargs, info.files = fname, psargs, list(files)
    return info


def test_comparison_rules():
    name = "a_forty_character_program_name_xxxxxxxxx"
    exe = "/opt/x/" + name
    # kernel (15) and gcore (16, no NUL) command names
    assert comm_matches(name[:15], name) and comm_matches(name[:16], name)
    assert not comm_matches(name[:14], name)          # a short name is the whole name
    assert not comm_matches("janus", "janus2") and comm_matches("janus", "janus")
    # the command line: full, relative, cut inside argv[0]
    assert psargs_matches("./" + name + " -c conf", exe)
    cut = ("/very/long/directory/" * 4 + name)[:79]
    assert psargs_matches(cut, "/very/long/directory/" * 4 + name)
    assert not psargs_matches("/usr/bin/sleep 100", exe)
    # the mapped files decide when present: a name cut at 15 fits another program
    assert program_matches(info_of(name[:15], None, ["/lib/libc.so.6", exe]), exe) is True
    assert program_matches(info_of(name[:15], None, ["/lib/libc.so.6", exe]),
                           "/opt/x/" + name[:15] + "Z") is False
    assert program_matches(info_of(name[:15]), "/opt/x/" + name[:15] + "Z") is True
    assert program_matches(info_of(name[:15] + "Z"[:0], name), exe) is True
    # the program renamed its main thread (prctl): the command line still fits
    assert program_matches(info_of("worker-main", exe + " --flag"), exe) is True
    assert program_matches(info_of("sleep", "sleep 100"), exe) is False
    assert program_matches(info_of(), exe) is None
    # (deleted) executables, by base name from another directory
    assert program_matches(info_of(None, None, [exe + " (deleted)"]), "/copy/" + name) is True
    assert names_in_full(info_of("janus"), "/usr/bin/janus")
    assert not names_in_full(info_of(name[:16]), exe)
    assert names_in_full(info_of(name[:16], exe), exe)


# ---------------------------------------------------------------------------
# the notes reader on made-up cores (pure)
# ---------------------------------------------------------------------------

def _note(name, ntype, desc):
    import struct
    pad = lambda b: b + b"\0" * (-len(b) % 4)  # noqa: E731
    return struct.pack("<III", len(name), len(desc), ntype) + pad(name) + pad(desc)


def _core_bytes(notes):
    import struct
    ehdr = b"\x7fELF" + bytes([2, 1, 1]) + b"\0" * 9
    ehdr += struct.pack("<HHIQQQIHHHHHH", 4, 62, 1, 0, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 4, 0, 120, 0, 0, len(notes), len(notes), 4)
    return ehdr + phdr + notes


def _prpsinfo(fname, psargs):
    return b"\0" * 40 + fname.ljust(16, b"\0")[:16] + psargs.ljust(80, b"\0")[:80] + b"\0" * 8


def _file_note(paths):
    import struct
    desc = struct.pack("<QQ", len(paths), 4096)
    for i in range(len(paths)):
        desc += struct.pack("<QQQ", 0x1000 * (len(paths) - i), 0x1000 * (len(paths) - i) + 4096, 0)
    return desc + b"\0".join(p.encode() for p in paths) + b"\0"


def test_notes_reader_on_made_up_cores(tmp_path):
    name = b"a_program_name_of_40_characters_xxxxxxxx"
    thread_notes = b"".join(_note(b"CORE", 1, b"\0" * 336) + _note(b"LINUX", 0x202, b"\0" * 2696)
                            for _ in range(200))
    notes = (_note(b"CORE", 3, _prpsinfo(name, b"/opt/" + name + b" -x"))
             + thread_notes + _note(b"CORE", 0x46494c45, _file_note(["/lib/libc.so.6",
                                                                   "/opt/" + name.decode()])))
    path = str(tmp_path / "made.core")
    with open(path, "wb") as f:
        f.write(_core_bytes(notes))
    info = read_core(path)
    assert info.fname == name[:16].decode()            # 16 bytes, no NUL: all kept
    assert info.psargs == "/opt/%s -x" % name.decode()
    assert info.files == ["/opt/" + name.decode(), "/lib/libc.so.6"]   # by address
    bounded = read_core(path, 4096)
    assert bounded.fname == info.fname and bounded.files == []
    # a garbage note size stops the reading, the command name stays
    broken = (_note(b"CORE", 3, _prpsinfo(name, b"x")) + b"\xff" * 12 + b"\0" * 64)
    with open(path, "wb") as f:
        f.write(_core_bytes(broken))
    info = read_core(path)
    assert info.fname == name[:16].decode() and info.files == []
