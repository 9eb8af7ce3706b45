"""janus-gdb against Janus look-alike hangs (tests/fixtures/janus_scenarios.c).

Each scenario re-enacts a hang reported against Janus with Janus's thread
entry functions, call chains, struct and lock field names.  Every scenario is
built twice: with GMutex (Janus's default: no owner recorded, owners must be
inferred) and with pthread mutexes (-DUSE_PTHREAD_MUTEX, Janus's
--enable-pthread-mutex: exact owners), and analysed live and from a gcore
core.  Expected answers come from the ground truth the fixture prints and
from the SITE:name marker comments in its source, never from fixed numbers.
"""

import os
import re

import pytest

import gdbrun

SRC = os.path.join(gdbrun.FIXTURES, "janus_scenarios.c")
VARIANTS = ["gmutex", "pthread"]
MODES = ["live", "core"]
# __FILE__ relative, like Janus's lock debug lines ("janus.c", "plugins/...")
CFLAGS = ["-fno-omit-frame-pointer", "-fmacro-prefix-map=%s/=" % gdbrun.FIXTURES]
DEFINES = {"gmutex": [], "pthread": ["-DUSE_PTHREAD_MUTEX"]}
HOSTILE_DISPLAY = "\x1b[31mmallory\x07"


SITES = gdbrun.site_lines(SRC)


class JanusScenarios(object):
    """Both builds, their hung processes, cores and gdb outputs, once per session."""

    def __init__(self, build_dir):
        self.dir = build_dir
        self.exes = {}
        for variant in VARIANTS:
            out = os.path.join(build_dir, "janus_scenarios_%s" % variant)
            self.exes[variant] = gdbrun.compile_c(SRC, out, defines=CFLAGS + DEFINES[variant])
        self.running = {}
        self.cores = {}
        self.outputs = {}

    def locklog(self, name, variant):
        return os.path.join(self.dir, "locklog.%s.%s" % (name, variant))

    def get(self, name, variant):
        key = (name, variant)
        if key not in self.running:
            args = [name]
            if name.startswith("leaked_"):
                args.append(self.locklog(name, variant))
            self.running[key] = gdbrun.Scenario(self.exes[variant], args)
        return self.running[key]

    def core(self, name, variant):
        key = (name, variant)
        if key not in self.cores:
            sc = self.get(name, variant)
            path = os.path.join(self.dir, "core.janus.%s.%s" % (name, variant))
            self.cores[key] = sc.gcore(path)
        return self.cores[key]

    def run(self, name, variant, mode, command):
        """gdb's stdout for COMMAND on the scenario (cached)."""
        key = (name, variant, mode, command)
        if key not in self.outputs:
            sc = self.get(name, variant)
            if mode == "live":
                res = gdbrun.gdb([command], pid=sc.pid)
            else:
                res = gdbrun.gdb([command], exe=self.exes[variant], core=self.core(name, variant))
            both = res.stdout + res.stderr
            assert "Traceback" not in both, both
            assert "Python Exception" not in both, both
            self.outputs[key] = res.stdout
        return self.outputs[key]

    def result(self, name, variant, mode, options=""):
        out = self.run(name, variant, mode, ("janus-waitgraph --format json " + options).strip())
        sc = self.get(name, variant)
        return gdbrun.Result(gdbrun.extract_json(out)), sc.truth

    def text(self, name, variant, mode, options=""):
        out = self.run(name, variant, mode, ("janus-waitgraph " + options).strip())
        text = gdbrun.extract_report(out)
        assert text is not None, out
        return text, out

    def close(self):
        gdbrun.close_fixtures(self.running.values(), self.cores.values())


# ---------------------------------------------------------------------------
# Shared checks
# ---------------------------------------------------------------------------

def check_owner(r, addr, lwp, variant, site, function):
    """The lock at ADDR is held by LWP: exact for pthread (and the inference
    agrees), inferred for GMutex from the lock call at marker SITE."""
    assert addr in r.locks, "lock 0x%x not reported" % addr
    lock = r.locks[addr]
    owner = lock["owner"]
    assert owner["lwp"] == lwp, lock
    assert owner["alive"] is True, lock
    if variant == "pthread":
        assert owner["evidence"] == "exact", lock
        assert owner["source"] == "pthread-owner", lock
        assert lock["inference"] is not None, lock
        assert lock["inference"]["lwp"] == lwp, lock
    else:
        assert owner["evidence"] == "inferred", lock
        assert owner["source"] in ("lockset", "type-match"), lock
        assert function in owner["detail"], lock
        if owner["source"] == "lockset":
            assert "locked at janus_scenarios.c:%d" % SITES[site] in owner["detail"], lock
            assert owner["line"] == SITES[site] and owner["function"] == function, lock
    assert lock["id"] in r.by_lwp[lwp]["holds"], (lock, r.by_lwp[lwp])
    return lock


def check_wait_site(r, lwps, site, function):
    """Each of LWPS waits at the call marked SITE (the frame the report shows)."""
    if isinstance(lwps, int):
        lwps = [lwps]
    for lwp in lwps:
        t = r.by_lwp[lwp]
        frames = dict((f["level"], f) for f in t["frames"])
        assert t["site_frame"] in frames, t
        frame = frames[t["site_frame"]]
        assert frame["function"] == function, (site, frame)
        assert frame["file"] == "janus_scenarios.c" and frame["line"] == SITES[site], (site, frame)


def check_target(r, variant, mode):
    target = r.data["target"]
    assert target["kind"] == mode
    assert target["mutex_impl"] == variant
    assert target["owners"] == ("exact" if variant == "pthread" else "inferred")


def check_header(text, variant):
    header = text.splitlines()[0] + "\n" + "\n".join(text.splitlines()[1:3])
    if variant == "gmutex":
        # "owners inferred" only when the report inferred one
        if "[inferred:" in text:
            assert "GMutex: owners inferred" in header, text
        else:
            assert "GMutex: no owner recorded" in header, text
        assert "--enable-pthread-mutex" in text, text
    else:
        assert "pthread mutexes: exact owners" in header, text


def group_of(r, lwps):
    """The one group whose threads are exactly LWPS."""
    found = [g for g in r.data["groups"]
             if set(r.by_num[n]["lwp"] for n in g["threads"]) == set(lwps)]
    # threads waiting for different locks from the same call chain (Janus's
    # sync requests all live in one big function) must not share a group
    assert len(found) == 1, ("no group of exactly these threads", sorted(lwps), r.data["groups"])
    assert found[0]["count"] == len(lwps)
    return found[0]


def name_has(lock, *parts):
    for part in parts:
        assert part in (lock["name"] or ""), (part, lock["name"])


def check_pileup(r, text, truth, addr, role="worker"):
    workers = truth.lwps(role)
    assert workers
    assert r.waiter_lwps(addr) >= workers
    group = group_of(r, workers)
    if "waits_for" in group:
        assert group["waits_for"] == r.locks[addr]["id"], group
    assert "%d threads wait for" % len(workers) in text, text


# ---------------------------------------------------------------------------
# The fixtures themselves
# ---------------------------------------------------------------------------

def test_markers_are_found():
    for name in ("handler_rooms", "handler_streams", "relay_rtcp_handle", "admin_handle",
                 "query_streams", "sync_rooms", "kick_room", "kick_participant",
                 "hangup_participant", "unpublish_room", "handler_room", "check_sessions",
                 "session_free_relock", "session_find", "handle_sdp_leak", "trickle_handle",
                 "relay_mountpoint", "relay_mountpoints", "destroy_mountpoints", "join_relay",
                 "list_mountpoints", "usleep_loop"):
        assert name in SITES, name


@pytest.mark.parametrize("variant", VARIANTS)
def test_lock_debug_log_has_janus_format(janus, variant):
    """lock_debug writes Janus's [file:function:line:lock] lines; the leaked
    lock has a lock line and no unlock after it."""
    sc = janus.get("leaked_lock", variant)
    addr = sc.truth.lock("handle_mutex")
    with open(janus.locklog("leaked_lock", variant)) as f:
        lines = f.read().splitlines()
    pat = re.compile(r"^\[(.+):(\w+):(\d+):(lock|unlock|trylock)\] (0x[0-9a-f]+)$")
    for line in lines:
        assert pat.match(line), line
    leak = "[janus_scenarios.c:janus_plugin_handle_sdp:%d:lock] 0x%x" % (
        SITES["handle_sdp_leak"], addr)
    assert leak in lines
    after = lines[lines.index(leak) + 1:]
    assert not [l for l in after if l.endswith(":unlock] 0x%x" % addr)]
    # the three waiters logged their lock attempts too
    trickle = "[janus_scenarios.c:janus_process_incoming_request:%d:lock] 0x%x" % (
        SITES["trickle_handle"], addr)
    assert lines.count(trickle) == 3
    # a trylock (and its unlock) in the handler, before the leak
    assert [l for l in lines if l.startswith(
        "[janus_scenarios.c:janus_videoroom_handler:%d:trylock] " % SITES["publish_trylock"])]


# ---------------------------------------------------------------------------
# 1. #3510: PLI under streams_mutex vs. admin handle_info under handle->mutex
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_pli_inversion(janus, variant, mode):
    r, t = janus.result("pli_inversion", variant, mode)
    text, out = janus.text("pli_inversion", variant, mode)
    check_target(r, variant, mode)
    check_header(text, variant)
    handler, requests = t.lwp("handler"), t.lwp("requests")
    assert r.data["verdict"].startswith("Found 1 deadlock (2 threads)")
    assert r.cycle_lwp_sets() == [{handler, requests}]
    streams = check_owner(r, t.lock("streams_mutex"), handler, variant,
                          "handler_streams", "janus_videoroom_handler")
    handle = check_owner(r, t.lock("handle_mutex"), requests, variant,
                         "admin_handle", "janus_process_incoming_admin_request")
    rooms = check_owner(r, t.lock("rooms_mutex"), handler, variant,
                        "handler_rooms", "janus_videoroom_handler")
    subloop, switcher = t.lwp("subscriber_loop"), t.lwp("switcher")
    assert r.waiter_lwps(t.lock("streams_mutex")) == {requests, subloop}
    assert r.waiter_lwps(t.lock("handle_mutex")) == {handler}
    # a subscriber's loop waits for the publisher's streams_mutex holding its
    # own, and a switch request waits for that: both behind the cycle
    sub = check_owner(r, t.lock("sub_streams_mutex"), subloop, variant,
                      "rtcp_subscriber_streams", "janus_videoroom_incoming_rtcp")
    assert r.waiter_lwps(t.lock("sub_streams_mutex")) == {switcher}
    name_has(sub, "streams_mutex", "subscriber", "31337", "1234")
    assert sub["object"]["type"] == "janus_videoroom_subscriber"
    assert r.behind(subloop)["kind"] == "cycle"
    assert r.behind(switcher)["kind"] == "cycle"
    # names
    name_has(streams, "streams_mutex", "5678", "alice", "1234")
    name_has(handle, "handle->mutex", "424242")
    name_has(rooms, "rooms_mutex", "janus_scenarios.c")
    assert streams["object"]["type"] == "janus_videoroom_publisher"
    assert streams["object"]["field"] == "streams_mutex"
    assert handle["object"]["type"] == "janus_ice_handle"
    # roles by entry function (cores carry no thread names)
    assert r.by_lwp[handler]["role"] == "videoroom handler"
    assert r.by_lwp[requests]["role"] == "sessions requests"
    # the request workers pile up on rooms_mutex behind the cycle; the switch
    # request has the same call chain but waits for another lock
    for lwp in t.lwps("worker"):
        assert r.behind(lwp)["kind"] == "cycle"
    assert "(LWP %d)" % switcher in text and "(LWP %d)" % subloop in text
    check_pileup(r, text, t, t.lock("rooms_mutex"))
    check_wait_site(r, handler, "relay_rtcp_handle", "janus_ice_relay_rtcp")
    check_wait_site(r, requests, "query_streams", "janus_videoroom_query_session")
    check_wait_site(r, subloop, "rtcp_publisher_streams", "janus_videoroom_incoming_rtcp")
    check_wait_site(r, switcher, "switch_subscriber_streams",
                    "janus_videoroom_process_synchronous_request")
    check_wait_site(r, t.lwps("worker"), "sync_rooms", "janus_videoroom_process_synchronous_request")
    # the source's two orders (issue 12 point 4), both through calls
    (cyc,) = r.data["cycles"]
    (order,) = cyc["source_orders"]
    got = sorted((e["held"], e["taken"], e["held_line"], e["line"], e["chain"][0], e["function"])
                 for e in order["edges"])
    assert got == sorted([
        ("janus_videoroom_publisher.streams_mutex", "janus_ice_handle.mutex",
         SITES["handler_streams"], SITES["relay_rtcp_handle"], "janus_videoroom_handler",
         "janus_ice_relay_rtcp"),
        ("janus_ice_handle.mutex", "janus_videoroom_publisher.streams_mutex",
         SITES["admin_handle"], SITES["query_streams"], "janus_process_incoming_admin_request",
         "janus_videoroom_query_session")]), order
    assert ("janus_scenarios.c:%d (in janus_ice_relay_rtcp, called from janus_videoroom_handler"
            % SITES["relay_rtcp_handle"]) in text, text


# ---------------------------------------------------------------------------
# 2. #2016: 40 workers on rooms_mutex, handler waits for room->mutex,
#    kick request and hangup in a 2-cycle (one display name is hostile)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_rooms_pileup(janus, variant, mode):
    r, t = janus.result("rooms_pileup", variant, mode)
    text, out = janus.text("rooms_pileup", variant, mode)
    check_target(r, variant, mode)
    check_header(text, variant)
    kicker, hangup, handler = t.lwp("kicker"), t.lwp("hangup"), t.lwp("handler")
    assert r.data["verdict"].startswith("Found 1 deadlock (2 threads)")
    assert r.cycle_lwp_sets() == [{kicker, hangup}]
    room = check_owner(r, t.lock("room_mutex"), kicker, variant,
                       "kick_room", "janus_videoroom_process_synchronous_request")
    part = check_owner(r, t.lock("participant_mutex"), hangup, variant,
                       "hangup_participant", "janus_videoroom_hangup_media_internal")
    rooms = check_owner(r, t.lock("rooms_mutex"), handler, variant,
                        "handler_rooms_2016", "janus_videoroom_handler")
    assert r.waiter_lwps(t.lock("room_mutex")) == {hangup, handler}
    assert r.waiter_lwps(t.lock("participant_mutex")) == {kicker}
    assert r.behind(handler)["kind"] == "cycle"
    # names
    name_has(room, "room", "1234", "mutex")
    name_has(rooms, "rooms_mutex", "janus_scenarios.c")
    name_has(part, "9999", "mallory", "mutex")
    assert part["object"]["type"] == "janus_videoroom_publisher"
    # the hostile display name: no terminal control bytes in text, JSON keeps it
    assert "\x1b" not in out and "\x07" not in out
    assert "mallory" in text
    assert ("\x1b[31m" in part["name"]) or ("\\x1b[31m" in part["name"])
    # 40 workers wait for rooms_mutex, held by the handler
    check_pileup(r, text, t, t.lock("rooms_mutex"))
    assert r.waiter_lwps(t.lock("rooms_mutex")) == t.lwps("worker")
    for lwp in t.lwps("worker"):
        assert r.behind(lwp)["kind"] == "cycle"
    check_wait_site(r, kicker, "kick_participant", "janus_videoroom_process_synchronous_request")
    check_wait_site(r, hangup, "unpublish_room", "janus_videoroom_leave_or_unpublish")
    check_wait_site(r, handler, "handler_room", "janus_videoroom_handler")
    check_wait_site(r, t.lwps("worker"), "sync_rooms", "janus_videoroom_process_synchronous_request")


# ---------------------------------------------------------------------------
# 3. #1109: the watchdog re-locks sessions_mutex from a refcount free callback
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_self_deadlock(janus, variant, mode):
    r, t = janus.result("self_deadlock", variant, mode)
    text, out = janus.text("self_deadlock", variant, mode)
    check_target(r, variant, mode)
    check_header(text, variant)
    me = t.lwp("watchdog")
    assert r.data["verdict"].startswith("Found 1 deadlock (1 thread)")
    assert r.cycle_lwp_sets() == [{me}]
    sessions = check_owner(r, t.lock("sessions_mutex"), me, variant,
                           "check_sessions", "janus_check_sessions")
    assert me in r.waiter_lwps(t.lock("sessions_mutex"))
    name_has(sessions, "sessions_mutex", "janus_scenarios.c")
    assert "watchdog" in (r.by_lwp[me]["role"] or "")
    check_pileup(r, text, t, t.lock("sessions_mutex"))
    for lwp in t.lwps("worker"):
        assert r.behind(lwp)["kind"] == "cycle"
    check_wait_site(r, me, "session_free_relock", "janus_session_free")
    check_wait_site(r, t.lwps("worker"), "session_find", "janus_session_find")


# ---------------------------------------------------------------------------
# 4. #2780: janus_plugin_handle_sdp returns without unlocking handle->mutex
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_leaked_lock(janus, variant, mode):
    r, t = janus.result("leaked_lock", variant, mode)
    text, out = janus.text("leaked_lock", variant, mode)
    check_target(r, variant, mode)
    check_header(text, variant)
    handler = t.lwp("handler")
    addr = t.lock("handle_mutex")
    assert r.data["verdict"].startswith("No deadlock found")
    assert r.data["cycles"] == []
    lock = r.locks[addr]
    assert r.waiter_lwps(addr) == t.lwps("waiter")
    name_has(lock, "handle->mutex", "424242")
    # the leaker went back to its queue, not waiting for a lock: idle with
    # GMutex (it holds nothing that can be shown), "waiting" with a pthread
    # mutex, whose exact owner it is (a thread that holds a lock is not idle)
    assert r.state(handler) == ("waiting" if variant == "pthread" else "idle"), \
        r.by_lwp[handler]
    check_wait_site(r, t.lwps("waiter"), "trickle_handle", "janus_process_incoming_request")
    check_leak(janus, "leaked_lock", variant, mode, r, text, addr, handler, t.lwps("waiter"),
               "handle_sdp_leak", "janus_plugin_handle_sdp", log_names_leaker=False,
               exit_site="handle_sdp_leak_return")


def check_leak(janus, name, variant, mode, r, text, addr, leaker, waiters, site, function,
               log_names_leaker, exit_site):
    """pthread: the idle LEAKER is the exact owner.  GMutex: no live thread
    can be shown to hold it, so it is reported as leaked; with the lock debug
    log the lock call at SITE (no unlock after it) is cited, and when the
    LEAKER is still inside FUNCTION (LOG_NAMES_LEAKER) it is named as the
    thread that leaked it (not as the owner: its source holds no lock).
    A leaked lock cites the source's exit at EXIT_SITE (possible missing unlock)."""
    lock = r.locks[addr]
    cites = lock["possible_missing_unlocks"]
    if lock["leaked"]:
        assert cites and (cites[0]["exit"]["line"], cites[0]["lock"]["line"]) == (
            SITES[exit_site], SITES[site]), cites
        assert "possible missing unlock: janus_scenarios.c:%d" % SITES[exit_site] in text, text
    else:
        assert cites == [], cites
    if variant == "pthread":
        assert lock["owner"]["lwp"] == leaker
        assert lock["owner"]["evidence"] == "exact"
        assert lock["owner"]["alive"] is True
        for lwp in waiters:
            assert r.behind(lwp)["kind"] == "thread"
            assert r.behind(lwp)["thread"] == r.by_lwp[leaker]["num"]
    else:
        # no live thread can be shown to hold it: probably leaked
        assert lock["owner"]["evidence"] != "exact"
        assert lock["owner"]["lwp"] is None, lock
        assert lock["leaked"] is True, lock
        assert "leaked" in text
        option = "--lock-log %s" % janus.locklog(name, variant)
        r2, _ = janus.result(name, variant, mode, option)
        lock2 = r2.locks[addr]
        assert lock2["leaked"] is True and lock2["owner"]["lwp"] is None, lock2
        cited = lock2["leak_site"] or ""
        assert "janus_scenarios.c:%d" % SITES[site] in cited, lock2
        if log_names_leaker:
            # the leaker is still inside FUNCTION, but its source shows no lock
            # held there: the log does not make it the owner, it names it
            assert lock2["leaked_by"] == r2.by_lwp[leaker]["num"], lock2
            assert "T%d is still in %s" % (lock2["leaked_by"], function) in cited
        assert function in cited and str(SITES[site]) in cited, lock2
        text2, _ = janus.text(name, variant, mode, option)
        assert function in text2 and "janus_scenarios.c:%d" % SITES[site] in text2


# ---------------------------------------------------------------------------
# 4b. #3478: rooms_mutex leaked on an error path, every request stalls
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_leaked_global_lock(janus, variant, mode):
    r, t = janus.result("leaked_rooms", variant, mode)
    text, out = janus.text("leaked_rooms", variant, mode)
    check_target(r, variant, mode)
    check_header(text, variant)
    handler = t.lwp("handler")
    addr = t.lock("rooms_mutex")
    assert r.data["verdict"].startswith("No deadlock found")
    assert r.data["cycles"] == []
    assert r.waiter_lwps(addr) == t.lwps("worker")
    name_has(r.locks[addr], "rooms_mutex", "janus_scenarios.c")
    assert r.state(handler) == ("waiting" if variant == "pthread" else "idle"), \
        r.by_lwp[handler]
    check_pileup(r, text, t, addr)
    check_wait_site(r, t.lwps("worker"), "sync_rooms", "janus_videoroom_process_synchronous_request")
    check_leak(janus, "leaked_rooms", variant, mode, r, text, addr, handler, t.lwps("worker"),
               "join_rooms_leak", "janus_videoroom_handler", log_names_leaker=True,
               exit_site="join_rooms_leak_exit")


# ---------------------------------------------------------------------------
# 5. #3108: joining the relay thread while holding mountpoints_mutex
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_join_holding(janus, variant, mode):
    r, t = janus.result("join_holding", variant, mode)
    text, out = janus.text("join_holding", variant, mode)
    check_target(r, variant, mode)
    check_header(text, variant)
    destroyer, relay = t.lwp("destroyer"), t.lwp("relay")
    assert r.data["verdict"].startswith("Found 1 deadlock (2 threads)")
    assert r.cycle_lwp_sets() == [{destroyer, relay}]
    kinds = sorted(e["kind"] for e in r.data["cycles"][0]["edges"])
    assert kinds == ["join", "lock"]
    d = r.by_lwp[destroyer]
    assert d["state"] == "join" and d["wait"]["target_lwp"] == relay
    mps = check_owner(r, t.lock("mountpoints_mutex"), destroyer, variant,
                      "destroy_mountpoints", "janus_streaming_process_synchronous_request")
    mp = check_owner(r, t.lock("mountpoint_mutex"), relay, variant,
                     "relay_mountpoint", "janus_streaming_relay_thread")
    name_has(mps, "mountpoints_mutex", "janus_scenarios.c")
    name_has(mp, "mountpoint", "mutex")
    assert relay in r.waiter_lwps(t.lock("mountpoints_mutex"))
    check_pileup(r, text, t, t.lock("mountpoints_mutex"))
    for lwp in t.lwps("worker"):
        assert r.behind(lwp)["kind"] == "cycle"
    check_wait_site(r, relay, "relay_mountpoints", "janus_streaming_relay_thread")
    check_wait_site(r, destroyer, "join_relay", "janus_streaming_mountpoint_destroy")
    check_wait_site(r, t.lwps("worker"), "list_mountpoints",
                    "janus_streaming_process_synchronous_request")


# ---------------------------------------------------------------------------
# 6. #1082: the watchdog sleeps in a g_usleep loop holding sessions_mutex
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_usleep_holder(janus, variant, mode):
    r, t = janus.result("usleep_holder", variant, mode)
    text, out = janus.text("usleep_holder", variant, mode)
    check_target(r, variant, mode)
    check_header(text, variant)
    holder = t.lwp("watchdog")
    assert r.data["verdict"].startswith("No deadlock found")
    assert r.data["cycles"] == []
    sessions = check_owner(r, t.lock("sessions_mutex"), holder, variant,
                           "check_sessions", "janus_check_sessions")
    name_has(sessions, "sessions_mutex")
    assert r.state(holder) == "sleep", r.by_lwp[holder]
    assert r.waiter_lwps(t.lock("sessions_mutex")) == t.lwps("worker")
    check_pileup(r, text, t, t.lock("sessions_mutex"))
    check_wait_site(r, t.lwps("worker"), "session_find", "janus_session_find")
    for lwp in t.lwps("worker"):
        assert r.behind(lwp) == {"kind": "thread", "thread": r.by_lwp[holder]["num"],
                                 "lock": None, "cycle": None}


# ---------------------------------------------------------------------------
# janus-locks names the same locks
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS)
def test_locks_command_names_janus_locks(janus, variant):
    out = janus.run("pli_inversion", variant, "core", "janus-locks --format json")
    locks = gdbrun.Result(gdbrun.extract_json(out))
    wg, t = janus.result("pli_inversion", variant, "core")
    assert locks.data["command"] == "janus-locks"
    assert locks.data["locks"] == wg.data["locks"]
    text = janus.run("pli_inversion", variant, "core", "janus-locks")
    for addr in (t.lock("streams_mutex"), t.lock("handle_mutex"), t.lock("rooms_mutex")):
        assert "0x%x" % addr in text
        assert locks.locks[addr]["name"] in text
