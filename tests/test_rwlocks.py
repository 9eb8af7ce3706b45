"""Reader/writer locks: every glibc wait path, GRWLock, cycles through them.

The fixtures (tests/fixtures/rwlocks.c) are written the way ordinary
programs are (a config cache that "upgrades" its read lock, a table whose
writer holds a mutex its reader needs, a writer-preferring index, a
session list whose reader is stuck on I/O, a glib session store, locks on
main's stack, dining philosophers) and print their
own truth: the lock's own address, who holds it for reading or writing,
the writer waiting for readers, the threads of each deadlock.  Each is
analysed live and on a core, text and JSON; one runs stripped with libc's
debug info hidden.  Unit tests of the pure decoding come first.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gdbrun  # noqa: E402
from janus_gdb.analysis import analyze, classify  # noqa: E402
from janus_gdb.report import text as render_text  # noqa: E402
from janus_gdb.csource import locksets  # noqa: E402
from janus_gdb.target import layouts  # noqa: E402
from janus_gdb.model import Claim, FrameInfo, Snapshot  # noqa: E402
from test_logic import FakeMemory  # noqa: E402

ARCH = "i386:x86-64"
FUTEX = 202
WP, WL, RW = layouts.RWLOCK_WRPHASE, layouts.RWLOCK_WRLOCKED, layouts.RWLOCK_RWAITING
ONE = 1 << layouts.RWLOCK_READER_SHIFT


# ---------------------------------------------------------------------------
# Pure decoding
# ---------------------------------------------------------------------------

def rwlock(mem, base, readers_word, writer=0, flags=0, wrphase=0, writers_futex=0):
    mem.put32(base, readers_word)
    mem.put32(base + 4, 0)
    mem.put32(base + 8, wrphase)
    mem.put32(base + 12, writers_futex)
    mem.put32(base + 16, 0)
    mem.put32(base + 20, 0)
    mem.put32(base + 24, writer)
    mem.put32(base + 28, 0)
    for off in range(32, 56, 4):
        mem.put32(base + off, 0)
    mem.put32(base + 48, flags)


@pytest.mark.parametrize("word, writer, state, fields", [
    (0, 0, "free", {"readers": 0, "write_locked": False, "writer_pending": False}),
    (2 * ONE, 0, "read-locked by 2 readers", {"readers": 2, "phase": "read"}),
    (ONE | WL, 0, "read-locked by 1 reader, a writer waiting for them",
     {"readers": 1, "writer_pending": True, "write_locked": False}),
    (ONE | WL | RW, 0, "read-locked by 1 reader, a writer waiting for them, readers waiting "
     "behind the writer", {"readers_blocked": True}),
    (WP | WL, 77, "write-locked", {"write_locked": True, "readers": 0, "writer": 77}),
    (3 * ONE | WP | WL, 77, "write-locked, 3 readers waiting",
     {"readers": 0, "readers_waiting": 3, "phase": "write"}),
    (WP, 0, "free", {"write_locked": False}),                 # idle write phase
    (WL, 0, "free", {"writer_pending": True, "readers": 0}),  # a writer taking it
])
def test_decode_rwlock_states(word, writer, state, fields):
    mem = FakeMemory()
    rwlock(mem, 0x8000, word, writer)
    d = layouts.decode_rwlock(mem, 0x8000)
    assert d["state"] == state
    for k, v in fields.items():
        assert d[k] == v, k


def test_decode_rwlock_corrupt_and_unreadable():
    mem = FakeMemory()
    rwlock(mem, 0x8000, WP | WL, writer=-5)
    assert layouts.decode_rwlock(mem, 0x8000)["state"] == "corrupt"
    rwlock(mem, 0x9000, 0, flags=9)
    assert layouts.decode_rwlock(mem, 0x9000)["state"] == "corrupt"
    assert layouts.decode_rwlock(mem, 0xa000)["state"] == "unreadable"


def test_each_wait_path_has_its_own_futex_word_and_value():
    f = 0x8000
    assert layouts.rwlock_base_candidates(f + 8, 2, False) == [(f, "write-for-readers")]
    assert layouts.rwlock_base_candidates(f + 12, 3, False) == [(f, "write-for-writer")]
    assert layouts.rwlock_base_candidates(f + 8, 3, True) == [(f, "read-for-writer")]
    assert layouts.rwlock_base_candidates(f, ONE | WL | RW, True) == [
        (f, "read-for-pending-writer")]
    # values no path waits for
    assert layouts.rwlock_base_candidates(f, 2, True) == []
    assert layouts.rwlock_base_candidates(f, 7, False) == []
    # no frame says which call: every path the value allows
    assert sorted(p for _b, p in layouts.rwlock_base_candidates(f + 12, 3, None)) == [
        "read-for-writer", "write-for-writer"]


def test_writer_waiting_for_readers_is_not_taken_for_a_lock_at_the_futex():
    """The reported bug: the futex is __wrphase_futex, 8 bytes in."""
    mem = FakeMemory()
    base = 0x8000
    rwlock(mem, base, 2 * ONE | WL, wrphase=2, writers_futex=1)
    frames = [FrameInfo(0, 1, None, lib="libc.so.6", system=True),
              FrameInfo(1, 2, "pthread_rwlock_wrlock", lib="libc.so.6", system=True),
              FrameInfo(2, 3, "writer", "a.c", 9)]
    w = classify.classify_futex(frames, mem, {5}, base + 8, 0, True, 2)
    assert (w.kind, w.lock_addr, w.rwlock) == ("rwlock-write", base, "write-for-readers")
    assert "__wrphase_futex (+8, value 2)" in w.how and "do not look like" not in w.how
    # without any frame name, the words around the futex still say so
    w = classify.classify_futex([FrameInfo(0, 1, None, lib="libc.so.6", system=True)], mem,
                                {5}, base + 8, 0, True, 2)
    assert (w.kind, w.lock_addr, w.rwlock) == ("rwlock-write", base, "write-for-readers")
    # ... but not when they do not decode as that state: no readers, or no
    # primary writer's __writers_futex (e.g. a lock after a counter of 10)
    for word, wf in ((WL, 1), (ONE | WL, 0)):
        rwlock(mem, base, word, wrphase=2, writers_futex=wf)
        w = classify.classify_futex([FrameInfo(0, 1, None, lib="libc.so.6", system=True)], mem,
                                    {5}, base + 8, 0, True, 2)
        assert w.kind == "lock" and w.lock_addr == base + 8


def test_a_value_no_wait_path_waits_for_reports_no_lock():
    """Another libc's rwlock (or a future glibc): no base, so no state is made up."""
    mem = FakeMemory()
    rwlock(mem, 0x8000, 2 * ONE | WL)
    frames = [FrameInfo(0, 1, None, lib="libc.so.6", system=True),
              FrameInfo(1, 2, "pthread_rwlock_wrlock", lib="libc.so.6", system=True),
              FrameInfo(2, 3, "writer", "a.c", 9)]
    w = classify.classify_futex(frames, mem, {5}, 0x8004, 0, True, 7)
    assert w.kind == "rwlock-write" and w.lock_addr is None and "not known" in w.how
    rep = report([snap(1, 5, (0x8004, 128, 7), frames)], mem)
    assert rep.locks == [] and rep.edges == []
    from janus_gdb.report import json as render_json
    assert render_json.to_dict(rep, "janus-waitgraph")["threads"][0]["wait"]["lock"] is None
    render_text.waitgraph(rep, show_all=True)
    render_text.locks(rep)


def test_timed_wait_resumed_as_restart_syscall_keeps_its_futex():
    """An attach interrupts a timed futex wait; the kernel resumes it as
    restart_syscall (219) with the argument registers unchanged."""
    mem = FakeMemory()
    base = 0x8000
    rwlock(mem, base, WP | WL, writer=7, wrphase=3, writers_futex=1)
    frames = [FrameInfo(0, 1, None, lib="libc.so.6", system=True),
              FrameInfo(1, 2, "pthread_rwlock_timedrdlock", lib="libc.so.6", system=True),
              FrameInfo(2, 3, "lookup", "a.c", 9)]
    s = Snapshot(1, 5, None, {"sysno": 219, "args": (base + 8, 0x189, 3)}, frames)
    state, detail, w, name = classify.classify(s, ARCH, mem, {5, 7})
    assert (state, w.kind, w.lock_addr, w.rwlock) == ("lock-wait", "rwlock-read", base,
                                                      "read-for-writer")
    assert name == "restart_syscall" and "restart_syscall" in w.how
    # a sleep resumed the same way stays a sleep
    s = Snapshot(2, 6, None, {"sysno": 219, "args": (0, 0, 0)},
                 [FrameInfo(0, 1, "clock_nanosleep", lib="libc.so.6", system=True)])
    assert classify.classify(s, ARCH, mem, {6})[0] == "sleep"


def grwlock_frames(app, call="pthread_rwlock_wrlock"):
    return [FrameInfo(0, 1, None, lib="libc.so.6", system=True),
            FrameInfo(1, 2, call, lib="libc.so.6", system=True),
            FrameInfo(2, 3, app, "a.c", 20),
            FrameInfo(3, 4, "start_thread", lib="libc.so.6", system=True)]


def claim(level, fn, line, addr, kind="pthread_rwlock", mode=None, at_line=20):
    return Claim(level, fn, "a.c", line, "&l", addr, kind, at_line=at_line, mode=mode)


def snap(num, lwp, args, frames, claims=()):
    s = Snapshot(num, lwp, None, {"sysno": FUTEX, "args": args}, frames)
    s.claims = list(claims)
    s.analysed = True
    s.analysed_levels = (2,)
    return s


def report(snaps, mem):
    return analyze.build_report(snaps, ARCH, mem, {"kind": "core", "pid": 1}, [])


def test_read_then_write_is_a_deadlock_of_one_thread():
    mem = FakeMemory()
    base = 0x8000
    rwlock(mem, base, ONE | WL, wrphase=2, writers_futex=1)
    rep = report([snap(1, 10, (base + 8, 128, 2), grwlock_frames("upgrade"),
                       [claim(2, "upgrade", 15, base, mode="read")])], mem)
    (cyc,) = rep.cycles
    assert [(e.src, e.dst) for e in cyc] == [(1, 1)]
    lock = rep.lock_by_addr[base]
    assert lock.state == "read-locked by 1 reader, a writer waiting for them"
    assert [i.num for i in lock.reader_infs] == [1] and lock.pending == [1]
    assert not lock.leaked and lock in rep.by_num[1].holds
    text = render_text.waitgraph(rep)
    assert text.startswith("Found 1 deadlock (1 thread)")
    assert "read-locked by T1 (LWP 10) upgrade (itself)  [inferred: read-locked at a.c:15" in text


def test_readers_fewer_than_the_word_counts_are_said_so():
    mem = FakeMemory()
    base = 0x8000
    rwlock(mem, base, 3 * ONE | WL, wrphase=2, writers_futex=1)
    rep = report([snap(1, 10, (base + 8, 128, 2), grwlock_frames("writer")),
                  snap(2, 11, (0x100, 128, 0), grwlock_frames("reader", "nanosleep"),
                       [claim(2, "reader", 12, base, mode="read")])], mem)
    lock = rep.lock_by_addr[base]
    assert [i.num for i in lock.reader_infs] == [2]
    assert "2 readers not shown by any frame's source" in lock.evidence_detail
    assert [(e.src, e.dst) for e in rep.edges] == [(1, 2)]
    assert not rep.cycles and not lock.leaked
    # a write claim in a read phase, a read claim on a write-locked lock: dropped
    rwlock(mem, base, WP | WL, writer=10, wrphase=3, writers_futex=1)
    rep = report([snap(1, 10, (0x100, 128, 0), grwlock_frames("w", "nanosleep"),
                       [claim(2, "w", 12, base)]),
                  snap(2, 11, (base + 8, 128, 3), grwlock_frames("r", "pthread_rwlock_rdlock"),
                       [claim(2, "r", 9, base, mode="read")])], mem)
    lock = rep.lock_by_addr[base]
    assert lock.owner_num == 1 and lock.evidence == "exact" and lock.reader_infs == []
    assert lock.inference.num == 1 and not lock.leaked
    assert rep.by_num[2].wait.rwlock == "read-for-writer"
    assert [(e.src, e.dst) for e in rep.edges] == [(2, 1)]


def test_a_thread_holding_a_read_lock_twice_accounts_for_two_readers():
    mem = FakeMemory()
    base = 0x8000
    rwlock(mem, base, 2 * ONE | WL, wrphase=2, writers_futex=1)
    reads = [claim(3, "outer", 30, base, mode="read"), claim(2, "inner", 12, base, mode="read")]
    rep = report([snap(1, 10, (base + 8, 128, 2), grwlock_frames("writer")),
                  snap(2, 11, (0x100, 128, 0), grwlock_frames("reader", "nanosleep"), reads)],
                 mem)
    lock = rep.lock_by_addr[base]
    assert [i.num for i in lock.reader_infs] == [2] and lock.readers_unknown == 0
    assert "read-lock it 2 times" in lock.reader_infs[0].detail
    # three threads claim it unconditionally, the word counts two: undecided
    rep = report([snap(1, 10, (base + 8, 128, 2), grwlock_frames("writer")),
                  snap(2, 11, (0x100, 128, 0), grwlock_frames("r1", "nanosleep"), reads[:1]),
                  snap(3, 12, (0x100, 128, 0), grwlock_frames("r2", "nanosleep"), reads[:1]),
                  snap(4, 13, (0x100, 128, 0), grwlock_frames("r3", "nanosleep"), reads[:1])],
                 mem)
    lock = rep.lock_by_addr[base]
    assert lock.reader_infs == [] and lock.candidates == [2, 3, 4]
    assert lock.readers_unknown == 2 and rep.edges == [] and not lock.leaked
    assert "undecided" in lock.evidence_detail


def test_reader_behind_pending_writer_with_writer_preference():
    mem = FakeMemory()
    base = 0x8000
    word = ONE | WL | RW
    rwlock(mem, base, word, flags=2, wrphase=2, writers_futex=1)
    rep = report([snap(1, 10, (base, 128, word), grwlock_frames("walk", "pthread_rwlock_rdlock"),
                       [claim(2, "walk", 11, base, mode="read")]),
                  snap(2, 11, (base + 8, 128, 2), grwlock_frames("build"))], mem)
    assert rep.by_num[1].wait.rwlock == "read-for-pending-writer"
    (cyc,) = rep.cycles
    assert sorted((e.src, e.dst) for e in cyc) == [(1, 2), (2, 1)]
    assert rep.lock_by_addr[base].kind_text() == "pthread rwlock (prefer writer, nonrecursive)"


def test_grwlock_waits_are_named_at_the_grwlock():
    mem = FakeMemory()
    grw, impl = 0x4000, 0x9000
    mem.put32(grw, impl)
    mem.put32(grw + 4, 0)
    rwlock(mem, impl, ONE | WL, wrphase=2, writers_futex=1)
    s = snap(1, 10, (impl + 8, 128, 2), grwlock_frames("up"),
             [claim(2, "up", 15, grw, kind="grwlock", mode="read")])
    rep = report([s], mem)
    lock = rep.lock_by_addr[grw]
    assert lock.kind == "grwlock" and lock.details["impl"] == impl
    assert rep.by_num[1].wait.lock_addr == grw and impl not in rep.lock_by_addr
    assert len(rep.cycles) == 1
    assert "GRWLock (its pthread_rwlock_t at 0x9000)" in render_text.lock_ref(lock)


SOURCE = """
static int lookup(struct table *t, const char *key, struct timespec *ts)
{
	pthread_rwlock_rdlock(&t->lock);
	if (pthread_rwlock_timedwrlock(&t->other, ts) != 0)
		return -1;
	g_rw_lock_reader_lock(&t->glock);
	pthread_rwlock_unlock(&t->other);
	g_rw_lock_writer_lock(&t->wlock);
	return 0;
}
"""


def test_source_read_locks_timed_locks_and_the_call_in_progress():
    src = locksets.LazySourceFile(SOURCE)
    held = src.held_at(2, 9).held
    assert [(h.expr, h.call, h.trylock) for h in held] == [
        ("&t->lock", "pthread_rwlock_rdlock", False),
        ("&t->glock", "g_rw_lock_reader_lock", False)]
    assert all(h.call in locksets.READ_LOCK_CALLS for h in held)
    # the timed lock (first argument, may fail) is held until its unlock
    assert [(h.expr, h.trylock) for h in src.held_at(2, 7).held][1] == ("&t->other", True)
    assert src.lock_call_at(9, locksets.RWLOCK_LOCK_CALLS) == (
        "g_rw_lock_writer_lock", "&t->wlock", "&t->wlock")
    assert src.lock_call_at(8, locksets.RWLOCK_LOCK_CALLS) is None


def test_inlined_function_found_by_name():
    """gdb gives an inlined function's call line as its symbol line."""
    src = locksets.LazySourceFile(SOURCE + "\nint caller(void)\n{\n\treturn lookup(0, 0, 0);\n}\n")
    assert not src.held_at(15, 9).valid
    start = src.definition_line("lookup", 9)
    assert start == 2 and len(src.held_at(start, 9).held) == 2


# ---------------------------------------------------------------------------
# Real fixtures, real gdb
# ---------------------------------------------------------------------------

SRC = os.path.join(gdbrun.FIXTURES, "rwlocks.c")
RW_SCENARIOS = ["rdwr_upgrade", "writer_reader", "writer_writer", "prefer_writer",
                "stuck_reader", "grwlock_upgrade", "grwlock_cycle", "stack_locks"]
MODES = ["live", "core"]


class Facts(object):
    """The truth lines of rwlocks.c beyond roles and lock addresses."""

    def __init__(self, truth):
        self.readers, self.writer, self.pending, self.cycles = {}, {}, {}, []
        for parts in truth.facts:
            if parts[0] == "readers":
                self.readers[parts[1]] = set(int(x) for x in parts[2].split(",")
                                             if x != "-")
            elif parts[0] == "writer":
                self.writer[parts[1]] = int(parts[2])
            elif parts[0] == "pending":
                self.pending[parts[1]] = set([int(parts[2])])
            elif parts[0] == "cycle":
                self.cycles.append(set(int(x) for x in parts[1].split(",")))


class RwFixtures(object):
    """rwlocks.c built (debug and stripped), its hung processes, cores and outputs."""

    def __init__(self, build_dir):
        self.dir = build_dir
        out = os.path.join(build_dir, "rwlocks")
        self.exes = {"debug": gdbrun.compile_c(SRC, out, strip=False)}
        self.exes["stripped"] = gdbrun.compile_c(SRC, out, strip=True)
        self.running, self.cores, self.outputs = {}, {}, {}

    def get(self, name, variant):
        key = (name, variant)
        if key not in self.running:
            self.running[key] = gdbrun.Scenario(self.exes[variant], [name])
        return self.running[key]

    def core(self, name, variant):
        key = (name, variant)
        if key not in self.cores:
            path = os.path.join(self.dir, "core.rwlocks.%s.%s" % (name, variant))
            self.cores[key] = self.get(name, variant).gcore(path)
        return self.cores[key]

    def run(self, name, variant, mode, command):
        key = (name, variant, mode, command)
        if key not in self.outputs:
            sc = self.get(name, variant)
            hide = variant == "stripped"
            if mode == "live":
                res = gdbrun.gdb([command], pid=sc.pid, hide_debug=hide)
            else:
                res = gdbrun.gdb([command], exe=self.exes[variant],
                                 core=self.core(name, variant), hide_debug=hide)
            both = res.stdout + res.stderr
            assert "Traceback" not in both and "internal error" not in both, both
            self.outputs[key] = res.stdout
        return self.outputs[key]

    def result(self, name, variant, mode):
        out = self.run(name, variant, mode, "janus-waitgraph --format json")
        truth = self.get(name, variant).truth
        return gdbrun.Result(gdbrun.extract_json(out)), truth, Facts(truth)

    def text(self, name, variant, mode, command="janus-waitgraph"):
        out = self.run(name, variant, mode, command)
        if command == "janus-waitgraph":
            text = gdbrun.extract_report(out)
            assert text is not None, out
            return text
        return out

    def close(self):
        gdbrun.close_fixtures(self.running.values(), self.cores.values())


@pytest.fixture(scope="module")
def rw(build_dir):
    fx = RwFixtures(build_dir)
    yield fx
    fx.close()


def check_rwlock(r, t, facts, name):
    """The lock NAME at its own address with the state, writer, readers and
    pending writer the fixture says; its waiters point at that address."""
    addr = t.lock(name)
    assert addr in r.locks, "no lock at %s's own address 0x%x: %s" % (
        name, addr, sorted(hex(a) for a in r.locks))
    for off in (4, 8, 12):
        assert addr + off not in r.locks, "a lock at %s+%d" % (name, off)
    lock = r.locks[addr]
    assert lock["kind"] in ("pthread_rwlock", "grwlock")
    info = lock["rwlock"]
    readers = facts.readers[name]
    writer = facts.writer[name]
    assert set(i["lwp"] for i in info["reader_threads"]) == readers
    assert all(i["source"] in ("lockset", "type-match") and i["line"] for i in
               info["reader_threads"])
    assert info["readers_unknown"] == 0
    assert lock["readers"] == len(readers)
    if writer:
        assert lock["state"].startswith("write-locked")
        assert lock["owner"]["lwp"] == writer and lock["owner"]["evidence"] == "exact"
        assert r.locks[addr]["id"] in r.by_lwp[writer]["holds"]
    else:
        assert lock["state"].startswith("read-locked by %d reader" % len(readers))
        assert lock["owner"]["lwp"] is None
    pending = facts.pending.get(name, set())
    assert set(r.by_num[n]["lwp"] for n in info["pending_writers"]) == pending
    if pending:
        assert lock["state"].endswith("a writer waiting for them") or \
            "a writer waiting for them" in lock["state"]
    for lwp in readers:
        assert lock["id"] in r.by_lwp[lwp]["holds"]
    assert not lock["leaked"]
    for th in r.data["threads"]:
        w = th["wait"]
        if w and w["kind"].startswith("rwlock") and w["lock"] == addr:
            assert w["rwlock"] in layouts.RWLOCK_WAIT_PATHS
            assert th["num"] in lock["waiters"]
            # the lock call on the waiter's source line names the same lock,
            # and the words glibc left there agree with the wait path
            assert "the source agrees" in w["how"], w
            assert "do not look like" not in w["how"], w
            if lock["kind"] == "pthread_rwlock":
                assert w["futex"] - addr in (0, 8, 12)
    return lock


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", RW_SCENARIOS + ["philosophers"])
def test_rwlock_scenarios_json(rw, name, mode):
    from test_json_schema import check_document
    r, t, facts = rw.result(name, "debug", mode)
    check_document(r.data, "janus-waitgraph")
    assert r.data["target"]["kind"] == mode
    assert r.cycle_lwp_sets() == sorted(facts.cycles, key=min)
    assert r.data["verdict"].startswith("Found %d deadlock" % len(facts.cycles)
                                        if facts.cycles else "No deadlock")
    assert not any(l["leaked"] for l in r.data["locks"]), r.data["verdict"]
    for lname in facts.readers:
        check_rwlock(r, t, facts, lname)
    for l in r.data["locks"]:
        if l["kind"] not in ("pthread_rwlock", "grwlock"):
            assert l["rwlock"] is None
    if name == "philosophers":
        assert len(r.data["cycles"][0]["threads"]) == 5
        for i in range(5):
            fork = r.locks[t.lock("fork%d" % i)]
            assert fork["owner"]["lwp"] == t.lwp("philosopher%d" % i)
            assert fork["owner"]["evidence"] == "exact"
    if name == "stack_locks":
        main, worker = t.lwp("main"), t.lwp("worker")
        assert r.by_lwp[main]["wait"]["kind"] == "join"
        assert r.owner_lwp(t.lock("stack_mutex")) == main
        assert r.behind(t.lwp("logger"))["kind"] == "cycle"
        assert r.by_lwp[worker]["wait"]["rwlock"] == "write-for-readers"
    if name == "writer_writer":
        assert r.by_lwp[t.lwp("writer")]["wait"]["rwlock"] == "write-for-writer"
        assert r.by_lwp[t.lwp("reader")]["wait"]["rwlock"] == "read-for-writer"
        assert r.behind(t.lwp("reader"))["kind"] == "cycle"
    if name == "prefer_writer":
        for role in ("reader", "late_reader"):
            assert r.by_lwp[t.lwp(role)]["wait"]["rwlock"] == "read-for-pending-writer"
        assert r.behind(t.lwp("late_reader"))["kind"] == "cycle"
        assert r.locks[t.lock("index_lock")]["subkind"] == "prefer writer, nonrecursive"
    if name == "stuck_reader":
        # no cycle: the writer and the reader queued behind it are blocked
        # behind the reader that holds the lock while it waits on I/O
        reader = r.by_lwp[t.lwp("reader")]
        assert reader["state"] == "io"
        for role in ("writer", "late_reader"):
            assert r.behind(t.lwp(role)) == {"kind": "thread", "thread": reader["num"],
                                             "lock": None, "cycle": None}
    if name == "grwlock_cycle":
        users = r.locks[t.lock("users_lock")]
        assert users["kind"] == "grwlock" and users["rwlock"]["impl"]
        # the writer's own claim agrees (evaluated, or matched by type when optimized out)
        assert users["inference"]["lwp"] == t.lwp("users_writer")
        assert r.behind(t.lwp("users_reader"))["kind"] == "thread"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", RW_SCENARIOS + ["philosophers"])
def test_rwlock_scenarios_text(rw, name, mode):
    r, t, facts = rw.result(name, "debug", mode)
    text = rw.text(name, "debug", mode)
    if facts.cycles:
        assert text.startswith("Found %d deadlock (%d thread" % (
            len(facts.cycles), len(facts.cycles[0]))), text
        for lwp in facts.cycles[0]:
            assert "T%d (LWP %d)" % (r.by_lwp[lwp]["num"], lwp) in text.split("Stacks:")[0]
        assert "Deadlock #1" in text
    else:
        assert text.startswith("No deadlock") and "Deadlock #" not in text, text
        holder = r.by_lwp[t.lwp("reader")]
        assert "Blocked behind T%d (LWP %d)" % (holder["num"], holder["lwp"]) in text, text
        assert "[inferred: for reading: read-locked at rwlocks.c:%d in session_reporter" % (
            gdbrun.source_line("rwlocks.c", "/* walks the list */")
        ) in text, text
    assert "leaked" not in text, text
    locks = rw.text(name, "debug", mode, "janus-locks")
    for lname, readers in facts.readers.items():
        addr = t.lock(lname)
        for out in ([text, locks] if facts.cycles else [locks]):
            assert "0x%x" % addr in out, out
            assert "0x%x" % (addr + 8) not in out and "0x%x" % (addr + 12) not in out, out
        for out in ([text, locks] if facts.cycles else [locks]):
            for lwp in readers:
                assert "read-locked by T%d (LWP %d)" % (r.by_lwp[lwp]["num"], lwp) in out, out
            for lwp in facts.pending.get(lname, ()):
                assert "T%d (LWP %d)" % (r.by_lwp[lwp]["num"], lwp) in out, out
    for lname, readers in facts.readers.items():
        if readers:
            assert "readers  %d (glibc records no readers)" % len(readers) in locks, locks


@pytest.mark.parametrize("mode", MODES)
def test_writer_waiting_for_readers_stripped_without_libc_debug_info(rw, mode):
    """No symbols, no source, no libc debug info: the lock is still found at
    its own address with its real state, and nothing is called leaked.  The
    readers are either not shown (said so) or shown from machine code (when
    the machine-code analysis reads the stripped frames): then exactly the
    true ones, and the deadlock is found."""
    r, t, facts = rw.result("writer_reader", "stripped", mode)
    addr = t.lock("table_lock")
    assert addr in r.locks and addr + 8 not in r.locks
    lock = r.locks[addr]
    assert lock["kind"] == "pthread_rwlock"
    assert lock["state"] == "read-locked by 2 readers, a writer waiting for them"
    shown = lock["rwlock"]["reader_threads"]
    assert set(i["lwp"] for i in shown) <= facts.readers["table_lock"]
    assert all(i["source"] == "machine-code" for i in shown), shown
    assert lock["rwlock"]["readers_unknown"] == 2 - len(shown)
    writer = r.by_lwp[t.lwp("writer")]
    assert writer["wait"]["lock"] == addr and writer["wait"]["futex"] == addr + 8
    assert writer["wait"]["rwlock"] == "write-for-readers"
    assert [r.by_num[n]["lwp"] for n in lock["rwlock"]["pending_writers"]] == [t.lwp("writer")]
    assert r.owner_lwp(t.lock("stats_mutex")) == t.lwp("writer")
    assert not any(l["leaked"] for l in r.data["locks"])
    text = rw.text("writer_reader", "stripped", mode)
    assert "leaked" not in text and "write-locked" not in text
    reader_shown = t.lwp("reader") in set(i["lwp"] for i in shown)
    assert r.cycle_lwp_sets() == (sorted(facts.cycles, key=min) if reader_shown else [])
    if len(shown) < 2:
        assert "%d reader%s not shown by any frame's source" % (
            2 - len(shown), "" if len(shown) == 1 else "s") in text


@pytest.mark.parametrize("mode", MODES)
def test_print_shows_rwlock_state_and_waiters(rw, mode):
    """The pretty-printers: a GRWLock through its pthread_rwlock_t, and a
    pthread rwlock whose waiters sleep on +8 and +12 (all counted)."""
    r, t, facts = rw.result("grwlock_upgrade", "debug", mode)
    out = rw.run("grwlock_upgrade", "debug", mode, "print cache_lock")
    impl = r.locks[t.lock("cache_lock")]["rwlock"]["impl"]
    assert ("GRWLock read-locked by 1 reader, a writer waiting for them (its pthread_rwlock_t "
            "at 0x%x)" % impl) in out, out
    assert "2 waiters" in out, out
    r, t, facts = rw.result("rdwr_upgrade", "debug", mode)
    out = rw.run("rdwr_upgrade", "debug", mode, "print config_lock")
    assert "pthread rwlock read-locked by 1 reader, a writer waiting for them" in out, out
    assert "2 waiters" in out, out
