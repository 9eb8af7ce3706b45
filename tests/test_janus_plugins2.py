"""TextRoom, SIP, NoSIP, VideoCall, EchoTest, Record&Play, Lua, Duktape and
the HTTP, WebSockets and Unix-socket transports: locks named by their
objects, threads by their roles (tests/fixtures/janus_plugins2.c, issue 13
point 1).

The fixture is one source compiled once per plugin under the plugin's file
name (each has its own static ``sessions_mutex``, as in Janus), with Janus
1.1.2's struct, field and variable names; it hangs every plugin at once.
Built with GMutex and with pthread mutexes, analysed live and from a core.
Addresses and ids come from the fixture's ground truth, lines from its SITE
markers.  A VideoRoom session type exists in the program: a plugin session
of another plugin must never be read as one.
"""

import os
import shutil
import subprocess

import pytest

import gdbrun

SRC = os.path.join(gdbrun.FIXTURES, "janus_plugins2.c")
VARIANTS = ["gmutex", "pthread"]
MODES = ["live", "core"]
SITES = gdbrun.site_lines(SRC)
# translation unit -> file name (Janus's)
UNITS = (("MAIN", "plugins2_main.c"), ("TEXTROOM", "janus_textroom.c"), ("SIP", "janus_sip.c"),
         ("NOSIP", "janus_nosip.c"), ("VIDEOCALL", "janus_videocall.c"),
         ("ECHOTEST", "janus_echotest.c"), ("RECORDPLAY", "janus_recordplay.c"),
         ("LUA", "janus_lua.c"), ("DUKTAPE", "janus_duktape.c"), ("HTTP", "janus_http.c"),
         ("WEBSOCKETS", "janus_websockets.c"), ("PFUNIX", "janus_pfunix.c"))


def build(build_dir, variant):
    out_dir = os.path.join(build_dir, "plugins2_%s" % variant)
    os.makedirs(out_dir, exist_ok=True)
    cflags = subprocess.run(["pkg-config", "--cflags", "glib-2.0"], stdout=subprocess.PIPE,
                            check=True, universal_newlines=True).stdout.split()
    objs = []
    for unit, name in UNITS:
        src = os.path.join(out_dir, name)
        shutil.copy(SRC, src)
        obj = src[:-2] + ".o"
        cmd = ["gcc", "-g", "-O2", "-Wall", "-pthread", "-fno-omit-frame-pointer",
               "-I" + gdbrun.FIXTURES, "-fmacro-prefix-map=%s/=" % out_dir,
               "-DPLUGIN_" + unit, "-c", src, "-o", obj] + cflags
        if variant == "pthread":
            cmd.append("-DUSE_PTHREAD_MUTEX")
        subprocess.run(gdbrun.in_root(cmd), check=True)
        objs.append(obj)
    exe = os.path.join(out_dir, "janus_plugins2")
    subprocess.run(gdbrun.in_root(["gcc", "-pthread", "-o", exe] + objs + gdbrun.glib_flags()), check=True)
    return exe


class Plugins2(object):
    """Both builds, their hung processes, cores and gdb outputs, once per module."""

    def __init__(self, build_dir):
        self.dir = build_dir
        self.exes = dict((v, build(build_dir, v)) for v in VARIANTS)
        self.running = {}
        self.cores = {}
        self.outputs = {}

    def get(self, variant):
        if variant not in self.running:
            self.running[variant] = gdbrun.Scenario(self.exes[variant], ["all"])
        return self.running[variant]

    def core(self, variant):
        if variant not in self.cores:
            path = os.path.join(self.dir, "core.plugins2.%s" % variant)
            self.cores[variant] = self.get(variant).gcore(path)
        return self.cores[variant]

    def run(self, variant, mode, command):
        key = (variant, mode, command)
        if key not in self.outputs:
            if mode == "live":
                res = gdbrun.gdb([command], pid=self.get(variant).pid)
            else:
                res = gdbrun.gdb([command], exe=self.exes[variant], core=self.core(variant))
            both = res.stdout + res.stderr
            assert "Traceback" not in both, both
            assert "Python Exception" not in both, both
            self.outputs[key] = res.stdout
        return self.outputs[key]

    def result(self, variant, mode):
        out = self.run(variant, mode, "janus-waitgraph --format json")
        return gdbrun.Result(gdbrun.extract_json(out)), self.get(variant).truth

    def close(self):
        gdbrun.close_fixtures(self.running.values(), self.cores.values())


@pytest.fixture(scope="module")
def plugins2(build_dir):
    p = Plugins2(build_dir)
    yield p
    p.close()


# (truth lock, expected name, holder role or None (leaked by main), file and
# SITE of the lock call, function, waiter roles)
HUNG = (
    ("tr_rooms_mutex", "janus_textroom.c: rooms_mutex", "tr_handler",
     "janus_textroom.c", "tr_handler_rooms", "janus_textroom_handler", ()),
    ("tr_room_mutex", 'textroom->mutex of TextRoom room 4321 "lobby"', "tr_handler",
     "janus_textroom.c", "tr_handler_room", "janus_textroom_handler", ("tr_worker",)),
    # the waiter's frame has only the janus_plugin_session: the session is
    # found through the handle's plugin (app)
    ("tr_session_mutex", "session->mutex of TextRoom session of handle 7001", "main",
     None, None, None, ("tr_hloop",)),
    ("tr_participant_mutex",
     'participant->mutex of participant "bob" (display "Bob B") in TextRoom room 4321',
     "main", None, None, None, ()),
    ("sip_smutex", 'stack->smutex of SIP stack of SIP session of handle 7002 "sip:bob@example.com"',
     "sip_sofia", "janus_sip.c", "sip_sofia_smutex", "janus_sip_sofia_thread", ("sip_worker",)),
    ("sip_mutex", 'session->mutex of SIP session of handle 7002 "sip:bob@example.com"',
     "sip_sofia", "janus_sip.c", "sip_sofia_mutex", "janus_sip_sofia_thread", ("sip_relay",)),
    ("sip_rec_mutex", 'session->rec_mutex of SIP session of handle 7002 "sip:bob@example.com"',
     "sip_sofia", "janus_sip.c", "sip_sofia_rec", "janus_sip_sofia_thread", ("sip_handler",)),
    ("nosip_mutex", "session->mutex of NoSIP session of handle 7003", "nosip_relay",
     "janus_nosip.c", "nosip_relay_mutex", "janus_nosip_relay_thread", ("nosip_handler",)),
    ("vc_sessions_mutex", "janus_videocall.c: sessions_mutex", "vc_handler",
     "janus_videocall.c", "vc_handler_sessions", "janus_videocall_handler", ("vc_hloop",)),
    ("vc_mutex", 'session->mutex of VideoCall session of handle 7004 "alice"', "vc_handler",
     "janus_videocall.c", "vc_handler_mutex", "janus_videocall_handler", ("vc_loop",)),
    ("et_rec_mutex", "session->rec_mutex of EchoTest session of handle 7005", "et_loop",
     "janus_echotest.c", "et_rtp_rec", "janus_echotest_incoming_rtp", ("et_handler",)),
    ("rp_recordings_mutex", "janus_recordplay.c: recordings_mutex", "rp_handler",
     "janus_recordplay.c", "rp_handler_recordings", "janus_recordplay_handler", ("rp_worker",)),
    ("rp_rec_mutex", 'rec->mutex of Record&Play recording 1234 "demo"', "rp_playout",
     "janus_recordplay.c", "rp_playout_rec", "janus_recordplay_playout_thread", ("rp_handler",)),
    ("lua_mutex", "janus_lua.c: lua_mutex", "lua_scheduler",
     "janus_lua.c", "lua_scheduler_mutex", "janus_lua_scheduler", ("lua_pushevent",)),
    ("lua_recipients_mutex", "session->recipients_mutex of Lua session 3 of handle 7007", "main",
     None, None, None, ()),
    ("duktape_mutex", "janus_duktape.c: duktape_mutex", "duktape_scheduler",
     "janus_duktape.c", "duktape_scheduler_mutex", "janus_duktape_scheduler",
     ("duktape_pushevent",)),
    ("duktape_recipients_mutex", "session->recipients_mutex of Duktape session 3 of handle 7007",
     "main", None, None, None, ()),
    ("http_messages_mutex", "janus_http.c: messages_mutex", "http_mhd",
     "janus_http.c", "http_handler_messages", "janus_http_handler", ("http_mhd_admin",)),
    ("http_session_mutex", "session->mutex of HTTP session 8888", "http_mhd",
     "janus_http.c", "http_handler_session", "janus_http_handler", ("http_timer",)),
    ("ws_writable_mutex", "janus_websockets.c: writable_mutex", "ws_thread",
     "janus_websockets.c", "ws_callback_writable", "janus_websockets_common_callback",
     ("ws_worker",)),
    ("ws_ts_mutex", "ts->mutex of janus_transport_session 0x", "ws_worker",
     "janus_websockets.c", "ws_send_ts", "janus_websockets_send_message", ()),
    ("pf_clients_mutex", "janus_pfunix.c: clients_mutex", "pfunix_thread",
     "janus_pfunix.c", "pf_thread_clients", "janus_pfunix_thread", ("pf_worker",)),
)

SIP_LABEL = 'SIP session of handle 7002 "sip:bob@example.com"'
# thread (truth role) -> (role, role detail or None for any)
ROLES = {
    "tr_handler": ("textroom handler", None),
    "tr_worker": ("request worker", None),
    "tr_hloop": ("hloop", "handle 7001"),
    "sip_sofia": ("sip sofia loop", SIP_LABEL),
    "sip_relay": ("sip relay", SIP_LABEL),
    "sip_handler": ("sip handler", None),
    "sip_worker": ("request worker", None),
    "nosip_relay": ("nosip relay", "NoSIP session of handle 7003"),
    "nosip_handler": ("nosip handler", None),
    "vc_handler": ("videocall handler", None),
    "vc_hloop": ("hloop", "handle 7004"),
    "vc_loop": ("event loop", None),
    "et_loop": ("event loop", None),
    "et_handler": ("echotest handler", None),
    "rp_playout": ("recordplay playout", 'Record&Play recording 1234 "demo"'),
    "rp_handler": ("recordplay handler", None),
    "rp_worker": ("request worker", None),
    "lua_scheduler": ("lua scheduler", None),
    "lua_pushevent": ("lua pushevent", "Lua session 3 of handle 7007"),
    "duktape_scheduler": ("duktape scheduler", None),
    "duktape_pushevent": ("duktape pushevent", "Duktape session 3 of handle 7007"),
    "http_mhd": ("http", None),
    "http_mhd_admin": ("http", None),
    "http_timer": ("http timer", None),
    "ws_thread": ("websockets", None),
    "ws_worker": ("request worker", None),
    "pfunix_thread": ("unix sockets", None),
    "pf_worker": ("request worker", None),
    "main": ("main", None),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_plugins_and_transports(plugins2, variant, mode):
    r, t = plugins2.result(variant, mode)
    text = gdbrun.extract_report(plugins2.run(variant, mode, "janus-waitgraph"))
    assert text is not None
    assert r.data["cycles"] == []
    problems = []
    for (tlock, name, holder, fname, site, function, waiters) in HUNG:
        addr = t.lock(tlock)
        lock = r.locks.get(addr)
        if lock is None:
            problems.append("%s (0x%x) not reported" % (tlock, addr))
            continue
        if not (lock["name"] or "").startswith(name) or (name.endswith("0x") and
                                                 lock["name"] != name + "%x" % _obj_addr(lock)):
            problems.append("%s named %r, want %r" % (tlock, lock["name"], name))
        owner = lock["owner"] or {}
        if site is not None:
            if owner.get("lwp") != t.lwp(holder):
                problems.append("%s owner %r, want %s" % (tlock, owner, holder))
            elif variant == "pthread" and owner.get("evidence") != "exact":
                problems.append("%s owner not exact: %r" % (tlock, owner))
            elif variant == "gmutex":
                if owner.get("evidence") != "inferred" or function not in owner.get("detail", ""):
                    problems.append("%s owner evidence %r" % (tlock, owner))
                elif owner.get("source") == "lockset" and (
                        "locked at %s:%d" % (fname, SITES[site]) not in owner["detail"]):
                    problems.append("%s owner detail %r" % (tlock, owner))
        elif variant == "pthread":
            # leaked by the main thread: exact owner from the mutex
            if owner.get("lwp") != t.lwp("main") or owner.get("evidence") != "exact":
                problems.append("%s leaked owner %r" % (tlock, owner))
        elif owner.get("lwp") is not None and owner.get("lwp") != t.lwp("main"):
            problems.append("%s leaked: a false owner %r" % (tlock, owner))
        want = set(t.lwp(w) for w in waiters)
        if r.waiter_lwps(addr) != want:
            problems.append("%s waiters %r, want %r" % (tlock, r.waiter_lwps(addr), want))
        if waiters and lock["name"] not in text:
            problems.append("%s: name not in the text report" % tlock)
    for who, (role, detail) in sorted(ROLES.items()):
        th = r.by_lwp[t.lwp(who)]
        if th["role"] != role or (detail is not None and th["role_detail"] != detail):
            problems.append("thread %s: role %r (%r), want %r (%r)"
                            % (who, th["role"], th["role_detail"], role, detail))
    # no plugin session is ever called a VideoRoom one
    for lock in r.data["locks"]:
        if "videoroom" in (lock["name"] or "").lower():
            problems.append("a VideoRoom name: %r" % lock["name"])
    for th in r.data["threads"]:
        if "videoroom" in (th.get("role_detail") or "").lower():
            problems.append("a VideoRoom role detail: %r" % th)
    assert not problems, "\n".join(problems)
    assert "sip sofia loop (%s)" % SIP_LABEL in text, text


def _obj_addr(lock):
    return lock["object"]["address"] if isinstance(lock.get("object"), dict) and isinstance(
        lock["object"].get("address"), int) else -1


# ---------------------------------------------------------------------------
# Pure logic: labels, roles and the plugin of a session (janusdb), no gdb
# ---------------------------------------------------------------------------

def _janusdb():
    import sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from janus_gdb.janus import janusdb
    return janusdb


def _handle(hid):
    gw = ("janus_ice_handle", {"handle_id": hid}, {})
    return ("janus_plugin_session", {}, {"gateway_handle": gw})


def test_plugin_session_type():
    db = _janusdb()
    assert db.plugin_session_type("janus_sip_plugin", None) == "janus_sip_session"
    assert db.plugin_session_type("janus_videoroom_plugin", "libjanus_videoroom.so") == (
        "janus_videoroom_session")
    # the library decides when the symbol is not the plugin's variable
    assert db.plugin_session_type(None, "libjanus_textroom.so.1.1.2") == "janus_textroom_session"
    assert db.plugin_session_type("janus_sip_plugin+8", "libjanus_lua.so") == "janus_lua_session"
    # unknown: never a guess (and never VideoRoom)
    for symbol, lib in ((None, None), ("janus_sip_plugin+8", None), ("janus_voicemail_plugin",
                                                                      "libjanus_voicemail.so"),
                        ("some_plugin", "libfoo.so"), ("janus_plugin", None)):
        assert db.plugin_session_type(symbol, lib) is None, (symbol, lib)
    for package, struct in db.PLUGIN_SESSIONS.items():
        assert struct in db.OBJECT_TYPES and db.OBJECT_TYPES[struct]["links"].get(
            "handle") == "janus_plugin_session", package


def test_transport_title():
    db = _janusdb()
    assert db.transport_title("janus_websockets_transport", None) == "WebSockets"
    assert db.transport_title(None, "libjanus_pfunix.so.1") == "Unix-socket"
    assert db.transport_title("janus_http_transport+8", "libjanus_http.so") == "HTTP"
    for symbol, lib in ((None, None), ("janus_http_transport+8", None),
                        ("janus_foo_transport", "libjanus_foo.so"), ("x", "libx.so")):
        assert db.transport_title(symbol, lib) is None, (symbol, lib)


def test_plugin2_labels():
    db = _janusdb()
    room = {"room_id": 4321, "room_name": "lobby"}
    assert db.label("janus_textroom_room", room, {}) == 'TextRoom room 4321 "lobby"'
    part = {"username": "bob", "display": "Bob B"}
    assert db.label("janus_textroom_participant", part,
                    {"room": ("janus_textroom_room", room, {})}) == (
        'participant "bob" (display "Bob B") in TextRoom room 4321')
    assert db.label("janus_textroom_participant", {"username": "bob", "display": "bob"}, {}) == (
        'participant "bob"')
    assert db.label("janus_textroom_participant", {}, {}) == "participant ?"
    sip = {"account.identity": "sip:bob@example.com", "account.username": "bob"}
    label = db.label("janus_sip_session", sip, {"handle": _handle(77)})
    assert label == 'SIP session of handle 77 "sip:bob@example.com"'
    assert db.object_name("janus_sip_session", "mutex", label, 0) == (
        'session->mutex of SIP session of handle 77 "sip:bob@example.com"')
    assert db.label("janus_sip_session", {"account.username": "bob"}, {}) == 'SIP session "bob"'
    assert db.label("ssip_s", {}, {"session": ("janus_sip_session", sip, {
        "handle": _handle(77)})}) == 'SIP stack of SIP session of handle 77 "sip:bob@example.com"'
    assert db.label("ssip_s", {}, {}) is None
    assert db.label("janus_nosip_session", {}, {"handle": _handle(5)}) == (
        "NoSIP session of handle 5")
    assert db.label("janus_videocall_session", {"username": "alice"}, {}) == (
        'VideoCall session "alice"')
    assert db.label("janus_echotest_session", {}, {}) == "EchoTest session"
    assert db.label("janus_recordplay_recording", {"id": 1234, "name": "demo"}, {}) == (
        'Record&Play recording 1234 "demo"')
    assert db.object_name("janus_recordplay_recording", "mutex",
                          'Record&Play recording 1234 "demo"', 0) == (
        'rec->mutex of Record&Play recording 1234 "demo"')
    assert db.label("janus_lua_session", {"id": 3}, {"handle": _handle(9)}) == (
        "Lua session 3 of handle 9")
    assert db.label("janus_duktape_session", {"id": 3}, {}) == "Duktape session 3"
    assert db.label("janus_http_session", {"session_id": 8888}, {}) == "HTTP session 8888"
    assert db.label("janus_transport_session", {}, {}) is None
    assert db.object_name("janus_transport_session", "mutex", None, 0x10) == (
        "ts->mutex of janus_transport_session 0x10")
    # through the Janus session whose source request points to it
    sess = ("janus_session", {"session_id": 4242}, {})
    req = ("janus_request", {"transport": "WebSockets"}, {"session": sess})
    assert db.label("janus_transport_session", {}, {"request": req}) == (
        "WebSockets transport session of session 4242")
    assert db.label("janus_transport_session", {}, {"request": (
        "janus_request", {}, {"session": sess})}) == "transport session of session 4242"
    # a request no session owns (one on a stack) names nothing
    assert db.label("janus_transport_session", {}, {"request": (
        "janus_request", {"transport": "WebSockets"}, {})}) is None
    # client strings are cut
    long_id = "sip:" + "x" * 300
    assert len(db.label("janus_sip_session", {"account.identity": long_id}, {})) < 90


def test_plugin2_roles():
    db = _janusdb()
    for entry, role in (("janus_textroom_handler", "textroom handler"),
                        ("janus_sip_sofia_thread", "sip sofia loop"),
                        ("janus_sip_relay_thread", "sip relay"),
                        ("janus_nosip_relay_thread", "nosip relay"),
                        ("janus_recordplay_playout_thread", "recordplay playout"),
                        ("janus_lua_async_event_helper", "lua pushevent"),
                        ("janus_duktape_scheduler", "duktape scheduler"),
                        ("janus_websockets_thread", "websockets"),
                        ("janus_pfunix_thread", "unix sockets")):
        assert db.role_of(entry, None) == role
    # thread names (live only), cut to 15 characters by newer glib
    for name, role in (("textroom handle", "textroom handler"), ("sip bob", "sip sofia loop"),
                       ("siprtp bob", "sip relay"), ("sip handler", "sip handler"),
                       ("nosiprtp 0x55d0", "nosip relay"), ("videocall handl", "videocall handler"),
                       ("recordplay play", "recordplay playout"),
                       ("duktape pusheve", "duktape pushevent"), ("ws thread", "websockets"),
                       ("pfunix thread", "unix sockets")):
        assert db.role_of(None, name) == role, name
    # libsofia-sip's own threads inherit "sip <user>": their library decides
    assert db.role_of(None, "sip bob", entry_lib="libsofia-sip-ua.so.0") == "sofia-sip"
    # but glib's pool threads stay request workers by their name
    assert db.role_of(None, "pool-3", entry_lib="libglib-2.0.so.0") == "request worker"
    for entry, (struct, _vars, via) in db.THREAD_OBJECTS.items():
        assert struct in db.OBJECT_TYPES and entry in db.ENTRY_ROLES
        assert via is None or via in db.OBJECT_TYPES[struct]["links"]
