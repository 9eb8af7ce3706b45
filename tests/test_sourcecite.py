"""analysis/sourcecite.py without gdb: a runtime lock's static class, which
reports need the source check, and what is attached from a static report
of tests/fixtures/hangcite.c (lines from its SITE markers)."""

import os

import gdbrun
from janus_gdb.analysis import graph, sourcecite
from janus_gdb.csource import lockorder
from janus_gdb.model import Lock, ObjectRef

SRC = os.path.join(gdbrun.FIXTURES, "hangcite.c")
SITES = gdbrun.site_lines(SRC)


class FakeReport(object):
    def __init__(self, locks, cycles=(), roots=None):
        self.locks = list(locks)
        self.cycles = list(cycles)
        self.roots = roots or {}
        self.warnings = []
        self.source_orders = {}


def global_lock(addr, symbol, source_file):
    l = Lock(addr, "pthread_mutex")
    l.symbol = symbol
    l.source_file = source_file
    return l


def test_lock_class():
    assert sourcecite.lock_class(global_lock(1, "rooms_mutex", "janus_videoroom.c")) == \
        "janus_videoroom.c: rooms_mutex"
    # no file (no debug info), an offset into a variable, a library offset: no class
    assert sourcecite.lock_class(global_lock(1, "rooms_mutex", None)) is None
    assert sourcecite.lock_class(global_lock(1, "handle+8", "janus.c")) is None
    assert sourcecite.lock_class(global_lock(1, "libjanus_videoroom.so+0x8e7e0", None)) is None
    l = Lock(2, "gmutex")
    l.obj = ObjectRef("janus_ice_handle", 0x1000, "mutex")
    assert sourcecite.lock_class(l) == "janus_ice_handle.mutex"
    l.obj = ObjectRef("janus_ice_handle", 0x1000, "inner.mutex")
    assert sourcecite.lock_class(l) is None


def test_needed_only_for_leaks_and_cycles():
    held = global_lock(1, "registry_mutex", "hangcite.c")
    assert not sourcecite.needed(FakeReport([held]))
    held.leaked = True
    assert sourcecite.needed(FakeReport([held]))
    # nothing needed: no files read, no warning
    assert sourcecite.check(FakeReport([global_lock(1, "x", "a.c")]), [SRC]) == []


def test_attach_leak_and_cycle():
    static = lockorder.analyze([SRC], use_cache=False)
    leak = global_lock(1, "registry_mutex", "hangcite.c")
    leak.leaked = True
    other = global_lock(2, "registry_mutex", None)     # no class: nothing cited
    other.leaked = True
    acc = global_lock(3, "accounts_mutex", "hangcite.c")
    aud = global_lock(4, "audit_mutex", "hangcite.c")
    # T1 holds accounts and waits for audit (held by T2), T2 the reverse
    cyc = [graph.Edge(1, 2, "lock", aud), graph.Edge(2, 1, "lock", acc)]
    rep = FakeReport([leak, other, acc, aud], [cyc])
    sourcecite.attach(rep, static)
    assert [(d["exit"]["line"], d["lock"]["line"]) for d in leak.missing_unlocks] == \
        [(SITES["leak_return"], SITES["leak_lock"])]
    assert other.missing_unlocks == []
    assert "hangcite.c:%d returns (in registry_update) while holding registry_mutex" % \
        SITES["leak_return"] in sourcecite.unlock_text(leak.missing_unlocks[0])
    (order,) = rep.source_orders[0]
    assert sorted(e["line"] for e in order["edges"]) == sorted(
        [SITES["abba_first"], SITES["abba_second"]])
    assert "(in deposit)" in order["text"] and "(in audit_all)" in order["text"]
    # a cycle whose orders the source does not show cites nothing
    reg = global_lock(5, "registry_mutex", "hangcite.c")
    rep2 = FakeReport([acc, reg], [[graph.Edge(1, 2, "lock", reg), graph.Edge(2, 1, "lock", acc)]])
    sourcecite.attach(rep2, static)
    assert rep2.source_orders == {}


def test_budget_and_file_bound():
    leak = global_lock(1, "registry_mutex", "hangcite.c")
    leak.leaked = True
    warn = sourcecite.check(FakeReport([leak]), [SRC, SRC], max_files=1)
    assert len(warn) == 1 and "skipped" in warn[0] and leak.missing_unlocks == []
    warn = sourcecite.check(FakeReport([leak]), [SRC], use_cache=False, budget=-1)
    assert len(warn) == 1 and "stopped after" in warn[0] and leak.missing_unlocks == []


def test_a_failing_static_analysis_costs_only_a_warning(monkeypatch):
    leak = global_lock(1, "registry_mutex", "hangcite.c")
    leak.leaked = True

    def broken(paths, use_cache=True, deadline=None):
        raise TypeError("'<' not supported between instances of 'tuple' and 'NoneType'")
    monkeypatch.setattr(lockorder, "analyze", broken)
    warn = sourcecite.check(FakeReport([leak]), [SRC])
    assert len(warn) == 1 and warn[0].startswith("source check failed (TypeError"), warn
    assert leak.missing_unlocks == []


def test_the_site_the_evidence_saw_comes_first():
    static = lockorder.analyze([SRC], use_cache=False)
    f1 = static.findings[0]
    fake = lockorder.Finding("missing-unlock", 1, "t", file="/x/other.c", function="g",
                             lock={"class": f1.lock["class"], "expr": "m", "line": 7},
                             exit={"line": 9, "how": "return", "return_line": 9})
    static.findings.insert(0, fake)
    leak = global_lock(1, "registry_mutex", "hangcite.c")
    leak.leaked = True
    sourcecite.attach(FakeReport([leak]), static)
    assert [d["file"] for d in leak.missing_unlocks][0] == "/x/other.c"
    leak.leak_site = "hangcite.c:%d in registry_update (lock-debug log line 3)" % SITES["leak_lock"]
    sourcecite.attach(FakeReport([leak]), static)
    assert leak.missing_unlocks[0]["lock"]["line"] == SITES["leak_lock"]
    assert leak.missing_unlocks[1]["file"] == "/x/other.c"
