"""A real Janus 1.1.2 with every plugin of the build: each plugin's session
is read by the plugin its handle belongs to (the handle's ``app``), never
as a VideoRoom session, and the threads of each plugin and of the HTTP
transport (the only transport a test Janus loads) get their roles (issue 13
point 1).

One handle per plugin is attached through the HTTP API; a SIP guest
registration starts a sofia loop thread; analysed live and from a core.
Skipped when the Janus build (JANUS_PREFIX, scripts/build-janus) is
missing.
"""

import json
import os
import subprocess
import time

import pytest

import gdbrun
import janusd

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE = os.path.join(HERE, "dispatch_probe.py")

# plugin library -> (package to attach, struct of its sessions, label start)
PLUGINS = {
    "videoroom": ("janus.plugin.videoroom", "janus_videoroom_session", "videoroom session of "),
    "audiobridge": ("janus.plugin.audiobridge", "janus_audiobridge_session",
                    "audiobridge session of "),
    "streaming": ("janus.plugin.streaming", "janus_streaming_session", "streaming session of "),
    "textroom": ("janus.plugin.textroom", "janus_textroom_session", "TextRoom session of "),
    "sip": ("janus.plugin.sip", "janus_sip_session", "SIP session of "),
    "nosip": ("janus.plugin.nosip", "janus_nosip_session", "NoSIP session of "),
    "videocall": ("janus.plugin.videocall", "janus_videocall_session", "VideoCall session of "),
    "echotest": ("janus.plugin.echotest", "janus_echotest_session", "EchoTest session of "),
    "recordplay": ("janus.plugin.recordplay", "janus_recordplay_session",
                   "Record&Play session of "),
    # the packages of the sample scripts the build installs (echotest.lua, echotest.js)
    "lua": ("janus.plugin.echolua", "janus_lua_session", "Lua session "),
    "duktape": ("janus.plugin.echojs", "janus_duktape_session", "Duktape session "),
}
# plugin or transport library -> roles its threads must show while idle
ROLES = {
    "textroom": ("textroom handler",), "sip": ("sip handler", "sip sofia loop"),
    "nosip": ("nosip handler",), "videocall": ("videocall handler",),
    "echotest": ("echotest handler",), "recordplay": ("recordplay handler",),
    "lua": ("lua scheduler", "lua timer"), "duktape": ("duktape scheduler", "duktape timer"),
    "http": ("http timer", "http"),
}
# (this Janus loads no transport but HTTP; the WebSockets and Unix-socket
# transports' roles and locks are checked on a real Janus by
# test_janus_transports_real.py)


@pytest.fixture(scope="module")
def janus(tmp_path_factory):
    prefix, problem = janusd.usable_prefix(("gdb",), need_pexpect=False)
    if problem:
        pytest.skip(problem)
    j = janusd.JanusServer(prefix, str(tmp_path_factory.mktemp("janus-dispatch")), nosip=True,
                           plugins=[p for p in sorted(PLUGINS) if janusd.has_plugin(prefix, p)])
    j.start()
    yield j
    j.stop()


def built(janus, name):
    lib = janus.prefix + "/lib/janus/%s/libjanus_%s.so"
    return any(os.path.exists(lib % (kind, name)) for kind in ("plugins", "transports"))


@pytest.fixture(scope="module")
def prepared(janus, tmp_path_factory):
    """The handles ({plugin: handle id}), once the SIP sofia loop runs; a
    core of the process then (gdb -batch gcore)."""
    session = janus.create_session()
    handles = {}
    for name, (package, _struct, _label) in sorted(PLUGINS.items()):
        if built(janus, name):
            handles[name] = janus.attach(session, package)
    assert "sip" in handles and "textroom" in handles, handles
    resp = janus.request("/%d/%d" % (session, handles["sip"]), {
        "janus": "message", "body": {"request": "register", "type": "guest",
                                     "username": "sip:bob@127.0.0.1"}})
    assert resp.get("janus") == "ack", resp
    deadline = time.time() + 20
    while "sip bob" not in janus.thread_names().values() and time.time() < deadline:
        time.sleep(0.2)  # the sofia loop thread starts after the ack
    core = str(tmp_path_factory.mktemp("janus-dispatch-core").joinpath("core.dispatch"))
    res = subprocess.run(["gdb", "-nx", "-batch", "-p", str(janus.pid), "-ex", "gcore " + core],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=300)
    if not os.path.exists(core):
        pytest.fail("gcore failed: %s" % res.stdout[-2000:])
    yield handles, core
    os.unlink(core)


@pytest.mark.parametrize("mode", ["live", "core"])
def test_plugin_sessions_and_roles(janus, prepared, mode):
    handles, core = prepared
    commands = ["python exec(open(%r).read())" % PROBE, "janus-waitgraph --all --format json"]
    if mode == "live":
        res = gdbrun.gdb(commands, pid=janus.pid)
    else:
        res = gdbrun.gdb(commands, exe=janus.exe, core=core)
    both = res.stdout + res.stderr
    assert "Traceback" not in both and "Python Exception" not in both, both
    r = gdbrun.Result(gdbrun.extract_json(res.stdout))
    roles = set(t["role"] for t in r.data["threads"])
    got = {}
    for line in res.stdout.splitlines():
        if line.startswith("DISPATCH "):
            hid, struct, label = json.loads(line[len("DISPATCH "):])
            got[hid] = (struct, label)
    problems = []
    for name, hid in sorted(handles.items()):
        _package, struct, label = PLUGINS[name]
        have = got.get(hid)
        if have is None or have[0] != struct or not (have[1] or "").startswith(label) or \
                "handle %d" % hid not in have[1]:
            problems.append("%s handle %d: read as %r, want %s %r..."
                            % (name, hid, have, struct, label))
    for name, want in sorted(ROLES.items()):
        if not built(janus, name):
            continue
        for role in want:
            if role not in roles:
                problems.append("%s: no thread with role %r (roles: %s)"
                                % (name, role, sorted(roles)))
    for t in r.data["threads"]:
        # only the thread that runs janus_sip_sofia_thread is the sofia loop,
        # named by its session's account (sofia-sip's own threads inherit
        # the name "sip bob")
        if t["role"] == "sip sofia loop" and t["role_detail"] != (
                'SIP session of handle %d "sip:bob@127.0.0.1"' % handles["sip"]):
            problems.append("sofia loop detail %r" % t["role_detail"])
    assert not problems, "\n".join(problems)
