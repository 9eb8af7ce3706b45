"""Issue 14's fast path on cores: gdb reads one thread of each group of
identical stacks (and a witness), the core file gives the rest, and the
report is the one gdb alone gives (janus_gdb/analysis/fastpath.py,
clones.py; target/coregroups.py).

Besides these tests, every core any test analyses is compared with its
--gdb-only report (tests/conftest.py, JANUS_GDB_FAST_CHECK).  Here: the
copies get their own objects (a handle read from a callee-saved register
at -O2, from the stack at -O0), threads whose claims would differ are read
by gdb, a wrong executable turns the fast path off, a 300-thread pile-up
is read by gdb in a handful of threads, and the pure rules.
"""

import json
import os

import pytest

import gdbrun
from janus_gdb.analysis import clones
from janus_gdb.model import FrameInfo, Snapshot

SRC = os.path.join(gdbrun.FIXTURES, "fastpath.c")
PILEUP = os.path.join(gdbrun.ROOT, "bench", "pileup.c")
NLOOPS = 12
STATS = ("python import json, janus_gdb.analysis.fastpath as f; "
         "print('FASTPATH ' + json.dumps(f.LAST[0]))")


class Fixture(object):
    def __init__(self, build_dir, opt, args):
        name = "fastpath_%s_%s" % (opt, "_".join(args))
        self.exe = gdbrun.compile_c(SRC, os.path.join(build_dir, name), defines=["-" + opt])
        self.sc = gdbrun.Scenario(self.exe, args)
        self.core = self.sc.gcore(os.path.join(build_dir, "core." + name))
        self.handles = dict((int(f[1]), int(f[2])) for f in self.sc.truth.facts
                            if f[0] == "handle")
        self.holds = dict((int(f[1]), int(f[2], 16)) for f in self.sc.truth.facts
                          if f[0] == "holds")

    def close(self):
        gdbrun.close_fixtures([self.sc], [self.core])


@pytest.fixture(scope="module", params=["O2", "O0"])
def loops(build_dir, request):
    fx = Fixture(build_dir, request.param, [str(NLOOPS)])
    yield request.param, fx
    fx.close()


@pytest.fixture(scope="module")
def holding(build_dir):
    fx = Fixture(build_dir, "O2", [str(NLOOPS), "holding"])
    yield fx
    fx.close()


def analyse(exe, core, options=""):
    """(report dict, fast path stats) of janus-waitgraph on CORE."""
    res = gdbrun.gdb(["janus-waitgraph --format json " + options, STATS], exe=exe, core=core)
    assert "Traceback" not in res.stdout + res.stderr, res.stderr
    stats = None
    for line in res.stdout.splitlines():
        if line.startswith("FASTPATH "):
            stats = json.loads(line[9:])
    return gdbrun.extract_json(res.stdout.split("FASTPATH ")[0]), stats


def by_lwp(report):
    return dict((t["lwp"], t) for t in report["threads"])


def test_copies_read_their_own_handle(loops):
    opt, fx = loops
    fast, stats = analyse(fx.exe, fx.core)
    slow, none = analyse(fx.exe, fx.core, "--gdb-only")
    assert none is None
    # gdb read the representative and the witness; the others were copied
    assert stats["copied"] == NLOOPS - 2, stats
    assert stats["roles"] == {"reg" if opt == "O2" else "mem": NLOOPS - 2}, stats
    threads = by_lwp(fast)
    assert len(fx.handles) == NLOOPS
    for lwp, hid in fx.handles.items():
        assert threads[lwp]["role"] == "hloop"
        assert threads[lwp]["role_detail"] == "handle %d" % hid, (lwp, threads[lwp])
        assert threads[lwp]["state"] == "lock-wait"
    from janus_gdb.gdbui.fastcheck import first_difference
    assert first_difference(fast, slow) is None


def test_threads_holding_their_own_lock_are_read_by_gdb(holding):
    fast, stats = analyse(holding.exe, holding.core)
    slow, _ = analyse(holding.exe, holding.core, "--gdb-only")
    assert stats["copied"] == 0, stats
    assert sum(stats["why"].values()) == NLOOPS - 2, stats
    assert set(stats["why"]) <= {"its frames hold locks", "its source holds locks"}, stats
    threads = by_lwp(fast)
    lock_id = dict((l["address"], l["id"]) for l in fast["locks"])
    assert len(holding.holds) == NLOOPS
    for lwp, addr in holding.holds.items():
        # each its own handle->mutex: a copy would have claimed another's
        assert threads[lwp]["holds"] == [lock_id[addr]], threads[lwp]
    from janus_gdb.gdbui.fastcheck import first_difference
    assert first_difference(fast, slow) is None


def test_polls_resumed_after_a_debugger(build_dir):
    """Handle loops in poll(2), each on its own pollfd: once a debugger has
    attached, their polls are restart_syscall, whose argument registers
    still point to each loop's own pollfd.  The group is keyed without
    them and each copy keeps its own (real Janus: 1,000 handle loops)."""
    fx = Fixture(build_dir, "O2", [str(NLOOPS), "polling"])
    try:
        gdbrun.gdb([], pid=fx.sc.pid, load=False)   # attach and detach once
        import time
        time.sleep(0.3)
        core = fx.sc.gcore(os.path.join(build_dir, "core.fastpath_restarted"))
        fast, stats = analyse(fx.exe, core)
        slow, _ = analyse(fx.exe, core, "--gdb-only")
    finally:
        fx.close()
        if os.path.exists(os.path.join(build_dir, "core.fastpath_restarted")):
            os.unlink(os.path.join(build_dir, "core.fastpath_restarted"))
    threads = by_lwp(fast)
    loops = [threads[lwp] for lwp in fx.handles]
    assert all(t["syscall"] == "restart_syscall" for t in loops), [t["syscall"] for t in loops]
    assert stats["copied"] == NLOOPS - 2, stats
    from janus_gdb.gdbui.fastcheck import first_difference
    assert first_difference(fast, slow) is None


@pytest.mark.parametrize("opt", ["O2"])
def test_live_process(build_dir, opt):
    """Attached to the running fixture: the threads are read from /proc
    (target/livemem.py), gdb reads a representative and a witness, and the
    process runs on untouched."""
    n = 40      # the fast path is for processes of 32 threads or more
    fx = Fixture(build_dir, opt, [str(n)])
    try:
        res = gdbrun.gdb(["janus-waitgraph --format json", STATS], pid=fx.sc.pid)
        slow = gdbrun.gdb(["janus-waitgraph --format json --gdb-only"], pid=fx.sc.pid)
        state = fx.sc.proc_state()
        alive = fx.sc.proc.poll() is None
    finally:
        fx.close()
    assert "Traceback" not in res.stdout + res.stderr, res.stderr
    stats = json.loads([l for l in res.stdout.splitlines() if l.startswith("FASTPATH ")][0][9:])
    fast = gdbrun.extract_json(res.stdout.split("FASTPATH ")[0])
    assert stats["copied"] == n - 2 and stats["roles"] == {"reg": n - 2}, stats
    threads = by_lwp(fast)
    for lwp, hid in fx.handles.items():
        assert threads[lwp]["role_detail"] == "handle %d" % hid, threads[lwp]
        assert threads[lwp]["name"] == "hloop"
    from janus_gdb.gdbui.fastcheck import first_difference
    assert first_difference(fast, gdbrun.extract_json(slow.stdout)) is None
    assert alive and state in ("S", "R"), state


def test_another_executable_turns_it_off(loops, binaries):
    _opt, fx = loops
    _report, stats = analyse(binaries.debug, fx.core)
    assert stats is not None and "not the program the core was made from" in stats["why"]
    assert "copied" not in stats


def test_pileup_read_in_a_few_threads(build_dir):
    """bench/pileup.c, the benchmark's Janus-shaped pile-up, at 300 threads:
    gdb reads a few of them, the report is gdb's own."""
    exe = os.path.join(build_dir, "pileup_fast")
    gdbrun.subprocess.run(gdbrun.in_root(["gcc", "-g", "-O2", "-fno-omit-frame-pointer", "-Wall",
                           "-pthread", "-o", exe, PILEUP] + gdbrun.glib_flags()), check=True)
    sc = gdbrun.Scenario(exe, ["300"], timeout=60)
    core = None
    try:
        core = sc.gcore(os.path.join(build_dir, "core.pileup_fast"))
        fast, stats = analyse(exe, core)
        slow, _ = analyse(exe, core, "--gdb-only")
        text_fast = gdbrun.gdb(["janus-waitgraph --all"], exe=exe, core=core).stdout
        text_slow = gdbrun.gdb(["janus-waitgraph --all --gdb-only"], exe=exe, core=core).stdout
    finally:
        gdbrun.close_fixtures([sc], [core] if core else [])
    assert stats["threads"] == len(fast["threads"]) >= 300
    assert stats["read"] <= 20 and stats["copied"] >= 280, stats
    from janus_gdb.gdbui.fastcheck import first_difference
    assert first_difference(fast, slow) is None
    assert gdbrun.extract_report(text_fast) == gdbrun.extract_report(text_slow)


# --- the rules, without gdb -----------------------------------------------------

def snap(num, frames=None, **kw):
    s = Snapshot(num, 100 + num, None, {"sysno": 202, "args": (1, 0, 2), "sp": 0x1000 * num},
                 frames if frames is not None else [FrameInfo(0, 0x10), FrameInfo(1, 0x20)])
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def test_copyable_rules():
    assert clones.copyable(snap(1), True, False, None) is None
    assert clones.copyable(snap(1, claims=[object()]), True, False, None) == \
        "its frames hold locks"
    assert clones.copyable(snap(1), True, True, None) == "its source holds locks"
    assert clones.copyable(snap(1, refs={("x", 1): 0}), True, False, None) == \
        "its object references were read"
    assert clones.copyable(snap(1, stack_calls=(object(),)), True, False, None) == \
        "its stack words were scanned"
    assert clones.copyable(snap(1, lock_call=(1, "gmutex", "m")), False, False, None) == \
        "it waits on an object read from a variable"
    assert clones.copyable(snap(1, lock_call=(1, "gmutex", "m")), True, False, None) is None
    assert clones.copyable(snap(1, role_detail="handle 1"), True, False, None) == \
        "its role object is not read from memory or a register"
    assert clones.copyable(snap(1, role_detail="handle 1"), True, False,
                           ("e", 1, ("reg", "rbx", 5))) is None


def test_role_slot_moves_with_the_cfa():
    var = ("janus_ice_handle_thread", 2, ("mem", 0x7000 - 0x28, 0x1234))
    rep = [0x6f00, 0x6f40, 0x7000, 0x7100]
    member = [0x9f00, 0x9f40, 0xa000, 0xa100]
    assert clones.role_slot(var, rep, member) == 0xa000 - 0x28
    # not in that frame of the representative: no slot
    assert clones.role_slot(("e", 2, ("mem", 0x6000, 1)), rep, member) is None
    assert clones.role_slot(("e", 2, ("mem", 0x7100, 1)), rep, member) is None
    assert clones.role_slot(("e", 2, ("reg", "rbx", 1)), rep, member) is None
    assert clones.role_slot(("e", 9, ("mem", 0x7000, 1)), rep, member) is None
    assert clones.role_slot(var, rep, [0x9f00, 0x9f40, 0, 0]) is None


def test_same_frames():
    frames = [FrameInfo(0, 0x10, "syscall"), FrameInfo(1, 0x20, "inlined"),
              FrameInfo(2, 0x20, "caller"), FrameInfo(3, 0x30, "start_thread")]
    bottoms = ("start_thread",)
    assert clones.same_frames(frames, (0x10, 0x20, 0x30, 0x40), False, bottoms)
    assert clones.same_frames(frames, (0x10, 0x20, 0x30), False, ())
    assert not clones.same_frames(frames, (0x10, 0x20, 0x30, 0x40), False, ())
    assert clones.same_frames(frames, (0x10, 0x20, 0x30, 0x40), True, ())
    assert not clones.same_frames(frames, (0x10, 0x21, 0x30), False, bottoms)
    assert not clones.same_frames([], (0x10,), False, bottoms)


def test_alike_and_clone():
    a, b = snap(1), snap(2)
    assert clones.alike(a, b)
    assert not clones.alike(a, snap(2, frames=[FrameInfo(0, 0x10)]))
    assert not clones.alike(a, snap(2, queue_call=(1, "q", 0, "x")))
    c = snap(3)
    c.regs["args"] = (9, 0, 2)
    assert not clones.alike(a, c)
    copy = clones.clone(a, 7, 4242, 0x7000, 0, "handle 5")
    assert (copy.num, copy.lwp, copy.regs["sp"], copy.role_detail) == (7, 4242, 0x7000,
                                                                        "handle 5")
    assert copy.regs["args"] == a.regs["args"] and copy.frames is a.frames
    assert copy.claims == [] and copy.refs == {} and copy.refs is not a.refs
