"""Test helpers: build C fixtures, run hung scenarios, take cores, drive real gdb.

Nothing here knows the expected answers: scenarios print their own ground
truth (thread roles with LWPs, lock addresses) and the tests compare the
analysis against it.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GDBINIT = os.path.join(ROOT, "gdbinit.py")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
HIDE_DEBUG = ["-iex", "set debug-file-directory /nonexistent"]
# An old Debian root (scripts/old-userland: gdb 10.1, Python 3.9, gcc 10,
# glibc 2.31, glib 2.66).  When set, fixtures are compiled and run, and gdb
# and gcore run, inside it (chroot), with the repository, /tmp and /proc
# mounted at their own paths (conftest.py), so every path stays the same.
TEST_ROOT = os.environ.get("JANUS_GDB_TEST_ROOT") or None


def in_root(argv, cwd=None):
    """ARGV as run in TEST_ROOT when there is one (in CWD there: chroot
    itself starts in /)."""
    argv = list(argv)
    if not TEST_ROOT:
        return argv
    if cwd:
        return ["chroot", TEST_ROOT, "sh", "-c", 'cd "$0" && exec "$@"', cwd] + argv
    return ["chroot", TEST_ROOT] + argv


def cli_argv(args, cwd=None):
    """The command line of `python3 -m janus_gdb ARGS`: this Python, or the
    test root's python3 there (janus_gdb found through PYTHONPATH or CWD)."""
    if TEST_ROOT:
        return in_root(["python3", "-m", "janus_gdb"] + list(args), cwd)
    import sys
    return [sys.executable, "-m", "janus_gdb"] + list(args)


def have(cmd):
    if TEST_ROOT:
        return subprocess.run(in_root(["sh", "-c", 'command -v "$0"', cmd]),
                              stdout=subprocess.DEVNULL).returncode == 0
    return shutil.which(cmd) is not None


def glib_flags():
    out = subprocess.run(in_root(["pkg-config", "--cflags", "--libs", "glib-2.0"]),
                         stdout=subprocess.PIPE, check=True, universal_newlines=True).stdout
    return out.split()


def compile_c(src, out, defines=(), strip=False):
    """Compile SRC with -g -O2 (and glib); a stripped copy when STRIP."""
    cmd = ["gcc", "-g", "-O2", "-Wall", "-pthread", "-o", out, src] + list(defines) + glib_flags()
    subprocess.run(in_root(cmd), check=True)
    if strip:
        stripped = out + ".stripped"
        subprocess.run(in_root(["strip", "--strip-all", "-o", stripped, out]), check=True)
        return stripped
    return out


def site_lines(src):
    """{marker name: line} from the /* SITE:name */ comments of fixture SRC."""
    sites = {}
    with open(src) as f:
        for num, line in enumerate(f, 1):
            m = re.search(r"/\* SITE:(\w+) \*/", line)
            if m:
                assert m.group(1) not in sites, "duplicate marker %s" % m.group(1)
                sites[m.group(1)] = num
    return sites


def compile_cxx(src, out, flags=()):
    """Compile the C++ fixture SRC with -g -O2 -std=c++17 (no glib) and FLAGS
    (a later -O0 wins)."""
    cmd = ["g++", "-g", "-O2", "-Wall", "-pthread", "-std=c++17", "-o", out, src] + list(flags)
    subprocess.run(in_root(cmd), check=True)
    return out


class Truth(object):
    """What a scenario says about itself: roles -> LWPs, lock names -> addresses."""

    def __init__(self):
        self.threads = {}
        self.locks = {}
        self.info = {}            # "info KEY VALUE..." lines: {KEY: [VALUE, ...]}
        self.expect_futex = 0
        self.facts = []     # other lines a fixture prints about itself, split

    def lwp(self, role):
        (lwp,) = self.threads[role]
        return lwp

    def lwps(self, role):
        return set(self.threads.get(role, []))

    def lock(self, name):
        return self.locks[name]


class Scenario(object):
    """A running fixture process in its hung state."""

    def __init__(self, exe, args, timeout=20, cwd=None, preexec_fn=None, env=None):
        self.exe = exe
        self.proc = subprocess.Popen(in_root([exe] + list(args), cwd), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, universal_newlines=True,
                                     start_new_session=True, cwd=cwd, preexec_fn=preexec_fn,
                                     env=env)
        self.pid = self.proc.pid
        self.truth = Truth()
        self._read_truth(timeout)
        self.wait_settled(timeout)

    def _read_truth(self, timeout):
        deadline = time.time() + timeout
        for line in self.proc.stdout:
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "thread":
                self.truth.threads.setdefault(parts[1], []).append(int(parts[2]))
            elif parts[0] == "lock":
                self.truth.locks[parts[1]] = int(parts[2], 16)
            elif parts[0] == "info" and len(parts) > 1:
                self.truth.info.setdefault(parts[1], parts[2:])
            elif parts[0] == "expect_futex":
                self.truth.expect_futex = int(parts[1])
            elif parts[0] == "ready":
                return
            else:
                self.truth.facts.append(parts)
            if time.time() > deadline:
                break
        self.kill()
        raise RuntimeError("scenario %s did not become ready" % self.exe)

    def futex_waiters(self):
        n = 0
        for tid in os.listdir("/proc/%d/task" % self.pid):
            try:
                with open("/proc/%d/task/%s/syscall" % (self.pid, tid)) as f:
                    if f.read().split(" ")[0] == "202":
                        n += 1
            except OSError:
                pass
        return n

    def wait_settled(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.futex_waiters() >= self.truth.expect_futex:
                time.sleep(0.2)
                return
            time.sleep(0.05)
        raise RuntimeError("scenario did not settle: %d of %d futex waiters"
                           % (self.futex_waiters(), self.truth.expect_futex))

    def syscall_state(self):
        """{tid: first fields of /proc/.../syscall} for checking the target is untouched."""
        state = {}
        for tid in os.listdir("/proc/%d/task" % self.pid):
            with open("/proc/%d/task/%s/syscall" % (self.pid, tid)) as f:
                state[int(tid)] = " ".join(f.read().split()[:4])
        return state

    def proc_state(self):
        with open("/proc/%d/stat" % self.pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]

    def gcore(self, path):
        """Write a core of the hung process (the process keeps running)."""
        out = subprocess.run(in_root(["gdb", "-nx", "-batch", "-p", str(self.pid), "-ex",
                                      "gcore %s" % path]), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
        if not os.path.exists(path):
            raise RuntimeError("gcore failed: %s" % out.stdout[-2000:])
        return path

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except OSError:
                pass
            self.proc.wait()


def close_fixtures(scenarios, cores):
    """Kill the running Scenarios and delete the core files of a fixture set."""
    for sc in scenarios:
        sc.kill()
    for path in cores:
        if os.path.exists(path):
            os.unlink(path)


def gdb(commands, pid=None, exe=None, core=None, hide_debug=False, load=True, timeout=300,
        extra=()):
    """Run gdb in batch with janus-gdb loaded; returns CompletedProcess."""
    cmd = gdb_argv(commands, pid, exe, core, hide_debug, load, extra)
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout)


def gdb_argv(commands, pid=None, exe=None, core=None, hide_debug=False, load=True, extra=()):
    """The command line of gdb() (batch, pagination off, janus-gdb loaded)."""
    cmd = ["gdb", "-nx", "-batch"]
    if hide_debug:
        cmd += HIDE_DEBUG
    cmd += ["-iex", "set pagination off", "-iex", "set width 0"]
    cmd += list(extra)
    if exe:
        cmd.append(exe)
    if core:
        cmd += ["-c", core]
    if pid:
        cmd += ["-p", str(pid)]
    if load:
        cmd += ["-x", GDBINIT]
    for c in commands:
        cmd += ["-ex", c]
    return in_root(cmd)


def source_line(fixture, needle):
    """Line number of the only line of tests/fixtures/FIXTURE containing NEEDLE."""
    with open(os.path.join(FIXTURES, fixture)) as f:
        hits = [i + 1 for i, line in enumerate(f) if needle in line]
    if len(hits) != 1:
        raise AssertionError("%r found %d times in %s" % (needle, len(hits), fixture))
    return hits[0]


def extract_json(stdout):
    """The JSON document a --format json command printed among gdb's chatter."""
    lines = stdout.splitlines()
    start = lines.index("{")
    end = len(lines) - 1 - lines[::-1].index("}")
    return json.loads("\n".join(lines[start:end + 1]))


def extract_report(stdout):
    """Text from the verdict line on (gdb's attach chatter comes before it)."""
    m = re.search(r"^(Found \d+ deadlocks?|No deadlock found|Undetermined:).*", stdout, re.M | re.S)
    return m.group(0) if m else None


class Result(object):
    """A parsed JSON report with lookups by LWP and lock address."""

    def __init__(self, data):
        self.data = data
        self.by_lwp = dict((t["lwp"], t) for t in data["threads"])
        self.by_num = dict((t["num"], t) for t in data["threads"])
        self.locks = dict((l["address"], l) for l in data["locks"])
        self.lock_ids = dict((l["id"], l) for l in data["locks"])

    def cycle_lwp_sets(self):
        return sorted((set(self.by_num[n]["lwp"] for n in c["threads"])
                       for c in self.data["cycles"]), key=min)

    def owner_lwp(self, addr):
        return self.locks[addr]["owner"]["lwp"]

    def waiter_lwps(self, addr):
        return set(self.by_num[n]["lwp"] for n in self.locks[addr]["waiters"])

    def state(self, lwp):
        return self.by_lwp[lwp]["state"]

    def behind(self, lwp):
        num = self.by_lwp[lwp]["num"]
        for b in self.data["blocked"]:
            if b["thread"] == num:
                return b["behind"]
        return None
