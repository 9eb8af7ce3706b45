"""musl targets (issue 13 point 4), x86_64: musl's pthread_mutex_t layout
(_m_type at +0, _m_lock at +4 = the futex word, _m_waiters at +8), futex
waits read from the registers (gdb cannot unwind through musl's wait
functions), exact owners for recursive/errorcheck mutexes (the TID in
_m_lock), none recorded for normal ones, and the pretty-printer.

The fixture (tests/fixtures/musl_locks.c) is built with ``musl-gcc
-static -g`` and prints its own truth; each scenario is analysed live and
on a gcore core, text and JSON.  Unit tests of the pure decoding first.
"""

import json
import os
import re
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gdbrun  # noqa: E402
from janus_gdb.analysis import analyze, classify  # noqa: E402
from janus_gdb.target import layouts  # noqa: E402
from janus_gdb.model import FrameInfo, Snapshot, StackCall  # noqa: E402
from test_logic import FakeMemory  # noqa: E402

ARCH = "i386:x86-64"
FUTEX = 202
FUTEX_WAIT_PRIVATE = 128
BIT31 = 0x80000000


# ---------------------------------------------------------------------------
# Pure decoding
# ---------------------------------------------------------------------------

def musl_mutex(mem, base, mtype, word, waiters=0, count=0):
    for off in range(0, 40, 4):
        mem.put32(base + off, 0)
    mem.put32(base, mtype)
    mem.put32(base + 4, word)
    mem.put32(base + 8, waiters)
    mem.put32(base + 20, count)


@pytest.mark.parametrize("mtype, word, state, owner", [
    (0, 0, "free", None),
    (0, 16, "locked", None),                          # normal: EBUSY, no owner
    (0, 16 | BIT31, "locked, contended", None),
    (128, 16 | BIT31, "locked, contended", None),     # process-shared normal: still EBUSY
    (1, 4242, "locked", 4242),                        # recursive: owner TID
    (2, 4242 | BIT31, "locked, contended", 4242),     # errorcheck
    (4, 4242 | 0x40000000, "locked, owner died", 4242),   # robust
    (4, 0x3FFFFFFF, "not recoverable (robust, its owner died)", None),
    (0, 5, "corrupt", None),                          # normal mutex with a TID: not musl's
    (0x400, 16, "corrupt", None),                     # no such _m_type bit
    (1, 0x3FFFFFF0, "corrupt", None),                 # no thread id
])
def test_decode_musl_mutex(mtype, word, state, owner):
    mem = FakeMemory()
    musl_mutex(mem, 0x9000, mtype, word, waiters=1)
    d = layouts.decode_musl_mutex(mem, 0x9000)
    assert d["state"] == state
    assert d["owner"] == owner
    assert d["libc"] == "musl"


def test_glibc_decoder_calls_a_locked_musl_mutex_free():
    """Why the layout must follow the libc: glibc's decoder reads musl's
    _m_type (0) as the lock word."""
    mem = FakeMemory()
    musl_mutex(mem, 0x9000, 0, 16 | BIT31, waiters=1)
    assert layouts.decode_pthread_mutex(mem, 0x9000)["state"] == "free"
    assert layouts.decode_musl_mutex(mem, 0x9000)["state"] == "locked, contended"


MUSL_FRAMES = [FrameInfo(0, 0x405de9, "__syscall_cp_c", None, None, None, True),
               FrameInfo(1, 0x405eb9, "__timedwait_cp", None, None, None, True),
               FrameInfo(2, 0, None, None, None, None, False)]


# return addresses a stack scan finds above a static musl wait (stackwords)
MUTEX_CALLS = [StackCall(0x7ff0e48, 0x405fce, "__timedwait", "__timedwait_cp"),
               StackCall(0x7ff0e88, 0x402ae1, "pthread_mutex_timedlock", "__timedwait"),
               StackCall(0x7ff0ec8, 0x401761, "abba_first", "pthread_mutex_lock",
                         "musl_locks.c", 65)]


def waiter(num, lwp, futex, val, frames=MUSL_FRAMES, calls=MUTEX_CALLS, sp=None):
    regs = {"sysno": FUTEX, "args": (futex, FUTEX_WAIT_PRIVATE, val)}
    if sp is not None:
        regs["sp"] = sp
    snap = Snapshot(num, lwp, regs=regs, frames=list(frames))
    snap.stack_calls = list(calls)
    return snap


def test_musl_wait_is_placed_on_the_mutex_with_exact_owner():
    mem = FakeMemory()
    musl_mutex(mem, 0x9000, 1, 101 | BIT31, waiters=1)
    snaps = [Snapshot(1, 101, regs={"sysno": 230}, frames=[]),
             waiter(2, 102, 0x9004, 101 | BIT31)]
    rep = analyze.build_report(snaps, ARCH, mem, {"kind": "core", "libc": "musl"}, [])
    t = rep.thread(2)
    assert t.state == "lock-wait" and t.wait.lock_addr == 0x9000
    assert "cannot unwind past musl's __timedwait_cp" in t.wait.how
    (lock,) = rep.locks
    assert lock.addr == 0x9000 and lock.evidence == "exact" and lock.owner_num == 1
    assert any("cannot unwind past musl" in w for w in rep.warnings)
    # the same registers on a glibc target: not a mutex, no owner claimed
    rep = analyze.build_report(snaps, ARCH, mem, {"kind": "core"}, [])
    assert all(l.evidence != "exact" for l in rep.locks)


def test_musl_normal_mutex_owner_is_never_exact():
    mem = FakeMemory()
    musl_mutex(mem, 0x9000, 0, 16 | BIT31, waiters=1)
    snaps = [Snapshot(1, 101, regs={"sysno": 230}, frames=[]),
             waiter(2, 102, 0x9004, 16 | BIT31)]
    rep = analyze.build_report(snaps, ARCH, mem, {"kind": "core", "libc": "musl"}, [])
    (lock,) = rep.locks
    assert lock.state == "locked, contended" and lock.evidence != "exact"
    assert lock.owner_num is None
    assert rep.target["owners"] == "inferred"
    t = rep.thread(2)
    assert "under pthread_mutex_lock (a return address into pthread_mutex_timedlock" in t.wait.how
    assert "called from abba_first (musl_locks.c:65) by the return address 0x401761" in t.wait.how


def test_musl_mutex_or_rwlock_undecided_without_a_call():
    """EBUSY | bit 31 at +4 of a zeroed normal mutex also reads as a rwlock
    with 16 readers and a writer waiting: with no frame and no return
    address naming the call, no lock is claimed."""
    mem = FakeMemory()
    musl_mutex(mem, 0x9000, 0, 16 | BIT31, waiters=1)
    snaps = [Snapshot(1, 101, regs={"sysno": 230}, frames=[]),
             waiter(2, 102, 0x9004, 16 | BIT31, calls=[])]
    rep = analyze.build_report(snaps, ARCH, mem, {"kind": "core", "libc": "musl"}, [])
    assert not rep.locks
    t = rep.thread(2)
    assert t.state == "futex-wait"
    assert "pthread_mutex_t at 0x9000 and a musl pthread_rwlock_t at 0x9004" in t.wait.how


@pytest.mark.parametrize("val, mtype, word, waiters", [
    (16 | BIT31, 0, 16 | BIT31, 0),       # nobody counted in _m_waiters
    (7 | BIT31, 0, 7 | BIT31, 1),         # a normal mutex never holds 7
    (16, 0, 16, 1),                       # no waiter bit in the value
    (999 | BIT31, 1, 999 | BIT31, 1),     # TID of no thread of the process
])
def test_other_futex_waits_are_not_musl_mutexes(val, mtype, word, waiters):
    mem = FakeMemory()
    musl_mutex(mem, 0x9000, mtype, word, waiters=waiters)
    w = classify.musl_futex(MUSL_FRAMES, mem, {101, 102}, 0x9004, 0, 128, val, MUTEX_CALLS)
    assert w is None or w.kind != "mutex"


# ---------------------------------------------------------------------------
# Real musl programs
# ---------------------------------------------------------------------------

SRC = os.path.join(gdbrun.FIXTURES, "musl_locks.c")


@pytest.fixture(scope="module")
def musl_exe(build_dir):
    if not gdbrun.have("musl-gcc"):
        pytest.skip("musl-gcc is not installed (scripts/install-prereqs --tests installs "
                    "musl-tools)")
    out = os.path.join(build_dir, "musl_locks")
    res = gdbrun.subprocess.run(["musl-gcc", "-static", "-g", "-O2", "-Wall", "-o", out, SRC],
                                stdout=gdbrun.subprocess.PIPE, stderr=gdbrun.subprocess.STDOUT,
                                universal_newlines=True)
    if res.returncode != 0:
        pytest.skip("musl-gcc cannot build a static program here: %s" % res.stdout[-300:])
    return out


@pytest.fixture(scope="module")
def runs(musl_exe, build_dir):
    """{scenario: Scenario}, started once; cores taken on demand."""
    got = {}
    cores = []

    def get(name):
        if name not in got:
            got[name] = gdbrun.Scenario(musl_exe, [name])
        return got[name]

    get.cores = cores
    yield get
    gdbrun.close_fixtures(got.values(), cores)


def analyse(runs, musl_exe, build_dir, name, mode, command):
    sc = runs(name)
    if mode == "core":
        path = os.path.join(build_dir, "musl_%s.core" % name)
        if not os.path.exists(path):
            sc.gcore(path)
            runs.cores.append(path)
        out = gdbrun.gdb([command], exe=musl_exe, core=path)
    else:
        out = gdbrun.gdb([command], pid=sc.pid, exe=musl_exe)
    assert "Traceback" not in out.stdout + out.stderr, out.stderr[-2000:]
    return sc, out.stdout


@pytest.mark.parametrize("mode", ["live", "core"])
def test_owned_recursive_and_errorcheck_exact(runs, musl_exe, build_dir, mode):
    sc, stdout = analyse(runs, musl_exe, build_dir, "owned", mode,
                         "janus-waitgraph --format json")
    res = gdbrun.Result(gdbrun.extract_json(stdout))
    truth = sc.truth
    assert res.data["target"]["libc"] == "musl"
    assert res.data["deadlocks"] == 0
    owner = truth.lwp("owner")
    for lock, role in (("rec_lock", "rec_waiter"), ("check_lock", "check_waiter")):
        addr = truth.lock(lock)
        assert addr in res.locks, "%s not listed" % lock
        l = res.locks[addr]
        assert l["owner"]["lwp"] == owner and l["owner"]["evidence"] == "exact"
        assert res.waiter_lwps(addr) == {truth.lwp(role)}
        assert res.state(truth.lwp(role)) == "lock-wait"
    # the owner sleeps: its frames stop in musl, its callers' return
    # addresses (one call chain) and their source show where it took them
    claims = res.by_lwp[owner]["claims"]
    assert set(c["address"] for c in claims) == {truth.lock("rec_lock"),
                                                 truth.lock("check_lock")}, claims
    assert all(c["function"] == "owner_thread" for c in claims), claims
    assert res.by_lwp[owner]["entry"] == "owner_thread"
    # every thread whose stack stops in musl's functions is named: the
    # waiters and the sleeping owner (its frames, and the locks they take,
    # are as invisible)
    (warning,) = [w for w in res.data["warnings"] if "cannot unwind past musl" in w]
    for role in ("owner", "rec_waiter", "check_waiter"):
        assert re.search(r"\bT%d\b" % res.by_lwp[truth.lwp(role)]["num"], warning), warning
    # text: the same owners, no thread an "unrecognised futex wait"
    _sc, text = analyse(runs, musl_exe, build_dir, "owned", mode, "janus-locks")
    assert "unrecognised futex wait" not in text
    for lock in ("rec_lock", "check_lock"):
        block = re.search(r"M\d musl_locks\.c: %s \(0x%x\).*?waiters[^\n]*" % (
            lock, truth.lock(lock)), text, re.S)
        assert block, text
        assert "(LWP %d)" % owner in block.group(0)
        assert "exact: musl _m_lock" in block.group(0)


@pytest.mark.parametrize("mode", ["live", "core"])
def test_abba_default_mutexes_cycle_from_stack_words(runs, musl_exe, build_dir, mode):
    """Two normal musl mutexes taken in opposite orders: musl records no
    owner and gdb cannot unwind to the callers, but each waiter's caller is
    found on its stack (the return address after its call of
    pthread_mutex_lock) and its source says which lock it holds there: the
    cycle is shown, its owners inferred (never exact), with that evidence."""
    sc, stdout = analyse(runs, musl_exe, build_dir, "abba", mode,
                         "janus-waitgraph --format json")
    res = gdbrun.Result(gdbrun.extract_json(stdout))
    truth = sc.truth
    first, second = truth.lwp("first"), truth.lwp("second")
    expect = {"lock_b": (first, second), "lock_a": (second, first)}   # waiter, holder
    sites = gdbrun.site_lines(SRC)
    for lock, (waits, holds) in expect.items():
        addr = truth.lock(lock)
        assert addr in res.locks, "%s not listed" % lock
        l = res.locks[addr]
        assert l["state"] == "locked, contended"
        assert res.waiter_lwps(addr) == {waits}
        assert l["owner"]["evidence"] == "inferred" and l["owner"]["lwp"] == holds, l["owner"]
        assert "not an unwound frame: found on the stack" in l["owner"]["detail"]
        assert "after its call of pthread_mutex_lock" in l["owner"]["detail"]
    assert res.cycle_lwp_sets() == [{first, second}]
    assert res.data["verdict"].startswith("Found 1 deadlock"), res.data["verdict"]
    _sc, text = analyse(runs, musl_exe, build_dir, "abba", mode, "janus-waitgraph")
    assert "musl pthread mutexes: exact owners except normal mutexes" in text
    for role, site in (("first", "first_waits"), ("second", "second_waits")):
        fn = "abba_" + role
        assert ("a return address in %s (musl_locks.c:%d), not an unwound frame"
                % (fn, sites[site])) in text, text
    body = text.split("Found 1 deadlock", 1)[1].split("\n", 1)[1].split("Stacks:")[0]
    assert "exact" not in body and "inferred: locked at musl_locks.c" in body, body


def test_stack_lock_caller_needs_a_lock_call():
    """Only the innermost application return address counts, and only when
    its call instruction calls a lock function."""
    assert classify.stack_lock_caller(MUTEX_CALLS, "mutex") is MUTEX_CALLS[2]
    assert classify.stack_lock_caller(MUTEX_CALLS, "rwlock-read") is None
    other = MUTEX_CALLS[:2] + [StackCall(0x7ff0ec8, 0x401761, "abba_first", "sleep_ms",
                                         "musl_locks.c", 65)] + MUTEX_CALLS[2:]
    assert classify.stack_lock_caller(other) is None
    unknown = MUTEX_CALLS[:2] + [StackCall(0x7ff0ec8, 0x401761, "abba_first", None,
                                           "musl_locks.c", 65)]
    assert classify.stack_lock_caller(unknown) is None


@pytest.mark.parametrize("mode", ["live", "core"])
def test_healthy(runs, musl_exe, build_dir, mode):
    _sc, stdout = analyse(runs, musl_exe, build_dir, "healthy", mode,
                          "janus-waitgraph --format json")
    data = gdbrun.extract_json(stdout)
    assert data["deadlocks"] == 0 and not data["locks"]
    assert data["verdict"].startswith("No deadlock found")
    assert all(t["state"] in ("sleep", "idle", "running") for t in data["threads"]), \
        [(t["num"], t["state"], t["detail"]) for t in data["threads"]]


def test_printer_follows_musl_layout(runs, musl_exe, build_dir):
    sc, stdout = analyse(runs, musl_exe, build_dir, "abba", "live",
                         "print lock_a")
    assert "free" not in stdout.split("$1 = ", 1)[1].splitlines()[0], stdout[-500:]
    line = stdout.split("$1 = ", 1)[1].splitlines()[0]
    assert "musl, normal" in line and "locked, contended" in line
    assert "1 waiter (Thread" in line
    sc, stdout = analyse(runs, musl_exe, build_dir, "owned", "core", "print rec_lock")
    line = stdout.split("$1 = ", 1)[1].splitlines()[0]
    assert "(LWP %d) [exact: musl _m_lock]" % sc.truth.lwp("owner") in line
    assert "locked 2 times" in line


def test_dynamic_musl_by_interpreter(musl_exe, build_dir):
    """A dynamically linked musl program (PT_INTERP ld-musl-*): the same
    exact owners, read from the registers and the lock words."""
    out = os.path.join(build_dir, "musl_locks_dyn")
    res = gdbrun.subprocess.run(["musl-gcc", "-g", "-O2", "-o", out, SRC],
                                stdout=gdbrun.subprocess.PIPE, stderr=gdbrun.subprocess.STDOUT,
                                universal_newlines=True)
    if res.returncode != 0:
        pytest.skip("musl-gcc cannot build a dynamic program here: %s" % res.stdout[-300:])
    sc = gdbrun.Scenario(out, ["owned"])
    try:
        got = gdbrun.gdb(["janus-waitgraph --format json"], pid=sc.pid, exe=out)
    finally:
        sc.kill()
    if "cannot" in got.stdout and "ld-musl" in got.stdout and "{" not in got.stdout:
        pytest.skip("gdb cannot load musl's dynamic loader here")
    data = gdbrun.Result(gdbrun.extract_json(got.stdout))
    assert data.data["target"]["libc"] == "musl"
    for lock, role in (("rec_lock", "rec_waiter"), ("check_lock", "check_waiter")):
        l = data.locks[sc.truth.lock(lock)]
        assert l["owner"]["lwp"] == sc.truth.lwp("owner") and l["owner"]["evidence"] == "exact"
        assert data.waiter_lwps(sc.truth.lock(lock)) == {sc.truth.lwp(role)}
    # the ABBA of normal mutexes: musl's library has no symbols here, the
    # callers' return addresses (after their calls through the PLT) do
    sc = gdbrun.Scenario(out, ["abba"])
    try:
        got = gdbrun.gdb(["janus-waitgraph --format json"], pid=sc.pid, exe=out)
    finally:
        sc.kill()
    data = gdbrun.Result(gdbrun.extract_json(got.stdout))
    first, second = sc.truth.lwp("first"), sc.truth.lwp("second")
    assert data.cycle_lwp_sets() == [{first, second}], data.data["verdict"]
    for lock, holder in (("lock_a", first), ("lock_b", second)):
        owner = data.locks[sc.truth.lock(lock)]["owner"]
        assert owner["lwp"] == holder and owner["evidence"] == "inferred", owner
    (warning,) = [w for w in data.data["warnings"] if "cannot unwind past musl" in w]
    for lwp in (first, second):
        assert re.search(r"\bT%d\b" % data.by_lwp[lwp]["num"], warning), warning


def test_musl_join_value_is_not_a_tid():
    """musl's pthread_join waits for a detach-state value: never read as
    the LWP of the joined thread (glibc's protocol)."""
    mem = FakeMemory()
    mem.put32(0x7000, 1)
    frames = [FrameInfo(0, 0x1000, "__timedwait_cp", None, None, "ld-musl-x86_64.so.1", True),
              FrameInfo(1, 0x1100, "pthread_join", None, None, "ld-musl-x86_64.so.1", True)]
    w = classify.classify_futex(frames, mem, {1, 2}, 0x7000, 0, 128, 1, "musl")
    assert w.kind == "join" and w.target_lwp is None
    w = classify.classify_futex(frames, mem, {1, 2}, 0x7000, 0, 128, 1)
    assert w.kind == "join" and w.target_lwp == 1


# ---------------------------------------------------------------------------
# musl rwlocks and condition variables (real programs)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["live", "core"])
def test_rwlocks_at_their_own_address(runs, musl_exe, build_dir, mode):
    """rw_w write-locked by a sleeping writer, a reader and a writer wait;
    rw_r read-locked by two sleeping readers, a writer waits: each lock at
    its own address with its real state, no writer claimed (musl records
    none), the waiters' calls named from return addresses on the stack."""
    sc, stdout = analyse(runs, musl_exe, build_dir, "rwlock", mode,
                         "janus-waitgraph --format json")
    res = gdbrun.Result(gdbrun.extract_json(stdout))
    truth = sc.truth
    w, r = truth.lock("rw_w"), truth.lock("rw_r")
    assert w in res.locks and r in res.locks, sorted(res.locks)
    lw, lr = res.locks[w], res.locks[r]
    assert lw["kind"] == lr["kind"] == "pthread_rwlock"
    assert lw["state"] == "write-locked, contended" and lw["readers"] == 0
    # musl records no writer and no readers: both inferred from the source
    # of the holders' callers found on their stacks (they sleep in musl)
    assert lw["owner"]["evidence"] == "inferred", lw["owner"]
    assert lw["owner"]["lwp"] == truth.lwp("wr_holder")
    assert "not an unwound frame: found on the stack" in lw["owner"]["detail"]
    assert lr["state"] == "read-locked by 2 readers, contended" and lr["readers"] == 2
    assert lr["owner"]["evidence"] != "exact"
    assert set(i["lwp"] for i in lr["rwlock"]["reader_threads"]) == \
        set(truth.lwps("rd_holder")), lr["rwlock"]
    assert lr["rwlock"]["readers_unknown"] == 0
    assert res.waiter_lwps(w) == {truth.lwp("rd_waiter"), truth.lwp("wr_waiter")}
    assert res.waiter_lwps(r) == {truth.lwp("wr_readers_waiter")}
    by_lwp = dict((t["lwp"], t) for t in res.data["threads"])
    expect = {"rd_waiter": ("rwlock-read", "read-for-writer", "rd_waits"),
              "wr_waiter": ("rwlock-write", "write-for-writer", "wr_waits"),
              "wr_readers_waiter": ("rwlock-write", "write-for-readers", "wr_readers_waits")}
    for role, (kind, path, site) in expect.items():
        t = by_lwp[truth.lwp(role)]
        assert t["state"] == "lock-wait", (role, t["detail"])
        assert t["wait"]["kind"] == kind and t["wait"]["rwlock"] == path, (role, t["wait"])
        line = gdbrun.site_lines(SRC)[site]
        assert "called from %s (musl_locks.c:%d)" % (role, line) in t["wait"]["how"], \
            t["wait"]["how"]
        assert any(c["function"] == role and c["line"] == line for c in t["stack_calls"])
    assert res.data["deadlocks"] == 0
    assert not any(t["state"] == "futex-wait" for t in res.data["threads"])
    _sc, text = analyse(runs, musl_exe, build_dir, "rwlock", mode, "janus-locks")
    assert "not decoded" not in text and "unrecognised futex wait" not in text
    assert "glibc" not in text
    assert "musl rwlocks: no writer or readers recorded" in text
    block = re.search(r"M\d musl_locks\.c: rw_r \(0x%x\).*?waiters[^\n]*" % r, text, re.S)
    assert block and "readers  2 (musl records no readers)" in block.group(0), text


@pytest.mark.parametrize("mode", ["live", "core"])
def test_condition_variable_waits(runs, musl_exe, build_dir, mode):
    """Waiters in pthread_cond_wait/timedwait are waiting on a condition
    (idle), not for a lock and not unrecognised: the private ones on a node
    on their own stack, the process-shared one on the condvar's _c_seq."""
    sc, stdout = analyse(runs, musl_exe, build_dir, "cond", mode,
                         "janus-waitgraph --format json")
    res = gdbrun.Result(gdbrun.extract_json(stdout))
    truth = sc.truth
    by_lwp = dict((t["lwp"], t) for t in res.data["threads"])
    for role in ("cond_waiter", "cond_timed", "cond_shared_waiter"):
        t = by_lwp[truth.lwp(role)]
        assert t["state"] == "idle" and t["wait"]["kind"] == "condvar", (role, t["detail"])
        assert t["wait"]["lock"] is None
    assert "on its own stack" in by_lwp[truth.lwp("cond_waiter")]["wait"]["how"]
    shared = by_lwp[truth.lwp("cond_shared_waiter")]["wait"]
    assert shared["futex"] == truth.lock("cond_shared") + 8
    assert "pthread_cond_t at 0x%x" % truth.lock("cond_shared") in shared["how"]
    assert not res.data["locks"] and res.data["deadlocks"] == 0
    sem = by_lwp[truth.lwp("sem_waiter")]
    assert sem["state"] == "idle" and sem["wait"]["kind"] == "semaphore", sem["detail"]
    assert sem["wait"]["futex"] == truth.lock("sem")


def cond_waiter_snap(mem, node, state=0, sp=None, calls=()):
    for off in range(0, 32, 4):
        mem.put32(node + off, 0)       # prev, next, notify: NULL
    mem.put32(node + 16, state)
    mem.put32(node + 20, 2)
    return waiter(2, 102, node + 20, 2, calls=calls, sp=sp)


def test_musl_cond_needs_its_own_stack_or_a_call():
    """A private wait for 2 on a node-shaped word is a condition wait only
    on the thread's own stack (just above its sp) or under
    pthread_cond_timedwait; elsewhere (a lock word for 2 in a global) it is
    not claimed; a signalled waiter (state 1) is not idle."""
    mem = FakeMemory()
    snaps = [Snapshot(1, 101, regs={"sysno": 230}, frames=[]),
             cond_waiter_snap(mem, 0x7f0000001000, sp=0x7f0000000f00)]
    t = analyze.build_report(snaps, ARCH, mem, {"kind": "core", "libc": "musl"}, []).thread(2)
    assert t.state == "idle" and t.wait.kind == "condvar" and "own stack" in t.wait.how
    snaps[1] = cond_waiter_snap(mem, 0x600000, sp=0x7f0000000f00)
    t = analyze.build_report(snaps, ARCH, mem, {"kind": "core", "libc": "musl"}, []).thread(2)
    assert t.wait.kind != "condvar"
    calls = [StackCall(0x7f0000000f40, 0x401234, "pthread_cond_timedwait", "__timedwait_cp")]
    snaps[1] = cond_waiter_snap(mem, 0x600000, calls=calls)
    t = analyze.build_report(snaps, ARCH, mem, {"kind": "core", "libc": "musl"}, []).thread(2)
    assert t.wait.kind == "condvar"
    # under pthread_cond_wait but off its own stack (the condition
    # variable's internal lock): not a wait for a signal
    snaps[1] = cond_waiter_snap(mem, 0x600000, calls=calls, sp=0x7f0000000f00)
    t = analyze.build_report(snaps, ARCH, mem, {"kind": "core", "libc": "musl"}, []).thread(2)
    assert t.wait.kind != "condvar"
    snaps[1] = cond_waiter_snap(mem, 0x7f0000001000, state=1, sp=0x7f0000000f00)
    t = analyze.build_report(snaps, ARCH, mem, {"kind": "core", "libc": "musl"}, []).thread(2)
    assert t.state != "idle" and "signalled" in t.wait.how


def musl_rwlock(mem, base, word, waiters=1, shared=0):
    for off in range(0, 56, 4):
        mem.put32(base + off, 0)
    mem.put32(base, word)
    mem.put32(base + 4, waiters)
    mem.put32(base + 8, shared)


@pytest.mark.parametrize("word, state, readers, write_locked", [
    (0, "free", 0, False),
    (0x7FFFFFFF, "write-locked", 0, True),
    (0xFFFFFFFF, "write-locked, contended", 0, True),
    (3, "read-locked by 3 readers", 3, False),
    (0x80000001, "read-locked by 1 reader, contended", 1, False),
    (0x80000000, "corrupt", None, None),        # a waiter bit and no holder
])
def test_decode_musl_rwlock(word, state, readers, write_locked):
    mem = FakeMemory()
    musl_rwlock(mem, 0x9000, word)
    d = layouts.decode_musl_rwlock(mem, 0x9000)
    assert d["state"] == state and d["readers"] == readers
    assert d["write_locked"] == write_locked and d["writer"] is None
    musl_rwlock(mem, 0x9000, word, shared=5)
    assert layouts.decode_musl_rwlock(mem, 0x9000)["state"] == "corrupt"


def test_musl_rwlock_wait_without_a_call_is_read_or_write():
    """0xffffffff is slept for by readers and writers alike: with nothing
    naming the call the kind is 'rwlock' (not known), never a guess."""
    mem = FakeMemory()
    mem.put32(0x8ffc, 0x55555)        # no musl mutex type before it
    musl_rwlock(mem, 0x9000, 0xFFFFFFFF)
    snaps = [Snapshot(1, 101, regs={"sysno": 230}, frames=[]),
             waiter(2, 102, 0x9000, 0xFFFFFFFF, calls=[])]
    rep = analyze.build_report(snaps, ARCH, mem, {"kind": "core", "libc": "musl"}, [])
    t = rep.thread(2)
    assert t.wait.kind == "rwlock" and t.wait.rwlock == "any-for-writer"
    assert t.state == "lock-wait" and t.wait.lock_addr == 0x9000
    (lock,) = rep.locks
    assert lock.kind == "pthread_rwlock" and lock.state == "write-locked, contended"
    assert lock.evidence != "exact"


@pytest.mark.parametrize("mode", ["live", "core"])
def test_printer_follows_musl_rwlock_layout(runs, musl_exe, build_dir, mode):
    """print of a musl rwlock: its real state from _rw_lock (glibc's layout
    would read it as free), no writer claimed, its waiters."""
    sc, stdout = analyse(runs, musl_exe, build_dir, "rwlock", mode, "print rw_w")
    line = stdout.split("$1 = ", 1)[1].splitlines()[0]
    assert line.startswith("pthread rwlock (musl) write-locked, contended;"), line
    assert "writer not recorded" in line and "exact" not in line, line
    nums = re.search(r"2 waiters \(Threads (\d+), (\d+)\)", line)
    assert nums, line
    sc, stdout = analyse(runs, musl_exe, build_dir, "rwlock", mode, "print rw_r")
    line = stdout.split("$1 = ", 1)[1].splitlines()[0]
    assert line.startswith("pthread rwlock (musl) read-locked by 2 readers, contended;"), line
    assert "1 waiter (Thread" in line, line


@pytest.mark.parametrize("arch, insn, is_call, target", [
    ("i386:x86-64", [0xE8, 0xFB, 0xFF, 0xFF, 0xFF], True, 0x1000 - 5),   # call rel32
    ("i386:x86-64", [0xFF, 0x13], True, None),                  # call *(%rbx)
    ("i386:x86-64", [0xFF, 0xD0], True, None),                  # call *%rax
    ("i386:x86-64", [0x41, 0xFF, 0xD4], True, None),            # call *%r12
    ("i386:x86-64", [0xFF, 0x15, 1, 2, 3, 4], True, None),      # call *disp32(%rip)
    ("i386:x86-64", [0xFF, 0x54, 0x24, 0x08], True, None),      # call *8(%rsp)
    ("i386:x86-64", [0xFF, 0x23], False, None),                 # jmp *(%rbx)
    ("i386:x86-64", [0x48, 0x89, 0xC7], False, None),           # mov %rax,%rdi
    ("aarch64", [0xFF, 0xFF, 0xFF, 0x97], True, 0x1000 - 8),    # bl .-4
    ("aarch64", [0x00, 0x00, 0x3F, 0xD6], True, None),          # blr x0
    ("aarch64", [0x00, 0x00, 0x1F, 0xD6], False, None),         # br x0
])
def test_call_before_return_address(arch, insn, is_call, target):
    """A stack word is a return address only right after a call instruction."""
    from janus_gdb.target import callinsn
    code = bytes(8 - len(insn)) + bytes(insn)
    assert callinsn.call_target(arch, 0x1000, code) == (is_call, target)


def test_entry_from_stack():
    """The thread's entry: the application function whose return address
    lies just inside musl's thread start (start, under __clone)."""
    calls = MUTEX_CALLS + [StackCall(0x7ff0ed8, 0x4021fe, "start", None),
                           StackCall(0x7ff0ef8, 0x402f70, "__clone", None)]
    assert classify.entry_from_stack(calls) == "abba_first"
    assert classify.entry_from_stack(MUTEX_CALLS) is None
    # a function called start elsewhere (with a source line) is no thread start
    calls[3] = StackCall(0x7ff0ed8, 0x4021fe, "start", None, "app.c", 3)
    assert classify.entry_from_stack(calls) is None


def test_stack_chain_follows_direct_calls_only():
    """The stack words continue gdb's frames only as one call chain: each
    word's call calls the function below it; a stale word (here a return
    address into nanosleep after a call of __syscall_ret) is skipped, and
    a call of a lock function continues a chain left in a lock function
    (musl's pthread_mutex_lock tail-calls pthread_mutex_timedlock)."""
    sleeper = [FrameInfo(0, 0x405de9, "__syscall_cp_c", None, None, None, True),
               FrameInfo(1, 0x40624e, "clock_nanosleep", None, None, None, True),
               FrameInfo(2, 0, None, None, None, None, False)]
    calls = [StackCall(0x10, 0x40624e, "clock_nanosleep", "__syscall_cp"),
             StackCall(0x18, 0x406300, "nanosleep", "__syscall_ret"),        # stale
             StackCall(0x20, 0x406310, "nanosleep", "clock_nanosleep"),
             StackCall(0x28, 0x401100, "sleep_forever", "nanosleep", "f.h", 24),
             StackCall(0x30, 0x401200, "owner_thread", "sleep_forever", "m.c", 105),
             StackCall(0x38, 0x401300, "unrelated", "memcpy", "m.c", 7),      # stale
             StackCall(0x40, 0x4021fe, "start", None)]
    got = [c.function for c in classify.stack_chain(sleeper, calls)]
    assert got == ["nanosleep", "sleep_forever", "owner_thread"]
    got = [c.function for c in classify.stack_chain(MUSL_FRAMES, MUTEX_CALLS)]
    assert got == ["__timedwait", "pthread_mutex_timedlock", "abba_first"]
    # no named frame to start from: the lock function's caller alone
    unnamed = [FrameInfo(0, 0x7f0000001000, None, None, None, "ld-musl-x86_64.so.1", True),
               FrameInfo(1, 0, None, None, None, None, False)]
    got = [c.function for c in classify.stack_chain(unnamed, MUTEX_CALLS)]
    assert got == ["abba_first"]


@pytest.mark.parametrize("mode", ["live", "core"])
def test_join_names_the_joined_thread(runs, musl_exe, build_dir, mode):
    """musl's pthread_join waits on the joined thread's detach_state (not
    for its TID): the struct pthread around it (self pointer, tid) names
    the thread."""
    sc, stdout = analyse(runs, musl_exe, build_dir, "join", mode,
                         "janus-waitgraph --format json")
    res = gdbrun.Result(gdbrun.extract_json(stdout))
    main = res.by_lwp[sc.truth.lwp("main")]
    assert main["state"] == "join" and main["wait"]["kind"] == "join", main["detail"]
    assert main["wait"]["target_lwp"] == sc.truth.lwp("sleeper"), main["wait"]
    assert "under pthread_join" in main["wait"]["how"], main["wait"]["how"]


def test_musl_join_from_struct_pthread():
    """The joined thread from its struct pthread: self pointer 56 bytes
    before detach_state (x86_64) or 40 (aarch64), tid 8 bytes before."""
    mem = FakeMemory()
    for base, back in ((0x7000, 56), (0x9000, 40)):
        for off in range(0, 64, 4):
            mem.put32(base + off, 0)
        mem.put32(base, base)           # self (low half; high half 0)
        det = base + back
        mem.put32(det - 8, 4242)        # tid
        mem.put32(det, 2)               # DT_JOINABLE
        assert layouts.musl_joined_tid(mem, det) == 4242
        w = classify.musl_futex(MUSL_FRAMES, mem, {101, 4242}, det, 0, 128, 2, ())
        assert w is not None and w.kind == "join" and w.target_lwp == 4242
        # no self pointer: not a struct pthread, nothing claimed
        mem.put32(base, 0)
        assert layouts.musl_joined_tid(mem, det) is None


def test_glib_waits_on_musl():
    """glib on musl (Janus on Alpine): a GMutex wait under g_mutex_lock (a
    frame, or a return address on the stack) is a GMutex wait when its word
    is held; a GCond wait is idle; through musl's syscall() with a libglib
    caller, glib's GMutex protocol.  (Unit test: Debian has no glib built
    for musl to run a real one.)"""
    mem = FakeMemory()
    mem.put32(0x6000, 2)
    calls = [StackCall(0x7ff0e48, 0x7f0000101234, "g_mutex_lock", None, None, None,
                       "libglib-2.0.so.0")]
    w = classify.musl_futex(MUSL_FRAMES, mem, {101}, 0x6000, 0, 128, 2, calls)
    assert w.kind == "gmutex" and w.lock_addr == 0x6000, w.how
    assert "under g_mutex_lock (a return address into g_mutex_lock" in w.how
    mem.put32(0x6000, 0)        # free: no GMutex waited for
    w = classify.musl_futex(MUSL_FRAMES, mem, {101}, 0x6000, 0, 128, 2, calls)
    assert w is None or w.kind != "gmutex"
    calls = [StackCall(0x7ff0e48, 0x7f0000101234, "g_cond_wait", None, None, None,
                       "libglib-2.0.so.0")]
    w = classify.musl_futex(MUSL_FRAMES, mem, {101}, 0x6000, 0, 128, 7, calls)
    assert w.kind == "gcond" and classify.STATE_OF_WAIT[w.kind] == "idle"
    frames = [FrameInfo(0, 0x1000, "syscall", None, None, "ld-musl-x86_64.so.1", True),
              FrameInfo(1, 0x2000, None, None, None, "libglib-2.0.so.0", True)]
    mem.put32(0x6000, 2)
    w = classify.classify_futex(frames, mem, {101}, 0x6000, 0, 128, 2, "musl")
    assert w.kind == "gmutex" and w.lock_addr == 0x6000
