"""`bt` annotations (janus_gdb/gdbui/annotate.py) with real gdb on the hung fixtures.

The expected lock, holder and thread numbers come from the fixture's own
ground truth and from gdb's thread list, never from fixed numbers.
"""

import os
import re
import subprocess

import pytest

import gdbrun

MODES = ["live", "core"]
THREADS = "python print('THREADS', [(t.num, t.ptid[1]) for t in gdb.selected_inferior().threads()])"


def run(scenarios, name, mode, commands):
    sc = scenarios.get(name)
    if mode == "live":
        res = gdbrun.gdb(commands + [THREADS], pid=sc.pid)
    else:
        res = gdbrun.gdb(commands + [THREADS], exe=scenarios.binaries.debug,
                         core=scenarios.core(name))
    both = res.stdout + res.stderr
    assert "Traceback" not in both and "Python Exception" not in both, both
    m = re.search(r"^THREADS (\[.*\])$", res.stdout, re.M)
    assert m, both
    num_of_lwp = dict((lwp, num) for num, lwp in eval(m.group(1)))  # our own repr
    return res.stdout, sc.truth, num_of_lwp


def stacks(out):
    """{LWP: [frame lines]} from `thread apply all bt` output."""
    got = {}
    cur = None
    for line in out.splitlines():
        m = re.match(r"^Thread \d+ \(.*LWP (\d+)\)", line)
        if m:
            cur = got.setdefault(int(m.group(1)), [])
        elif cur is not None and line.startswith("#"):
            cur.append(line)
    return got


def notes(frames):
    return [l for l in frames if "[waits for" in l or "[joins" in l]


def holder(num_of_lwp, lwp):
    return "Thread %d (LWP %d)" % (num_of_lwp[lwp], lwp)


@pytest.mark.parametrize("mode", MODES)
def test_thread_apply_all_bt_names_lock_and_holder(scenarios, mode):
    out, t, nums = run(scenarios, "pthread_cycle", mode,
                       ["show janus-annotate", "thread apply all bt"])
    assert "Annotation of backtraces by janus-gdb is on." in out
    st = stacks(out)
    assert set(st) == set(nums)
    a, b = t.lwp("cycle_a"), t.lwp("cycle_b")
    for me, lock, owner in ((a, "m2", b), (b, "m1", a)):
        (note,) = notes(st[me])
        assert re.search(r"\[waits for M\d+ [^,\]]*\b%s, held by %s; deadlock #1\]"
                         % (lock, re.escape(holder(nums, owner))), note), note
        # on the first application frame, the function that called the lock
        assert "in take_second_lock [waits for" in note, note
    for lwp in t.lwps("waiter"):
        (note,) = notes(st[lwp])
        assert "m1, held by %s]" % holder(nums, a) in note, note
    (note,) = notes(st[t.lwp("main")])
    assert "[joins %s]" % holder(nums, a) in note
    # threads that wait for no lock get no note
    for role in ("cond_waiter", "sleeper"):
        for lwp in t.lwps(role):
            assert notes(st[lwp]) == [], st[lwp]


@pytest.mark.parametrize("mode", MODES)
def test_parameter_switches_annotations_off_and_on(scenarios, mode):
    out, t, nums = run(scenarios, "pthread_cycle", mode, [
        "thread apply all bt", "echo ==OFF==\\n", "set janus-annotate off",
        "show janus-annotate", "thread apply all bt", "echo ==ON==\\n",
        "set janus-annotate on", "thread 1", "bt"])
    first, rest = out.split("==OFF==", 1)
    off, on = rest.split("==ON==", 1)
    assert "[waits for" in first
    assert "Annotation of backtraces by janus-gdb is off." in off
    assert "[waits for" not in off and "[joins" not in off
    assert len(stacks(off)) == len(nums)
    assert "[joins %s]" % holder(nums, t.lwp("cycle_a")) in on


@pytest.mark.parametrize("mode", MODES)
def test_gmutex_owner_is_inferred_in_bt(scenarios, mode):
    out, t, nums = run(scenarios, "gmutex_cycle", mode, ["thread apply all bt"])
    st = stacks(out)
    a, b = t.lwp("cycle_a"), t.lwp("cycle_b")
    for me, lock, owner in ((a, "gm2", b), (b, "gm1", a)):
        (note,) = notes(st[me])
        assert "%s, owner inferred: %s; deadlock #1]" % (lock, holder(nums, owner)) in note, note
    for lwp in t.lwps("waiter"):
        (note,) = notes(st[lwp])
        assert "gm1, owner inferred: %s]" % holder(nums, a) in note, note


def test_selected_thread_and_frame_are_kept(scenarios):
    out, t, nums = run(scenarios, "pthread_cycle", "core", [
        "thread 2", "frame 3", "bt", "echo ==AFTER==\\n", "frame", "thread"])
    after = out.split("==AFTER==", 1)[1]
    assert re.search(r"^#3 ", after, re.M), after
    assert "Current thread is 2 " in after


def test_live_process_keeps_running_after_detach(scenarios):
    sc = scenarios.get("pthread_cycle")
    before = sc.syscall_state()
    out, t, nums = run(scenarios, "pthread_cycle", "live", [
        "thread apply all bt", "print m1"])  # gdb -batch detaches at its end
    assert "[waits for" in out
    # print after bt: the waiters come from the cached analysis (no thread switch)
    a = t.lwp("cycle_a")
    n = len(t.lwps("waiter")) + 1
    assert re.search(r"^\$1 = .*owner %s \[exact: __data.__owner\]; %d waiters "
                     % (re.escape(holder(nums, a)), n), out, re.M), out
    assert sc.proc.poll() is None
    assert sc.proc_state() in ("S", "R")
    after = sc.syscall_state()
    assert set(after) == set(before)
    for tid, call in before.items():
        if call.startswith("202 "):
            assert after[tid] == call


# --- frames without a symbol (issue 13 point 5) -------------------------------

@pytest.fixture(scope="module")
def nosym(build_dir):
    """nosym_main and the stripped libnosym.so it blocks and naps in; started
    once, a gcore core taken; both removed at the end."""
    d = os.path.join(build_dir, "nosym")
    os.makedirs(d, exist_ok=True)
    lib = os.path.join(d, "libnosym.so")
    subprocess.run(gdbrun.in_root(["gcc", "-shared", "-fPIC", "-O1", "-Wall", "-o", lib,
                    os.path.join(gdbrun.FIXTURES, "nosym_lib.c")]), check=True)
    subprocess.run(gdbrun.in_root(["strip", "--strip-all", lib]), check=True)
    exe = os.path.join(d, "nosym_main")
    subprocess.run(gdbrun.in_root(["gcc", "-g", "-O2", "-Wall", "-pthread", "-o", exe,
                    os.path.join(gdbrun.FIXTURES, "nosym_main.c"), "-L" + d, "-lnosym",
                    "-Wl,-rpath," + d]), check=True)
    sc = gdbrun.Scenario(exe, [])
    core = os.path.join(d, "nosym.core")
    try:
        sc.gcore(core)
        yield sc, exe, lib, core
    finally:
        gdbrun.close_fixtures([sc], [core])


def bts(nosym, mode, load):
    sc, exe, lib, core = nosym
    cmds = ["thread apply all bt", THREADS]
    if mode == "live":
        res = gdbrun.gdb(cmds, pid=sc.pid, exe=exe, load=load)
    else:
        res = gdbrun.gdb(cmds, exe=exe, core=core, load=load)
    both = res.stdout + res.stderr
    assert "Traceback" not in both and "Python Exception" not in both, both
    m = re.search(r"^THREADS (\[.*\])$", res.stdout, re.M)
    return stacks(res.stdout), dict((lwp, num) for num, lwp in eval(m.group(1)))


@pytest.mark.parametrize("mode", MODES)
def test_frames_without_symbol_keep_gdbs_form(nosym, mode):
    """A frame without a symbol is ``?? () from LIB`` in gdb's own bt: the
    threads without a note print exactly as gdb prints them (janus-gdb's
    frame filter stays out of their way); the waiter's note lands on its
    nameless frame, which keeps ``?? ()`` and the library (gdb's frame-
    filter printing says "at" where its own says "from")."""
    sc, exe, lib, core = nosym
    plain, _nums = bts(nosym, mode, load=False)
    ours, nums = bts(nosym, mode, load=True)
    t = sc.truth
    nameless = "in ?? () from %s" % lib
    for role in ("holder", "napper", "main"):
        lwp = t.lwp(role)
        assert ours[lwp] == plain[lwp], (role, ours[lwp], plain[lwp])
    assert any(nameless in l for l in plain[t.lwp("napper")]), plain[t.lwp("napper")]
    waiter, holder_lwp = t.lwp("waiter"), t.lwp("holder")
    (note,) = notes(ours[waiter])
    assert re.search(r"in \?\? \(\) at %s \[waits for M\d+ [^\]]*held by Thread %d \(LWP %d\)\]$"
                     % (re.escape(lib), nums[holder_lwp], holder_lwp), note), note
    # the same frames, level by level: the nameless ones stay "??"
    assert len(ours[waiter]) == len(plain[waiter])
    for mine, gdbs in zip(ours[waiter], plain[waiter]):
        if nameless in gdbs:
            assert "in ?? () at %s" % lib in mine, (mine, gdbs)
        assert "in  (" not in mine and " in 0x" not in mine, mine
