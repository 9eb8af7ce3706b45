"""Every struct, field, global variable and thread entry function that
janus-gdb names (janus_gdb/janus/janusdb.py) exists in the DWARF of the real
Janus build: each plugin and transport library and the janus executable are
loaded in a batch gdb (tests/dwarf_names.py) and asked for the names that
janusdb gives for that module.  A misspelt field or a name that a Janus
version dropped fails here, with the name.

Run on each Janus version built (1.1.2 and 1.4.1: janusd.VERSIONS); names
only one version has (janusd.STRUCT_VERSIONS, ENTRY_VERSIONS) are asked of
that version only.  Skipped only when a Janus build (JANUS_PREFIX,
JANUS_PREFIX_NEWER, scripts/build-janus) is missing.
"""

import json
import os
import subprocess
import sys

import pytest

import janusd

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from janus_gdb.janus import janusdb  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKER = os.path.join(HERE, "dwarf_names.py")

PLUGINS = ("videoroom", "audiobridge", "streaming", "textroom", "sip", "nosip", "videocall",
           "echotest", "recordplay", "lua", "duktape")
TRANSPORTS = ("http", "websockets", "pfunix")
CORE = "bin/janus"
# structs whose names do not start with their module's janus_<name>_
OWNERS = {
    "janus_session": (CORE,), "janus_ice_handle": (CORE,), "janus_plugin_session": (CORE,),
    "janus_request": (CORE,),
    "ssip_s": ("plugins/libjanus_sip.so",),
    # transport.h: the core and every transport
    "janus_transport_session": (CORE,) + tuple("transports/libjanus_%s.so" % t
                                               for t in TRANSPORTS),
}
# fields objects.py reads besides janusdb's ids and links
READ_FIELDS = {"janus_ice_handle": ["app", "app_handle"], "janus_request": ["transport"]}
# entry functions of the core (janus.c, ice.c, log.c, events.c)
CORE_ENTRIES = ("janus_ice_handle_thread", "janus_ice_static_event_loop_thread",
                "janus_transport_task", "janus_transport_requests", "janus_sessions_watchdog",
                "janus_log_thread", "janus_events_thread", "main",
                "janus_rtp_forwarder_rtcp_thread")


def module_of_name(name):
    """The binaries (relative to the prefix) where janusdb's NAME lives."""
    if name in OWNERS:
        return OWNERS[name]
    for p in PLUGINS:
        if name.startswith("janus_%s_" % p) or name == "janus_%s" % p:
            return ("plugins/libjanus_%s.so" % p,)
    for t in TRANSPORTS:
        if name.startswith("janus_%s_" % t):
            return ("transports/libjanus_%s.so" % t,)
    return None


def specs():
    """{binary: spec} of every name janusdb gives, and the names no module
    could be found for."""
    out = {}
    orphans = []

    def spec(binary):
        return out.setdefault(binary, {"structs": {}, "globals": [], "functions": {},
                                       "variables": []})

    def add_fields(struct, fields):
        where = module_of_name(struct)
        if where is None:
            orphans.append("struct %s" % struct)
            return
        for binary in where:
            have = spec(binary)["structs"].setdefault(struct, [])
            for f in fields:
                if f not in have:
                    have.append(f)

    for struct, s in janusdb.OBJECT_TYPES.items():
        fields = [f.lstrip("*") for f in s["ids"]] + list(s["links"])
        if "parent" in s:
            add_fields(s["parent"][0], [s["parent"][1]])
        add_fields(struct, fields + READ_FIELDS.get(struct, []))
    for struct, tables in janusdb.TABLE_FIELDS.items():
        add_fields(struct, list(tables))
        for field, vtype in tables.items():
            back = janusdb.TABLE_BACK_LINKS.get((struct, field))
            if back:
                add_fields(vtype, [back])
    for (filename, var), vtype in janusdb.GLOBAL_TABLES.items():
        where = (CORE,) if filename == "janus.c" else module_of_name(vtype)
        if where is None:
            orphans.append("table %s" % var)
            continue
        add_fields(vtype, [])
        for binary in where:
            spec(binary)["globals"].append([filename, var])
    for entry in janusdb.ENTRY_ROLES:
        where = (CORE,) if entry in CORE_ENTRIES else module_of_name(entry)
        if where is None:
            orphans.append("entry %s" % entry)
            continue
        obj = janusdb.THREAD_OBJECTS.get(entry)
        for binary in where:
            spec(binary)["functions"][entry] = list(obj[1]) if obj else []
    for entry, (struct, _vars, via) in janusdb.THREAD_OBJECTS.items():
        if entry not in janusdb.ENTRY_ROLES:
            orphans.append("thread object of %s without a role" % entry)
        if via is not None and via not in janusdb.OBJECT_TYPES[struct]["links"]:
            orphans.append("thread object of %s: %s is no link of %s" % (entry, via, struct))
    for package, struct in janusdb.PLUGIN_SESSIONS.items():
        binary = "plugins/lib%s.so" % package
        spec(binary)["variables"].append(package + "_plugin")
        add_fields(struct, [])
    # the janus_transport variables a request's ``transport`` points to
    for package in janusdb.TRANSPORT_TITLES:
        if package[len("janus_"):] in TRANSPORTS:
            spec("transports/lib%s.so" % package)["variables"].append(package + "_transport")
    return out, orphans


# The locks docs/reading-reports.md's catalogue names, per binary: global
# lock variables (named ``FILE: VARIABLE``) and lock fields of the objects
# (named ``var->FIELD of <object>``): each is a janus_mutex in the DWARF.
def _plugin_locks(name, globals_, fields):
    return ("plugins/libjanus_%s.so" % name,
            {"lock_globals": [["janus_%s.c" % name, g] for g in globals_],
             "locks": ["%s.%s" % (struct, f) for struct, fs in fields for f in fs]})


CATALOGUE_LOCKS = dict([
    _plugin_locks("audiobridge", ("rooms_mutex", "sessions_mutex"), (
        ("janus_audiobridge_room", ("mutex", "rtp_mutex")),
        ("janus_audiobridge_participant", ("qmutex", "pmutex", "rec_mutex")))),
    _plugin_locks("streaming", ("mountpoints_mutex", "sessions_mutex"), (
        ("janus_streaming_mountpoint", ("mutex",)),
        ("janus_streaming_rtp_source", ("rtsp_mutex", "rec_mutex")),
        ("janus_streaming_helper", ("mutex",)), ("janus_streaming_session", ("mutex",)))),
    _plugin_locks("textroom", ("rooms_mutex", "sessions_mutex"), (
        ("janus_textroom_room", ("mutex",)), ("janus_textroom_participant", ("mutex",)),
        ("janus_textroom_session", ("mutex",)))),
    _plugin_locks("sip", ("sessions_mutex",), (
        ("janus_sip_session", ("mutex", "rec_mutex")), ("ssip_s", ("smutex",)))),
    _plugin_locks("nosip", ("sessions_mutex",), (("janus_nosip_session", ("mutex", "rec_mutex")),)),
    _plugin_locks("videocall", ("sessions_mutex",), (
        ("janus_videocall_session", ("mutex", "rec_mutex", "rid_mutex")),)),
    _plugin_locks("echotest", ("sessions_mutex",), (
        ("janus_echotest_session", ("rec_mutex", "rid_mutex")),)),
    _plugin_locks("recordplay", ("recordings_mutex", "sessions_mutex"), (
        ("janus_recordplay_recording", ("mutex",)),
        ("janus_recordplay_session", ("rec_mutex", "rid_mutex")))),
    _plugin_locks("lua", ("lua_mutex", "lua_sessions_mutex"), (
        ("janus_lua_session", ("rid_mutex", "recipients_mutex", "rec_mutex")),)),
    _plugin_locks("duktape", ("duktape_mutex", "duktape_sessions_mutex"), (
        ("janus_duktape_session", ("rid_mutex", "recipients_mutex", "rec_mutex")),)),
    ("transports/libjanus_http.so", {
        "lock_globals": [["janus_http.c", v] for v in ("messages_mutex", "sessions_mutex",
                                                        "access_list_mutex")],
        "locks": ["janus_http_session.mutex"]}),
    ("transports/libjanus_websockets.so", {
        "lock_globals": [["janus_websockets.c", v] for v in ("writable_mutex",
                                                             "access_list_mutex")],
        "locks": ["janus_transport_session.mutex"]}),
    ("transports/libjanus_pfunix.so", {
        "lock_globals": [["janus_pfunix.c", "clients_mutex"]], "locks": []}),
])


def binary_path(prefix, binary):
    return os.path.join(prefix, binary) if binary == CORE else \
        os.path.join(prefix, "lib", "janus", binary)


def run_checker(path, spec, tmpdir):
    spec_file = os.path.join(tmpdir, os.path.basename(path) + ".json")
    with open(spec_file, "w") as f:
        json.dump(spec, f)
    env = dict(os.environ, DWARF_NAMES_SPEC=spec_file)
    res = subprocess.run(["gdb", "-nx", "-batch", "-ex", "python exec(open(%r).read())"
                          % CHECKER, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, env=env, timeout=300)
    for line in res.stdout.splitlines():
        if line.startswith("DWARF-NAMES "):
            return json.loads(line[len("DWARF-NAMES "):])
    raise AssertionError("no answer from gdb for %s:\n%s%s" % (path, res.stdout, res.stderr))


@pytest.fixture(scope="module", params=janusd.VERSIONS)
def prefix(request):
    p, problem = janusd.usable_prefix(("gdb",), need_pexpect=False, version=request.param)
    if problem:
        pytest.skip(problem)
    return p, request.param


def for_version(spec, version):
    """SPEC without the structs and entry functions janusd says only another
    Janus version has (janusd.STRUCT_VERSIONS, ENTRY_VERSIONS)."""
    def here(name, table):
        return version in table.get(name, janusd.VERSIONS)
    spec = dict(spec)
    spec["structs"] = dict((k, v) for k, v in spec["structs"].items()
                           if here(k, janusd.STRUCT_VERSIONS))
    spec["functions"] = dict((k, v) for k, v in spec["functions"].items()
                             if here(k, janusd.ENTRY_VERSIONS))
    return spec


def test_every_name_has_a_module():
    """Pure: no janusdb name escapes the DWARF check below."""
    _out, orphans = specs()
    assert orphans == []


BINARIES = [CORE] + ["plugins/libjanus_%s.so" % p for p in PLUGINS] + \
    ["transports/libjanus_%s.so" % t for t in TRANSPORTS]


@pytest.mark.parametrize("binary", BINARIES)
def test_names_exist_in_dwarf(prefix, binary, tmp_path):
    prefix, version = prefix
    path = binary_path(prefix, binary)
    if not os.path.exists(path):
        pytest.skip("%s was not built (its dependency is missing)" % path)
    spec = specs()[0].get(binary)
    assert spec, "janusdb names nothing in %s" % binary
    spec = for_version(spec, version)
    spec.update(CATALOGUE_LOCKS.get(binary, {}))
    got = run_checker(path, spec, str(tmp_path))
    assert got["missing"] == [], "%s: %s" % (binary, got["missing"])
    wanted = (len(spec["structs"]) + sum(len(f) for f in spec["structs"].values())
              + len(spec["globals"]) + len(spec["variables"]) + len(spec["functions"])
              + len(spec.get("locks", ())) + len(spec.get("lock_globals", ())))
    assert got["checked"] >= wanted, got


def test_checker_can_fail(prefix, tmp_path):
    """A misspelt field, variable, function or thread variable is reported."""
    prefix, _version = prefix
    path = binary_path(prefix, "plugins/libjanus_sip.so")
    if not os.path.exists(path):
        pytest.skip("%s was not built" % path)
    spec = {"structs": {"janus_sip_session": ["mutex", "account.identity", "mutexx",
                                              "account.identityy"],
                        "janus_sip_sesion": []},
            "globals": [["janus_sip.c", "sessions_mutex"], ["janus_sip.c", "session_mutex"],
                        ["janus_videoroom.c", "sessions_mutex"]],
            "functions": {"janus_sip_relay_thread": ["session"],
                          "janus_sip_sofia_threadd": [],
                          "janus_sip_handler": ["no_such_local"]},
            "variables": ["janus_sip_plugin", "janus_sipp_plugin"],
            "locks": ["janus_sip_session.rec_mutex", "janus_sip_session.callee",
                      "ssip_s.smutexx"],
            "lock_globals": [["janus_sip.c", "sessions_mutex"], ["janus_sip.c", "sessions"]]}
    got = run_checker(path, spec, str(tmp_path))
    assert sorted(got["missing"]) == sorted([
        "janus_sip_session.mutexx", "janus_sip_session.account.identityy",
        "struct janus_sip_sesion", "variable session_mutex in janus_sip.c",
        "variable sessions_mutex in janus_videoroom.c", "function janus_sip_sofia_threadd",
        "janus_sip_handler: none of the variables no_such_local",
        "variable janus_sipp_plugin", "lock janus_sip_session.callee", "lock ssip_s.smutexx",
        "lock sessions in janus_sip.c"]), got
