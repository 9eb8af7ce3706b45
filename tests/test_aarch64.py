"""aarch64 targets (issue 13 point 3): the scenario fixtures cross-built with
aarch64-linux-gnu-gcc, run under qemu-aarch64, their cores written by qemu
itself (SIGQUIT to the main thread with tgkill) and analysed with
gdb-multiarch; live through qemu's gdbstub.  Each analysis is compared with
the fixture's own truth and with the x86_64 run of the same fixture:
verdict kind, cycles, owners and waiters (by role: the LWPs differ).

Skips, saying why, when the cross toolchain, qemu-user, gdb-multiarch or
arm64 glib is missing (scripts/install-prereqs --tests installs them).
"""

import ctypes
import os
import resource
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

import gdbrun

SRC = os.path.join(gdbrun.FIXTURES, "scenarios.c")
# a pthread ABBA cycle, a GMutex pile-up behind a holder, a lock whose owner
# exited (leaked by a dead thread), a healthy process
SCENARIOS = ("pthread_cycle", "gmutex_pileup", "dead_owner", "healthy")
CROSS_LIBC = "/usr/aarch64-linux-gnu"
# a native arm64 libc (libc6:arm64, pulled in by libglib2.0-dev:arm64): qemu
# runs the program with it and gdb finds the libraries at their own paths
NATIVE_LOADER = "/lib/ld-linux-aarch64.so.1"
SYS_TGKILL = 234     # x86_64 host


def _arm64_glib():
    env = dict(os.environ, PKG_CONFIG_LIBDIR="/usr/lib/aarch64-linux-gnu/pkgconfig:"
               "/usr/share/pkgconfig", PKG_CONFIG_PATH="")
    out = subprocess.run(["pkg-config", "--cflags", "--libs", "glib-2.0"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    return out.stdout.split() if out.returncode == 0 else None


def _core_unlimited():
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def _tgkill(pid, tid, sig):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(SYS_TGKILL, pid, tid, sig) != 0:
        raise OSError(ctypes.get_errno(), "tgkill")


class Aarch64(object):
    """The cross-built fixture, its qemu runs, cores and analyses."""

    def __init__(self, build_dir):
        self.dir = os.path.join(build_dir, "aarch64")
        os.makedirs(self.dir, exist_ok=True)
        self.exe = os.path.join(self.dir, "scenarios")
        flags = _arm64_glib()
        t0 = time.time()
        subprocess.run(["aarch64-linux-gnu-gcc", "-g", "-O2", "-Wall", "-pthread", "-no-pie",
                        "-o", self.exe, SRC, "-L/usr/lib/aarch64-linux-gnu"] + flags, check=True)
        self.build_seconds = time.time() - t0
        self.stripped = self.exe + ".stripped"
        subprocess.run(["aarch64-linux-gnu-strip", "--strip-all", "-o", self.stripped, self.exe],
                       check=True)
        native = os.path.exists(NATIVE_LOADER)
        self.qemu = ["qemu-aarch64"] + ([] if native else ["-L", CROSS_LIBC])
        self.gdb_extra = [] if native else ["-iex", "set sysroot %s" % CROSS_LIBC]
        self.cores = {}
        self.truths = {}
        self.live = []

    def start(self, name, extra=()):
        return gdbrun.Scenario(self.qemu[0], self.qemu[1:] + list(extra) + [self.exe, name],
                               cwd=self.dir, preexec_fn=_core_unlimited, timeout=60)

    def core(self, name):
        """(qemu's guest core of the hung scenario, its truth)."""
        if name not in self.cores:
            sc = self.start(name)
            time.sleep(0.5)
            before = set(os.listdir(self.dir))
            # SIGQUIT, not SIGABRT: qemu dumps the guest, then dies without a
            # core of its own; main (in pause or a join) takes the signal
            _tgkill(sc.pid, sc.pid, signal.SIGQUIT)
            try:
                sc.proc.wait(timeout=60)
            finally:
                sc.kill()
            made = [f for f in set(os.listdir(self.dir)) - before]
            cores = [f for f in made if f.startswith("qemu_") and f.endswith(".core")]
            for f in made:     # a core of qemu itself, should a qemu write one
                if f not in cores and f.startswith("core"):
                    os.unlink(os.path.join(self.dir, f))
            assert len(cores) == 1, (made, sc.proc.stderr.read())
            self.cores[name] = os.path.join(self.dir, cores[0])
            self.truths[name] = sc.truth
        return self.cores[name], self.truths[name]

    def gdb(self, commands, core=None, extra=(), timeout=300, exe=None):
        argv = gdbrun.gdb_argv(commands, exe=exe or self.exe, core=core,
                               extra=self.gdb_extra + list(extra))
        argv[0] = "gdb-multiarch"
        res = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             universal_newlines=True, timeout=timeout)
        assert "Traceback" not in res.stdout + res.stderr, res.stdout + res.stderr
        return res

    def result(self, name):
        core, truth = self.core(name)
        res = self.gdb(["janus-waitgraph --format json"], core=core)
        return gdbrun.Result(gdbrun.extract_json(res.stdout)), truth

    def close(self):
        for sc in self.live:
            sc.kill()
        for path in self.cores.values():
            if os.path.exists(path):
                os.unlink(path)


@pytest.fixture(scope="module")
def a64(build_dir):
    missing = [t for t in ("aarch64-linux-gnu-gcc", "qemu-aarch64", "gdb-multiarch")
               if shutil.which(t) is None]
    if missing:
        pytest.skip("aarch64 tests need %s (scripts/install-prereqs --tests installs them)"
                    % ", ".join(missing))
    if _arm64_glib() is None:
        pytest.skip("aarch64 tests need arm64 glib (dpkg --add-architecture arm64; "
                    "apt-get install libglib2.0-dev:arm64)")
    if not os.path.exists(NATIVE_LOADER) and not os.path.isdir(CROSS_LIBC):
        pytest.skip("no arm64 C library to run the fixtures under qemu")
    a = Aarch64(build_dir)
    yield a
    a.close()


# --- comparing with the truth and with x86_64 -----------------------------

# healthy's lock that three threads keep taking: its state is a matter of timing
BUSY = ("busy_m",)


def _roles(truth):
    return dict((lwp, role) for role, lwps in truth.threads.items() for lwp in lwps)


def _role_of(r, roles, num):
    return roles.get(r.by_num[num]["lwp"], "?") if num is not None else None


def summary(r, truth):
    """What must agree between architectures, in roles and lock names."""
    roles = _roles(truth)
    locks = {}
    for lname, addr in truth.locks.items():
        lock = r.locks.get(addr)
        if lname in BUSY:
            continue
        if lock is None:
            continue
        owner = lock["owner"]
        locks[lname] = (roles.get(owner["lwp"], "?") if owner.get("lwp") else None,
                        owner.get("evidence"), lock["state"], lock.get("leaked"),
                        sorted(_role_of(r, roles, n) for n in lock["waiters"]))
    cycles = sorted(sorted(_role_of(r, roles, n) for n in c["threads"])
                    for c in r.data["cycles"])
    return {"verdict_kind": r.data["verdict_kind"], "locks": locks, "cycles": cycles}


def _states(r, truth, skip=("main", "contender")):
    roles = _roles(truth)
    out = {}
    for t in r.data["threads"]:
        role = roles.get(t["lwp"])
        if role is not None and role not in skip:
            out.setdefault(role, []).append(t["state"])
    return dict((k, sorted(v)) for k, v in out.items())


@pytest.mark.parametrize("name", SCENARIOS)
def test_core_matches_x86_64(a64, scenarios, name):
    r, truth = a64.result(name)
    assert r.data["target"]["arch"] == "aarch64", r.data["target"]
    x86, x86_truth = scenarios.result(name, "core")
    got, want = summary(r, truth), summary(x86, x86_truth)
    assert got == want, (got, want, r.data["verdict"], x86.data["verdict"])
    assert _states(r, truth) == _states(x86, x86_truth), r.data["verdict"]
    # every thread but the one the dump signal interrupted has a known state
    unknown = [t for t in r.data["threads"] if t["state"] == "unknown"]
    assert all(t["lwp"] == truth.lwp("main") for t in unknown), unknown


def test_pthread_cycle_core_against_truth(a64):
    r, t = a64.result("pthread_cycle")
    assert r.cycle_lwp_sets() == [{t.lwp("cycle_a"), t.lwp("cycle_b")}]
    assert r.owner_lwp(t.lock("m1")) == t.lwp("cycle_a")
    assert r.owner_lwp(t.lock("m2")) == t.lwp("cycle_b")
    assert t.lwps("waiter") <= r.waiter_lwps(t.lock("m1"))
    assert r.data["verdict"].startswith("Found 1 deadlock"), r.data["verdict"]
    # main took the signal inside pthread_join: x0 = -4, its futex address is gone
    main = r.by_lwp[t.lwp("main")]
    assert main["state"] == "unknown" and "EINTR" in main["detail"], main


def test_healthy_queues_core_against_truth(a64):
    """aarch64 (LP64: glib's GAsyncQueue has the x86_64 layout): which queue
    the idle threads wait on, as on x86_64 (test_engine.check_idle_queues)."""
    from test_engine import check_idle_queues
    r, t = a64.result("healthy")
    # (on this cross-built core no frame gave the pointer when checked: the
    # futex word and the queue's words do; either is evidence)
    check_idle_queues(r, t, evidence=("frame", "futex"))


def test_gmutex_pileup_core_against_truth(a64):
    r, t = a64.result("gmutex_pileup")
    gm = t.lock("gm")
    assert r.waiter_lwps(gm) == t.lwps("waiter")
    assert r.locks[gm]["owner"]["lwp"] == t.lwp("holder"), r.locks[gm]
    assert r.locks[gm]["owner"]["evidence"] == "inferred", r.locks[gm]
    assert r.data["verdict_kind"] == "hang", r.data["verdict"]


def test_stripped_gmutex_owner_is_unknown_never_leaked(a64):
    """Without line info the holder's frames would be read as machine code,
    which janus-gdb decodes on x86_64 only: on aarch64 they are counted as
    not analysed, so the owner stays unknown (undetermined), never leaked."""
    core, t = a64.core("gmutex_pileup")
    res = a64.gdb(["janus-waitgraph --format json"], core=core, exe=a64.stripped,
                  extra=gdbrun.HIDE_DEBUG)
    r = gdbrun.Result(gdbrun.extract_json(res.stdout))
    lock = r.locks[t.lock("gm")]
    assert r.waiter_lwps(t.lock("gm")) == t.lwps("waiter")
    assert lock["owner"]["evidence"] == "unknown" and not lock["leaked"], lock
    assert t.lwp("holder") in set(r.by_num[n]["lwp"] for n in lock["possible_owners"]), lock
    assert r.data["verdict_kind"] == "undetermined", r.data["verdict"]
    assert any("aarch64" in w and "not analysed" in w for w in r.data["warnings"]), \
        r.data["warnings"]


def test_printers_count_waiters_on_aarch64(a64):
    """The pretty-printers read the aarch64 registers too; main, whose
    futex address the dump signal clobbered, makes the count incomplete."""
    core, t = a64.core("pthread_cycle")
    res = a64.gdb(["print m1", "print m2"], core=core)
    lines = [l for l in res.stdout.splitlines() if l.startswith("$")]
    assert len(lines) == 2, res.stdout + res.stderr
    m1, m2 = lines
    assert "owner Thread" in m1 and "(LWP %d)" % t.lwp("cycle_a") in m1, m1
    assert "(LWP %d)" % t.lwp("cycle_b") in m2 and "1 waiter " in m2, m2
    assert "%d waiters" % (len(t.lwps("waiter")) + 1) in m1, m1
    assert all("(not every thread read)" in l for l in lines), lines


def test_text_report_and_cli_pick_gdb_multiarch(a64):
    core, t = a64.core("dead_owner")
    env = dict(os.environ, PYTHONPATH=gdbrun.ROOT)
    out = subprocess.run(["python3", "-m", "janus_gdb", core, "--exe", a64.exe],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, env=env, timeout=300)
    assert "using gdb-multiarch" in out.stderr and "aarch64" in out.stderr, out.stderr
    assert out.returncode == 3, (out.returncode, out.stdout, out.stderr)
    assert "no longer exists" in out.stdout.splitlines()[0], out.stdout


def test_cli_without_gdb_multiarch_says_to_install_it(a64, tmp_path):
    core, t = a64.core("healthy")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(shutil.which("gdb"), str(bindir / "gdb"))
    env = dict(os.environ, PYTHONPATH=gdbrun.ROOT, PATH=str(bindir))
    out = subprocess.run([shutil.which("python3"), "-m", "janus_gdb", core, "--exe", a64.exe],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, env=env, timeout=120)
    probe = subprocess.run(["gdb", "-nx", "-batch", "-ex", "set architecture aarch64"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True)
    if probe.returncode == 0 and "Undefined" not in probe.stdout:
        pytest.skip("this machine's gdb reads aarch64 itself")
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "install gdb-multiarch" in lines[0], out.stderr


def test_plain_gdb_verdict_is_never_no_deadlock(a64):
    """An analysis that cannot decode the registers (forced here by hiding
    the architecture's table) must not say "No deadlock found"."""
    core, t = a64.core("pthread_cycle")
    res = a64.gdb(["python import janus_gdb.target.syscalls as s; "
                   "s.ARCH_REGISTERS.pop('aarch64')",
                   "janus-waitgraph --format json"], core=core)
    r = gdbrun.Result(gdbrun.extract_json(res.stdout))
    assert r.data["verdict_kind"] == "undetermined", r.data["verdict"]
    assert r.data["verdict"].startswith("Undetermined: no thread's state could be read"), \
        r.data["verdict"]


# --- live, through qemu's gdbstub --------------------------------------------

def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def live_gdbstub_report(qemu, exe, workdir, name, gdb_extra=()):
    """Run fixture EXE's scenario NAME under qemu-aarch64 -g PORT (QEMU: the
    qemu command line), attach gdb-multiarch with janus-gdb, let it run until
    the fixture has settled, stop it with a SIGINT to qemu's main thread
    (gdb's own interrupt does not reach qemu-user: the call it interrupts
    loses x0, EINTR) and run janus-waitgraph --format json.  Returns
    (gdbrun.Result, the fixture's truth, gdb's output)."""
    port = _free_port()
    proc = subprocess.Popen(list(qemu) + ["-g", str(port), exe, name], cwd=workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, start_new_session=True)
    gdbp = None
    try:
        cmd = ["gdb-multiarch", "-nx", "-q"] + list(gdb_extra) + [
            "-iex", "set pagination off", "-iex", "set width 0", "-iex", "set confirm off",
            exe, "-x", gdbrun.GDBINIT]
        gdbp = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, universal_newlines=True)
        gdbp.stdin.write("target remote 127.0.0.1:%d\ncontinue &\n" % port)
        gdbp.stdin.flush()
        sc = gdbrun.Scenario.__new__(gdbrun.Scenario)
        sc.proc, sc.pid, sc.exe = proc, proc.pid, "qemu"
        sc.truth = gdbrun.Truth()
        sc._read_truth(60)
        sc.wait_settled(60)      # qemu's threads sit in futex(2) for the guest's
        time.sleep(0.5)
        chunks = []
        stopped = threading.Event()

        def reader():
            for line in gdbp.stdout:
                chunks.append(line)
                if "SIGINT" in line:
                    stopped.set()
            stopped.set()
        th = threading.Thread(target=reader, daemon=True)
        th.start()
        _tgkill(proc.pid, proc.pid, signal.SIGINT)
        assert stopped.wait(60), "".join(chunks)
        time.sleep(0.3)
        gdbp.stdin.write("janus-waitgraph --format json\nkill\nquit\n")
        gdbp.stdin.flush()
        gdbp.wait(timeout=300)
        th.join(60)
        out = "".join(chunks)
        assert "Traceback" not in out, out
        return gdbrun.Result(gdbrun.extract_json(out)), sc.truth, out
    finally:
        if gdbp is not None and gdbp.poll() is None:
            gdbp.kill()
            gdbp.wait()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.mark.parametrize("name", ("pthread_cycle", "gmutex_pileup"))
def test_live_gdbstub_matches_core(a64, name):
    """qemu-aarch64 -g PORT waits for gdb before the program starts: gdb
    continues it in the background, and a SIGINT to qemu's main thread
    stops it (main's state is not compared)."""
    r, truth, out = live_gdbstub_report(a64.qemu, a64.exe, a64.dir, name, a64.gdb_extra)
    core_r, core_truth = a64.result(name)
    got, want = summary(r, truth), summary(core_r, core_truth)
    assert got == want, (got, want, r.data["verdict"], out[-3000:])
    assert r.data["target"]["kind"] == "live", r.data["target"]
