"""Unit tests of the GAsyncQueue identification (layouts.decode_gasyncqueue,
classify.queue_of_wait) and its rendering: made-up registers and memory
reach the cases the fixtures cannot (garbage words, a frame that
disagrees with the futex word).  The real-gdb checks are in
test_janus_plugins.py (test_audiobridge_queues*) and
test_janus_plugins_real.py (#3570)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from janus_gdb.analysis import analyze, classify, verdict  # noqa: E402
from janus_gdb.report import json as render_json, text as render_text  # noqa: E402
from janus_gdb.target import layouts  # noqa: E402
from janus_gdb.model import FrameInfo, QueueRef, Snapshot, Wait  # noqa: E402
from test_logic import FakeMemory as Mem  # noqa: E402

ARCH = "i386:x86-64"
FUTEX = 202
Q = 0x5000


def queue(mem, addr, mutex=0, waiting=1, refs=1, length=0, head=0, tail=0):
    """A GAsyncQueue as glib 2.74 lays it out (gasyncqueue.c)."""
    mem.put(addr, "<Q", mutex)            # GMutex
    mem.put(addr + 8, "<Q", 0xdeadbeef)   # GCond.p: unused by the futex GCond, not zeroed
    mem.put(addr + 16, "<I", 7)           # GCond.i[0]: the futex word
    mem.put(addr + 20, "<I", 0)
    mem.put(addr + 24, "<Q", head)
    mem.put(addr + 32, "<Q", tail)
    mem.put(addr + 40, "<Q", length)
    mem.put(addr + 48, "<Q", 0)           # item_free_func
    mem.put(addr + 56, "<I", waiting)
    mem.put(addr + 60, "<i", refs)


def pop_frames(app="janus_videoroom_handler"):
    return [FrameInfo(0, 0x1000, "syscall", lib="libc.so.6", system=True),
            FrameInfo(1, 0x1100, "g_cond_wait", lib="libglib-2.0.so.0", system=True),
            FrameInfo(2, 0x1200, None, lib="libglib-2.0.so.0", system=True),
            FrameInfo(3, 0x1300, "g_async_queue_pop", lib="libglib-2.0.so.0", system=True),
            FrameInfo(4, 0x2000, app, "janus_videoroom.c", 10),
            FrameInfo(5, 0x1400, "start_thread", lib="libc.so.6", system=True)]


def queue_wait(futex=Q + 16):
    return Wait("queue", futex, how="futex wait in g_cond_wait (frame #1)", frame=1)


def test_layout_matches_glib():
    # GMutex (8 bytes), GCond { gpointer p; guint i[2]; }: the futex is cond.i[0]
    assert layouts.GASYNCQUEUE["futex"] == 16
    assert layouts.gasyncqueue_of_futex(Q + 16) == Q
    assert layouts.GASYNCQUEUE["waiting_threads"] == 56
    assert layouts.GASYNCQUEUE["ref_count"] == 60


def test_decode_plausible_queue():
    mem = Mem()
    queue(mem, Q, waiting=2, refs=3)
    d = layouts.decode_gasyncqueue(mem, Q, 10)
    assert d["plausible"], d
    assert "waiting_threads 2" in d["summary"] and "empty" in d["summary"]
    queue(mem, Q, length=1, head=0x7000, tail=0x7000)
    assert layouts.decode_gasyncqueue(mem, Q, 10)["plausible"]


def test_decode_rejects_garbage():
    cases = [dict(mutex=5), dict(waiting=0), dict(waiting=11), dict(refs=0), dict(refs=-1),
             dict(length=0, head=0x7000), dict(length=3, head=0, tail=0),
             dict(length=1 << 30, head=1, tail=1)]
    for kw in cases:
        mem = Mem()
        queue(mem, Q, **kw)
        d = layouts.decode_gasyncqueue(mem, Q, 10)
        assert not d["plausible"] and d["why"], (kw, d)
    assert not layouts.decode_gasyncqueue(Mem(), Q, 10)["plausible"]   # unreadable
    assert "aligned" in layouts.decode_gasyncqueue(Mem(), Q + 4, 10)["why"]


def test_queue_from_futex_words():
    mem = Mem()
    queue(mem, Q)
    q = classify.queue_of_wait(queue_wait(), mem, 4)
    assert q.addr == Q and q.evidence == "futex" and q.name is None
    assert "cond.i[0] (+16)" in q.how


def test_queue_from_frame_agreeing_with_futex():
    mem = Mem()
    queue(mem, Q)
    q = classify.queue_of_wait(queue_wait(), mem, 4,
                               (Q, "participant->outbuf", 4, "evaluated in f"))
    assert q.evidence == "frame" and q.expr == "participant->outbuf" and q.addr == Q
    # a frame agreeing with the futex word wins even when the words look odd
    mem2 = Mem()
    queue(mem2, Q, waiting=0)
    q = classify.queue_of_wait(queue_wait(), mem2, 4, (Q, "queue", 4, "evaluated in f"))
    assert q.evidence == "frame" and "do not look like" in q.how


def test_frame_disagreeing_with_futex():
    mem = Mem()
    queue(mem, Q)
    q = classify.queue_of_wait(queue_wait(), mem, 4, (0x9000, "other", 4, "evaluated in f"))
    assert q.addr == Q and q.evidence == "futex"
    assert "0x9000" in q.how and "not the futex word" in q.how
    # neither: no queue claimed, and the wait says why
    w = queue_wait()
    assert classify.queue_of_wait(w, Mem(), 4, (0x9000, "other", 4, "x")) is None
    assert "which queue is not known" in w.how


def test_not_a_queue_wait():
    mem = Mem()
    queue(mem, Q)
    assert classify.queue_of_wait(Wait("gcond", Q + 16), mem, 4) is None
    assert classify.queue_of_wait(Wait("queue", None), mem, 4) is None
    assert classify.queue_of_wait(None, mem, 4) is None


def _report(mem, snaps):
    return analyze.build_report(snaps, ARCH, mem, {"kind": "core", "pid": 1}, [])


def test_build_report_attaches_queue_and_renders():
    mem = Mem()
    queue(mem, Q)
    s = Snapshot(1, 11, None, {"sysno": FUTEX, "args": (Q + 16, 0x80, 7)}, pop_frames())
    rep = _report(mem, [s])
    t = rep.threads[0]
    assert t.state == "idle" and t.wait.kind == "queue"
    assert t.wait.queue is not None and t.wait.queue.addr == Q
    data = render_json.to_dict(rep, "janus-waitgraph")
    wq = data["threads"][0]["wait"]["queue"]
    assert wq["address"] == Q and wq["evidence"] == "futex" and wq["name"] is None
    assert "a queue at 0x%x" % Q in verdict.waiting_on(t, rep)
    # named (as the naming step does): the verdict phrase, text escaped
    t.wait.queue.name = 'participant->outbuf of participant 77 "\x1b[31mbob"'
    assert verdict.waiting_on(t, rep).startswith("waiting on the queue participant->outbuf")
    assert "\x1b" not in render_text.detail_text(t)
    lines = render_text.queue_lines(t, "  ")
    assert lines and "\x1b" not in lines[0] and "0x%x" % Q in lines[0]


def test_queueref_label():
    q = QueueRef(0x10, "futex", "how")
    assert q.label() == "a queue at 0x10"
    q.name = "janus_videoroom.c: messages"
    assert q.label() == "janus_videoroom.c: messages"
    assert q.to_dict()["object"] is None


def test_restarted_timed_pop_keeps_its_queue():
    """A timed pop interrupted by an earlier attach and resumed as
    restart_syscall (219) still has its futex arguments in the registers:
    the queue is read the same way (and nothing is claimed when the words
    do not fit)."""
    mem = Mem()
    queue(mem, Q)
    frames = pop_frames()
    frames[3] = FrameInfo(3, 0x1300, "g_async_queue_timeout_pop", lib="libglib-2.0.so.0",
                          system=True)
    s = Snapshot(1, 11, None, {"sysno": 219, "args": (Q + 16, 0x80, 7)}, frames)
    t = _report(mem, [s]).threads[0]
    assert t.state == "idle" and t.wait is not None and t.wait.kind == "queue", t.detail
    assert "restart_syscall" in t.wait.how
    assert t.wait.queue is not None and t.wait.queue.addr == Q
    s2 = Snapshot(1, 11, None, {"sysno": 219, "args": (Q + 16, 0x80, 7)}, frames)
    t2 = _report(Mem(), [s2]).threads[0]
    assert t2.state == "idle" and t2.wait.queue is None
    assert "which queue is not known" in t2.wait.how
