"""Unit tests of owner inference and Janus naming (pure logic, no gdb).

The real-gdb tests (test_janus_fixtures.py, test_janus_real.py) prove the
same logic on real processes; these reach the corner cases: conflicting
claims, unlocks by callees, stale claims, type matches, lock-debug logs.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from janus_gdb.analysis import analyze, infer  # noqa: E402
from janus_gdb.report import text as render_text  # noqa: E402
from janus_gdb.janus import janusdb  # noqa: E402
from janus_gdb.model import Claim, FrameInfo, ObjectRef  # noqa: E402
from test_logic import ARCH, FUTEX, NANOSLEEP, FakeMemory, snap  # noqa: E402

GM1, GM2, GM3 = 0x5000, 0x6000, 0x7000


def gmutex_wait_frames(app, line=20):
    return [FrameInfo(0, 0x1000, "syscall", lib="libc.so.6", system=True),
            FrameInfo(1, 0x1100, None, lib="libglib-2.0.so.0", system=True),
            FrameInfo(2, 0x2000, app, "app.c", line),
            FrameInfo(3, 0x1200, "start_thread", lib="libc.so.6", system=True)]


def sleeping_frames(app, line=30):
    return [FrameInfo(0, 0x1000, "clock_nanosleep", lib="libc.so.6", system=True),
            FrameInfo(1, 0x2000, app, "app.c", line),
            FrameInfo(2, 0x1200, "start_thread", lib="libc.so.6", system=True)]


def claim(level, addr, line=12, function="f", **kw):
    return Claim(level, function, "app.c", line, "&m", addr=addr, kind="gmutex", **kw)


def waiting(num, lwp, addr, claims=(), app="f"):
    s = snap(num, lwp, FUTEX, (addr, 128, 2), gmutex_wait_frames(app))
    s.claims = list(claims)
    s.analysed = True
    s.analysed_levels = (2,)    # its application frame's source was read
    return s


def sleeping(num, lwp, claims=(), app="g"):
    s = snap(num, lwp, NANOSLEEP, frames=sleeping_frames(app))
    s.claims = list(claims)
    s.analysed = True
    s.analysed_levels = (1,)
    return s


def build(snaps, mem, words, namer=None, locklog=None):
    for addr, word in words.items():
        mem.put32(addr, word)
    return analyze.build_report(snaps, ARCH, mem, {"kind": "core", "pid": 1}, [], (),
                                namer, locklog)


def test_gmutex_cycle_from_claims_is_a_deadlock():
    mem = FakeMemory()
    r = build([waiting(1, 101, GM2, [claim(2, GM1, line=11)]),
               waiting(2, 102, GM1, [claim(2, GM2, line=13)])], mem, {GM1: 2, GM2: 2})
    assert len(r.cycles) == 1
    locks = dict((l.addr, l) for l in r.locks)
    assert locks[GM1].owner_lwp == 101 and locks[GM1].evidence == "inferred"
    assert locks[GM1].owner_source == "lockset"
    assert locks[GM1].evidence_detail == "locked at app.c:11 in f (frame #2)"
    c = claim(2, GM1, line=11)
    c.at_line = 20
    assert infer._detail(c) == "locked at app.c:11 in f (frame #2), not unlocked before line 20"
    assert locks[GM2].owner_lwp == 102
    assert r.target["mutex_impl"] == "gmutex" and r.target["owners"] == "inferred"
    text = render_text.waitgraph(r)
    assert text.startswith("Found 1 deadlock (2 threads)")
    assert "[inferred: locked at app.c:11 in f (frame #2)]" in text
    assert "GMutex: owners inferred" in text and "--enable-pthread-mutex" in text


def test_claim_on_a_free_lock_is_dropped():
    """cv_m-like: the source says locked, the word says free (a condvar wait released it)."""
    mem = FakeMemory()
    r = build([sleeping(1, 101, [claim(1, GM1)])], mem, {GM1: 0})
    assert r.locks == []


def test_callee_unlock_cancels_callers_claim():
    mem = FakeMemory()
    s = waiting(1, 101, GM2, [claim(3, GM1, line=5),
                              claim(2, GM1, line=40, released=True)])
    r = build([s], mem, {GM1: 1, GM2: 2})
    assert [l.addr for l in r.locks] == [GM2]


def test_two_threads_claiming_one_lock_stay_undecided_without_tie_break():
    mem = FakeMemory()
    r = build([sleeping(1, 101, [claim(1, GM1)]), sleeping(2, 102, [claim(1, GM1)]),
               waiting(3, 103, GM1)], mem, {GM1: 2})
    lock = [l for l in r.locks if l.addr == GM1][0]
    assert lock.owner_lwp is None and lock.evidence == "unknown"
    assert lock.candidates == [1, 2] and "owner undecided" in lock.evidence_detail
    assert not lock.leaked


def test_unconditional_claim_beats_conditional_one():
    mem = FakeMemory()
    r = build([sleeping(1, 101, [claim(1, GM1, conditional=True)]),
               sleeping(2, 102, [claim(1, GM1)]), waiting(3, 103, GM1)], mem, {GM1: 2})
    lock = [l for l in r.locks if l.addr == GM1][0]
    assert lock.owner_lwp == 102


def test_frame_references_break_a_tie():
    mem = FakeMemory()
    a, b = sleeping(1, 101, [claim(1, GM1)]), sleeping(2, 102, [claim(1, GM1)])
    b.refs = {("janus_ice_handle", GM1 - 0x40): 1}

    def namer(locks, threads):
        for l in locks:
            l.obj = ObjectRef("janus_ice_handle", l.addr - 0x40, "mutex", "handle", "handle 7")
        return lambda t: set()
    r = build([a, b, waiting(3, 103, GM1)], mem, {GM1: 2}, namer)
    lock = [l for l in r.locks if l.addr == GM1][0]
    assert lock.owner_lwp == 102 and lock.owner_source == "frameref"
    assert "only its frames point to the janus_ice_handle" in lock.evidence_detail


def test_optimized_out_expression_matches_by_type_and_field():
    mem = FakeMemory()
    c = Claim(2, "janus_videoroom_handler", "janus_videoroom.c", 70, "&participant->streams_mutex",
              type_name="janus_videoroom_publisher", field="streams_mutex", why="optimized out")
    holder = waiting(1, 101, GM2, [c])

    def namer(locks, threads):
        for l in locks:
            if l.addr == GM1:
                l.obj = ObjectRef("janus_videoroom_publisher", GM1 - 8, "streams_mutex")
    r = build([holder, waiting(2, 102, GM1)], mem, {GM1: 2, GM2: 2}, namer)
    lock = [l for l in r.locks if l.addr == GM1][0]
    assert lock.owner_lwp == 101 and lock.owner_source == "type-match"
    assert "`participant` is optimized out there" in lock.evidence_detail


def test_held_lock_nobody_holds_is_leaked_only_when_every_frame_was_read():
    mem = FakeMemory()
    r = build([waiting(1, 101, GM1), sleeping(2, 102)], mem, {GM1: 2})
    lock = r.locks[0]
    assert lock.leaked and "probably leaked" in lock.evidence_detail
    assert r.roots[1].kind == "leaked"
    assert "probably leaked" in render_text.verdict(r)
    # T2's frame was not analysed (no line info, or no readable source): it
    # could hold the lock, so the lock is not called leaked; T2 is the candidate
    blind = sleeping(2, 102)
    blind.analysed_levels = ()
    r = build([waiting(1, 101, GM1), blind], mem, {GM1: 2})
    lock = r.locks[0]
    assert not lock.leaked and "1 frame without line info or without readable source" in \
        lock.evidence_detail
    assert lock.possible == [2] and lock.possible_count == 1
    assert "candidates: T2" in lock.evidence_detail
    assert r.roots[1].kind == "unknown-owner"
    v = render_text.verdict(r)
    assert "leaked" not in v and "owner unknown; candidates T2" in v, v


class FakeSite(object):
    def __init__(self, function, line, lineno):
        self.file, self.function, self.line, self.lineno = "janus.c", function, line, lineno


class FakeLog(object):
    def __init__(self, outstanding):
        self._o = outstanding

    def outstanding(self):
        return self._o


def test_lock_log_names_the_leak_site_and_ties_to_the_only_thread_in_that_function():
    mem = FakeMemory()
    log = FakeLog({GM1: FakeSite("janus_plugin_handle_sdp", 3835, 17)})
    r = build([waiting(1, 101, GM1), sleeping(2, 102)], mem, {GM1: 2}, locklog=log)
    lock = r.locks[0]
    assert lock.leaked and lock.leak_site == "janus.c:3835 in janus_plugin_handle_sdp " \
        "(lock-debug log line 17)"
    assert "last locked at janus.c:3835" in lock.evidence_detail
    unread = sleeping(2, 102, app="janus_plugin_handle_sdp")
    unread.analysed_levels = ()   # its frame's source was not read: the log decides
    r = build([waiting(1, 101, GM1), unread], mem, {GM1: 2}, locklog=log)
    lock = r.locks[0]
    assert lock.owner_lwp == 102 and lock.owner_source == "locklog"


def test_net_claims_keep_outermost_first():
    t = type("T", (), {})()
    t.claims = [claim(1, GM2), claim(4, GM1)]
    assert [c.addr for c in infer.net_claims(t)] == [GM1, GM2]


def test_janus_labels():
    pub = janusdb.label("janus_videoroom_publisher",
                        {"user_id": 5678, "display": "alice", "room_id": 1234}, {})
    assert pub == 'publisher 5678 "alice" in room 1234'
    assert janusdb.object_name("janus_videoroom_publisher", "streams_mutex", pub, 1) == \
        'participant->streams_mutex of publisher 5678 "alice" in room 1234'
    assert janusdb.label("janus_ice_handle", {"handle_id": 424242, "opaque_id": "op"}, {}) == \
        'handle 424242 (opaque_id "op")'
    room = janusdb.label("janus_videoroom", {"room_id": 1234, "room_name": "Demo Room"}, {})
    assert room == 'room 1234 "Demo Room"'
    assert janusdb.global_name("rooms_mutex", "janus_videoroom.c") == \
        "janus_videoroom.c: rooms_mutex"
    huge = janusdb.label("janus_videoroom_publisher", {"user_id": 1, "display": "x" * 5000}, {})
    assert len(huge) < 120


def test_roles_from_entry_name_and_library():
    assert janusdb.role_of("janus_ice_handle_thread", None) == "hloop"
    assert janusdb.role_of("janus_transport_task", None) == "request worker"
    assert janusdb.role_of(None, "hloop 4242") == "hloop"
    assert janusdb.role_of("??", None, "libmicrohttpd.so.12") == "http"
    assert janusdb.role_of("mystery", None) is None


def _ghash(mem, addr, size, entries, big=True):
    """A glib 2.74 GHashTable at ADDR with ENTRIES {slot: value}."""
    import struct as st
    hashes, values = addr + 0x100, addr + 0x1000
    for i, b in enumerate(st.pack("<QiIiiIIQQQ", size, 3, size - 1, len(entries),
                                  len(entries) + 1, 3 if big else 1, 0, 0, hashes, values)):
        mem.words[addr + i] = b
    for slot in range(size):
        h = 7 if slot in entries else (1 if slot == size - 1 else 0)  # one tombstone
        for i, b in enumerate(st.pack("<I", h)):
            mem.words[hashes + 4 * slot + i] = b
        v = entries.get(slot, 0xdead)
        width = 8 if big else 4
        for i, b in enumerate(st.pack("<Q" if big else "<I", v)):
            mem.words[values + width * slot + i] = b


def test_ghashtable_values_reads_used_slots_only():
    from janus_gdb.target import layouts
    mem = FakeMemory()
    _ghash(mem, 0x10000, 8, {1: 0x7f0000001000, 5: 0x7f0000002000})
    assert layouts.ghashtable_values(mem, 0x10000, 100) == ([0x7f0000001000, 0x7f0000002000],
                                                            None)
    assert layouts.ghashtable_values(mem, 0x10000, 1) == ([0x7f0000001000], "cut at 1 entries")
    bad = FakeMemory()
    _ghash(bad, 0x10000, 6, {1: 1})   # not a power of two: garbage, not a table
    assert layouts.ghashtable_values(bad, 0x10000, 100) == ([], "implausible GHashTable header")
    assert layouts.ghashtable_values(FakeMemory(), 0x10000, 100) == ([], "unreadable")


def test_lock_log_thread_whose_source_holds_nothing_is_the_leaker_not_the_owner():
    mem = FakeMemory()
    log = FakeLog({GM1: FakeSite("janus_videoroom_handler", 10914, 3)})
    loop = sleeping(2, 102, app="janus_videoroom_handler")
    loop.analysed_levels = {1}   # its frame in that function was read: no claim
    r = build([waiting(1, 101, GM1), loop], mem, {GM1: 2}, locklog=log)
    lock = r.locks[0]
    assert lock.owner_lwp is None and lock.leaked and lock.leaked_by == 2
    assert "T2 is still in janus_videoroom_handler (frame #1)" in lock.leak_site


def test_large_groups_are_one_line_with_a_readable_count():
    """2,000 request workers on one GMutex held by a sleeping thread."""
    mem = FakeMemory()
    holder = sleeping(1, 100, [claim(1, GM1)])
    snaps = [holder] + [waiting(n, 1000 + n, GM1, app="janus_videoroom_handle_message")
                        for n in range(2, 2002)]
    r = build(snaps, mem, {GM1: 2})
    text = render_text.waitgraph(r)
    assert "2,000 threads wait for M1 (held by T1)" in text
    assert "(+1,988, --all lists them)" in text
    assert len(text.splitlines()) < 20
    assert "T2001" in render_text.waitgraph(r, show_all=True)
