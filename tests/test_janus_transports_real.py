"""The WebSockets and Unix-socket transports of a real Janus (issue 13 point 1).

A real Janus (1.1.2, and 1.4.1 when built) loads the HTTP, WebSockets
(ws on 127.0.0.1 only, a free port) and Unix-socket (SOCK_SEQPACKET, a path
in the test's directory) transports (janusd.JanusServer(transports=...));
ss(8) shows that it listens on nothing else.  Clients drive each transport
(tests/janus_transports.py: a stdlib WebSocket client with the
janus-protocol subprotocol, a SOCK_SEQPACKET client): sessions are created
over WebSockets and the Unix socket and VideoRoom handles attached there;
the Admin API confirms which transport each session came from.

a: roles, live and from a core: the threads named "ws thread" and
"pfunix thread" in /proc/PID/task/*/comm (the ground truth) are the
`websockets` and `unix sockets` threads of the report, with their entry
functions; the HTTP transport's threads are `http timer` and `http`.

b: a request's answer frozen inside a transport's lock, live and from a
core: a request worker sending the answer of a VideoRoom "list" back over
the Unix socket is stopped on the line after janus_pfunix_send_message's
janus_mutex_lock(&clients_mutex) and made to sleep in pause(2) there; an
event for the same session (an HTTP "join" on its handle: the VideoRoom
handler pushes "joined" to the session's transport) and the pfunix thread
itself pile up behind it.  Over WebSockets the same request is frozen after
janus_websockets_send_message's lock of writable_mutex, holding its
transport session's mutex too: the VideoRoom handler's event waits for the
session's mutex, the WebSockets service thread (a new connection) for
writable_mutex.  The report (janus-waitgraph, janus-locks) must name each
lock as the catalogue does (`janus_pfunix.c: clients_mutex`,
`janus_websockets.c: writable_mutex`, `ts->mutex of
janus_transport_session 0x...`), give the frozen thread as its inferred
holder with the lock's line, and list exactly the futex waiters seen in
/proc, with their roles.

Skipped when the Janus build (scripts/build-janus) or its WebSockets or
Unix-socket transport is missing.
"""

import os
import re

import pytest

import gdbrun
import janusd
import janus_transports as jt

ROOM = 1234     # the sample configuration's VideoRoom room


def transports_problem(prefix):
    for name in ("websockets", "pfunix"):
        if not os.path.exists(os.path.join(prefix, "lib", "janus", "transports",
                                           "libjanus_%s.so" % name)):
            return "this Janus build has no libjanus_%s.so" % name
    return None


def start_janus(version, tmp_path_factory, what):
    prefix, problem = janusd.usable_prefix(("gdb", "ss"), version=version)
    if problem:
        pytest.skip(problem)
    problem = transports_problem(prefix)
    if problem:
        pytest.skip(problem)
    workdir = str(tmp_path_factory.mktemp("janus-%s-%s" % (what, version)))
    j = janusd.JanusServer(prefix, workdir, transports=("websockets", "pfunix"))
    j.start()
    return j


def analyze(**kw):
    """(Result of janus-waitgraph's JSON, its text, janus-locks's text) of one gdb run."""
    out = gdbrun.gdb(["janus-waitgraph --format json", "echo @@SPLIT@@\\n", "janus-waitgraph",
                      "echo @@SPLIT@@\\n", "janus-locks"], **kw)
    both = out.stdout + out.stderr
    assert "Traceback" not in both and "Python Exception" not in both, both
    js, text, locks = out.stdout.split("@@SPLIT@@\n", 2)
    from test_json_schema import check_document
    return (gdbrun.Result(check_document(gdbrun.extract_json(js), "janus-waitgraph")),
            gdbrun.extract_report(text), locks)


def locks_block(text, lock_id):
    """The paragraph of janus-locks's TEXT about lock LOCK_ID ("M1")."""
    m = re.search(r"^%s .*?(?=^M\d+ |^warning:|\Z)" % re.escape(lock_id), text, re.M | re.S)
    assert m, (lock_id, text)
    return m.group(0)


def lwp_named(names, name):
    lwps = [t for t, n in names.items() if n == name]
    assert len(lwps) == 1, (name, names)
    return lwps[0]


# --- listeners, clients, roles ---------------------------------------------------------

class Prepared(object):
    pass


@pytest.fixture(scope="module", params=janusd.VERSIONS)
def prepared(request, tmp_path_factory):
    """A Janus with the three transports, a session and a VideoRoom handle
    over WebSockets and over the Unix socket, its thread names, and a core."""
    j = start_janus(request.param, tmp_path_factory, "transports")
    ws = ux = None
    p = Prepared()
    p.janus = j
    p.core = os.path.join(j.workdir, "core.transports")
    try:
        p.listening = jt.listening(j.pid)
        ws = jt.WsClient(j.ws_port)
        p.ws_session = ws.create_session()
        p.ws_handle = ws.attach(p.ws_session)
        ux = jt.UnixClient(j.unix_path)
        p.ux_session = ux.create_session()
        p.ux_handle = ux.attach(p.ux_session)
        p.ws_list = ws.message(p.ws_session, p.ws_handle, {"request": "list"})
        p.ux_list = ux.message(p.ux_session, p.ux_handle, {"request": "list"})
        p.names = j.thread_names()
        janusd.gcore_all_stop(j, p.core)
        yield p
    finally:
        for c in (ws, ux):
            if c is not None:
                c.close()
        j.stop()
        if os.path.exists(p.core):
            os.unlink(p.core)


def test_listens_on_loopback_and_workdir_only(prepared):
    j = prepared.janus
    inet = [a for kind, a in prepared.listening if kind in ("tcp", "udp")]
    unix = [a for kind, a in prepared.listening if kind == "unix"]
    assert inet and all(jt.loopback(a) for a in inet), prepared.listening
    ports = set(int(a.rsplit(":", 1)[1]) for a in inet)
    assert {j.port, j.admin_port, j.ws_port} <= ports, (ports, j.port, j.admin_port, j.ws_port)
    assert unix == [j.unix_path], prepared.listening
    assert os.path.dirname(j.unix_path) == j.workdir


def test_sessions_over_each_transport(prepared):
    j = prepared.janus
    for resp in (prepared.ws_list, prepared.ux_list):
        assert resp["plugindata"]["data"]["videoroom"] == "success", resp
        assert ROOM in [r["room"] for r in resp["plugindata"]["data"]["list"]], resp
    for session, handle, package in (
            (prepared.ws_session, prepared.ws_handle, "janus.transport.websockets"),
            (prepared.ux_session, prepared.ux_handle, "janus.transport.pfunix")):
        info = j.handle_info(session, handle)["info"]
        assert info["session_transport"] == package, info
        assert info["plugin"] == "janus.plugin.videoroom", info


@pytest.mark.parametrize("mode", ["live", "core"])
def test_transport_thread_roles(prepared, mode):
    j = prepared.janus
    kw = {"pid": j.pid} if mode == "live" else {"exe": j.exe, "core": prepared.core}
    out = gdbrun.gdb(["janus-waitgraph --all --format json"], **kw)
    both = out.stdout + out.stderr
    assert "Traceback" not in both and "Python Exception" not in both, both
    r = gdbrun.Result(gdbrun.extract_json(out.stdout))
    names = prepared.names
    for comm, role, entry in (("ws thread", "websockets", "janus_websockets_thread"),
                              ("pfunix thread", "unix sockets", "janus_pfunix_thread"),
                              ("http timer", "http timer", "janus_http_timer")):
        t = r.by_lwp[lwp_named(names, comm)]
        assert (t["role"], t["entry"]) == (role, entry), t
    # libmicrohttpd's own threads (named MHD-...)
    mhd = [lwp for lwp, n in names.items() if n.startswith("MHD-")]
    assert mhd and all(r.by_lwp[lwp]["role"] == "http" for lwp in mhd), \
        [(lwp, r.by_lwp[lwp]["role"]) for lwp in mhd]
    # the transports start no other threads (libwebsockets serves from the
    # ws thread): no other thread has a transport's role
    for t in r.data["threads"]:
        if t["role"] in ("websockets", "unix sockets"):
            assert names.get(t["lwp"]) in ("ws thread", "pfunix thread"), t
    # the handles' loops, over either transport
    hloops = [t for t in r.data["threads"] if t["role"] == "hloop"]
    details = " ".join(t.get("role_detail") or "" for t in hloops)
    for h in (prepared.ws_handle, prepared.ux_handle):
        assert str(h) in details, (h, details)


# --- a request frozen inside a transport's lock ----------------------------------------

def pile_behind(j, session, handle, new_ws=False, unix=None):
    """PILE for freeze_transport_send: the VideoRoom handler's "joined"
    event for SESSION (joined over HTTP, pushed to the session's own
    transport); with NEW_WS a new WebSocket connection (the service thread
    registers it under writable_mutex); with UNIX (a UnixClient) a
    keepalive over it (wakes the pfunix thread from poll(): it locks
    clients_mutex for the message)."""
    def pile(bg):
        bg.run(j.message, session, handle, {"request": "join", "ptype": "publisher",
                                             "room": ROOM, "display": "carol"}, timeout=120)
        if new_ws:
            bg.run(jt.WsClient, j.ws_port, timeout=100)
        if unix is not None:
            bg.run(unix.send_json, {"janus": "keepalive", "session_id": session,
                                    "transaction": jt.tid()})
    return pile


class Frozen(object):
    def __init__(self, janus, fr, names, expect):
        self.janus = janus
        self.fr = fr
        self.names = names
        self.expect = expect    # lock key -> (name, lock statement, waiter roles)
        self.reports = {}

    def report(self, where):
        if where not in self.reports:
            kw = {"pid": self.janus.pid} if where == "live" else {
                "exe": self.janus.exe, "core": self.fr.core}
            self.reports[where] = analyze(**kw)
        return self.reports[where]


def freeze_pfunix(j):
    ux = jt.UnixClient(j.unix_path)
    session = ux.create_session()
    handles = [ux.attach(session) for _ in range(2)]
    fr = jt.freeze_transport_send(
        j, "pfunix", lambda: ux.send_message(session, handles[0], {"request": "list"}),
        "janus_mutex_lock(&clients_mutex)",
        [("clients_mutex", "&'janus_pfunix.c'::clients_mutex")],
        pile_behind(j, session, handles[1], unix=ux), {"clients_mutex": 2},
        core_path=os.path.join(j.workdir, "core.pfunix"))
    fr.client = ux
    return fr, {"clients_mutex": ("janus_pfunix.c: clients_mutex",
                                  "janus_mutex_lock(&clients_mutex)",
                                  {"unix sockets", "videoroom handler"})}


def freeze_websockets(j):
    ws = jt.WsClient(j.ws_port)
    session = ws.create_session()
    handles = [ws.attach(session) for _ in range(2)]
    fr = jt.freeze_transport_send(
        j, "websockets", lambda: ws.send_message(session, handles[0], {"request": "list"}),
        "janus_mutex_lock(&writable_mutex)",
        [("writable_mutex", "&'janus_websockets.c'::writable_mutex"),
         ("ts_mutex", "&client->ts->mutex")],
        pile_behind(j, session, handles[1], new_ws=True), {"writable_mutex": 1, "ts_mutex": 1},
        core_path=os.path.join(j.workdir, "core.websockets"))
    fr.client = ws
    return fr, {"writable_mutex": ("janus_websockets.c: writable_mutex",
                                   "janus_mutex_lock(&writable_mutex)", {"websockets"}),
                # named by the Janus session the connection created
                "ts_mutex": ("ts->mutex of WebSockets transport session of session %d" % session,
                             "janus_mutex_lock(&transport->mutex)", {"videoroom handler"})}


FREEZES = {"pfunix": freeze_pfunix, "websockets": freeze_websockets}


@pytest.fixture(scope="module", params=["pfunix@1.1.2", "websockets@1.1.2",
                                        "pfunix@1.4.1", "websockets@1.4.1"])
def frozen(request, tmp_path_factory):
    transport, _at, version = request.param.partition("@")
    j = start_janus(version, tmp_path_factory, "freeze-" + transport)
    fr = None
    try:
        fr, expect = FREEZES[transport](j)
        yield Frozen(j, fr, j.thread_names(), expect)
    finally:
        j.stop()
        if fr is not None:
            fr.client.close()
            if fr.core and os.path.exists(fr.core):
                os.unlink(fr.core)


def test_frozen_ground_truth(frozen):
    res = frozen.fr.res
    assert res.frozen_lwp not in res.waiters
    # stopped in janus_<transport>_send_message just after the lock statement
    lines = [n for f, n in res.frame_lines if f == res.function]
    assert lines and res.lock_line < lines[0] < res.lock_line + 4, res.frame_lines
    assert os.path.getsize(res.core) > 0
    # the frozen thread is a request worker of the core's pool (glib names it pool-...)
    assert frozen.names[res.frozen_lwp].startswith("pool-"), frozen.names[res.frozen_lwp]


def check_frozen(frozen, r, text, locks_text):
    fr = frozen.fr
    res = fr.res
    holder = r.by_lwp[res.frozen_lwp]
    assert holder["role"] == "request worker", holder
    assert len(holder["holds"]) == len(fr.locks), holder["holds"]
    for key, addr in fr.locks.items():
        name, statement, roles = frozen.expect[key]
        assert addr in r.locks, "%s 0x%x not reported: %s" % (key, addr,
                                                              [hex(a) for a in r.locks])
        lock = r.locks[addr]
        assert lock["kind"] == "gmutex", lock
        assert lock["name"] == name, lock
        owner = lock["owner"]
        assert owner["lwp"] == res.frozen_lwp, (key, owner)
        assert owner["evidence"] == "inferred" and owner["source"] == "lockset", (key, owner)
        line = janusd.lock_statement_line(res.source, res.function, statement)
        assert "locked at %s:%d in %s" % (os.path.basename(res.source), line,
                                          res.function) in owner["detail"], (key, owner)
        assert lock["id"] in holder["holds"], (key, holder["holds"])
        assert r.waiter_lwps(addr) == fr.waiters[key], (key, lock["waiters"])
        assert set(r.by_lwp[lwp]["role"] for lwp in fr.waiters[key]) == roles, \
            (key, [r.by_lwp[lwp] for lwp in fr.waiters[key]])
        assert name in text, (key, text)
        # janus-locks: the lock's block names it, its holder and its waiters
        block = locks_block(locks_text, lock["id"])
        assert block.startswith("%s %s (0x%x) GMutex" % (lock["id"], name, addr)), block
        assert "owner    T%d (LWP %d) request worker" % (holder["num"], res.frozen_lwp) in block, \
            block
        assert "[inferred: locked at %s:%d in %s" % (os.path.basename(res.source), line,
                                                     res.function) in block, block
        nums = sorted(r.by_lwp[lwp]["num"] for lwp in fr.waiters[key])
        assert "waiters  %d: %s" % (len(nums), ", ".join("T%d" % n for n in nums)) in block, \
            block
        if key == "ts_mutex":
            assert lock["object"]["type"] == "janus_transport_session", lock
            assert lock["object"]["address"] == fr.ts, lock
    # the service threads among the waiters are the ones /proc names so
    for lwp in res.waiters:
        role = r.by_lwp[lwp]["role"]
        if role == "unix sockets":
            assert frozen.names[lwp] == "pfunix thread", (lwp, frozen.names[lwp])
        if role == "websockets":
            assert frozen.names[lwp] == "ws thread", (lwp, frozen.names[lwp])
        b = r.behind(lwp)
        assert b is not None and b.get("kind") == "thread" and b["thread"] == holder["num"], \
            (lwp, b)
    assert r.data["verdict"].startswith("No deadlock found"), r.data["verdict"]
    # the VideoRoom handler's claim through `videoroom->mutex` after
    # `videoroom = NULL` is no lock and no failed read
    assert not [w for w in r.data["warnings"] if "memory read" in w], r.data["warnings"]
    assert text is not None and text.startswith(
        "No deadlock found: T%d holds %d lock%s while waiting for a signal" % (
            holder["num"], len(fr.locks), "" if len(fr.locks) == 1 else "s")), text


def test_frozen_core(frozen):
    check_frozen(frozen, *frozen.report("core"))


def test_frozen_live(frozen):
    check_frozen(frozen, *frozen.report("live"))
    # not disturbed: still serving HTTP, still hung where it was
    j, res = frozen.janus, frozen.fr.res
    assert j.info()["janus"] == "server_info"
    assert janusd.thread_syscall(j, res.frozen_lwp)[:1] == ["34"]
    for key, addr in frozen.fr.locks.items():
        assert j.futex_waiters(addr) == frozen.fr.waiters[key], key
