"""Unit tests of the pure layers (classification, graph, layouts, rendering).

These complement the real-gdb tests in test_engine.py; they feed made-up
registers and memory to the same code to reach cases a fixture cannot
(corrupt words, long chains, odd names).
"""

import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from janus_gdb.analysis import analyze, classify, graph  # noqa: E402
from janus_gdb.report import json as render_json, text as render_text  # noqa: E402
from janus_gdb.target import layouts  # noqa: E402
from janus_gdb.model import FrameInfo, Snapshot  # noqa: E402
from janus_gdb.report.textsafe import escape  # noqa: E402

ARCH = "i386:x86-64"
FUTEX, NANOSLEEP, POLL = 202, 35, 7


class FakeMemory(object):
    """Little-endian bytes by address; reads of unset bytes fail (None)."""

    def __init__(self):
        self.words = {}
        self.failures = 0

    def put(self, addr, fmt, value):
        for i, b in enumerate(struct.pack(fmt, value)):
            self.words[addr + i] = b

    def put32(self, addr, value):
        self.put(addr, "<I", value & 0xFFFFFFFF)

    def read(self, addr, size):
        try:
            return bytes(self.words[addr + i] for i in range(size))
        except KeyError:
            return None

    def u32(self, addr):
        d = self.read(addr, 4)
        return None if d is None else struct.unpack("<I", d)[0]

    def i32(self, addr):
        d = self.read(addr, 4)
        return None if d is None else struct.unpack("<i", d)[0]

    def u64(self, addr):
        d = self.read(addr, 8)
        return None if d is None else struct.unpack("<Q", d)[0]


def mutex(mem, addr, word, owner, kind=0):
    mem.put32(addr, word)
    mem.put32(addr + 4, 0)
    mem.put32(addr + 8, owner)
    mem.put32(addr + 12, 1)
    mem.put32(addr + 16, kind)


def lock_wait_frames(app="worker"):
    return [FrameInfo(0, 0x1000, "__lll_lock_wait", lib="libc.so.6", system=True),
            FrameInfo(1, 0x1100, "___pthread_mutex_lock", lib="libc.so.6", system=True),
            FrameInfo(2, 0x2000, app, "app.c", 10),
            FrameInfo(3, 0x1200, "start_thread", lib="libc.so.6", system=True)]


def snap(num, lwp, sysno, args=(0, 0, 0), frames=None):
    return Snapshot(num, lwp, None, {"sysno": sysno, "args": args}, frames or [])


def report(snaps, mem):
    return analyze.build_report(snaps, ARCH, mem, {"kind": "core", "pid": 1}, [])


def test_normalize_library_names():
    assert classify.normalize("__GI___pthread_mutex_lock") == "pthread_mutex_lock"
    assert classify.normalize("___pthread_mutex_lock") == "pthread_mutex_lock"
    assert classify.normalize("pthread_mutex_lock@@GLIBC_2.2.5") == "pthread_mutex_lock"
    assert classify.normalize("__pthread_clockjoin_ex") == "pthread_clockjoin_ex"
    assert classify.normalize("__pthread_rwlock_wrlock64") == "pthread_rwlock_wrlock"
    assert classify.normalize(None) == ""


def test_app_function_named_like_a_library_call_is_not_a_hint():
    frames = [FrameInfo(0, 1, "syscall", lib="libc.so.6", system=True),
              FrameInfo(1, 2, "my_helper", "a.c", 3),
              FrameInfo(2, 3, "g_mutex_lock", "a.c", 9)]
    assert classify.frame_hint(frames) == (None, None, None)


def test_queue_pop_refines_gcond():
    frames = [FrameInfo(0, 1, "syscall", lib="libc.so.6", system=True),
              FrameInfo(1, 2, "g_cond_wait", lib="libglib-2.0.so.0", system=True),
              FrameInfo(2, 3, None, lib="libglib-2.0.so.0", system=True),
              FrameInfo(3, 4, "g_async_queue_pop", lib="libglib-2.0.so.0", system=True),
              FrameInfo(4, 5, "consumer", "a.c", 3)]
    assert classify.frame_hint(frames)[0] == "queue"


def test_two_thread_cycle_and_queue_from_registers_and_memory():
    mem = FakeMemory()
    A, B = 0x5000, 0x6000
    mutex(mem, A, 2, 101)
    mutex(mem, B, 2, 102)
    snaps = [snap(1, 100, FUTEX, (0x7000, 0, 101), [FrameInfo(0, 1, "pthread_join", lib="libc.so.6", system=True)]),
             snap(2, 101, FUTEX, (B, 128, 2), lock_wait_frames("a")),
             snap(3, 102, FUTEX, (A, 128, 2), lock_wait_frames("b")),
             snap(4, 103, FUTEX, (A, 128, 2), lock_wait_frames("c")),
             snap(5, 104, NANOSLEEP),
             snap(6, 105, 2 ** 64 - 1)]
    mem.put32(0x7000, 101)
    rep = report(snaps, mem)
    assert [sorted(e.src for e in c) for c in rep.cycles] == [[2, 3]]
    assert rep.roots[4].kind == "cycle" and rep.roots[1].kind == "cycle"
    assert rep.by_num[5].state == "sleep" and rep.by_num[6].state == "running"
    assert rep.locks[0].id == "M1" and set(l.addr for l in rep.locks) == {A, B}
    text = render_text.waitgraph(rep)
    assert text.startswith("Found 1 deadlock (2 threads), 2 threads blocked behind it.")
    data = json.loads(render_json.render(rep, "janus-waitgraph"))
    assert data["cycles"][0]["threads"] == [2, 3]
    assert {e["kind"] for e in data["edges"]} == {"lock", "join"}


def test_garbage_lock_word_and_unreadable_memory_do_not_crash():
    mem = FakeMemory()
    mutex(mem, 0x5000, 0xFFFFFFFF, -5, kind=0x7FFFFFFF)
    snaps = [snap(1, 10, FUTEX, (0x5000, 128, 2), lock_wait_frames()),
             snap(2, 11, FUTEX, (0xDEAD0000, 128, 2), lock_wait_frames()),
             snap(3, 12, FUTEX, (0xBEEF0000, 0, 7), []),
             snap(4, 13, None), snap(5, 14, FUTEX, (None, None, None))]
    rep = report(snaps, mem)
    assert rep.cycles == []
    states = dict((t.num, t.state) for t in rep.threads)
    assert states[3] == "futex-wait" and states[4] == "unknown" and states[5] == "unknown"
    unreadable = [l for l in rep.locks if l.addr == 0xDEAD0000][0]
    assert unreadable.state == "unreadable" and unreadable.owner_lwp is None
    render_text.waitgraph(rep, show_all=True)
    render_text.locks(rep)
    json.loads(render_json.render(rep, "x"))


def test_gmutex_by_protocol_without_any_names():
    mem = FakeMemory()
    mem.put32(0x9000, 2)
    frames = [FrameInfo(0, 1, "syscall", lib="libc.so.6", system=True),
              FrameInfo(1, 2, None, lib="libglib-2.0.so.0", system=True),
              FrameInfo(2, 3, None, lib=None)]
    rep = report([snap(1, 5, FUTEX, (0x9000, 128, 2), frames)], mem)
    (lock,) = rep.locks
    assert lock.kind == "gmutex" and lock.evidence == "unknown"
    assert rep.roots[1].kind == "unknown-owner"


def test_join_by_protocol_needs_a_live_tid():
    mem = FakeMemory()
    mem.put32(0x7000, 77)
    frames = [FrameInfo(0, 1, None, lib="libc.so.6", system=True)]
    rep = report([snap(1, 5, FUTEX, (0x7000, 0, 77), frames), snap(2, 77, POLL)], mem)
    assert rep.by_num[1].wait.kind == "join" and rep.roots[1].kind == "thread"
    rep = report([snap(1, 5, FUTEX, (0x7000, 0, 77), frames)], mem)
    assert rep.by_num[1].wait.kind == "futex"


def test_pi_mutex_owner_in_lock_word():
    mem = FakeMemory()
    mutex(mem, 0x5000, 0x80000000 | 42, 0, kind=32)
    d = layouts.decode_pthread_mutex(mem, 0x5000)
    assert d["owner"] == 42 and d["state"] == "locked, contended"
    assert layouts.mutex_kind_name(32 | 1) == "recursive, priority-inherit"


def test_rwlock_base_from_writer_futex():
    mem = FakeMemory()
    base = 0x8000
    mem.put32(base, layouts.RWLOCK_WRLOCKED | layouts.RWLOCK_WRPHASE)
    mem.put32(base + 12, 3)
    mem.put32(base + 24, 55)
    mem.put32(base + 48, 0)
    assert classify.pick_rwlock_base(mem, base + 12, 3, False, {55})[:2] == (
        base, "write-for-writer")
    assert classify.pick_rwlock_base(mem, base + 8, 3, True, {55})[:2] == (
        base, "read-for-writer")


def test_cycles_long_chain_and_several_components():
    class T(object):
        pass
    n = 5000
    edges = [graph.Edge(i, i + 1, "lock") for i in range(1, n)]
    edges.append(graph.Edge(n, 1, "lock"))           # one long cycle
    edges += [graph.Edge(n + 1, n + 2, "join"), graph.Edge(n + 2, n + 1, "lock")]
    edges += [graph.Edge(n + 3, n + 3, "lock")]      # self
    edges += [graph.Edge(n + 4, 1, "lock")]          # behind the first
    cycles = graph.find_cycles(range(1, n + 5), edges)
    assert [len(c) for c in cycles] == [n, 2, 1]
    first = cycles[0]
    assert [e.src for e in first] == list(range(1, n + 1))


def test_scc_with_extra_edges_reports_every_member():
    edges = [graph.Edge(1, 2, "lock"), graph.Edge(2, 1, "lock"), graph.Edge(2, 3, "lock"),
             graph.Edge(3, 1, "lock")]
    (cyc,) = graph.find_cycles([1, 2, 3], edges)
    assert sorted(set(e.src for e in cyc)) == [1, 2, 3]


def test_escape_terminal_sequences():
    assert escape("a\x1b]0;pwned\x07b\x00") == "a\\x1b]0;pwned\\x07b\\x00"
    assert escape("x" * 1000, 10) == "x" * 10 + "..."
    assert escape(b"\xff\xc2\x9b31m") == "\\xff\\x9b31m"
