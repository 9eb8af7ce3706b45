"""Root-cause verdicts for hangs that are not cycles, and the evidence behind
every verdict word (tests/fixtures/janus_roots.c; issue 11 points 1, 5, 7).

Each scenario is built with GMutex (owners inferred) and with pthread mutexes
(-DUSE_PTHREAD_MUTEX: exact owners), with debug info and stripped (analysed
with libc/glib debug info hidden too), and analysed live and from a gcore
core, in JSON and text, and through the command-line tool for its exit
status.  Expected answers come from the ground truth the fixture prints and
from its SITE markers, never from fixed thread numbers.
"""

import os
import re
import subprocess

import pytest

import gdbrun

SRC = os.path.join(gdbrun.FIXTURES, "janus_roots.c")
VARIANTS = ["gmutex", "pthread"]
MODES = ["live", "core"]
CFLAGS = ["-fno-omit-frame-pointer", "-fmacro-prefix-map=%s/=" % gdbrun.FIXTURES]
DEFINES = {"gmutex": [], "pthread": ["-DUSE_PTHREAD_MUTEX"]}


SITES = gdbrun.site_lines(SRC)


class Roots(object):
    """Both builds (debug and stripped), their hung processes and cores."""

    def __init__(self, build_dir):
        self.dir = build_dir
        self.exes = {}
        for variant in VARIANTS:
            out = os.path.join(build_dir, "janus_roots_%s" % variant)
            stripped = gdbrun.compile_c(SRC, out, defines=CFLAGS + DEFINES[variant], strip=True)
            self.exes[(variant, False)] = out
            self.exes[(variant, True)] = stripped
        self.running = {}
        self.cores = {}
        self.outputs = {}

    def get(self, name, variant, stripped=False):
        key = (name, variant, stripped)
        if key not in self.running:
            self.running[key] = gdbrun.Scenario(self.exes[(variant, stripped)], [name])
        return self.running[key]

    def core(self, name, variant, stripped=False):
        key = (name, variant, stripped)
        if key not in self.cores:
            sc = self.get(name, variant, stripped)
            path = os.path.join(self.dir, "core.roots.%s.%s.%d" % (name, variant, stripped))
            self.cores[key] = sc.gcore(path)
        return self.cores[key]

    def run(self, name, variant, mode, command, stripped=False):
        key = (name, variant, mode, command, stripped)
        if key not in self.outputs:
            sc = self.get(name, variant, stripped)
            if mode == "live":
                res = gdbrun.gdb([command], pid=sc.pid, hide_debug=stripped)
            else:
                res = gdbrun.gdb([command], exe=self.exes[(variant, stripped)],
                                 core=self.core(name, variant, stripped), hide_debug=stripped)
            both = res.stdout + res.stderr
            assert "Traceback" not in both and "Python Exception" not in both, both
            self.outputs[key] = res.stdout
        return self.outputs[key]

    def result(self, name, variant, mode, stripped=False):
        out = self.run(name, variant, mode, "janus-waitgraph --format json", stripped)
        return gdbrun.Result(gdbrun.extract_json(out)), self.get(name, variant, stripped).truth

    def text(self, name, variant, mode, stripped=False):
        out = self.run(name, variant, mode, "janus-waitgraph", stripped)
        text = gdbrun.extract_report(out)
        assert text is not None, out
        return text

    def cli(self, name, variant, stripped=False, fmt="text"):
        """The command-line tool on the scenario's core: (status, stdout)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = gdbrun.ROOT + os.pathsep + env.get("PYTHONPATH", "")
        res = subprocess.run(
            gdbrun.cli_argv([self.core(name, variant, stripped),
                             "--exe", self.exes[(variant, stripped)], "--format", fmt]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
            timeout=300, env=env, cwd="/")
        assert "Traceback" not in res.stdout + res.stderr, res.stderr
        assert res.stderr == "", res.stderr
        return res.returncode, res.stdout

    def close(self):
        gdbrun.close_fixtures(self.running.values(), self.cores.values())


@pytest.fixture(scope="module")
def roots(build_dir):
    r = Roots(build_dir)
    yield r
    r.close()


def num(r, lwp):
    return r.by_lwp[lwp]["num"]


def thread_phrases(text):
    """Lines of the text report that summarise a thread's state."""
    return [l for l in text.splitlines() if l.startswith(("Other threads", "  by role"))]


# ---------------------------------------------------------------------------
# a. #3570: three locks held while waiting on an empty queue
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_outbuf_hang_names_the_holder_as_root(roots, variant, mode):
    r, t = roots.result("outbuf_hang", variant, mode)
    text = roots.text("outbuf_hang", variant, mode)
    hangup = num(r, t.lwp("hangup"))
    crowd = (t.lwps("session_waiter") | t.lwps("rooms_waiter") | t.lwps("room_waiter"))
    assert len(crowd) == 12
    # the queue: the participant's outbuf (its address printed by the fixture)
    words = t.info["outbuf"]
    info = dict(zip(words[1::2], words[2::2]), outbuf=words[0])
    queue = "participant->outbuf of participant %s in AudioBridge room %s" % (
        info["participant"], info["room"])
    q = r.by_lwp[t.lwp("hangup")]["wait"]["queue"]
    assert q["address"] == int(info["outbuf"], 16) and q["name"] == queue, q
    head = ("No deadlock found: T%d holds 3 locks while waiting on the queue %s "
            "(g_async_queue_pop in janus_audiobridge_participant_clear_outbuf); 12 threads "
            "are blocked behind it." % (hangup, queue))
    assert r.data["verdict"] == head, r.data["verdict"]
    assert text.startswith(head), text
    assert r.data["verdict_kind"] == "hang"
    root = r.data["roots"][0]
    assert root["kind"] == "holder-waits" and root["thread"] == hangup and root["stuck"]
    assert root["blocked"] == 12 and len(r.data["roots"]) == 1, r.data["roots"]
    for lwp in crowd:
        assert r.behind(lwp) == {"kind": "thread", "thread": hangup, "lock": None,
                                 "cycle": None}
    holder = r.by_lwp[t.lwp("hangup")]
    for name in ("sessions_mutex", "rooms_mutex", "room_mutex"):
        lock = r.locks[t.lock(name)]
        assert lock["owner"]["lwp"] == t.lwp("hangup"), lock
        assert lock["owner"]["evidence"] == ("exact" if variant == "pthread" else "inferred")
        assert lock["id"] in holder["holds"] and not lock["leaked"], lock
    # it holds locks: never idle
    assert holder["state"] == "waiting", holder
    assert "Blocked behind T%d (LWP %d)" % (hangup, t.lwp("hangup")) in text
    assert "which holds 3 locks while waiting on the queue %s" % queue in text
    for line in thread_phrases(text):
        assert "idle" not in line, line
    steps = r.data["next_steps"]
    assert any(s.startswith("T%d waits while holding" % hangup) for s in steps), steps
    if variant == "gmutex":
        assert "janus_roots.c:%d" % SITES["hangup_sessions"] in steps[-1], steps


@pytest.mark.parametrize("variant", VARIANTS)
def test_outbuf_hang_exit_status(roots, variant):
    status, out = roots.cli("outbuf_hang", variant)
    assert status == 3, out
    assert out.startswith("No deadlock found: T"), out
    assert "holds 3 locks while waiting on the queue participant->outbuf of participant " \
        in out.splitlines()[0]


# ---------------------------------------------------------------------------
# b, c. holders waiting on a condvar, a join, a sleep, poll and read; ordering
# ---------------------------------------------------------------------------

HOLDERS = [("cond_holder", 5, "waiting on a condition variable", "wait_for_signal"),
           ("join_holder", 4, "joining T", "join_holder"),
           ("sleep_holder", 3, "sleeping", "sleep_holder"),
           ("poll_holder", 2, "polling", "poll_holder"),
           ("read_holder", 1, "blocked in read()", "read_holder")]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_holders_waiting_elsewhere_are_roots_most_blocked_first(roots, variant, mode):
    r, t = roots.result("holder_waits", variant, mode)
    text = roots.text("holder_waits", variant, mode)
    assert r.data["cycles"] == [] and r.data["verdict_kind"] == "hang"
    stuck = [x for x in r.data["roots"] if x["stuck"]]
    assert [x["thread"] for x in stuck] == [num(r, t.lwp(h)) for h, _n, _w, _f in HOLDERS], \
        r.data["roots"]
    for x, (role, crowd, what, func) in zip(stuck, HOLDERS):
        assert x["kind"] == "holder-waits" and x["blocked"] == crowd, x
        assert x["why"].startswith("T%d holds 1 lock while %s" % (x["thread"], what)), x
        assert "in %s)" % func in x["why"], x
        lock = r.locks[t.lock("%s_mutex" % role)]
        assert lock["owner"]["lwp"] == t.lwp(role) and not lock["leaked"], lock
    # the join holder joins the relay thread, which sleeps holding nothing:
    # the crowd is blocked behind the holder, not behind the relay
    join = stuck[1]
    assert join["why"].startswith("T%d holds 1 lock while joining T%d" % (
        join["thread"], num(r, t.lwp("joined")))), join
    first = stuck[0]
    assert r.data["verdict"] == "No deadlock found: %s; 5 threads are blocked behind it; " \
        "%d more roots below." % (first["why"], len(r.data["roots"]) - 1 - sum(
            1 for x in r.data["roots"] if x["kind"] in ("join", "free"))), r.data["verdict"]
    # the text sections come in the same order
    pos = [text.index("Blocked behind T%d " % x["thread"]) for x in stuck]
    assert pos == sorted(pos), text
    cond = r.by_lwp[t.lwp("cond_holder")]
    assert cond["state"] == "waiting", cond


# ---------------------------------------------------------------------------
# e. a real leak with full source analysis: still "probably leaked"
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_leak_with_full_analysis_is_still_leaked(roots, variant, mode):
    r, t = roots.result("leak", variant, mode)
    text = roots.text("leak", variant, mode)
    handler = t.lwp("handler")
    lock = r.locks[t.lock("room_mutex")]
    assert lock["leaked"] is True, lock
    assert r.data["verdict_kind"] == "hang"
    root = r.data["roots"][0]
    assert root["blocked"] == 3 and root["stuck"], root
    if variant == "pthread":
        # the exact owner is alive, and every frame of it was analysed: none takes it
        assert lock["owner"]["lwp"] == handler and lock["owner"]["evidence"] == "exact"
        assert root["kind"] == "holder-leaked" and root["thread"] == num(r, handler), root
        assert "went on without unlocking" in lock["owner"]["detail"], lock
        assert r.state(handler) == "waiting"
    else:
        assert lock["owner"]["lwp"] is None and lock["owner"]["evidence"] == "unknown"
        assert root["kind"] == "leaked" and root["lock"] == lock["id"], root
        assert "every frame that could take it was analysed" in lock["owner"]["detail"]
        assert r.data["verdict"].startswith("No deadlock found: %s " % lock["id"])
        assert "is probably leaked" in r.data["verdict"]
        assert r.state(handler) == "idle"
    assert "leaked" in text.splitlines()[0]
    assert any("probably leaked" in s for s in r.data["next_steps"]), r.data["next_steps"]
    # the source's early return is cited (issue 12 point 4): static class
    # janus_audiobridge_room.mutex from the object the lock was found in
    cites = lock["possible_missing_unlocks"]
    assert cites and (cites[0]["exit"]["line"], cites[0]["lock"]["line"]) == (
        SITES["leak_return"], SITES["leak_lock"]), cites
    assert cites[0]["lock"]["class"] == "janus_audiobridge_room.mutex"
    assert "possible missing unlock: janus_roots.c:%d returns (in janus_audiobridge_check_sdp)" % (
        SITES["leak_return"]) in text, text


def test_leak_exit_status(roots):
    status, out = roots.cli("leak", "gmutex")
    assert status == 3, out


@pytest.mark.parametrize("mode", MODES)
def test_dead_owner_is_a_hang_with_an_exact_owner(scenarios, mode):
    r, t = scenarios.result("dead_owner", mode)
    assert r.data["verdict_kind"] == "hang"
    root = r.data["roots"][0]
    assert root["kind"] == "dead-owner" and root["stuck"], root
    lock = r.locks[t.lock("m1")]
    assert lock["owner"]["lwp"] == t.lwp("exiter") and lock["owner"]["evidence"] == "exact"
    assert "held by LWP %d, which no longer exists" % t.lwp("exiter") in r.data["verdict"]


# ---------------------------------------------------------------------------
# d. stripped, no libc/glib debug info: holders from machine code, never leaked
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_stripped_outbuf_hang_names_the_holder_never_leaked(roots, variant, mode):
    """Stripped, no debug info anywhere: the pthread owners are exact, the GMutex
    owners come from the stripped frames' machine code (global locks RIP-relative,
    the room's lock base+offset); either way the holder waiting on a queue is the root."""
    r, t = roots.result("outbuf_hang", variant, mode, stripped=True)
    text = roots.text("outbuf_hang", variant, mode, stripped=True)
    hangup = num(r, t.lwp("hangup"))
    for name in ("sessions_mutex", "rooms_mutex", "room_mutex"):
        lock = r.locks[t.lock(name)]
        assert not lock["leaked"], lock
        assert lock["owner"]["lwp"] == t.lwp("hangup"), lock
        if variant == "pthread":
            # exact, and its machine code shows where it was taken
            assert lock["owner"]["evidence"] == "exact", lock
            assert "not visible" not in lock["owner"]["detail"], lock
        else:
            assert lock["owner"]["evidence"] == "inferred", lock
            assert lock["owner"]["source"] == "machine-code", lock
            assert re.match(r"from machine code: \S+\+0x[0-9a-f]+ \(frame #\d+\) calls "
                            r"g_mutex_lock\(0x%x\) at \+0x" % t.lock(name),
                            lock["owner"]["detail"]), lock
    assert "leaked" not in text, text
    assert any(s.startswith("No debug info for ") and "debuginfod" in s and "dbgsym" in s
               for s in r.data["next_steps"]), r.data["next_steps"]
    assert r.data["verdict_kind"] == "hang"
    assert r.data["verdict"].startswith("No deadlock found: T%d holds 3 locks while "
                                        "waiting on a queue" % hangup), r.data["verdict"]
    assert "12 threads are blocked behind it" in r.data["verdict"], r.data["verdict"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_stripped_leak_is_never_called_leaked(roots, variant, mode):
    r, t = roots.result("leak", variant, mode, stripped=True)
    text = roots.text("leak", variant, mode, stripped=True)
    handler = t.lwp("handler")
    lock = r.locks[t.lock("room_mutex")]
    assert not lock["leaked"], lock
    assert "leaked" not in text, text
    if variant == "pthread":
        assert lock["owner"]["lwp"] == handler and lock["owner"]["evidence"] == "exact"
        assert "where T%d took it is not visible" % num(r, handler) in lock["owner"]["detail"]
        assert r.data["roots"][0]["kind"] == "holder-waits"
    else:
        assert lock["owner"]["evidence"] == "unknown"
        assert num(r, handler) in lock["possible_owners"], lock
        assert r.data["verdict_kind"] == "undetermined"


@pytest.mark.parametrize("variant", VARIANTS)
def test_stripped_exit_status(roots, variant):
    """Both owners are shown (exact, machine code): a hang that is not a cycle (3)."""
    status, out = roots.cli("outbuf_hang", variant, stripped=True)
    assert status == 3, out
    assert "leaked" not in out


def test_stripped_unknown_owner_exit_status(roots):
    """A thread blocked behind a GMutex whose owner no code shows: 4, never 'leaked'."""
    status, out = roots.cli("leak", "gmutex", stripped=True)
    assert status == 4, out
    assert "leaked" not in out


# ---------------------------------------------------------------------------
# f. healthy: exit 0, no false verdict; a holder waiting on a queue is not idle
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_healthy_has_no_verdict_and_exit_0(roots, mode):
    r, t = roots.result("healthy", "gmutex", mode)
    text = roots.text("healthy", "gmutex", mode)
    assert r.data["verdict"] == "No deadlock found.", r.data["verdict"]
    assert r.data["verdict_kind"] == "none" and r.data["roots"] == []
    assert r.data["next_steps"] == []
    for lwp in t.lwps("idle"):
        assert r.state(lwp) == "idle"
    quiet = r.by_lwp[t.lwp("quiet_holder")]
    lock = r.locks[t.lock("quiet_mutex")]
    assert lock["owner"]["lwp"] == t.lwp("quiet_holder") and not lock["leaked"]
    assert quiet["state"] == "waiting", quiet
    assert "holding locks nobody waits for: T%d (%s;" % (quiet["num"], lock["id"]) in text
    if mode == "core":
        status, out = roots.cli("healthy", "gmutex")
        assert status == 0 and out.startswith("No deadlock found."), out


# ---------------------------------------------------------------------------
# the JSON documents of these scenarios follow the schema
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, variant, stripped", [
    ("outbuf_hang", "gmutex", False), ("outbuf_hang", "gmutex", True),
    ("outbuf_hang", "pthread", True), ("holder_waits", "pthread", False),
    ("leak", "gmutex", False), ("leak", "gmutex", True), ("leak", "pthread", False),
    ("healthy", "gmutex", False)])
def test_json_documents_validate(roots, name, variant, stripped):
    from test_json_schema import check_document
    data = gdbrun.extract_json(roots.run(name, variant, "core", "janus-waitgraph --format json",
                                         stripped))
    check_document(data, "janus-waitgraph")
    data = gdbrun.extract_json(roots.run(name, variant, "core", "janus-locks --format json",
                                         stripped))
    check_document(data, "janus-locks")


def test_dot_draws_the_threads_that_could_hold_a_lock_of_unknown_owner(roots):
    out = roots.run("leak", "gmutex", "core", "janus-waitgraph --format dot", True)
    r, t = roots.result("leak", "gmutex", "core", stripped=True)
    hangup = num(r, t.lwp("handler"))
    edges = [l for l in out.splitlines() if "could hold it (not analysed)" in l]
    assert edges, out
    assert any('-> "T%d"' % hangup in l or "-> T%d " % hangup in l for l in edges), edges
    assert "leaked" not in out


def test_next_step_of_a_leak_cites_the_lock_site_from_the_lock_log(janus):
    """With Janus's lock-debug log the leak's next step names the lock call
    without an unlock, and does not ask for the log again."""
    import test_janus_fixtures as jf
    option = "--lock-log %s" % janus.locklog("leaked_lock", "gmutex")
    r, _t = janus.result("leaked_lock", "gmutex", "core", option)
    steps = r.data["next_steps"]
    site = "janus_scenarios.c:%d in janus_plugin_handle_sdp" % jf.SITES["handle_sdp_leak"]
    assert any("probably leaked: look for a return without an unlock after the lock at %s"
               % site in s for s in steps), steps
    assert not any("--lock-log" in s for s in steps), steps
    r, _t = janus.result("leaked_lock", "gmutex", "core")
    assert any("--lock-log" in s for s in r.data["next_steps"]), r.data["next_steps"]
