"""AudioBridge and Streaming locks and threads named by their objects
(tests/fixtures/janus_plugins.c, issue 13 point 1).

The fixture has Janus 1.1.2's struct and field names (janus_audiobridge_room,
janus_audiobridge_participant, janus_audiobridge_session,
janus_streaming_mountpoint, janus_streaming_session) and its thread entry
functions; each scenario is built with GMutex and with pthread mutexes and
analysed live and from a core.  Ids, names and addresses come from the
fixture's ground truth, lines from its SITE markers.
"""

import os
import shutil
import subprocess

import pytest

import gdbrun

SRC = os.path.join(gdbrun.FIXTURES, "janus_plugins.c")
VARIANTS = ["gmutex", "pthread"]
MODES = ["live", "core"]
CFLAGS = ["-fno-omit-frame-pointer", "-fmacro-prefix-map=%s/=" % gdbrun.FIXTURES]
DEFINES = {"gmutex": [], "pthread": ["-DUSE_PTHREAD_MUTEX"]}
SITES = gdbrun.site_lines(SRC)


class Plugins(object):
    """Both builds, their hung processes, cores and gdb outputs, once per module."""

    def __init__(self, build_dir):
        self.dir = build_dir
        self.exes = {}
        # compiled as janus_audiobridge.c: AudioBridge's rooms table is
        # read only from a file of that name (VideoRoom has a rooms too)
        src = os.path.join(build_dir, "janus_audiobridge.c")
        shutil.copy(SRC, src)
        for variant in VARIANTS:
            out = os.path.join(build_dir, "janus_plugins_%s" % variant)
            self.exes[variant] = gdbrun.compile_c(
                src, out, defines=CFLAGS + ["-I" + gdbrun.FIXTURES, "-fmacro-prefix-map=%s/="
                                            % build_dir] + DEFINES[variant])
        self.running = {}
        self.cores = {}
        self.outputs = {}

    def get(self, name, variant):
        key = (name, variant)
        if key not in self.running:
            self.running[key] = gdbrun.Scenario(self.exes[variant], [name])
        return self.running[key]

    def core(self, name, variant):
        key = (name, variant)
        if key not in self.cores:
            path = os.path.join(self.dir, "core.plugins.%s.%s" % (name, variant))
            self.cores[key] = self.get(name, variant).gcore(path)
        return self.cores[key]

    def run(self, name, variant, mode, command):
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

    def result(self, name, variant, mode):
        out = self.run(name, variant, mode, "janus-waitgraph --format json")
        return gdbrun.Result(gdbrun.extract_json(out)), self.get(name, variant).truth

    def text(self, name, variant, mode):
        out = self.run(name, variant, mode, "janus-waitgraph")
        text = gdbrun.extract_report(out)
        assert text is not None, out
        return text

    def close(self):
        gdbrun.close_fixtures(self.running.values(), self.cores.values())


@pytest.fixture(scope="module")
def plugins(build_dir):
    p = Plugins(build_dir)
    yield p
    p.close()


def check_held(r, addr, lwp, variant, site, function):
    """LWP holds the lock at ADDR: exact with pthread mutexes, inferred from
    the lock call at SITE with GMutex."""
    assert addr in r.locks, "lock 0x%x not reported" % addr
    lock = r.locks[addr]
    owner = lock["owner"]
    assert owner["lwp"] == lwp, lock
    if variant == "pthread":
        assert owner["evidence"] == "exact", lock
    else:
        assert owner["evidence"] == "inferred", lock
        assert function in owner["detail"], lock
        if owner["source"] == "lockset":
            assert "locked at janus_audiobridge.c:%d" % SITES[site] in owner["detail"], lock
    return lock


def truth_info(t, key):
    """{word: value} of the fixture's ``info KEY V1 k2 v2 ...`` line."""
    words = [key] + t.info[key]
    return dict(zip(words[0::2], words[1::2]))


# ---------------------------------------------------------------------------
# AudioBridge, #3570: the hangup path holds sessions_mutex, rooms_mutex, the
# room's mutex and the participant's qmutex, blocked on an empty queue
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_audiobridge_hangup(plugins, variant, mode):
    r, t = plugins.result("audiobridge_hangup", variant, mode)
    text = plugins.text("audiobridge_hangup", variant, mode)
    info = truth_info(t, "room")
    room_id, room_name = info["room"], info["name"]
    user_id, display = info["participant"], info["display"]
    hangup = t.lwp("hangup")
    assert r.data["cycles"] == []
    sessions = check_held(r, t.lock("sessions_mutex"), hangup, variant,
                          "ab_hangup_sessions", "janus_audiobridge_hangup_media")
    rooms = check_held(r, t.lock("rooms_mutex"), hangup, variant,
                       "ab_hangup_rooms", "janus_audiobridge_hangup_media_internal")
    room = check_held(r, t.lock("room_mutex"), hangup, variant,
                      "ab_hangup_room", "janus_audiobridge_hangup_media_internal")
    qmutex = check_held(r, t.lock("qmutex"), hangup, variant,
                        "ab_hangup_qmutex", "janus_audiobridge_hangup_media_internal")
    # names: the globals by file, the room and participant by their ids and names
    assert sessions["name"] == "janus_audiobridge.c: sessions_mutex", sessions
    assert rooms["name"] == "janus_audiobridge.c: rooms_mutex", rooms
    room_label = 'AudioBridge room %s "%s"' % (room_id, room_name)
    assert room["name"] == "audiobridge->mutex of " + room_label, room
    assert room["object"]["type"] == "janus_audiobridge_room"
    assert room["object"]["field"] == "mutex"
    part_label = 'participant %s "%s" in AudioBridge room %s' % (user_id, display, room_id)
    assert qmutex["name"] == "participant->qmutex of " + part_label, qmutex
    assert qmutex["object"]["type"] == "janus_audiobridge_participant"
    assert qmutex["object"]["field"] == "qmutex"
    for lock in (sessions, rooms, room, qmutex):
        assert lock["name"] in text
    # who waits for what
    mixer, handler, loop = t.lwp("mixer"), t.lwp("ab_handler"), t.lwp("event_loop")
    assert r.waiter_lwps(t.lock("room_mutex")) == {mixer}
    assert r.waiter_lwps(t.lock("sessions_mutex")) == {handler}
    assert r.waiter_lwps(t.lock("qmutex")) == {loop}
    assert r.waiter_lwps(t.lock("rooms_mutex")) == t.lwps("worker")
    assert len(t.lwps("worker")) == 4
    hung = r.by_lwp[hangup]
    assert hung["state"] == "waiting" and hung["wait"]["kind"] == "queue", hung
    # roles from the entry functions (a core has no thread names), with the
    # object the thread serves
    roles = dict((lwp, (r.by_lwp[lwp]["role"], r.by_lwp[lwp]["role_detail"]))
                 for lwp in r.by_lwp)
    assert roles[mixer] == ("audiobridge mixer", room_label), roles[mixer]
    assert roles[t.lwp("ab_participant")] == ("audiobridge participant", part_label)
    assert roles[handler][0] == "audiobridge handler"
    assert roles[hangup] == ("hloop", "handle 5555")
    assert roles[loop][0] == "event loop"
    for lwp in t.lwps("worker"):
        assert roles[lwp][0] == "request worker"
    assert "audiobridge mixer (%s)" % room_label in text, text
    # a remote client's display name: bounded, no terminal bytes in the text
    role, detail = roles[t.lwp("ab_hostile")]
    assert role == "audiobridge participant"
    assert detail.startswith("participant %s " % t.info["hostile"][0]), detail
    assert "mallory" in detail and detail.endswith(" in AudioBridge room %s" % room_id), detail
    assert len(detail) < 120, detail
    # a lock no frame points to, named through AudioBridge's rooms table
    leaked = r.locks[t.lock("hostile_qmutex")]
    assert leaked["name"].startswith("participant->qmutex of participant %s "
                                     % t.info["hostile"][0]), leaked
    assert leaked["name"].endswith(" in AudioBridge room %s" % room_id), leaked
    assert leaked["object"]["type"] == "janus_audiobridge_participant"
    if variant == "pthread":
        assert leaked["owner"]["lwp"] == t.lwp("main") and leaked["owner"]["evidence"] == "exact"
    out = plugins.run("audiobridge_hangup", variant, mode, "janus-waitgraph --all")
    assert "\x1b" not in out and "\x07" not in out
    assert "audiobridge participant (participant %s " % t.info["hostile"][0] in out, out
    assert "audiobridge participant (%s)" % part_label in out, out


def truth_queues(t):
    """{name: address} of the fixture's ``info queues NAME 0xADDR ...`` line."""
    words = t.info["queues"]
    return dict((k, int(v, 16)) for k, v in zip(words[0::2], words[1::2]))


def check_queue(thread, addr, name, evidence, expr=None):
    """THREAD (JSON) waits on the GAsyncQueue at ADDR, named NAME (None: no name)."""
    w = thread["wait"]
    assert w is not None and w["kind"] == "queue", thread
    q = w["queue"]
    assert q is not None, w
    assert q["address"] == addr, (hex(addr), q)
    # the futex word it sleeps on is the queue's GCond: cond.i[0], 16 bytes in
    assert w["futex"] == addr + 16, (hex(addr), w)
    assert q["evidence"] == evidence, q
    if name is None:
        assert q["name"] is None and q["object"] is None and q["variable"] is None, q
    else:
        assert q["name"] == name, q
    if expr is not None:
        assert q["expr"] == expr, q
    return q


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_audiobridge_queues(plugins, variant, mode):
    """#3570's queue: the hangup path and the participant thread wait on the
    participant's outbuf, named by the participant whose field points to it;
    a queue only a thread's own frame has stays "a queue at 0x..."."""
    r, t = plugins.result("audiobridge_hangup", variant, mode)
    text = plugins.text("audiobridge_hangup", variant, mode)
    info = truth_info(t, "room")
    queues = truth_queues(t)
    part_label = 'participant %s "%s" in AudioBridge room %s' % (
        info["participant"], info["display"], info["room"])
    outbuf = "participant->outbuf of " + part_label
    q = check_queue(r.by_lwp[t.lwp("hangup")], queues["outbuf"], outbuf, "frame",
                    "participant->outbuf")
    assert q["object"]["type"] == "janus_audiobridge_participant", q
    assert q["object"]["field"] == "outbuf", q
    assert "evaluated in janus_audiobridge_participant_clear_outbuf" in q["how"], q
    check_queue(r.by_lwp[t.lwp("ab_participant")], queues["outbuf"], outbuf, "frame")
    hostile = check_queue(r.by_lwp[t.lwp("ab_hostile")], queues["hostile_outbuf"],
                          r.by_lwp[t.lwp("ab_hostile")]["wait"]["queue"]["name"], "frame")
    assert hostile["name"].startswith("participant->outbuf of participant %s "
                                      % t.info["hostile"][0]), hostile
    check_queue(r.by_lwp[t.lwp("anon_queue")], queues["anon"], None, "frame", "queue")
    # a participant in no table: named through its own thread's frame
    carol = truth_info(t, "carol")
    check_queue(r.by_lwp[t.lwp("ab_carol")], queues["carol_outbuf"],
                'participant->outbuf of participant %s "%s"' % (carol["carol"], carol["display"]),
                "frame", "participant->outbuf")
    # the verdict and the root's section say which queue
    head = text.splitlines()[0]
    assert ("T%d holds 4 locks while waiting on the queue %s (g_async_queue_pop in "
            "janus_audiobridge_participant_clear_outbuf)" % (r.by_lwp[t.lwp("hangup")]["num"],
                                                          outbuf)) in head, head
    assert "    queue %s (0x%x)  [frame: " % (outbuf, queues["outbuf"]) in text, text
    cause = r.data["roots"][0]
    assert outbuf in cause["why"], cause
    out = plugins.run("audiobridge_hangup", variant, mode, "janus-waitgraph --all")
    assert "waiting on a queue (at 0x%x; nothing known points to it)" % queues["anon"] in out
    # DOT: the root's node says which queue (wrapped at spaces, quotes escaped;
    # idle threads are not drawn)
    dot = plugins.run("audiobridge_hangup", variant, mode, "janus-waitgraph --format dot")
    assert "participant->outbuf of participant %s \\\"%s\\\"" % (
        info["participant"], info["display"]) in dot, dot
    assert "\x1b" not in dot and "\x07" not in dot
    assert "\x1b" not in out and "\x07" not in out


@pytest.mark.parametrize("mode", MODES)
def test_audiobridge_queues_stripped(plugins, build_dir, mode):
    """Without debug info no frame gives the pointer and no type names a
    field: the queue is found from the futex word and its words alone, and
    never named."""
    exe = os.path.join(build_dir, "janus_plugins_gmutex")
    stripped = exe + ".queues-stripped"
    if not os.path.exists(stripped):
        subprocess.run(gdbrun.in_root(["strip", "--strip-all", "-o", stripped, exe]), check=True)
    sc = plugins.get("audiobridge_hangup", "gmutex")
    t = sc.truth
    if mode == "live":
        res = gdbrun.gdb(["janus-waitgraph --format json"], pid=sc.pid, exe=stripped)
    else:
        res = gdbrun.gdb(["janus-waitgraph --format json"], exe=stripped,
                         core=plugins.core("audiobridge_hangup", "gmutex"))
    assert "Traceback" not in res.stdout + res.stderr
    r = gdbrun.Result(gdbrun.extract_json(res.stdout))
    queues = truth_queues(t)
    for role, key in (("hangup", "outbuf"), ("ab_participant", "outbuf"),
                      ("ab_hostile", "hostile_outbuf"), ("anon_queue", "anon")):
        q = check_queue(r.by_lwp[t.lwp(role)], queues[key], None, "futex")
        assert "cond.i[0] (+16)" in q["how"] and "waiting_threads" in q["how"], q


# ---------------------------------------------------------------------------
# Streaming: a relay thread sleeps holding its mountpoint's mutex
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_mountpoint_held(plugins, variant, mode):
    r, t = plugins.result("mountpoint_held", variant, mode)
    text = plugins.text("mountpoint_held", variant, mode)
    # the Streaming handler is idle on the plugin's global messages queue
    check_queue(r.by_lwp[t.lwp("st_handler")], truth_queues(t)["messages"],
                "janus_audiobridge.c: messages", "frame", "messages")
    assert r.by_lwp[t.lwp("st_handler")]["state"] == "idle"
    info = truth_info(t, "mountpoint")
    mp_label = 'mountpoint %s "%s"' % (info["mountpoint"], info["name"])
    relay = t.lwp("relay")
    assert r.data["cycles"] == []
    assert r.data["verdict"].startswith("No deadlock found")
    mp = check_held(r, t.lock("mountpoint_mutex"), relay, variant,
                    "mp_relay_mutex", "janus_streaming_relay_thread")
    assert mp["name"] == "mountpoint->mutex of " + mp_label, mp
    assert mp["object"]["type"] == "janus_streaming_mountpoint"
    assert mp["name"] in text
    assert r.state(relay) == "sleep", r.by_lwp[relay]
    # the RTP source's lock, named by the mountpoint that points to it (the
    # waiting frame has only the source)
    rtsp = check_held(r, t.lock("rtsp_mutex"), relay, variant,
                      "mp_relay_rtsp", "janus_streaming_relay_thread")
    assert rtsp["name"] == "source->rtsp_mutex of RTP source of " + mp_label, rtsp
    assert rtsp["object"]["type"] == "janus_streaming_rtp_source"
    assert r.waiter_lwps(t.lock("rtsp_mutex")) == {t.lwp("rtsp_play")}
    assert rtsp["name"] in text
    ondemand, helper = t.lwp("ondemand"), t.lwp("helper")
    assert r.waiter_lwps(t.lock("mountpoint_mutex")) == {ondemand, helper}
    roles = dict((lwp, (r.by_lwp[lwp]["role"], r.by_lwp[lwp]["role_detail"]))
                 for lwp in r.by_lwp)
    assert roles[relay] == ("streaming relay", mp_label), roles[relay]
    assert roles[ondemand] == ("streaming on-demand", mp_label), roles[ondemand]
    assert roles[helper] == ("streaming helper", "helper #1 of " + mp_label), roles[helper]
    assert roles[t.lwp("st_handler")][0] == "streaming handler"
    assert "streaming relay (%s)" % mp_label in text, text
    # mountpoints_mutex is free: never reported as held
    free = r.locks.get(t.lock("mountpoints_mutex"))
    assert free is None or not free["owner"] or free["owner"].get("lwp") is None, free


# ---------------------------------------------------------------------------
# janus-locks names the same locks, text and JSON
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("variant", VARIANTS)
def test_locks_command_names_plugin_locks(plugins, variant):
    out = plugins.run("audiobridge_hangup", variant, "core", "janus-locks --format json")
    locks = gdbrun.Result(gdbrun.extract_json(out))
    wg, t = plugins.result("audiobridge_hangup", variant, "core")
    assert locks.data["locks"] == wg.data["locks"]
    text = plugins.run("audiobridge_hangup", variant, "core", "janus-locks")
    for name in ("room_mutex", "qmutex", "rooms_mutex", "sessions_mutex"):
        addr = t.lock(name)
        assert "0x%x" % addr in text
        assert locks.locks[addr]["name"] in text


# ---------------------------------------------------------------------------
# Pure logic: labels and roles (janusdb), no gdb
# ---------------------------------------------------------------------------

def test_plugin_labels_and_roles():
    import sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from janus_gdb.janus import janusdb
    room = {"room_id": 4321, "room_id_str": None, "room_name": "lobby"}
    assert janusdb.label("janus_audiobridge_room", room, {}) == 'AudioBridge room 4321 "lobby"'
    # string room ids win over the numeric one (Janus's string_ids)
    assert janusdb.label("janus_audiobridge_room", {"room_id": 0, "room_id_str": "hall"},
                         {}) == "AudioBridge room hall"
    part = {"user_id": 77, "display": "bob"}
    linked = {"room": ("janus_audiobridge_room", room, {})}
    assert janusdb.label("janus_audiobridge_participant", part, linked) == (
        'participant 77 "bob" in AudioBridge room 4321')
    assert janusdb.label("janus_audiobridge_participant", part, {}) == 'participant 77 "bob"'
    long_name = "x" * 300
    got = janusdb.label("janus_audiobridge_participant", {"user_id": 1, "display": long_name}, {})
    assert len(got) < 90 and got.endswith('..."'), got
    assert janusdb.object_name("janus_audiobridge_participant", "qmutex",
                               'participant 77 "bob" in AudioBridge room 4321', 0x10) == (
        'participant->qmutex of participant 77 "bob" in AudioBridge room 4321')
    assert janusdb.object_name("janus_audiobridge_room", "mutex", 'AudioBridge room 4321 "lobby"',
                               0x10) == 'audiobridge->mutex of AudioBridge room 4321 "lobby"'
    assert janusdb.object_name("janus_streaming_session", "mutex", None, 0x10) == (
        "streaming session->mutex of janus_streaming_session 0x10")
    for entry, role in (("janus_audiobridge_handler", "audiobridge handler"),
                        ("janus_audiobridge_mixer_thread", "audiobridge mixer"),
                        ("janus_audiobridge_participant_thread", "audiobridge participant"),
                        ("janus_streaming_relay_thread", "streaming relay"),
                        ("janus_streaming_ondemand_thread", "streaming on-demand"),
                        ("janus_streaming_helper_thread", "streaming helper")):
        assert janusdb.role_of(entry, None) == role
        if entry in janusdb.THREAD_OBJECTS:
            assert janusdb.THREAD_OBJECTS[entry][0] in janusdb.OBJECT_TYPES
    mp = {"id": 1, "name": "live"}
    assert janusdb.label("janus_streaming_helper", {"id": 2},
                         {"mp": ("janus_streaming_mountpoint", mp, {})}) == (
        'helper #2 of mountpoint 1 "live"')
    assert janusdb.object_name("janus_streaming_helper", "mutex", 'helper #2', 0x10) == (
        "helper->mutex of helper #2")
    assert janusdb.label("janus_streaming_rtp_source", {}, {}) is None
    assert janusdb.label("janus_streaming_rtp_source", {}, {
        "mountpoint": ("janus_streaming_mountpoint", mp, {})}) == 'RTP source of mountpoint 1 "live"'
    assert janusdb.role_of(None, "audiobridge han") == "audiobridge handler"
    assert janusdb.role_of(None, "streaming handl") == "streaming handler"
