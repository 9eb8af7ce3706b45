"""janus-waitgraph / janus-locks against real hung processes, live and from cores.

Each scenario prints its own ground truth (which thread holds which lock);
the assertions compare the analysis with it, never with fixed numbers.
"""

import pytest

import gdbrun

MODES = ["live", "core"]


def assert_cycle_edges(r, truth, pairs):
    """PAIRS: [(waiter role, lock name, owner role)] must all be cycle edges."""
    for waiter, lock, owner in pairs:
        addr = truth.lock(lock)
        assert addr in r.locks, "lock %s not reported" % lock
        l = r.locks[addr]
        assert l["owner"]["lwp"] == truth.lwp(owner), (lock, l)
        assert l["owner"]["evidence"] == "exact"
        assert truth.lwp(waiter) in r.waiter_lwps(addr)
        assert r.state(truth.lwp(waiter)) == "lock-wait"
        # the owner's "holds" lists the lock
        assert l["id"] in r.by_lwp[truth.lwp(owner)]["holds"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", ["debug", "stripped"])
def test_pthread_cycle_with_bystanders(scenarios, mode, variant):
    r, t = scenarios.result("pthread_cycle", mode, variant)
    assert r.data["verdict"].startswith("Found 1 deadlock (2 threads)")
    assert r.data["deadlocks"] == 1
    assert r.data["target"]["kind"] == mode
    assert r.data["target"]["threads"] == len(r.data["threads"]) == 9
    assert r.cycle_lwp_sets() == [{t.lwp("cycle_a"), t.lwp("cycle_b")}]
    assert_cycle_edges(r, t, [("cycle_a", "m2", "cycle_b"), ("cycle_b", "m1", "cycle_a")])
    if variant == "debug":  # a stripped executable has no names to give
        assert r.by_lwp[t.lwp("cycle_a")]["entry"] == "cycle_thread_a"
        assert r.by_lwp[t.lwp("main")]["entry"] == "main"
    # bystanders: waiters queue on m1 behind the cycle, main joins cycle_a
    assert t.lwps("waiter") <= r.waiter_lwps(t.lock("m1"))
    for lwp in t.lwps("waiter"):
        assert r.behind(lwp) == {"kind": "cycle", "cycle": 1, "thread": None, "lock": None}
    main = r.by_lwp[t.lwp("main")]
    assert main["state"] == "join"
    assert main["wait"]["target_lwp"] == t.lwp("cycle_a")
    assert r.behind(t.lwp("main"))["kind"] == "cycle"
    for lwp in t.lwps("cond_waiter"):
        assert r.state(lwp) == "idle"
        assert r.behind(lwp) is None
    assert r.state(t.lwp("sleeper")) == "sleep"
    # the idle condvar's mutex is not a lock anyone waits for
    assert t.lock("cv_m") not in r.locks
    # the waiters are grouped into one line with their count
    group = [g for g in r.data["groups"] if set(r.by_num[n]["lwp"] for n in g["threads"])
             == t.lwps("waiter")]
    assert group and group[0]["count"] == len(t.lwps("waiter"))


@pytest.mark.parametrize("mode", MODES)
def test_pthread_cycle_text_report(scenarios, mode):
    res, sc = scenarios.analyze("pthread_cycle", mode, command="janus-waitgraph")
    t = sc.truth
    text = gdbrun.extract_report(res.stdout)
    assert text is not None, res.stdout
    lines = text.splitlines()
    assert lines[0].startswith("Found 1 deadlock (2 threads), 4 threads blocked behind it.")
    assert "Deadlock #1 (2 threads)" in text
    for role in ("cycle_a", "cycle_b"):
        assert "(LWP %d)" % t.lwp(role) in text
    assert "held by T" in text and "[exact: __data.__owner = %d]" % t.lwp("cycle_a") in text
    assert "Blocked behind deadlock #1:" in text
    assert "3 threads wait for" in text
    assert "Stacks:" in text
    # frames of the cycle threads name the fixture's functions
    assert "cycle_thread_a" in text or "cycle_a" in text


@pytest.mark.parametrize("mode", MODES)
def test_three_thread_cycle(scenarios, mode):
    r, t = scenarios.result("three_cycle", mode)
    assert r.data["verdict"].startswith("Found 1 deadlock (3 threads)")
    assert r.cycle_lwp_sets() == [{t.lwp("cycle_1"), t.lwp("cycle_2"), t.lwp("cycle_3")}]
    assert_cycle_edges(r, t, [("cycle_1", "m2", "cycle_2"), ("cycle_2", "m3", "cycle_3"),
                              ("cycle_3", "m1", "cycle_1")])
    # cycle edges are in wait order
    cyc = r.data["cycles"][0]
    for a, b in zip(cyc["edges"], cyc["edges"][1:] + cyc["edges"][:1]):
        assert a["to"] == b["from"]


@pytest.mark.parametrize("mode", MODES)
def test_two_independent_cycles(scenarios, mode):
    r, t = scenarios.result("two_cycles", mode)
    assert r.data["verdict"].startswith("Found 2 deadlocks (4 threads)")
    assert sorted(map(sorted, r.cycle_lwp_sets())) == sorted(
        [sorted({t.lwp("a1"), t.lwp("a2")}), sorted({t.lwp("b1"), t.lwp("b2")})])
    assert_cycle_edges(r, t, [("a1", "m2", "a2"), ("a2", "m1", "a1"),
                              ("b1", "m4", "b2"), ("b2", "m3", "b1")])


@pytest.mark.parametrize("mode", MODES)
def test_relock_is_a_one_thread_deadlock(scenarios, mode):
    r, t = scenarios.result("relock", mode)
    assert r.data["verdict"].startswith("Found 1 deadlock (1 thread)")
    me = t.lwp("self")
    assert r.cycle_lwp_sets() == [{me}]
    m1 = t.lock("m1")
    assert r.owner_lwp(m1) == me and me in r.waiter_lwps(m1)
    for lwp in t.lwps("waiter"):
        assert r.behind(lwp)["kind"] == "cycle"


@pytest.mark.parametrize("mode", MODES)
def test_owner_thread_exited(scenarios, mode):
    r, t = scenarios.result("dead_owner", mode)
    assert r.data["verdict"].startswith("No deadlock found")
    m1 = r.locks[t.lock("m1")]
    assert m1["owner"]["lwp"] == t.lwp("exiter")
    assert m1["owner"]["alive"] is False and m1["owner"]["thread"] is None
    assert t.lwp("exiter") not in r.by_lwp
    for lwp in t.lwps("waiter"):
        assert r.behind(lwp) == {"kind": "dead-owner", "lock": m1["id"], "thread": None,
                                 "cycle": None}
    res, _ = scenarios.analyze("dead_owner", mode, command="janus-waitgraph")
    text = gdbrun.extract_report(res.stdout)
    assert "Lock whose owner no longer exists" in text
    assert "owner LWP %d is not a thread of this process" % t.lwp("exiter") in text


@pytest.mark.parametrize("mode", MODES)
def test_join_cycle(scenarios, mode):
    r, t = scenarios.result("join_cycle", mode)
    assert r.data["verdict"].startswith("Found 1 deadlock (2 threads)")
    joiner, lockwaiter = t.lwp("joiner"), t.lwp("lockwaiter")
    assert r.cycle_lwp_sets() == [{joiner, lockwaiter}]
    j = r.by_lwp[joiner]
    assert j["state"] == "join" and j["wait"]["target_lwp"] == lockwaiter
    assert r.owner_lwp(t.lock("m1")) == joiner
    kinds = sorted(e["kind"] for e in r.data["cycles"][0]["edges"])
    assert kinds == ["join", "lock"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", ["debug", "stripped"])
def test_gmutex_pileup(scenarios, mode, variant):
    r, t = scenarios.result("gmutex_pileup", mode, variant)
    assert r.data["verdict"].startswith("No deadlock found")
    gm = r.locks[t.lock("gm")]
    assert gm["kind"] == "gmutex"
    assert gm["state"] == "locked, contended"
    assert r.waiter_lwps(t.lock("gm")) == t.lwps("waiter")
    assert r.state(t.lwp("holder")) == "io"
    res, _ = scenarios.analyze("gmutex_pileup", mode, variant, command="janus-waitgraph")
    text = gdbrun.extract_report(res.stdout)
    assert "%d threads wait for" % len(t.lwps("waiter")) in text
    if variant == "stripped":
        # no debug info, no source: nothing to infer from, and no guess
        assert gm["owner"]["evidence"] == "unknown" and gm["owner"]["lwp"] is None
        assert not gm["leaked"]
        for lwp in t.lwps("waiter"):
            assert r.behind(lwp)["kind"] == "unknown-owner"
        # ... but the threads that could hold it are listed, the holder among them
        assert r.by_lwp[t.lwp("holder")]["num"] in gm["possible_owners"], gm
        assert r.data["verdict_kind"] == "undetermined"
        assert "(owner unknown; candidates T" in r.data["verdict"]
        assert "GMutex records no owner" in text
        return
    # the holder took it through take_gmutex(), a helper of the same file that
    # returns holding its argument: its call counts as the lock
    line = gdbrun.source_line("scenarios.c", "    take_gmutex(&gm);")
    holder = r.by_lwp[t.lwp("holder")]
    assert gm["owner"]["lwp"] == t.lwp("holder") and gm["owner"]["evidence"] == "inferred"
    assert "locked at scenarios.c:%d in gmutex_holder" % line in gm["owner"]["detail"]
    for lwp in t.lwps("waiter"):
        assert r.behind(lwp) == {"kind": "thread", "thread": holder["num"], "lock": None,
                                 "cycle": None}
    assert "Blocked behind T%d (LWP %d)" % (holder["num"], holder["lwp"]) in text


@pytest.mark.parametrize("mode", MODES)
def test_gmutex_cycle_found_by_inference(scenarios, mode):
    """GMutex records no owner; the source of each frame says who holds what."""
    r, t = scenarios.result("gmutex_cycle", mode)
    assert r.data["verdict"].startswith("Found 1 deadlock (2 threads), 2 threads blocked")
    a, b = t.lwp("cycle_a"), t.lwp("cycle_b")
    assert r.cycle_lwp_sets() == [{a, b}]
    for lock, owner, func in (("gm1", a, "gmutex_cycle_a"), ("gm2", b, "gmutex_cycle_b")):
        line = gdbrun.source_line("scenarios.c", "take_gmutex(&%s);" % lock)
        o = r.locks[t.lock(lock)]["owner"]
        assert o["lwp"] == owner and o["evidence"] == "inferred" and o["source"] == "lockset"
        assert o["detail"].startswith("locked at scenarios.c:%d in %s" % (line, func))
    assert r.waiter_lwps(t.lock("gm1")) == {b} | t.lwps("waiter")
    assert r.waiter_lwps(t.lock("gm2")) == {a}
    for lwp in t.lwps("waiter"):
        assert r.behind(lwp)["kind"] == "cycle"


@pytest.mark.parametrize("mode", MODES)
def test_gmutex_cycle_is_not_claimed_without_source(scenarios, mode):
    """Stripped, nothing shows who holds a GMutex: no false cycle, but every
    waiter is shown, with the reason a deadlock cannot be seen."""
    r, t = scenarios.result("gmutex_cycle", mode, "stripped")
    # the verdict names the root it cannot see past: owner unknown, with candidates
    assert r.data["verdict"].startswith("No deadlock found: 3 threads blocked behind M"), \
        r.data["verdict"]
    assert "owner unknown; candidates" in r.data["verdict"]
    assert r.data["verdict_kind"] == "undetermined"
    assert r.data["cycles"] == []
    # each lock's real owner is among its candidates; no waiter is
    for lock, owner in (("gm1", "cycle_a"), ("gm2", "cycle_b")):
        l = r.locks[t.lock(lock)]
        assert not l["leaked"]
        assert r.by_lwp[t.lwp(owner)]["num"] in l["possible_owners"], l
        assert not set(l["possible_owners"]) & set(l["waiters"]), l
    assert r.waiter_lwps(t.lock("gm1")) == {t.lwp("cycle_b")} | t.lwps("waiter")
    assert r.waiter_lwps(t.lock("gm2")) == {t.lwp("cycle_a")}
    for lwp in t.lwps("waiter") | {t.lwp("cycle_a"), t.lwp("cycle_b")}:
        assert r.behind(lwp)["kind"] == "unknown-owner"
    res, _ = scenarios.analyze("gmutex_cycle", mode, "stripped", command="janus-waitgraph")
    text = gdbrun.extract_report(res.stdout)
    assert "Note: 2 locks with waiters record no owner (GMutex)" in text


@pytest.mark.parametrize("mode", MODES)
def test_rwlock_held_for_writing(scenarios, mode):
    r, t = scenarios.result("rwlock_writer", mode)
    assert r.data["verdict"].startswith("No deadlock found")
    rw = r.locks[t.lock("rw")]
    assert rw["kind"] == "pthread_rwlock"
    assert rw["state"].startswith("write-locked")
    assert rw["owner"]["lwp"] == t.lwp("writer") and rw["owner"]["evidence"] == "exact"
    assert r.waiter_lwps(t.lock("rw")) == t.lwps("reader") | t.lwps("writer2")
    for lwp in t.lwps("reader"):
        assert r.by_lwp[lwp]["wait"]["kind"] == "rwlock-read"
        assert r.behind(lwp) == {"kind": "thread", "thread": r.by_lwp[t.lwp("writer")]["num"],
                                 "lock": None, "cycle": None}
    assert r.by_lwp[t.lwp("writer2")]["wait"]["kind"] == "rwlock-write"
    assert r.state(t.lwp("writer")) == "sleep"


def check_idle_queues(r, t, evidence=("frame",)):
    """healthy: the queue worker waits on the static idle_queue (named by
    the variable, its address printed by the fixture; EVIDENCE: how it may
    be found, x86_64: its pop call's argument in the frame).  The pool's
    idle workers wait in glib's unnamed static pool functions (a GCond wait
    by their frames): no queue is claimed for them unless a frame says
    queue, and then never a name."""
    q = r.by_lwp[t.lwp("queue_worker")]["wait"]["queue"]
    assert q is not None and q["address"] == int(t.info["idle_queue"][0], 16), q
    assert q["name"] == "scenarios.c: idle_queue" and q["evidence"] in evidence, q
    for lwp in t.lwps("pool"):
        w = r.by_lwp[lwp]["wait"]
        assert w is not None, r.by_lwp[lwp]
        if w["kind"] != "queue":
            assert w.get("queue") is None, w
        elif w["queue"] is not None:
            assert w["queue"]["name"] is None and w["futex"] == w["queue"]["address"] + 16, w


@pytest.mark.parametrize("mode", MODES)
def test_healthy_busy_process(scenarios, mode):
    r, t = scenarios.result("healthy", mode)
    assert r.data["verdict"].startswith("No deadlock found")
    assert r.data["cycles"] == []
    for lwp in t.lwps("pool") | t.lwps("queue_worker") | t.lwps("cond_waiter"):
        assert r.state(lwp) == "idle", r.by_lwp[lwp]
    queue = r.by_lwp[t.lwp("queue_worker")]["wait"]
    assert queue["kind"] == "queue"
    check_idle_queues(r, t)
    assert r.state(t.lwp("poller")) == "poll"
    assert r.state(t.lwp("sleeper")) == "sleep"
    # the hostile thread name: intact in JSON (live; cores carry no names),
    # escaped in text
    if mode == "live":
        assert r.by_lwp[t.lwp("sleeper")]["name"] == "\x1b]0;pwn\x07x"
    res, _ = scenarios.analyze("healthy", mode, command="janus-waitgraph --all")
    assert "\x1b" not in res.stdout and "\x07" not in res.stdout
    if mode == "live":
        assert '"\\x1b]0;pwn\\x07x"' in res.stdout
    # nobody is reported as blocked behind a lock holder for long
    for b in r.data["blocked"]:
        assert r.by_num[b["thread"]]["lwp"] in t.lwps("contender")
    for th in r.data["threads"]:
        assert th["state"] != "unknown", th
    # locks held by a thread nobody waits for are found from debug info
    holder = t.lwp("quiet_holder")
    held = r.locks[t.lock("held_m")]
    assert held["owner"]["lwp"] == holder and held["owner"]["evidence"] == "exact"
    assert held["waiters"] == [] and held["symbol"] == "held_m"
    # ... and its lock calls in the source say the same (pthread: corroborated)
    assert held["inference"]["lwp"] == holder
    gm = r.locks[t.lock("held_gm")]
    assert gm["kind"] == "gmutex" and gm["state"] == "locked"
    # a GMutex records no owner: inferred from the source of the holder's frame
    line = gdbrun.source_line("scenarios.c", "g_mutex_lock(&held_gm);")
    assert gm["owner"]["lwp"] == holder and gm["owner"]["evidence"] == "inferred"
    assert gm["owner"]["source"] == "lockset"
    assert "locked at scenarios.c:%d in quiet_lock_holder" % line in gm["owner"]["detail"]
    assert held["id"] in r.by_lwp[holder]["holds"] and gm["id"] in r.by_lwp[holder]["holds"]


def test_locks_command_lists_owner_and_waiters(scenarios):
    res, sc = scenarios.analyze("pthread_cycle", "live", command="janus-locks")
    t = sc.truth
    out = res.stdout
    assert "2 locks held or waited for." in out  # cv_m is free: not listed
    assert "0x%x" % t.lock("m1") in out and "0x%x" % t.lock("m2") in out
    assert "owner    T" in out and "(LWP %d)" % t.lwp("cycle_a") in out
    assert "waiters  4:" in out  # cycle_b and the 3 bystanders wait for m1


def test_locks_command_json_matches_waitgraph(scenarios):
    res, _ = scenarios.analyze("rwlock_writer", "core", command="janus-locks --format json")
    locks = gdbrun.Result(gdbrun.extract_json(res.stdout))
    wg, _ = scenarios.result("rwlock_writer", "core")
    assert locks.data["schema"] == "janus-gdb/1" and locks.data["command"] == "janus-locks"
    assert locks.data["locks"] == wg.data["locks"]


def test_live_target_is_left_as_it_was(scenarios):
    sc = scenarios.get("pthread_cycle")
    before = sc.syscall_state()
    # gdb refuses any write or inferior call while the commands run
    res = gdbrun.gdb(["janus-waitgraph", "janus-locks"], pid=sc.pid, extra=[
        "-iex", "set may-write-memory off", "-iex", "set may-write-registers off",
        "-iex", "set may-call-functions off"])
    assert "Found 1 deadlock" in res.stdout and "2 locks held or waited for" in res.stdout
    assert sc.proc.poll() is None
    assert sc.proc_state() in ("S", "R")
    after = sc.syscall_state()
    assert set(after) == set(before)
    # every futex wait (the deadlock and its queue) is exactly as it was,
    # same call, same lock address, same expected value.  (The sleeper loops
    # on its own, and a sleep interrupted by the attach resumes as
    # restart_syscall: ptrace's doing, so it is not compared.)
    futex_waits = dict((tid, call) for tid, call in before.items() if call.startswith("202 "))
    assert len(futex_waits) >= sc.truth.expect_futex
    for tid, call in futex_waits.items():
        assert after[tid] == call


def test_healthy_target_keeps_running_after_detach(scenarios):
    sc = scenarios.get("healthy")
    res = gdbrun.gdb(["janus-waitgraph"], pid=sc.pid)
    assert "No deadlock found" in res.stdout

    def switches():
        """Context switches of all threads: the contenders sleep 1 ms per loop."""
        import os
        total = 0
        for tid in os.listdir("/proc/%d/task" % sc.pid):
            with open("/proc/%d/task/%s/status" % (sc.pid, tid)) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        return total
    import time
    start = switches()
    time.sleep(0.5)
    assert switches() > start + 100  # the contenders still run
    assert sc.proc_state() in ("S", "R")


@pytest.mark.parametrize("mode", MODES)
def test_deep_recursion_is_bounded_by_depth(scenarios, mode):
    """A lock wait 10,000 frames deep: unwinding stops at --depth, the wait is
    still read from the registers and its owner from the lock."""
    r, t = scenarios.result("deep_recursion", mode)
    deep = r.by_lwp[t.lwp("deep")]
    assert deep["state"] == "lock-wait" and deep["frames_truncated"] is True
    assert len(deep["frames"]) == 64          # the default --depth
    assert r.owner_lwp(t.lock("deep_m")) == t.lwp("holder")
    res, _ = scenarios.analyze("deep_recursion", mode, command="janus-waitgraph --depth 12000 "
                               "--format json")
    deep = gdbrun.Result(gdbrun.extract_json(res.stdout)).by_lwp[t.lwp("deep")]
    # the whole stack when asked: 10,000 recursions + the lock call and the thread's base
    assert len(deep["frames"]) > 10000 and deep["frames_truncated"] is False
    assert deep["entry"] == "deep_waiter"


@pytest.mark.parametrize("mode", MODES)
def test_unreadable_source_gives_no_guess_and_says_why(scenarios, binaries, mode):
    """Debug info, but the C file is not where it says (a core analysed on
    another machine): owners stay unknown, nothing is called leaked, and a
    warning names the file and the fix; `directory` brings it back."""
    sc = scenarios.get("gmutex_cycle")
    hide = ["-iex", "set substitute-path %s /nonexistent" % gdbrun.FIXTURES]
    if mode == "live":
        res = gdbrun.gdb(["janus-waitgraph --format json"], pid=sc.pid, extra=hide)
    else:
        res = gdbrun.gdb(["janus-waitgraph --format json"], exe=binaries.debug,
                         core=scenarios.core("gmutex_cycle"), extra=hide)
    assert "Traceback" not in res.stdout + res.stderr
    r = gdbrun.Result(gdbrun.extract_json(res.stdout))
    assert r.data["cycles"] == []
    for name in ("gm1", "gm2"):
        lock = r.locks[sc.truth.lock(name)]
        assert lock["owner"]["evidence"] == "unknown" and not lock["leaked"]
        assert "without readable source" in lock["owner"]["detail"]
    warning = [w for w in r.data["warnings"] if w.startswith("source not readable")]
    assert warning and "scenarios.c" in warning[0] and "`directory`" in warning[0]
    back = hide + ["-ex", "directory %s" % gdbrun.FIXTURES]
    if mode == "live":
        res = gdbrun.gdb(["janus-waitgraph --format json"], pid=sc.pid, extra=back)
    else:
        res = gdbrun.gdb(["janus-waitgraph --format json"], exe=binaries.debug,
                         core=scenarios.core("gmutex_cycle"), extra=back)
    r = gdbrun.Result(gdbrun.extract_json(res.stdout))
    assert len(r.data["cycles"]) == 1
