"""Unit tests of the evidence rules behind each verdict word and of the
root-cause verdicts (janus_gdb/analysis/: infer.py Coverage, verdict.py, advice.py;
pure logic, no gdb).  test_verdicts.py proves the same on real processes;
these reach the corner cases: C++ frames, library-internal locks, foreign
libraries, cut stacks, exact owners, ordering of roots, join-only chains.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from janus_gdb.analysis import advice, infer, verdict  # noqa: E402
from janus_gdb.report import text as render_text  # noqa: E402
from janus_gdb.model import FrameInfo  # noqa: E402
from test_infer import GM1, GM2, GM3, build, claim, sleeping, waiting  # noqa: E402
from test_logic import FUTEX, NANOSLEEP, FakeMemory, snap  # noqa: E402

PM = 0x9000


def mutex_wait_frames(app, lib=None, file="app.c", line=20, via=None):
    """A pthread_mutex_lock wait called from APP (in LIB), or from the
    library function VIA (a library's own lock)."""
    frames = [FrameInfo(0, 0x1000, "__lll_lock_wait", lib="libc.so.6", system=True),
              FrameInfo(1, 0x1010, "pthread_mutex_lock", lib="libc.so.6", system=True)]
    if via:
        frames.append(FrameInfo(2, 0x1020, via, lib="libglib-2.0.so.0", system=True))
    frames.append(FrameInfo(len(frames), 0x2000, app, file if lib is None else None,
                            line if lib is None else None, lib=lib))
    frames.append(FrameInfo(len(frames), 0x1200, "start_thread", lib="libc.so.6", system=True))
    return frames


def put_pthread_mutex(mem, addr, owner, locked=2):
    mem.put32(addr, locked)
    mem.put32(addr + 8, owner)
    mem.put32(addr + 16, 0)   # kind: normal


def exact_waiter(num, lwp, addr, app="f", **kw):
    s = snap(num, lwp, FUTEX, (addr, 128, 2), mutex_wait_frames(app, **kw))
    s.analysed_levels = tuple(f.level for f in s.frames if not f.system and f.line)
    return s


def holder_in(num, lwp, frames, analysed=True):
    s = snap(num, lwp, NANOSLEEP, frames=frames)
    if analysed:
        s.analysed_levels = tuple(f.level for f in frames if not f.system)
    return s


def test_alive_exact_owner_with_every_frame_analysed_went_on_without_unlocking():
    mem = FakeMemory()
    put_pthread_mutex(mem, PM, 102)
    owner = holder_in(2, 102, [FrameInfo(0, 0x1000, "clock_nanosleep", lib="libc.so.6",
                                         system=True),
                               FrameInfo(1, 0x2000, "loop", "app.c", 30)])
    r = build([exact_waiter(1, 101, PM), owner], mem, {})
    lock = r.locks[0]
    assert lock.owner_lwp == 102 and lock.evidence == "exact"
    assert lock.leaked and "went on without unlocking" in lock.evidence_detail
    causes = verdict.causes(r)
    assert causes[0].kind == "holder-leaked" and causes[0].stuck
    assert verdict.kind(r) == "hang" and verdict.exit_status(r) == 3


def test_alive_exact_owner_in_cxx_frames_is_never_leaked(monkeypatch):
    """std::lock_guard: the C++ source was read, but guards are not modelled
    (infer.CXX_GUARDS_MODELLED follows locksets.CXX_GUARDS)."""
    monkeypatch.setattr(infer, "CXX_GUARDS_MODELLED", False)
    mem = FakeMemory()
    put_pthread_mutex(mem, PM, 102)
    owner = holder_in(2, 102, [FrameInfo(0, 0x1000, "clock_nanosleep", lib="libc.so.6",
                                         system=True),
                               FrameInfo(1, 0x2000, "worker", "deadlock.cpp", 21)])
    r = build([exact_waiter(1, 101, PM), owner], mem, {})
    lock = r.locks[0]
    assert lock.owner_lwp == 102 and not lock.leaked
    assert "where T2 took it is not visible" in lock.evidence_detail
    assert "leaked" not in render_text.waitgraph(r)
    # the holder is still the root: it holds the lock while sleeping
    assert verdict.causes(r)[0].kind == "holder-waits"
    # once guards are modelled, the C++ frame is evidence like a C frame
    monkeypatch.setattr(infer, "CXX_GUARDS_MODELLED", True)
    r = build([exact_waiter(1, 101, PM), owner], mem, {})
    assert r.locks[0].leaked


def test_a_claim_evaluated_to_an_address_without_a_held_lock_is_no_evidence():
    """gcc 10 at -O2 gives a variable's location list a register after the
    code reused it (seen on Debian bullseye, tests/fixtures/rwlocks.c
    users_owner): the frame's source takes a lock, but the expression
    evaluates to a stack address where no held lock is.  That frame holds
    some lock nobody can place, so neither an exact owner nor a GMutex
    without one is called leaked; the reason names the claim.  A claim
    whose lock is elsewhere and held (placed) changes nothing."""
    mem = FakeMemory()
    put_pthread_mutex(mem, PM, 102)
    stale = claim(1, 0x7ffc0000, function="loop", line=25)
    stale.kind = "pthread_mutex"
    owner = holder_in(2, 102, [FrameInfo(0, 0x1000, "clock_nanosleep", lib="libc.so.6",
                                         system=True),
                               FrameInfo(1, 0x2000, "loop", "app.c", 30)])
    owner.claims = [stale]
    r = build([exact_waiter(1, 101, PM), owner], mem, {})
    lock = [l for l in r.locks if l.addr == PM][0]
    assert lock.owner_lwp == 102 and not lock.leaked, lock.evidence_detail
    assert "where T2 took it is not visible" in lock.evidence_detail
    assert "evaluates to 0x7ffc0000, where no held lock is" in lock.evidence_detail
    # a GMutex nobody records: T2 is a candidate, not "probably leaked"
    r = build([waiting(1, 101, GM1), sleeping(2, 102, [claim(1, GM2)])], FakeMemory(),
              {GM1: 2, GM2: 0})
    gm1 = [l for l in r.locks if l.addr == GM1][0]
    assert not gm1.leaked and gm1.possible == [2], gm1.evidence_detail
    # without that claim the same GMutex is leaked (the rule can fail)
    r = build([waiting(1, 101, GM1), sleeping(2, 102)], FakeMemory(), {GM1: 2})
    assert r.locks[0].leaked
    # a claim of another kind of lock is no reason: a pthread mutex taken
    # through a stale address cannot be this GMutex
    other = claim(1, GM2)
    other.kind = "pthread_mutex"
    r = build([waiting(1, 101, GM1), sleeping(2, 102, [other])], FakeMemory(),
              {GM1: 2, GM2: 0})
    assert [l for l in r.locks if l.addr == GM1][0].leaked


def test_alive_exact_owner_without_line_info_is_never_leaked():
    mem = FakeMemory()
    put_pthread_mutex(mem, PM, 102)
    owner = holder_in(2, 102, [FrameInfo(0, 0x1000, "clock_nanosleep", lib="libc.so.6",
                                         system=True),
                               FrameInfo(1, 0x2000, None)], analysed=False)
    r = build([exact_waiter(1, 101, PM), owner], mem, {})
    assert not r.locks[0].leaked
    assert "1 frame without line info" in r.locks[0].evidence_detail


def test_foreign_library_frames_do_not_hide_a_leak_but_its_own_locks_stay_unknown():
    """A libmicrohttpd thread without debug info cannot take the application's
    GMutex (only through the application's frames, which were read); a lock
    whose waiter takes it from inside that library is that library's."""
    mem = FakeMemory()
    mhd = snap(3, 103, NANOSLEEP, frames=[
        FrameInfo(0, 0x1000, "poll", lib="libc.so.6", system=True),
        FrameInfo(1, 0x3000, None, lib="libmicrohttpd.so.12"),
        FrameInfo(2, 0x1200, "start_thread", lib="libc.so.6", system=True)])
    r = build([waiting(1, 101, GM1), sleeping(2, 102), mhd], mem, {GM1: 2})
    assert r.locks[0].leaked
    # now the waiter takes it from libmicrohttpd: its frames could hold it
    put_pthread_mutex(mem, PM, 0, locked=2)
    w = exact_waiter(1, 101, PM, app=None, lib="libmicrohttpd.so.12")
    r = build([w, sleeping(2, 102), mhd], mem, {})
    lock = r.locks[0]
    assert not lock.leaked and lock.possible == [3], lock.evidence_detail


def test_a_librarys_internal_lock_is_never_leaked():
    mem = FakeMemory()
    put_pthread_mutex(mem, PM, 0, locked=2)
    w = exact_waiter(1, 101, PM, via="g_async_queue_push")
    r = build([w, sleeping(2, 102)], mem, {})
    lock = r.locks[0]
    assert not lock.leaked and "g_async_queue_push" in lock.evidence_detail


def test_unmodelled_lock_kinds_are_never_leaked():
    mem = FakeMemory()
    frames = [FrameInfo(0, 0x1000, "__lll_lock_wait_private", lib="libc.so.6", system=True),
              FrameInfo(1, 0x2000, "f", "app.c", 20)]
    s = snap(1, 101, FUTEX, (GM1, 128, 2), frames)
    s.analysed_levels = (1,)
    r = build([s, sleeping(2, 102)], mem, {GM1: 2})
    lock = r.locks[0]
    assert lock.kind == "libc-lock" and not lock.leaked


def test_a_cut_stack_could_hold_the_lock():
    mem = FakeMemory()
    deep = sleeping(2, 102)
    deep.frames_truncated = True
    r = build([waiting(1, 101, GM1), deep], mem, {GM1: 2})
    lock = r.locks[0]
    assert not lock.leaked and lock.possible == [2]


def test_candidates_prefer_threads_not_blocked_on_a_lock():
    mem = FakeMemory()
    blind_waiter = waiting(2, 102, GM2)
    blind_waiter.analysed_levels = ()
    blind_sleeper = sleeping(3, 103)
    blind_sleeper.analysed_levels = ()
    r = build([waiting(1, 101, GM1), blind_waiter, blind_sleeper], mem, {GM1: 2, GM2: 2})
    lock = [l for l in r.locks if l.addr == GM1][0]
    assert lock.possible == [3, 2] and lock.possible_count == 2
    assert verdict.kind(r) == "undetermined" and verdict.exit_status(r) == 4
    steps = advice.next_steps(r, verdict.causes(r))
    assert any("--lock-log" in s for s in steps), steps


def test_roots_are_ordered_by_crowd_and_named_in_the_verdict():
    mem = FakeMemory()
    small = sleeping(1, 101, [claim(1, GM1)], app="small_holder")
    big = sleeping(2, 102, [claim(1, GM2)], app="big_holder")
    snaps = [small, big, waiting(3, 103, GM1)] + [waiting(n, 100 + n, GM2) for n in (4, 5, 6)]
    r = build(snaps, mem, {GM1: 2, GM2: 2})
    causes = verdict.causes(r)
    assert [c.root.thread for c in causes] == [2, 1]
    assert [len(c.blocked) for c in causes] == [3, 1]
    v = render_text.verdict(r)
    assert v == ("No deadlock found: T2 holds 1 lock while sleeping (clock_nanosleep in "
                 "big_holder); 3 threads are blocked behind it; 1 more root below."), v
    text = render_text.waitgraph(r)
    assert text.index("Blocked behind T2 ") < text.index("Blocked behind T1 ")


def test_a_thread_joined_forever_is_not_a_hang():
    """main joins a worker that sleeps: normal, not a hang."""
    mem = FakeMemory()
    joiner = snap(1, 101, FUTEX, (0x8000, 0, 102), [
        FrameInfo(0, 0x1000, "__futex_abstimed_wait_common", lib="libc.so.6", system=True),
        FrameInfo(1, 0x1010, "pthread_join", lib="libc.so.6", system=True),
        FrameInfo(2, 0x2000, "main", "app.c", 50)])
    joiner.analysed_levels = (2,)
    mem.put32(0x8000, 102)
    r = build([joiner, sleeping(2, 102)], mem, {})
    causes = verdict.causes(r)
    assert causes and causes[0].kind == "join" and not causes[0].stuck
    assert verdict.kind(r) == "none" and render_text.verdict(r).startswith(
        "No deadlock found; 1 thread waiting")


def test_a_holder_is_never_idle():
    mem = FakeMemory()
    frames = [FrameInfo(0, 0x1000, "syscall", lib="libc.so.6", system=True),
              FrameInfo(1, 0x1010, "g_cond_wait", lib="libglib-2.0.so.0", system=True),
              FrameInfo(2, 0x1020, "g_async_queue_pop", lib="libglib-2.0.so.0", system=True),
              FrameInfo(3, 0x2000, "clear_outbuf", "app.c", 40)]
    h = snap(1, 101, FUTEX, (0x8800, 128, 0), frames)
    h.claims = [claim(3, GM1)]
    h.analysed_levels = (3,)
    r = build([h, waiting(2, 102, GM1)], mem, {GM1: 2})
    t = r.thread(1)
    assert t.state == "waiting" and "idle" not in t.detail
    assert render_text.verdict(r) == (
        "No deadlock found: T1 holds 1 lock while waiting on a queue (g_async_queue_pop in "
        "clear_outbuf); 1 thread is blocked behind it.")
    assert verdict.exit_status(r) == 3


def test_next_steps_name_the_modules_without_debug_info():
    """A stripped janus and plugin: one line on how to get their debug info
    (even where machine code was read), and --lock-log for the owner."""
    mem = FakeMemory()
    frames = [FrameInfo(0, 0x1000, "syscall", lib="libc.so.6", system=True),
              FrameInfo(1, 0x1100, None, lib="libglib-2.0.so.0", system=True),
              FrameInfo(2, 0x2000, None, lib="libjanus_videoroom.so"),
              FrameInfo(3, 0x3000, None),
              FrameInfo(4, 0x1200, "start_thread", lib="libc.so.6", system=True)]
    w = snap(1, 101, FUTEX, (GM1, 128, 2), frames)
    w.analysed_levels = (2,)      # machine code read the plugin's frame, not janus's
    holder = snap(2, 102, NANOSLEEP, frames=[
        FrameInfo(0, 0x1000, "clock_nanosleep", lib="libc.so.6", system=True),
        FrameInfo(1, 0x3100, None)])
    for addr, word in {GM1: 2}.items():
        mem.put32(addr, word)
    from janus_gdb.analysis import analyze
    r = analyze.build_report([w, holder], "i386:x86-64", mem,
                             {"kind": "core", "pid": 1, "executable": "/usr/bin/janus"}, [])
    steps = advice.next_steps(r, verdict.causes(r))
    first = steps[0]
    assert first.startswith("No debug info for libjanus_videoroom.so, janus "), steps
    assert "`apt-get install janus-dbgsym`" in first and "set debuginfod enabled on" in first
    assert "`directory /path/to/janus/src`" in first
    assert any("--lock-log" in s and "set_locking_debug" in s for s in steps), steps
    assert not r.locks[0].leaked and r.locks[0].possible == [2]


def test_a_hang_beside_a_deadlock_is_named_after_it():
    mem = FakeMemory()
    a = waiting(1, 101, GM2, [claim(2, GM1, line=11)])
    b = waiting(2, 102, GM1, [claim(2, GM2, line=13)])
    holder = sleeping(3, 103, [claim(1, GM3)], app="slow")
    r = build([a, b, holder, waiting(4, 104, GM3)], mem, {GM1: 2, GM2: 2, GM3: 2})
    v = render_text.verdict(r)
    assert v.startswith("Found 1 deadlock (2 threads), 0 threads blocked behind it. Also: "
                        "T3 holds 1 lock while sleeping (clock_nanosleep in slow); 1 thread is "
                        "blocked behind it."), v
    assert verdict.kind(r) == "deadlock"


def test_a_held_pthread_mutex_without_an_owner_is_never_leaked():
    """glibc records every owner: __owner 0 on a held mutex is not understood."""
    mem = FakeMemory()
    put_pthread_mutex(mem, PM, 0, locked=2)
    r = build([exact_waiter(1, 101, PM), sleeping(2, 102)], mem, {})
    lock = r.locks[0]
    assert not lock.leaked and lock.owner_lwp is None
    assert "__data.__owner is 0" in lock.evidence_detail
    assert verdict.causes(r)[0].kind == "unknown-owner"
