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

AudioBridge and Streaming are frozen on Janus 1.4.1 too.

b: the state of Janus #3570 on a real AudioBridge (1.1.2 and 1.4.1): a participant's detach
reaches janus_audiobridge_hangup_media_internal (sessions_mutex, rooms_mutex
and the room's mutex held), where the thread is made to block in
g_async_queue_pop of the participant's empty outbuf (what 1.3.x's
clear_outbuf does in #3570); messages, Admin API requests and the room's
mixer pile up behind the three locks; the root's queue is the participant's
outbuf, and the idle request dispatcher and AudioBridge handler wait on
janus.c's requests and the plugin's messages (named by those variables).

c: the AudioBridge freeze and the #3570 core with janus and every plugin
stripped (no debug info anywhere): names by library and offset, owners from
the machine code, never a false one.

Each plugin runs in a Janus of its own (only that plugin, HTTP on 127.0.0.1),
shared by the tests of that plugin; cores are deleted at the end.
"""

import os
import re

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
    PL("videocall", "janus_videocall_handler", "sessions_mutex", {"request": "list"},
       branch=LIST, role="videocall handler", pile_role="request worker"),
    PL("recordplay", "janus_recordplay_handle_message", "recordings_mutex",
       {"request": "list"}, branch=LIST, role="request worker", pile_role="request worker"),
    PL("nosip", "janus_nosip_handle_message", "sessions_mutex", {"request": "hangup"},
       role="request worker", pile_role="request worker"),
    PL("sip", "janus_sip_handle_message", "sessions_mutex", {"request": "hangup"},
       role="request worker", pile_role="request worker"),
    # the VideoRoom's own freeze (tests/test_janus_real.py) through the same path
    PL("videoroom", "janus_videoroom_process_synchronous_request", "rooms_mutex",
       {"request": "list"}, branch=LIST, role="request worker", pile_role="request worker"),
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
LIVE = ["audiobridge", "videocall"]
# ... and stripped (janus and every plugin)
STRIPPED = ["audiobridge"]
# the plugins of the hangs also frozen on the newer Janus
NEWER = ["audiobridge@1.4.1", "streaming@1.4.1"]


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
    from test_json_schema import check_document
    return (gdbrun.Result(check_document(gdbrun.extract_json(js), "janus-waitgraph")),
            gdbrun.extract_report(text))


# LIVE and STRIPPED are ALL's first entries, in ALL's order: pytest groups
# the tests of a module-scoped parameter by its index, so that each plugin's
# Janus starts once
ALL = LIVE + [s.plugin for s in SPECS if s.plugin not in LIVE] + NEWER
assert STRIPPED == ALL[:len(STRIPPED)]


@pytest.fixture(scope="module")
def frozen(request, tmp_path_factory):
    """One Janus per plugin (REQUEST.param: "plugin" on 1.1.2, or
    "plugin@version"), shared by that plugin's tests."""
    name, _at, version = request.param.partition("@")
    version = version or "1.1.2"
    prefix, problem = janusd.usable_prefix(("gdb",), version=version)
    if problem:
        pytest.skip(problem)
    spec = BY_NAME[name]
    if not janusd.has_plugin(prefix, spec.plugin):
        pytest.skip("this Janus build has no %s plugin" % spec.library)
    workdir = str(tmp_path_factory.mktemp("janus-%s-%s" % (spec.plugin, version)))
    # AudioBridge and TextRoom run next to the VideoRoom: three static
    # rooms_mutex in one process, the report must say whose is held
    plugins = (spec.plugin,) + (SAME_NAMES.get(spec.plugin) or ())
    j = janusd.JanusServer(prefix, workdir, plugins=plugins)
    if spec.plugin == "streaming":
        streaming_config(j)
    if spec.plugin == "sip":
        with open(os.path.join(j.confdir, "janus.plugin.sip.jcfg"), "w") as f:
            f.write('general: {\n\tlocal_ip = "127.0.0.1"\n\tsdp_ip = "127.0.0.1"\n'
                    '\trtp_port_range = "20000-40000"\n\tevents = false\n}\n')
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
    assert holder["role"] == spec.role, holder
    for lwp in res.waiters:
        assert r.by_lwp[lwp]["role"] == spec.pile_role, r.by_lwp[lwp]
    assert r.data["verdict"].startswith("No deadlock found"), r.data["verdict"]
    assert text is not None and text.startswith("No deadlock found"), text
    assert "%d threads wait for" % len(res.waiters) in text, text
    assert lock["name"] in text, text


@pytest.mark.parametrize("frozen", ALL, indirect=True, scope="module")
def test_frozen_ground_truth(frozen):
    res = frozen.res
    assert res.frozen_lwp and res.frozen_lwp not in res.waiters
    assert len(res.waiters) == N_WAITERS
    # stopped in the function, just after the lock statement (the line may
    # be in a callee inlined there: then its caller's frame has the line)
    lines = [n for f, n in res.frame_lines if f == frozen.spec.function]
    assert lines and res.lock_line < lines[0] < res.lock_line + 10, res.frame_lines
    assert os.path.getsize(res.core) > 0


@pytest.mark.parametrize("frozen", ALL, indirect=True, scope="module")
def test_frozen_core(frozen):
    r, text = frozen.report("core")
    check_frozen(frozen, r, text)


@pytest.mark.parametrize("frozen", LIVE, indirect=True, scope="module")
def test_frozen_live(frozen):
    r, text = frozen.report("live")
    check_frozen(frozen, r, text)
    # the live target is not disturbed: still serving, still hung where it was
    assert frozen.janus.info()["janus"] == "server_info"
    assert janusd.thread_syscall(frozen.janus, frozen.res.frozen_lwp)[:1] == ["34"]
    assert frozen.janus.futex_waiters(frozen.res.lock_addr) == frozen.res.waiters


@pytest.mark.parametrize("frozen", ALL, indirect=True, scope="module")
def test_frozen_matches_no_known_bug(frozen):
    """Issue 15: a request frozen inside a plugin's global lock, for no known
    reason, is a stall whose fingerprint names that lock and the function
    that took it, and it matches no entry of the known-hang catalogue: no
    "This is" and no "Similar to" (the VideoRoom's rooms_mutex among them).
    Live, the fingerprint is the core's."""
    r, text = frozen.report("core")
    spec = frozen.spec
    cls = "%s: %s" % (spec.source, spec.symbol)
    found = r.data["findings"]
    assert len(found) == 1 and found[0]["kind"] == "stall", found
    f = found[0]
    assert cls in f["classes"], f
    assert "hold %s in %s" % (cls, spec.function) in f["parts"], f
    assert f["where"] == "T%d" % r.by_lwp[frozen.res.frozen_lwp]["num"]
    assert f["known"] is None, f
    assert "janus-gateway #" not in text and "Similar to" not in text, text
    assert "Fingerprint: %s (%s)" % (f["fingerprint"], f["where"]) in text, text
    if spec.plugin in LIVE:
        live, _text = frozen.report("live")
        assert [x["fingerprint"] for x in live.data["findings"]] == [f["fingerprint"]]


# --- b: the state of Janus #3570 on a real AudioBridge ---------------------------------

@pytest.fixture(scope="module", params=janusd.VERSIONS)
def hangup(request, tmp_path_factory):
    """The #3570 state on each Janus version: in 1.1.2 the hangup path has
    no queue pop at the frozen line; 1.4.1 empties the outbuf there with
    janus_audiobridge_participant_clear_outbuf, since #3570's fix with a
    try_pop (the test forces the blocking pop of the code #3570 ran)."""
    prefix, problem = janusd.usable_prefix(("gdb",), version=request.param)
    if problem:
        pytest.skip(problem)
    if not janusd.has_plugin(prefix, "audiobridge"):
        pytest.skip("this Janus build has no libjanus_audiobridge.so")
    workdir = str(tmp_path_factory.mktemp("janus-3570-%s" % request.param))
    j = janusd.JanusServer(prefix, workdir, plugins=("audiobridge",))
    j.start()
    core = os.path.join(workdir, "core.3570")
    try:
        st = janusd.freeze_audiobridge_hangup(j, core_path=core)
        yield j, st
    finally:
        j.stop()
        if os.path.exists(core):
            os.unlink(core)


def test_hangup_ground_truth(hangup):
    j, st = hangup
    res = st.res
    lines = [n for f, n in res.frame_lines if f == janusd.AB_HANGUP]
    assert lines and res.lock_line < lines[0] < res.lock_line + 6, res.frame_lines
    with open(res.source, errors="replace") as f:
        src = f.read().split("\n")
    if "janus_audiobridge_participant_clear_outbuf(participant);" in src[res.lock_line]:
        # (1.3.x+) frozen on the very call that blocked in #3570
        assert "clear_outbuf" in src[lines[0] - 1], (lines[0], src[lines[0] - 1])
    assert len(set(st.locks.values())) == 3
    assert res.frozen_lwp not in res.waiters
    assert os.path.getsize(st.core) > 0



def check_hangup(j, st, r, text):
    """The report on the #3570 state: the root holds the three locks (each
    named, inferred from its lock line), waits on the participant's queue,
    and exactly the piled-up threads wait behind it."""
    res = st.res
    src = res.source
    # the thread came through hangup_media (the core's hangup of the handle)
    # or destroy_session (its detach): both lock sessions_mutex and call it
    caller = [f for f, _n in res.frame_lines if f != janusd.AB_HANGUP][0]
    assert caller in ("janus_audiobridge_hangup_media", "janus_audiobridge_destroy_session"), \
        res.frame_lines
    lock_lines = {
        "sessions_mutex": (caller, janusd.lock_statement_line(
            src, caller, "janus_mutex_lock(&sessions_mutex)")),
        "rooms_mutex": (janusd.AB_HANGUP, janusd.lock_statement_line(
            src, janusd.AB_HANGUP, "janus_mutex_lock(&rooms_mutex)")),
        "room_mutex": (janusd.AB_HANGUP, janusd.lock_statement_line(
            src, janusd.AB_HANGUP, "janus_mutex_lock(&audiobridge->mutex)")),
    }
    names = {
        "sessions_mutex": "janus_audiobridge.c: sessions_mutex",
        "rooms_mutex": "janus_audiobridge.c: rooms_mutex",
        "room_mutex": 'audiobridge->mutex of AudioBridge room %d "%s"' % (st.room,
                                                                         st.description),
    }
    root = r.by_lwp[res.frozen_lwp]
    for key, addr in st.locks.items():
        assert addr in r.locks, "%s 0x%x not reported: %s" % (key, addr,
                                                              [hex(a) for a in r.locks])
        lock = r.locks[addr]
        assert lock["kind"] == "gmutex", lock
        assert lock["name"] == names[key], lock
        owner = lock["owner"]
        assert owner["lwp"] == res.frozen_lwp, (key, owner)
        assert owner["evidence"] == "inferred", (key, owner)
        if key == "room_mutex" and owner["source"] == "type-match":
            # `audiobridge` is optimized out at the frozen line: the held
            # lock is matched by its type, and the report says so
            assert "optimized out" in owner["detail"], owner
        else:
            assert owner["source"] == "lockset", (key, owner)
        func, line = lock_lines[key]
        assert "locked at janus_audiobridge.c:%d in %s" % (line, func) in owner["detail"], \
            (key, owner)
        assert lock["id"] in root["holds"], (key, root["holds"])
        assert r.waiter_lwps(addr) == st.waiters[key], (key, lock["waiters"])
        assert names[key] in text, (key, text)
    assert len(root["holds"]) == 3, root["holds"]
    # what the root waits on: the participant's queue (its GCond), not a lock
    assert root["state"] == "waiting" and root["wait"]["kind"] == "queue", root
    assert root["wait"]["futex"] == st.queue_wait, (root["wait"], hex(st.queue_wait))
    assert "g_async_queue_pop" in root["wait"]["how"], root["wait"]
    assert root["wait"]["lock"] is None, root["wait"]
    # the root is the handle loop of the participant's handle
    assert root["role"] == "hloop" and str(st.handle) in (root.get("role_detail") or ""), root
    for lwp in res.waiters:
        b = r.behind(lwp)
        assert b is not None and b.get("kind") == "thread" and b["thread"] == root["num"], \
            (lwp, b)
    roles = dict((k, set(r.by_lwp[l]["role"] for l in v)) for k, v in st.waiters.items())
    assert roles == {"sessions_mutex": {"request worker"}, "rooms_mutex": {"request worker"},
                     "room_mutex": {"audiobridge mixer"}}, roles
    mixer = r.by_lwp[list(st.waiters["room_mutex"])[0]]
    # (the room in its role detail comes from its frame's `audiobridge` or
    # `data`; where it waits in this -O2 build the report gives none: the
    # room is named by the lock it waits for)
    if mixer.get("role_detail"):
        assert 'AudioBridge room %d "%s"' % (st.room, st.description) in mixer["role_detail"]
    # not a deadlock (no cycle), but one thread holding three locks while it waits
    assert r.data["verdict"].startswith("No deadlock found"), r.data["verdict"]
    assert not r.data["cycles"]
    # which queue: the participant's outbuf (the test's participant->outbuf
    # at the frozen line), its GCond the futex word, named by the participant
    # whose field points to it (a frame's `participant`).  By the frozen line
    # hangup_media_internal has set participant->room to NULL, freed its
    # display and removed it from the room: the label has its id only
    q = root["wait"]["queue"]
    assert q is not None, root["wait"]
    assert q["address"] == st.queue and st.queue_wait == st.queue + 16, (q, hex(st.queue))
    outbuf = "participant->outbuf of participant %d" % st.user_id
    assert q["name"] == outbuf, q
    assert q["object"]["type"] == "janus_audiobridge_participant", q
    assert q["object"]["field"] == "outbuf", q
    assert q["evidence"] in ("frame", "futex"), q
    assert text.startswith("No deadlock found: T%d holds 3 locks while waiting on the queue %s "
                           "(g_async_queue_pop in %s); %d threads are blocked behind it."
                           % (root["num"], outbuf, janusd.AB_HANGUP, len(res.waiters))), text
    assert "    queue %s (0x%x)  [%s: " % (outbuf, st.queue, q["evidence"]) in text, text


def test_hangup_core(hangup):
    j, st = hangup
    r, text = analyze(exe=j.exe, core=st.core)
    check_hangup(j, st, r, text)


def test_hangup_is_similar_to_3570(hangup):
    """Issue 15: the #3570 state on a real AudioBridge is recognised as
    #3570's shape (its three locks, taken where #3570 takes them), but
    1.1.2 and 1.4.1 are not among #3570's affected releases, so the report
    says "Similar to ... not that bug", never "This is"."""
    from janus_gdb.janus import knownhangs, version
    j, st = hangup
    r, text = analyze(exe=j.exe, core=st.core)
    entries, _problems = knownhangs.load()
    (entry,) = [e for e in entries if e["ref"] == "#3570"]
    running = janusd.source_version(j.prefix)
    assert r.data["target"]["janus_version"]["text"] == running, r.data["target"]
    assert version.in_range(running, entry["affects"]["from"], entry["affects"]["to"]) is False
    holder = r.by_lwp[st.res.frozen_lwp]["num"]
    (f,) = [x for x in r.data["findings"] if x["where"] == "T%d" % holder]
    assert f["kind"] == "stall", f
    assert set(entry["locks"]) <= set(f["classes"]), (entry["locks"], f)
    known = f["known"]
    assert known is not None and known["id"] == entry["id"], f
    assert known["same_bug"] is False and known["version_in_range"] is False, known
    assert known["sentence"].startswith("Similar to janus-gateway #3570 ("), known
    assert "Janus %s is not one of the affected releases: not that bug" % running \
        in known["sentence"], known
    assert "This is" not in text and known["sentence"] in text, text


def gdb_values(exprs, **kw):
    """{expression: integer} printed by gdb itself (p/x) on the target KW."""
    out = gdbrun.gdb(["p/x %s" % e for e in exprs], load=False, **kw).stdout
    vals = [int(v, 16) for v in re.findall(r"^\$\d+ = (0x[0-9a-f]+)\s*$", out, re.M)]
    assert len(vals) == len(exprs), out
    return dict(zip(exprs, vals))


def test_hangup_idle_queues(hangup):
    """Janus's idle threads on their queues, named by the global variables
    that point to them (the values gdb prints for those variables): the
    request dispatcher on janus.c's requests, the AudioBridge handler on its
    messages; the participant thread on its participant's outbuf."""
    j, st = hangup
    r, _text = analyze(exe=j.exe, core=st.core)
    exprs = ("'janus.c'::requests", "'janus_audiobridge.c'::messages")
    truth = gdb_values(exprs, exe=j.exe, core=st.core)
    by_role = {}
    for t in r.data["threads"]:
        by_role.setdefault(t["role"], []).append(t)
    for role, expr, name in (("sessions requests", exprs[0], "janus.c: requests"),
                             ("audiobridge handler", exprs[1], "janus_audiobridge.c: messages")):
        (t,) = by_role[role]
        assert t["state"] == "idle" and t["wait"]["kind"] == "queue", t
        q = t["wait"]["queue"]
        assert q is not None and q["address"] == truth[expr], (q, hex(truth[expr]))
        assert q["name"] == name and q["variable"] == name, q
        assert t["wait"]["futex"] == q["address"] + 16, t["wait"]
    (part,) = by_role["audiobridge participant"]
    if part["state"] == "sleep":
        # 1.4.x: the participant thread polls its outbuf (try_pop) and sleeps
        return
    assert part["state"] == "idle" and part["wait"]["kind"] == "queue", part
    q = part["wait"]["queue"]
    assert q is not None and q["address"] == st.queue, (q, hex(st.queue))
    assert q["name"] == "participant->outbuf of participant %d" % st.user_id, q


def test_hangup_live(hangup):
    j, st = hangup
    r, text = analyze(pid=j.pid)
    check_hangup(j, st, r, text)
    # still hung where it was, nothing disturbed
    assert janusd.thread_syscall(j, st.res.frozen_lwp)[:2] == [janusd.FUTEX, "0x%x" % st.queue_wait]
    for key, addr in st.locks.items():
        assert j.futex_waiters(addr) == st.waiters[key], key
    assert j.info()["janus"] == "server_info"



# --- c: the same cores with janus and every plugin stripped ----------------------------

def stripped_copies(j, link_names, workdir):
    """Stripped copies of janus and of every plugin it loaded, and a sysroot
    farm that loads them (no libc/glib debug info either: hide_debug)."""
    from test_janus_real import strip_loaded, sysroot_farm
    d = os.path.join(workdir, "stripped")
    if not os.path.isdir(d):
        os.makedirs(d)
    replace = strip_loaded(j, d)
    sysroot = sysroot_farm(os.path.join(d, "sysroot"), set(link_names) | set(j.mapped_files()),
                           replace)
    extra = ["-iex", "set sysroot %s" % sysroot, "-iex", "set auto-load python-scripts off"]
    return replace[os.path.realpath(j.exe)], extra


@pytest.mark.parametrize("frozen", STRIPPED, indirect=True, scope="module")
def test_frozen_core_stripped(frozen):
    """AudioBridge's rooms_mutex, stripped (VideoRoom's and TextRoom's are in
    the process too): named by its library and offset, its holder found from
    the machine code, its waiters exact."""
    from test_janus_real import symbol_value
    j, res = frozen.janus, frozen.res
    exe, extra = stripped_copies(j, res.link_names, j.workdir)
    r, text = analyze(exe=exe, core=res.core, hide_debug=True, extra=extra)
    lock = r.locks[res.lock_addr]
    plugin = os.path.join(j.prefix, "lib", "janus", "plugins", frozen.spec.library)
    assert lock["name"] == "%s+0x%x" % (frozen.spec.library,
                                        symbol_value(plugin, frozen.spec.symbol)), lock
    assert r.waiter_lwps(res.lock_addr) == res.waiters
    owner = lock["owner"]
    assert owner["lwp"] == res.frozen_lwp, owner
    assert owner["evidence"] == "inferred" and owner["source"] == "machine-code", owner
    assert owner["detail"].startswith("from machine code: %s+0x" % frozen.spec.library), owner
    assert text is not None and lock["name"] in text and "leaked" not in text, text


def test_hangup_core_stripped(hangup):
    """The #3570 core, stripped: the three locks and their waiters are found;
    an owner is only ever the frozen thread, and each lock it names is one
    the machine code shows it took."""
    from test_janus_real import symbol_value
    j, st = hangup
    res = st.res
    exe, extra = stripped_copies(j, res.link_names, j.workdir)
    r, text = analyze(exe=exe, core=st.core, hide_debug=True, extra=extra)
    plugin = os.path.join(j.prefix, "lib", "janus", "plugins", "libjanus_audiobridge.so")
    owners = {}
    for key, addr in st.locks.items():
        assert addr in r.locks, (key, [hex(a) for a in r.locks])
        lock = r.locks[addr]
        assert r.waiter_lwps(addr) == st.waiters[key], key
        if key != "room_mutex":
            assert lock["name"] == "libjanus_audiobridge.so+0x%x" % symbol_value(plugin, key), lock
        owners[key] = (lock["owner"]["lwp"], lock["owner"]["evidence"], lock["owner"]["source"])
        assert lock["owner"]["lwp"] in (None, res.frozen_lwp), (key, lock["owner"])
        if lock["owner"]["lwp"] is not None:
            assert lock["owner"]["evidence"] == "inferred", (key, lock["owner"])
    # sessions_mutex: taken by the caller frame, whose return address follows
    # its call of hangup_media_internal; that frame's own pc is the forced
    # one (not after a call: its machine code cannot be read at it, so its
    # two locks stay unknown rather than guessed)
    assert owners["sessions_mutex"] == (res.frozen_lwp, "inferred", "machine-code"), owners
    root = r.by_lwp[res.frozen_lwp]
    assert root["wait"]["kind"] == "queue" and root["wait"]["futex"] == st.queue_wait, root
    # the queue from the futex word and its words alone; no debug info, no name
    q = root["wait"]["queue"]
    assert q is not None and q["address"] == st.queue and q["evidence"] == "futex", q
    assert q["name"] is None and q["object"] is None, q
    assert "a queue at 0x%x" % st.queue in text.splitlines()[0], text
    assert "Found" not in text.splitlines()[0], text
    print("stripped #3570 owners: %s" % owners)
