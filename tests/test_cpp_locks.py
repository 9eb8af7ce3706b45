"""C++ hangs (tests/fixtures/cpp_locks.cpp): std::thread with lambdas and
functions, RAII guards, std::lock, member locks, recursive/timed/shared
mutexes -- live and on a core, text and JSON, against the truth each
scenario prints.  Expected source lines are found by the fixture's
``MARK:name`` comments, never written here.
"""

import os

import pytest

import gdbrun
from conftest import Scenarios

FIXTURE = "cpp_locks.cpp"
MODES = ["live", "core", "O0-live"]



def mark(name):
    return gdbrun.source_line(FIXTURE, "MARK:%s\n" % name)  # a MARK ends its line


class CxxBinaries(object):
    """The fixture built as the brief says (-O2) and unoptimised (-O0: other
    frames, lambdas not inlined and without a declaration line)."""

    def __init__(self, build_dir):
        self.dir = build_dir
        src = os.path.join(gdbrun.FIXTURES, FIXTURE)
        self.exes = {"debug": gdbrun.compile_cxx(src, os.path.join(build_dir, "cpp_locks")),
                     "O0": gdbrun.compile_cxx(src, os.path.join(build_dir, "cpp_locks_O0"),
                                              ["-O0"])}

    def exe(self, variant):
        return self.exes[variant]


@pytest.fixture(scope="module")
def cxx(build_dir):
    if not gdbrun.have("g++"):
        pytest.skip("g++ is not installed (scripts/install-prereqs --tests)")
    sc = Scenarios(CxxBinaries(build_dir))
    yield sc
    sc.close()


def analyse(cxx, name, mode):
    """(Result of the JSON report, text report, truth).  MODE: live or core
    of the -O2 build, or O0-live: live, built with -O0."""
    variant = "debug"
    if mode == "O0-live":
        mode, variant = "live", "O0"
    res, sc = cxx.analyze(name, mode, variant)
    r = gdbrun.Result(gdbrun.extract_json(res.stdout))
    res_t, _sc = cxx.analyze(name, mode, variant, command="janus-waitgraph")
    text = gdbrun.extract_report(res_t.stdout)
    assert text is not None, res_t.stdout + res_t.stderr
    return r, text, sc.truth


def lwps_of(truth, *roles):
    return set(truth.lwp(role) for role in roles)


def check_owner(r, truth, lock, owner_role, marker, function=None):
    """LOCK is held by OWNER_ROLE, exactly (its __owner), and the source
    evidence of that thread points at the MARKER line of the fixture."""
    addr = truth.lock(lock)
    assert addr in r.locks, "lock %s (0x%x) not reported" % (lock, addr)
    l = r.locks[addr]
    assert l["kind"] == "pthread_mutex", l
    assert l["owner"]["lwp"] == truth.lwp(owner_role), (lock, l["owner"])
    assert l["owner"]["evidence"] == "exact", l["owner"]
    assert not l["leaked"], l
    inf = l["inference"]
    assert inf is not None, "no source evidence for %s: %r" % (lock, l)
    assert inf["lwp"] == truth.lwp(owner_role), inf
    assert (inf["file"], inf["line"]) == (FIXTURE, mark(marker)), inf
    if function:
        assert function in inf["function"], inf
    # the owner's claims list it, at that line
    owner = r.by_lwp[truth.lwp(owner_role)]
    assert any(c["address"] == addr and c["line"] == mark(marker) for c in owner["claims"]), \
        owner["claims"]
    return l


def check_common(r, text, truth, roles, allow_leak=False):
    """No false "leaked", readable std::thread labels for ROLES."""
    if not allow_leak:
        assert "leaked" not in text, text
        assert "without unlocking" not in text, text
        assert not [l for l in r.data["locks"] if l["leaked"] or l["leaked_by"]], r.data["locks"]
    for t in r.data["threads"]:
        entry = t["entry"] or ""
        assert "_State_impl" not in entry and "_Invoker" not in entry, entry
        assert len(entry) <= 120
    for role in roles:
        entry = r.by_lwp[truth.lwp(role)]["entry"]
        assert entry.startswith("std::thread "), entry
        assert entry in text or "(LWP %d)" % truth.lwp(role) not in text, (entry, text)


def lambda_label(function, marker):
    return "std::thread lambda in %s (%s:%d)" % (function, FIXTURE, mark(marker))


@pytest.mark.parametrize("mode", MODES)
def test_abba_lock_guard_lambdas(cxx, mode):
    r, text, t = analyse(cxx, "abba", mode)
    assert r.data["verdict"].startswith("Found 1 deadlock (2 threads)"), r.data["verdict"]
    assert text.startswith("Found 1 deadlock (2 threads)"), text
    assert r.cycle_lwp_sets() == [lwps_of(t, "abba_t1", "abba_t2")]
    check_owner(r, t, "a", "abba_t1", "abba_t1_first", "lambda")
    check_owner(r, t, "b", "abba_t2", "abba_t2_first", "lambda")
    assert t.lwp("abba_t1") in r.waiter_lwps(t.lock("b"))
    assert t.lwp("abba_t2") in r.waiter_lwps(t.lock("a"))
    check_common(r, text, t, ["abba_t1", "abba_t2"])
    # the lambda's thread, named by its enclosing function and where it starts
    assert r.by_lwp[t.lwp("abba_t1")]["entry"] == lambda_label("abba()", "abba_t1_lambda")
    assert r.by_lwp[t.lwp("abba_t2")]["entry"] == lambda_label("abba()", "abba_t2_lambda")
    assert "[exact: __data.__owner = %d]" % t.lwp("abba_t1") in text
    # janus-locks: the exact owner, and where its source took the lock
    res, _sc = cxx.analyze("abba", mode.replace("O0-", ""),
                           "O0" if mode.startswith("O0") else "debug", command="janus-locks")
    assert "[source agrees: locked at %s:%d in the lambda of line %d (frame #" % (
        FIXTURE, mark("abba_t1_first"), mark("abba_t1_lambda")) in res.stdout, res.stdout
    assert "leaked" not in res.stdout


@pytest.mark.parametrize("mode", MODES)
def test_join_while_holding_unique_lock(cxx, mode):
    r, text, t = analyse(cxx, "join_holding", mode)
    assert r.data["verdict"].startswith("Found 1 deadlock (2 threads)"), r.data["verdict"]
    assert r.cycle_lwp_sets() == [lwps_of(t, "main", "worker")]
    main = r.by_lwp[t.lwp("main")]
    assert main["state"] == "join" and main["wait"]["target_lwp"] == t.lwp("worker")
    check_owner(r, t, "registry", "main", "join_main_lock", "join_holding")
    assert r.waiter_lwps(t.lock("registry")) == {t.lwp("worker")}
    check_common(r, text, t, ["worker"])
    assert main["entry"] == "main"
    assert r.by_lwp[t.lwp("worker")]["entry"] == lambda_label("join_holding()",
                                                              "join_worker_lambda")


@pytest.mark.parametrize("mode", MODES)
def test_seven_thread_ring_in_a_vector(cxx, mode):
    r, text, t = analyse(cxx, "ring", mode)
    n = 7
    assert r.data["verdict"].startswith("Found 1 deadlock (7 threads)"), r.data["verdict"]
    roles = ["ring%d" % i for i in range(n)]
    assert r.cycle_lwp_sets() == [lwps_of(t, *roles)]
    for i in range(n):
        check_owner(r, t, "ring%d" % i, "ring%d" % i, "ring_mine", "ring_member")
        assert r.waiter_lwps(t.lock("ring%d" % ((i + 1) % n))) == {t.lwp("ring%d" % i)}
    check_common(r, text, t, roles)
    for role in roles:
        assert r.by_lwp[t.lwp(role)]["entry"] == "std::thread ring_member"


@pytest.mark.parametrize("mode", MODES)
def test_self_relock_of_a_std_mutex(cxx, mode):
    r, text, t = analyse(cxx, "self_relock", mode)
    assert r.data["verdict"].startswith("Found 1 deadlock (1 thread)"), r.data["verdict"]
    assert r.cycle_lwp_sets() == [lwps_of(t, "relocker")]
    check_owner(r, t, "config", "relocker", "self_first", "lambda")
    assert r.waiter_lwps(t.lock("config")) == {t.lwp("relocker")}
    check_common(r, text, t, ["relocker"])


@pytest.mark.parametrize("mode", MODES)
def test_recursive_mutex_held_twice_is_no_deadlock(cxx, mode):
    r, text, t = analyse(cxx, "recursive", mode)
    assert r.data["deadlocks"] == 0 and r.data["cycles"] == [], r.data["verdict"]
    assert not text.startswith("Found"), text
    assert "Deadlock #" not in text
    l = check_owner(r, t, "tree", "holder", "rec_inner", "visit")
    assert l["subkind"] == "recursive", l
    assert r.waiter_lwps(t.lock("tree")) == {t.lwp("waiter")}
    # both visit() frames of the holder claim it: recursion, not a relock
    holder = r.by_lwp[t.lwp("holder")]
    assert holder["state"] != "lock-wait"
    assert len([c for c in holder["claims"] if c["address"] == t.lock("tree")]) == 2
    check_common(r, text, t, ["holder", "waiter"])


@pytest.mark.parametrize("mode", MODES)
def test_timed_mutex_taken_by_try_lock_for(cxx, mode):
    r, text, t = analyse(cxx, "timed", mode)
    assert r.data["verdict"].startswith("Found 1 deadlock (2 threads)"), r.data["verdict"]
    assert r.cycle_lwp_sets() == [lwps_of(t, "timed_t1", "timed_t2")]
    check_owner(r, t, "device", "timed_t1", "timed_try")
    check_owner(r, t, "gate", "timed_t2", "timed_gate")
    claim = [c for c in r.by_lwp[t.lwp("timed_t1")]["claims"]
             if c["address"] == t.lock("device")][0]
    assert claim["trylock"] is True
    assert "by a trylock" in r.locks[t.lock("device")]["inference"]["detail"]
    check_common(r, text, t, ["timed_t1", "timed_t2"])


@pytest.mark.parametrize("mode", MODES)
def test_shared_mutex_reader_writer_cycle(cxx, mode):
    r, text, t = analyse(cxx, "shared", mode)
    # the mutex side is exact
    check_owner(r, t, "stats", "writer", "shared_stats", "lambda")
    assert r.waiter_lwps(t.lock("stats")) == {t.lwp("reader")}
    writer = r.by_lwp[t.lwp("writer")]
    assert writer["state"] == "lock-wait" and writer["wait"]["kind"] == "rwlock-write", writer
    # the reader's source holds the shared_mutex, as a reader
    reader = r.by_lwp[t.lwp("reader")]
    claims = [c for c in reader["claims"] if c["address"] == t.lock("table")]
    assert [c["line"] for c in claims] == [mark("shared_reader")], reader["claims"]
    assert claims[0]["kind"] == "pthread_rwlock"
    assert claims[0]["mode"] == "read"
    # nothing is claimed of the writer's thread that it does not hold
    assert [c["address"] for c in writer["claims"]] == [t.lock("stats")], writer["claims"]
    for role in ("reader", "writer"):
        assert r.by_lwp[t.lwp(role)]["entry"].startswith("std::thread lambda in shared()")
    # std::shared_mutex is a pthread rwlock: the reader is inferred, the cycle closes
    assert r.data["verdict"].startswith("Found 1 deadlock (2 threads)"), r.data["verdict"]
    assert r.cycle_lwp_sets() == [lwps_of(t, "reader", "writer")]
    assert t.lock("table") in r.locks
    assert r.waiter_lwps(t.lock("table")) == {t.lwp("writer")}
    check_common(r, text, t, ["reader", "writer"])


@pytest.mark.parametrize("mode", MODES)
def test_std_lock_with_adopted_guards(cxx, mode):
    r, text, t = analyse(cxx, "std_lock", mode)
    assert r.data["verdict"].startswith("Found 1 deadlock (2 threads)"), r.data["verdict"]
    assert r.cycle_lwp_sets() == [lwps_of(t, "mover", "auditor")]
    check_owner(r, t, "from", "mover", "stdlock_both")
    check_owner(r, t, "to", "mover", "stdlock_both")
    check_owner(r, t, "audit", "auditor", "stdlock_audit")
    assert r.waiter_lwps(t.lock("from")) == {t.lwp("auditor")}
    assert r.waiter_lwps(t.lock("audit")) == {t.lwp("mover")}
    check_common(r, text, t, ["mover", "auditor"])


@pytest.mark.parametrize("mode", MODES)
def test_member_function_locks(cxx, mode):
    r, text, t = analyse(cxx, "member", mode)
    assert r.data["verdict"].startswith("Found 1 deadlock (2 threads)"), r.data["verdict"]
    assert r.cycle_lwp_sets() == [lwps_of(t, "pay_bob", "pay_alice")]
    check_owner(r, t, "alice", "pay_bob", "member_mine", "transfer")
    check_owner(r, t, "bob", "pay_alice", "member_mine", "transfer")
    assert r.waiter_lwps(t.lock("bob")) == {t.lwp("pay_bob")}
    check_common(r, text, t, ["pay_bob", "pay_alice"])


@pytest.mark.parametrize("mode", MODES)
def test_one_line_lambda_holding_a_guard(cxx, mode):
    r, text, t = analyse(cxx, "one_liner", mode)
    assert r.data["deadlocks"] == 0 and r.data["cycles"] == [], r.data["verdict"]
    # the guard before the call on the lambda's only line is held
    check_owner(r, t, "log", "writer", "oneliner_lambda", "lambda")
    check_owner(r, t, "disk", "main", "oneliner_main", "one_liner")
    assert r.waiter_lwps(t.lock("disk")) == {t.lwp("writer")}
    assert r.waiter_lwps(t.lock("log")) == {t.lwp("waiter")}
    check_common(r, text, t, ["writer", "waiter"])
    assert r.by_lwp[t.lwp("writer")]["entry"] == lambda_label("one_liner()", "oneliner_lambda")


@pytest.mark.parametrize("mode", MODES)
def test_dining_philosophers_with_a_vector_of_mutexes(cxx, mode):
    # forks_[id] goes through std::vector::operator[]: gdb evaluates it with
    # libstdc++'s xmethods (Python, read-only), never by calling the target
    r, text, t = analyse(cxx, "philosophers", mode)
    n = 5
    assert r.data["verdict"].startswith("Found 1 deadlock (5 threads)"), r.data["verdict"]
    roles = ["phil%d" % i for i in range(n)]
    assert r.cycle_lwp_sets() == [lwps_of(t, *roles)]
    for i in range(n):
        check_owner(r, t, "fork%d" % i, "phil%d" % i, "phil_left", "dine")
        assert r.waiter_lwps(t.lock("fork%d" % ((i + 1) % n))) == {t.lwp("phil%d" % i)}
    check_common(r, text, t, roles)
    for role in roles:
        assert r.by_lwp[t.lwp(role)]["entry"] == "std::thread Table::dine"


@pytest.mark.parametrize("mode", MODES)
def test_condition_wait_releases_its_unique_lock(cxx, mode):
    r, text, t = analyse(cxx, "condvar", mode)
    assert r.data["deadlocks"] == 0 and r.data["cycles"] == [], r.data["verdict"]
    consumer = r.by_lwp[t.lwp("consumer")]
    assert consumer["state"] == "idle", consumer
    # its unique_lock is released while it waits: no claim on the queue's mutex
    assert consumer["claims"] == [], consumer["claims"]
    l = check_owner(r, t, "queue", "producer", "cv_producer", "lambda")
    assert l["candidates"] == [], l
    check_owner(r, t, "flush", "main", "cv_main", "condvar")
    assert r.waiter_lwps(t.lock("flush")) == {t.lwp("producer")}
    check_common(r, text, t, ["consumer", "producer"])


@pytest.mark.parametrize("name,lock", [("member", "alice.mtx_"), ("ring", "ring[3]"),
                                       ("philosophers", "main")])
def test_cxx_target_memory_unchanged(cxx, name, lock):
    """Evaluating C++ lock expressions (members through `this`, references,
    subscripts) leaves the target byte for byte as it was (test_readonly)."""
    import test_readonly as ro
    sc = gdbrun.Scenario(cxx.binaries.exe("debug"), [name])
    try:
        masks = ro.kernel_written(sc.pid)
        before = ro.quiet_checksums(sc.pid, masks)
        res, cli = ro.run_session(sc.pid, lock)
        ro.settle_sleepers(sc.pid)
        assert ro.differences(before, ro.checksums(sc.pid, masks)) == []
        ro.check_session(res, cli, sc.pid)
        assert "Found 1 deadlock" in res.stdout, res.stdout[-3000:]
        ro.assert_running(sc.pid)
    finally:
        sc.kill()
