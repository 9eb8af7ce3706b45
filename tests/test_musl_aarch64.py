"""musl on aarch64 (issue 13 point 4): tests/fixtures/musl_locks.c
cross-built against Debian's musl-dev:arm64 (``aarch64-linux-gnu-gcc -specs
/usr/lib/aarch64-linux-musl/musl-gcc.specs -static``), run under
qemu-aarch64, cores written by qemu itself (SIGQUIT to the main thread),
live through qemu's gdbstub, analysed with gdb-multiarch.  Compared with
the fixture's truth and with the x86_64 musl run of the same scenario.

On aarch64 gdb unwinds through musl's wait functions (their frames are
found without unwind tables), so the ABBA of two normal mutexes is a cycle
with inferred owners from the waiters' frames; on x86_64 the same cycle
comes from the callers found as return addresses on the stack.

Skips, saying why, without the cross compiler, musl-dev:arm64, qemu-user or
gdb-multiarch (scripts/install-prereqs --tests installs them).
"""

import os
import re
import shutil
import signal
import subprocess
import time

import pytest

import gdbrun
from test_aarch64 import _core_unlimited, _states, _tgkill, live_gdbstub_report, summary
from test_musl import analyse, musl_exe, runs  # noqa: F401 (fixtures)

SRC = os.path.join(gdbrun.FIXTURES, "musl_locks.c")
SPECS = "/usr/lib/aarch64-linux-musl/musl-gcc.specs"
COMPARED = ("abba", "owned", "rwlock", "cond", "healthy")


class MuslA64(object):
    """The cross-built static musl fixture, its qemu cores and analyses."""

    def __init__(self, build_dir):
        self.dir = os.path.join(build_dir, "musl_aarch64")
        os.makedirs(self.dir, exist_ok=True)
        self.exe = os.path.join(self.dir, "musl_locks")
        res = subprocess.run(["aarch64-linux-gnu-gcc", "-specs", SPECS, "-static", "-g", "-O2",
                              "-Wall", "-o", self.exe, SRC], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, universal_newlines=True)
        self.build_error = None if res.returncode == 0 else res.stdout[-500:]
        self.cores = {}

    def start(self, name, extra=()):
        return gdbrun.Scenario("qemu-aarch64", list(extra) + [self.exe, name], cwd=self.dir,
                               preexec_fn=_core_unlimited, timeout=60)

    def core(self, name, victim=None):
        """(qemu's guest core of the hung scenario, its truth); the dump
        signal goes to the main thread, or to the thread of role VICTIM."""
        if name not in self.cores:
            sc = self.start(name)
            time.sleep(0.5)
            before = set(os.listdir(self.dir))
            _tgkill(sc.pid, sc.truth.lwp(victim) if victim else sc.pid, signal.SIGQUIT)
            try:
                sc.proc.wait(timeout=60)
            finally:
                sc.kill()
            made = set(os.listdir(self.dir)) - before
            cores = [f for f in made if f.startswith("qemu_") and f.endswith(".core")]
            assert len(cores) == 1, (made, sc.proc.stderr.read())
            self.cores[name] = (os.path.join(self.dir, cores[0]), sc.truth)
        return self.cores[name]

    def gdb(self, commands, core=None):
        argv = gdbrun.gdb_argv(commands, exe=self.exe, core=core)
        argv[0] = "gdb-multiarch"
        res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=300)
        assert "Traceback" not in res.stdout + res.stderr, res.stdout + res.stderr
        return res

    def result(self, name):
        core, truth = self.core(name)
        res = self.gdb(["janus-waitgraph --format json"], core=core)
        return gdbrun.Result(gdbrun.extract_json(res.stdout)), truth

    def close(self):
        for path, _truth in self.cores.values():
            if os.path.exists(path):
                os.unlink(path)


@pytest.fixture(scope="module")
def ma64(build_dir):
    missing = [t for t in ("aarch64-linux-gnu-gcc", "qemu-aarch64", "gdb-multiarch")
               if shutil.which(t) is None]
    if missing:
        pytest.skip("aarch64 musl tests need %s (scripts/install-prereqs --tests installs "
                    "them)" % ", ".join(missing))
    if not os.path.exists(SPECS):
        pytest.skip("aarch64 musl tests need musl-dev:arm64 (dpkg --add-architecture arm64; "
                    "apt-get install musl-dev:arm64)")
    a = MuslA64(build_dir)
    if a.build_error:
        pytest.skip("cannot build a static aarch64 musl program here: %s" % a.build_error)
    yield a
    a.close()


def x86_result(runs, musl_exe, build_dir, name):  # noqa: F811
    sc, stdout = analyse(runs, musl_exe, build_dir, name, "core",
                         "janus-waitgraph --format json")
    return gdbrun.Result(gdbrun.extract_json(stdout)), sc.truth


@pytest.mark.parametrize("name", COMPARED)
def test_core_matches_x86_64_musl(ma64, runs, musl_exe, build_dir, name):  # noqa: F811
    r, truth = ma64.result(name)
    assert r.data["target"]["arch"] == "aarch64" and r.data["target"]["libc"] == "musl", \
        r.data["target"]
    x86, x86_truth = x86_result(runs, musl_exe, build_dir, name)
    got, want = summary(r, truth), summary(x86, x86_truth)
    assert got == want, (got, want, r.data["verdict"], x86.data["verdict"])
    # main took the dump signal (its call's x0 is gone): not compared
    assert _states(r, truth) == _states(x86, x86_truth), r.data["verdict"]
    # the waits are named alike (kind and rwlock path), by role
    roles = dict((lwp, role) for role, lwps in truth.threads.items() for lwp in lwps)
    x86_roles = dict((lwp, role) for role, lwps in x86_truth.threads.items() for lwp in lwps)

    def waits(res, rl):
        return sorted((rl[t["lwp"]], t["wait"]["kind"], t["wait"]["rwlock"])
                      for t in res.data["threads"] if t["lwp"] in rl and t["wait"]
                      and rl[t["lwp"]] != "main")
    assert waits(r, roles) == waits(x86, x86_roles)


def test_abba_is_a_cycle_on_aarch64(ma64):
    """gdb unwinds through musl's wait functions on aarch64: the waiters'
    frames show their lock calls, the source the locks they hold, so the
    ABBA through two normal mutexes is a deadlock with inferred owners
    (never exact: musl records none)."""
    r, t = ma64.result("abba")
    first, second = t.lwp("first"), t.lwp("second")
    assert r.cycle_lwp_sets() == [{first, second}], r.data["verdict"]
    assert r.data["verdict"].startswith("Found 1 deadlock"), r.data["verdict"]
    for lock, holder in (("lock_a", first), ("lock_b", second)):
        owner = r.locks[t.lock(lock)]["owner"]
        assert owner["lwp"] == holder and owner["evidence"] == "inferred", owner
    entries = dict((th["lwp"], th["entry"]) for th in r.data["threads"])
    assert entries[first] == "abba_first" and entries[second] == "abba_second", entries
    # the waiters' frames were unwound: not named as stuck in musl
    for w in r.data["warnings"]:
        if "cannot unwind past musl" in w:
            named = re.search(r"\(T[\d, T]+(?: and \d+ more)?\)", w).group(0)
            for lwp in (first, second):
                assert not re.search(r"\bT%d\b" % r.by_lwp[lwp]["num"], named), w


def test_join_on_aarch64(ma64):
    """main joins a sleeping thread: the joined thread from its struct
    pthread (self pointer 40 bytes before detach_state on aarch64); the
    dump signal goes to the sleeper, so main's registers are intact."""
    core, t = ma64.core("join", victim="sleeper")
    res = ma64.gdb(["janus-waitgraph --format json"], core=core)
    r = gdbrun.Result(gdbrun.extract_json(res.stdout))
    main = r.by_lwp[t.lwp("main")]
    assert main["state"] == "join" and main["wait"]["target_lwp"] == t.lwp("sleeper"), main


def test_printer_on_aarch64_musl_core(ma64):
    """The printer follows musl's layout on aarch64 too: a locked normal
    mutex is never 'free', a recursive one names its exact owner."""
    core, t = ma64.core("abba")
    res = ma64.gdb(["print lock_a"], core=core)
    line = res.stdout.split("$1 = ", 1)[1].splitlines()[0]
    assert "musl, normal" in line and "locked, contended" in line and "free" not in line, line
    core, t = ma64.core("owned")
    res = ma64.gdb(["print rec_lock"], core=core)
    line = res.stdout.split("$1 = ", 1)[1].splitlines()[0]
    assert "(LWP %d) [exact: musl _m_lock]" % t.lwp("owner") in line, line


def test_live_gdbstub_matches_core(ma64):
    """Live through qemu's gdbstub (-g PORT; stopped by SIGINT to qemu):
    the same locks, owners and waiters as qemu's core of the scenario."""
    name = "rwlock"
    r, truth, out = live_gdbstub_report(["qemu-aarch64"], ma64.exe, ma64.dir, name)
    assert r.data["target"]["kind"] == "live" and r.data["target"]["libc"] == "musl"
    core_r, core_truth = ma64.result(name)
    assert summary(r, truth) == summary(core_r, core_truth), (r.data["verdict"], out[-3000:])
    assert r.waiter_lwps(truth.lock("rw_w")) == {truth.lwp("rd_waiter"), truth.lwp("wr_waiter")}
