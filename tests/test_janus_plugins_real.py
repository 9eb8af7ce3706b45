"""janus-waitgraph against every plugin of a real Janus 1.1.2 (scripts/build-janus).

a: for each plugin with a global lock a request can reach (AudioBridge
rooms_mutex, Streaming mountpoints_mutex, TextRoom rooms_mutex, VideoCall
sessions_mutex, Record&Play recordings_mutex, EchoTest and NoSIP
sessions_mutex, Lua lua_mutex, Duktape duktape_mutex) one request thread is
frozen on the line after the lock statement (found in the plugin's source),
made to sleep in pause(2) with the lock held, N more requests pile up behind
it (futex waiters in /proc), and a core is written; the report on the core
(debug info) and on the live, still hung, process must name the plugin's
global, give the frozen thread as its inferred holder with the line as
evidence, and list exactly the piled-up threads as its waiters.

b: the state of Janus #3570 on a real AudioBridge: a participant's detach
reaches janus_audiobridge_hangup_media_internal (sessions_mutex, rooms_mutex
and the room's mutex held), where the thread is made to block in
g_async_queue_pop of the participant's empty outbuf (what 1.3.x's
clear_outbuf does in #3570); messages, Admin API requests and the room's
mixer pile up behind the three locks.

Each plugin runs in a Janus of its own (only that plugin, HTTP on 127.0.0.1),
shared by the tests of that plugin; cores are deleted at the end.
"""

import os

import pytest

import gdbrun
import janusd

N_WAITERS = 3
LIST = r'strcasecmp\(request_text, "list"\)'
PL = janusd.PluginLock

# plugin -> where a request freezes in its global lock (source, function,
# statement, request) and the roles of the frozen and the piled-up threads
SPECS = [
    PL("audiobridge", "janus_audiobridge_process_synchronous_request", "rooms_mutex",
       {"request": "list"}, branch=LIST, role="request worker", pile_role="request worker"),
    PL("streaming", "janus_streaming_process_synchronous_request", "mountpoints_mutex",
       {"request": "list"}, branch=LIST, role="request worker", pile_role="request worker"),
    # TextRoom serves its synchronous requests on the Janus API too:
    # janus_textroom_handle_message passes them to handle_incoming_request
    PL("textroom", "janus_textroom_handle_incoming_request", "rooms_mutex",
       {"request": "list"}, branch=LIST, role="request worker", pile_role="request worker"),
    # VideoCall's "list" is served by its handler thread; other messages wait
    # for sessions_mutex in janus_videocall_handle_message
    # (its handler's role is named on the plugnames branch: until then None)
    PL("videocall", "janus_videocall_handler", "sessions_mutex", {"request": "list"},
       branch=LIST, role=("videocall handler", None), pile_role="request worker"),
    PL("recordplay", "janus_recordplay_handle_message", "recordings_mutex",
       {"request": "list"}, branch=LIST, role="request worker", pile_role="request worker"),
    PL("nosip", "janus_nosip_handle_message", "sessions_mutex", {"request": "hangup"},
       role="request worker", pile_role="request worker"),
    # the interpreter's global lock; the sample scripts name their packages
    PL("lua", "janus_lua_handle_message", "lua_mutex", {"audio": True},
       role="request worker", pile_role="request worker", package="janus.plugin.echolua"),
    PL("duktape", "janus_duktape_handle_message", "duktape_mutex", {"audio": True},
       role="request worker", pile_role="request worker", package="janus.plugin.echojs"),
]
BY_NAME = dict((s.plugin, s) for s in SPECS)
# plugins loaded next to the frozen one: globals of the same name
SAME_NAMES = {"audiobridge": ("videoroom", "textroom"), "textroom": ("videoroom", "audiobridge")}
# the plugins whose live process is analysed too (a gdb run each)
LIVE = ("audiobridge", "videocall")


@pytest.fixture(scope="module")
def prefix():
    p, problem = janusd.usable_prefix(("gdb",))
    if problem:
        pytest.skip(problem)
    return p


def streaming_config(janus):
    """One file-source mountpoint (no socket) instead of the sample's RTP
    mountpoints, which would listen on every interface."""
    radio = os.path.join(janus.prefix, "share", "janus", "streams", "radio.alaw")
    with open(os.path.join(janus.confdir, "janus.plugin.streaming.jcfg"), "w") as f:
        f.write('general: {\n}\nfile-live: {\n\ttype = "live"\n\tid = 2\n'
                '\tdescription = "janus-gdb radio"\n\tfilename = "%s"\n\taudio = true\n'
                '\tvideo = false\n}\n' % radio)


class Frozen(object):
    def __init__(self, janus, res):
        self.janus = janus
        self.res = res
        self.spec = res.spec
        self.reports = {}

    def report(self, where):
        """(Result of the JSON report, text report) from the core or "live"."""
        if where not in self.reports:
            kw = {"pid": self.janus.pid} if where == "live" else {
                "exe": self.janus.exe, "core": self.res.core}
            self.reports[where] = analyze(**kw)
        return self.reports[where]


def analyze(**kw):
    """The JSON and the text report of one gdb run (KW: gdbrun.gdb's target)."""
    out = gdbrun.gdb(["janus-waitgraph --format json", "echo @@SPLIT@@\\n", "janus-waitgraph"],
                     **kw)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    js, text = out.stdout.split("@@SPLIT@@\n", 1)
    return gdbrun.Result(gdbrun.extract_json(js)), gdbrun.extract_report(text)


@pytest.fixture(scope="module", params=[s.plugin for s in SPECS])
def frozen(request, prefix, tmp_path_factory):
    spec = BY_NAME[request.param]
    if not janusd.has_plugin(prefix, spec.plugin):
        pytest.skip("this Janus build has no %s plugin" % spec.library)
    workdir = str(tmp_path_factory.mktemp("janus-" + spec.plugin))
    # AudioBridge and TextRoom run next to the VideoRoom: three static
    # rooms_mutex in one process, the report must say whose is held
    plugins = (spec.plugin,) + (SAME_NAMES.get(spec.plugin) or ())
    j = janusd.JanusServer(prefix, workdir, plugins=plugins)
    if spec.plugin == "streaming":
        streaming_config(j)
    j.start()
    core = os.path.join(workdir, "core." + spec.plugin)
    try:
        res = janusd.freeze_plugin_lock(j, spec, N_WAITERS, core_path=core)
        yield Frozen(j, res)
    finally:
        j.stop()
        if os.path.exists(core):
            os.unlink(core)


def check_frozen(fr, r, text):
    res, spec = fr.res, fr.spec
    assert res.lock_addr in r.locks, "%s 0x%x not reported: %s" % (
        spec.symbol, res.lock_addr, [hex(a) for a in r.locks])
    lock = r.locks[res.lock_addr]
    assert lock["kind"] == "gmutex", lock
    # named as this plugin's global: the file says whose rooms_mutex it is
    assert lock["name"] == "%s: %s" % (spec.source, spec.symbol), lock
    assert r.waiter_lwps(res.lock_addr) == res.waiters
    owner = lock["owner"]
    assert owner["lwp"] == res.frozen_lwp, owner
    assert owner["evidence"] == "inferred" and owner["source"] == "lockset", owner
    assert "locked at %s:%d" % (spec.source, res.lock_line) in owner["detail"], owner
    assert spec.function in owner["detail"], owner
    holder = r.by_lwp[res.frozen_lwp]
    assert lock["id"] in holder["holds"], holder
    for lwp in res.waiters:
        b = r.behind(lwp)
        assert b is not None and b.get("kind") == "thread" and b["thread"] == holder["num"], \
            (lwp, b)
    # roles: the frozen request's thread and the piled-up ones
    if isinstance(spec.role, tuple):
        assert holder["role"] in spec.role, holder
        assert holder.get("entry") == spec.function, holder
    else:
        assert holder["role"] == spec.role, holder
    for lwp in res.waiters:
        assert r.by_lwp[lwp]["role"] == spec.pile_role, r.by_lwp[lwp]
    assert r.data["verdict"].startswith("No deadlock found"), r.data["verdict"]
    assert text is not None and text.startswith("No deadlock found"), text
    assert "%d threads wait for" % len(res.waiters) in text, text
    assert lock["name"] in text, text


def test_frozen_ground_truth(frozen):
    res = frozen.res
    assert res.frozen_lwp and res.frozen_lwp not in res.waiters
    assert len(res.waiters) == N_WAITERS
    # stopped in the function, just after the lock statement (the line may
    # be in a callee inlined there: then its caller's frame has the line)
    lines = [n for f, n in res.frame_lines if f == frozen.spec.function]
    assert lines and res.lock_line < lines[0] < res.lock_line + 10, res.frame_lines
    assert os.path.getsize(res.core) > 0


def test_frozen_core(frozen):
    r, text = frozen.report("core")
    check_frozen(frozen, r, text)


def test_frozen_live(frozen):
    if frozen.spec.plugin not in LIVE:
        pytest.skip("live attach checked on %s only (runtime)" % ", ".join(LIVE))
    r, text = frozen.report("live")
    check_frozen(frozen, r, text)
    # the live target is not disturbed: still serving, still hung where it was
    assert frozen.janus.info()["janus"] == "server_info"
    assert janusd.thread_syscall(frozen.janus, frozen.res.frozen_lwp)[:1] == ["34"]
    assert frozen.janus.futex_waiters(frozen.res.lock_addr) == frozen.res.waiters
