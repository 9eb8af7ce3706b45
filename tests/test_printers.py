"""Pretty-printers for locks (janus_gdb/gdbui/printers.py) with real gdb on the fixtures.

Owners, waiter counts and thread numbers are checked against the fixture's
ground truth and gdb's own thread list.
"""

import re

import pytest

import gdbrun
from test_janus_fixtures import JanusScenarios

MODES = ["live", "core"]
THREADS = "python print('THREADS', [(t.num, t.ptid[1]) for t in gdb.selected_inferior().threads()])"


def check(res):
    both = res.stdout + res.stderr
    assert "Traceback" not in both and "Python Exception" not in both, both
    assert "<janus-gdb: cannot describe" not in both, both
    m = re.search(r"^THREADS (\[.*\])$", res.stdout, re.M)
    assert m, both
    return res.stdout, dict((lwp, num) for num, lwp in eval(m.group(1)))  # our own repr


def run(scenarios, name, mode, commands, extra=()):
    sc = scenarios.get(name)
    if mode == "live":
        res = gdbrun.gdb(commands + [THREADS], pid=sc.pid, extra=extra)
    else:
        res = gdbrun.gdb(commands + [THREADS], exe=scenarios.binaries.debug,
                         core=scenarios.core(name), extra=extra)
    out, nums = check(res)
    return out, sc.truth, nums


def value(out, n):
    m = re.search(r"^\$%d = (.*)$" % n, out, re.M)
    assert m, out
    return m.group(1)


def waiters(text):
    """(count, thread numbers named): at most 8 are named, then "..."."""
    m = re.search(r"(\d+) waiters? \(Threads? ([\d, ]+)(, \.\.\.)?\)", text)
    assert m, text
    return int(m.group(1)), set(int(x) for x in m.group(2).split(", "))


@pytest.mark.parametrize("mode", MODES)
def test_held_pthread_mutex_shows_exact_owner_and_waiters(scenarios, mode):
    out, t, nums = run(scenarios, "pthread_cycle", mode,
                       ["print m1", "print m2", "print cv_m", "print/r m1", "print &m1"])
    a, b = t.lwp("cycle_a"), t.lwp("cycle_b")
    m1, m2 = value(out, 1), value(out, 2)
    assert m1.startswith("pthread mutex (normal) locked, contended; ")
    assert "owner Thread %d (LWP %d) [exact: __data.__owner]" % (nums[a], a) in m1
    # m1's waiters: cycle_b and the queue of request waiters
    expect = set(nums[l] for l in t.lwps("waiter") | {b})
    assert waiters(m1) == (len(expect), expect)
    assert "owner Thread %d (LWP %d)" % (nums[b], b) in m2
    assert waiters(m2) == (1, {nums[a]})
    # the condition variable's mutex is free (its waiters sleep on the condvar)
    assert value(out, 3) == "pthread mutex (normal) free; no waiters"
    # print/r: the raw union, untouched
    raw = value(out, 4)
    assert raw.startswith("{__data = {__lock = 2, ") and "__owner = %d," % a in raw
    # a pointer is printed as a pointer
    assert re.match(r"\(pthread_mutex_t \*\) 0x[0-9a-f]+ <m1>", value(out, 5))


@pytest.mark.parametrize("mode", MODES)
def test_gmutex_contended_with_waiters(scenarios, mode):
    out, t, nums = run(scenarios, "gmutex_pileup", mode, [
        "print gm", "python __import__('janus_gdb.gdbui.annotate').gdbui.annotate.report()", "print gm"])
    before, after = value(out, 1), value(out, 2)
    expect = set(nums[l] for l in t.lwps("waiter"))
    assert before.startswith("GMutex locked, contended; owner not recorded (GMutex); "
                             "see janus-locks; ")
    assert waiters(before) == (len(expect), expect)
    # once an analysis of this stop is cached, the inferred owner and its evidence
    holder = t.lwp("holder")
    line = gdbrun.source_line("scenarios.c", "    take_gmutex(&gm);")
    assert ("owner inferred: Thread %d (LWP %d) [" % (nums[holder], holder)) in after
    assert "scenarios.c:%d in gmutex_holder" % line in after
    assert waiters(after) == (len(expect), expect)


def test_free_and_held_uncontended(scenarios):
    out, t, nums = run(scenarios, "healthy", "core", ["print held_m", "print held_gm",
                                                      "print rw"])
    q = t.lwp("quiet_holder")
    assert value(out, 1) == ("pthread mutex (normal) locked; owner Thread %d (LWP %d) "
                             "[exact: __data.__owner]; no waiters" % (nums[q], q))
    assert value(out, 2).startswith("GMutex locked; owner not recorded (GMutex)")
    assert value(out, 3) == "pthread rwlock free; no waiters"


def test_garbage_prints_as_corrupt(scenarios):
    """Code bytes read as a lock: no owner is trusted from them."""
    out, t, nums = run(scenarios, "pthread_cycle", "core", [
        "print *(pthread_mutex_t *) main", "print *(GMutex *) main"])
    for n in (1, 2):
        assert "CORRUPT (" in value(out, n) and "not trusted, no owner" in value(out, n)
        assert "owner Thread" not in value(out, n)


def test_rwlock_writer(scenarios):
    out, t, nums = run(scenarios, "rwlock_writer", "core", ["print rw"])
    w = t.lwp("writer")
    text = value(out, 1)
    assert text.startswith("pthread rwlock write-locked")
    assert "writer Thread %d (LWP %d) [exact: __data.__cur_writer]" % (nums[w], w) in text
    assert waiters(text)[0] >= 1


def test_sourcing_gdbinit_twice(scenarios):
    out, t, nums = run(scenarios, "pthread_cycle", "core", [
        "source %s" % gdbrun.GDBINIT, "source %s" % gdbrun.GDBINIT, "print m1",
        "python print('N', sum(getattr(p, 'name', '') == 'janus-gdb-locks' "
        "for p in gdb.pretty_printers), list(gdb.frame_filters))", "info pretty-printer"])
    a = t.lwp("cycle_a")
    assert "owner Thread %d (LWP %d)" % (nums[a], a) in value(out, 1)
    assert "N 1 ['janus-annotate']" in out
    assert "janus-gdb-locks" in out
    assert "Error" not in out


@pytest.fixture(scope="module")
def janus(build_dir):
    js = JanusScenarios(build_dir)
    yield js
    js.close()


@pytest.mark.parametrize("variant", ["gmutex", "pthread"])
def test_janus_mutex_in_struct_and_typedef(janus, variant):
    sc = janus.get("rooms_pileup", variant)
    res = gdbrun.gdb(["print rooms_mutex", "print the_room->mutex", "print *the_room",
                      "print/r the_room->mutex", THREADS],
                     exe=janus.exes[variant], core=janus.core("rooms_pileup", variant),
                     # glib's own GHashTable printer fails on this glib (not ours)
                     extra=["-iex", "set auto-load python-scripts off"])
    out, nums = check(res)
    t = sc.truth
    rooms, room = value(out, 1), value(out, 2)
    workers = set(nums[l] for l in t.lwps("worker"))
    count, named = waiters(rooms)
    assert count == len(workers) and named <= workers and len(named) == 8
    handler, kicker = t.lwp("handler"), t.lwp("kicker")
    if variant == "pthread":
        assert rooms.startswith("pthread mutex (normal) locked, contended; owner Thread %d "
                                "(LWP %d) [exact" % (nums[handler], handler))
        assert "owner Thread %d (LWP %d)" % (nums[kicker], kicker) in room
        assert "__owner = %d" % kicker in value(out, 4)
    else:
        assert rooms.startswith("GMutex locked, contended; owner not recorded (GMutex)")
        assert value(out, 4).startswith("{p = 0x")
    assert waiters(room)[1] == set(nums[l] for l in (t.lwp("hangup"), handler))
    # the struct prints as usual, with its mutex field summarised
    assert "mutex = %s" % room.split(";")[0] in value(out, 3)
