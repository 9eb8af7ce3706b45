"""What janus-gdb knows about Janus, checked against two real Janus versions.

janus_gdb/janus/janusdb.py names Janus's objects, locks and threads from
struct, field, global and function names (Janus 1.1.2 and 1.4.1).  A new
Janus that renames a field, moves a table or adds a lock must fail a test
here, not silently lose a name.  A batch gdb reads the DWARF of each build
(scripts/build-janus JANUS_VERSION=...: Debian bookworm's 1.1.2, sid's
1.4.1) for the core (bin/janus), the VideoRoom, AudioBridge and Streaming
plugins and the HTTP transport:

- every struct, identifying field, link, global table, table field, enum
  value, thread entry function and its object variable janusdb uses exists,
  with the type janusdb expects, in each version;
- every thread the sources of these modules start has a role;
- on 1.4.1, what it adds is named on a running Janus or its core: VideoRoom
  helper threads, a publisher's own mutex (held by a frozen "kick"); and
  1.1.2's NoSIP msid leak is gone (no lock claimed);
- the locks (lock-typed struct fields and global lock variables of Janus's
  own janus_* structs and files) differ between the versions by exactly
  LOCK_CHANGES: a new lock, a renamed or removed one, shows up as a failure
  listing it (then janusdb and docs/portability.md "Janus versions" follow).

The other plugins and transports (TextRoom, SIP, ...) are checked on 1.1.2
by their own test.  Each version's tests skip (with the reason) when its
build is missing: tests/run.sh builds both.
"""

import json
import os
import re
import subprocess
import time

import pytest

import gdbrun
import janusd

import sys
sys.path.insert(0, gdbrun.ROOT)
from janus_gdb.janus import janusdb  # noqa: E402  (pure tables, no gdb)

# module -> its file in a build's prefix
MODULES = {
    "core": "bin/janus",
    "videoroom": "lib/janus/plugins/libjanus_videoroom.so",
    "audiobridge": "lib/janus/plugins/libjanus_audiobridge.so",
    "streaming": "lib/janus/plugins/libjanus_streaming.so",
    "http": "lib/janus/transports/libjanus_http.so",
}
# module -> its source files (under PREFIX.src/src) whose threads need a role
MODULE_SOURCES = {
    "core": "*.c",
    "videoroom": "plugins/janus_videoroom.c",
    "audiobridge": "plugins/janus_audiobridge.c",
    "streaming": "plugins/janus_streaming.c",
    "http": "transports/janus_http.c",
}
# janusdb's tables name files; the file's module
FILE_MODULES = {"janus.c": "core", "janus_videoroom.c": "videoroom",
                "janus_audiobridge.c": "audiobridge", "janus_streaming.c": "streaming"}
# janusdb's (None, var) global tables: the module whose var it is
ANY_FILE_TABLES = {"rooms": "janus_videoroom.c", "mountpoints": "janus_streaming.c"}

ENTRY_VERSIONS = janusd.ENTRY_VERSIONS
STRUCT_VERSIONS = janusd.STRUCT_VERSIONS

# The lock changes from 1.1.2 to 1.4.1 in these modules ("+": only in 1.4.1,
# "-": only in 1.1.2): module, struct.field or file:variable, lock type.
# Read from the DWARF by test_lock_changes_between_versions; each is named by
# janus-gdb on both versions (lock fields are found from the types).
LOCK_CHANGES = set([
    # VideoRoom: a publisher's own mutex; helper threads (new object
    # janus_videoroom_helper, named "VideoRoom helper #N of room R")
    ("+", "videoroom", "janus_videoroom_publisher.mutex", "janus_mutex"),
    ("+", "videoroom", "janus_videoroom_helper.mutex", "janus_mutex"),
    # AudioBridge: a participant's suspend/resume wait
    ("+", "audiobridge", "janus_audiobridge_participant.suspend_cond_mutex", "janus_mutex"),
    ("+", "audiobridge", "janus_audiobridge_participant.suspend_cond", "GCond"),
    # the core: RTP forwarders moved to rtpfwd.c with a global lock of their own
    ("+", "core", "rtpfwd.c:rtpfwds_mutex", "janus_mutex"),
    # the core: log.c's buffer list under GMutex lock / GCond cond became a
    # GAsyncQueue (the log thread now idles in g_async_queue_pop)
    ("-", "core", "log.c:lock", "GMutex"),
    ("-", "core", "log.c:cond", "GCond"),
])

LOCK_TYPES = ("janus_mutex", "GMutex", "GRecMutex", "GRWLock", "pthread_mutex_t",
              "pthread_rwlock_t", "pthread_spinlock_t", "janus_condition", "GCond",
              "pthread_cond_t")

# Runs inside gdb (its Python); the file to read is gdb's executable.
DUMP_SCRIPT = r'''
import json
import os

import gdb

LOCK_TYPES = %(lock_types)r


def fields_of(t, out, depth=0):
    for f in t.strip_typedefs().fields():
        if not f.name:
            if depth < 4:
                fields_of(f.type, out, depth + 1)   # anonymous union or struct
            continue
        out[f.name] = str(f.type)


def struct_names():
    text = gdb.execute("info types -q ^janus_", to_string=True)
    names = set()
    for line in text.splitlines():
        parts = line.strip().split(":", 1)
        decl = parts[-1].strip()
        if decl.startswith("struct ") and decl.endswith(";") and "{" not in decl:
            names.add(decl[7:-1].strip())
    return sorted(names)


def main():
    with open(os.environ["JGDB_SPEC"]) as f:
        spec = json.load(f)
    res = {"structs": {}, "globals": {}, "functions": {}, "enums": {}, "global_locks": {}}
    for name in sorted(set(spec["structs"]) | set(struct_names())):
        try:
            t = gdb.lookup_type("struct " + name)
            out = {}
            fields_of(t, out)
        except gdb.error:
            out = None
        res["structs"][name] = out
    for filename, var in spec["globals"]:
        syms = []
        if hasattr(gdb, "lookup_static_symbols"):
            syms = list(gdb.lookup_static_symbols(var))
        g = gdb.lookup_global_symbol(var)
        if g is not None:
            syms.append(g)
        found = None
        for s in syms:
            if (s.is_variable and s.symtab is not None
                    and os.path.basename(s.symtab.filename) == filename):
                found = str(s.type)
        res["globals"]["%%s:%%s" %% (filename, var)] = found
    for fn in spec["functions"]:
        s = gdb.lookup_global_symbol(fn) or gdb.lookup_static_symbol(fn)
        if s is None or not s.is_function:
            res["functions"][fn] = None
            continue
        text = gdb.execute("info scope %%s" %% fn, to_string=True)
        res["functions"][fn] = [l.split()[1] for l in text.splitlines()
                                if l.strip().startswith("Symbol ")]
    for name in spec["enums"]:
        try:
            res["enums"][name] = int(gdb.parse_and_eval("(long) %%s" %% name))
        except gdb.error:
            res["enums"][name] = None
    for typ in LOCK_TYPES:
        text = gdb.execute("info variables -q -t ^%%s$" %% typ, to_string=True)
        cur = None
        for line in text.splitlines():
            if line.startswith("File "):
                cur = os.path.basename(line[5:].strip().rstrip(":"))
            elif cur and ":" in line and line.strip().endswith(";"):
                decl = line.split(":", 1)[1].strip().rstrip(";").split()
                if decl and decl[-1].isidentifier():
                    res["global_locks"]["%%s:%%s" %% (cur, decl[-1])] = typ
    print("JGDB-JSON " + json.dumps(res, sort_keys=True))


main()
''' % {"lock_types": LOCK_TYPES}

# enum constant -> value janusdb expects: PARTICIPANT_TYPES {1:
# janus_videoroom_subscriber, ...} means janus_videoroom_p_type_subscriber == 1,
# STREAMING_SOURCES {2: janus_streaming_rtp_source}: janus_streaming_source_rtp == 2
ENUMS = {
    "videoroom": dict(("janus_videoroom_p_type_" + v.split("_")[-1], k)
                      for k, v in janusdb.PARTICIPANT_TYPES.items()),
    "streaming": dict(("janus_streaming_source_" + v.split("_")[2], k)
                      for k, v in janusdb.STREAMING_SOURCES.items()),
}


# Janus's other plugins and transports: their names are checked elsewhere
# (on 1.1.2), not here
OTHER_MODULES = ("textroom", "sip", "nosip", "echotest", "videocall", "recordplay", "lua",
                 "duktape", "websockets", "pfunix", "mqtt", "nanomsg", "rabbitmq")


def struct_module(name):
    """The module of janusdb's struct NAME here, None for the other plugins'
    (and for structs not named janus_*, like SIP's sofia types)."""
    if not name.startswith("janus_"):
        return None
    for module in ("videoroom", "audiobridge", "streaming", "http") + OTHER_MODULES:
        if name.startswith("janus_%s_" % module) or name == "janus_%s" % module:
            return None if module in OTHER_MODULES else module
    return "core"


def function_module(fn):
    """The module of thread entry function FN here, None for the other plugins'."""
    for module in ("videoroom", "audiobridge", "streaming", "http") + OTHER_MODULES:
        if fn.startswith("janus_%s_" % module):
            return None if module in OTHER_MODULES else module
    return "core"


def struct_fields(d, name):
    """{field: type} of struct NAME in a version's dump (None: missing or not here)."""
    module = struct_module(name)
    return d[module]["structs"].get(name) if module else None


def table_file(filename, var):
    """The file of a GLOBAL_TABLES entry checked here (None: another plugin's)."""
    filename = filename or ANY_FILE_TABLES.get(var)
    return filename if filename in FILE_MODULES else None


def spec_of(module):
    """What janusdb uses in MODULE: {structs, globals, functions, enums}."""
    structs = sorted(s for s in janusdb.OBJECT_TYPES if struct_module(s) == module)
    globals_ = []
    for (filename, var) in janusdb.GLOBAL_TABLES:
        filename = table_file(filename, var)
        if filename and FILE_MODULES[filename] == module:
            globals_.append([filename, var])
    functions = sorted(set(fn for fn in list(janusdb.ENTRY_ROLES) + list(janusdb.THREAD_OBJECTS)
                           if function_module(fn) == module and fn != "main"))
    return {"structs": structs, "globals": sorted(globals_), "functions": functions,
            "enums": sorted(ENUMS.get(module, {}))}


def dump(path, spec, workdir, timeout=300):
    """The DWARF facts of the ELF file PATH (DUMP_SCRIPT's JSON)."""
    script = os.path.join(workdir, "dump-dwarf.py")
    with open(script, "w") as f:
        f.write(DUMP_SCRIPT)
    spec_path = os.path.join(workdir, "spec-%s.json" % os.path.basename(path))
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    env = dict(os.environ, JGDB_SPEC=spec_path, DEBUGINFOD_URLS="")
    out = subprocess.run(["gdb", "-nx", "-batch", path, "-x", script], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True, env=env,
                         timeout=timeout).stdout
    m = re.search(r"^JGDB-JSON (.*)$", out, re.M)
    assert m, "gdb did not read %s:\n%s" % (path, out[-3000:])
    return json.loads(m.group(1))


_DUMPS = {}


def version_dump(version, tmp_path_factory):
    """{module: dump} of the VERSION build, or pytest.skip with the reason."""
    if version not in _DUMPS:
        prefix, problem = janusd.usable_prefix(("gdb",), need_pexpect=False, version=version)
        if problem:
            _DUMPS[version] = (None, problem)
        else:
            workdir = str(tmp_path_factory.mktemp("dwarf-%s" % version))
            _DUMPS[version] = (dict((m, dump(os.path.join(prefix, p), spec_of(m), workdir))
                                    for m, p in sorted(MODULES.items())), prefix)
    d, extra = _DUMPS[version]
    if d is None:
        pytest.skip(extra)
    return d, extra


@pytest.fixture(scope="module", params=janusd.VERSIONS)
def dwarf(request, tmp_path_factory):
    """(version, {module: DWARF facts}, prefix) of each Janus version in turn."""
    d, prefix = version_dump(request.param, tmp_path_factory)
    return request.param, d, prefix


def bare(type_text):
    """``janus_videoroom`` from ``struct janus_videoroom *`` (None: not a pointer)."""
    t = type_text.replace("volatile ", "").replace("const ", "").strip()
    if t == "gpointer":
        return t
    if not t.endswith("*"):
        return None
    t = t[:-1].strip()
    return t[len("struct "):] if t.startswith("struct ") else t


VOID_POINTERS = ("void", "gpointer")


def test_object_types_match_dwarf(dwarf):
    """OBJECT_TYPES: each struct, its identifying fields (strings are
    char pointers) and its links (pointers to the linked struct, or void
    pointers the code casts) exist in this version."""
    version, d, _prefix = dwarf
    problems = []
    for name, spec in sorted(janusdb.OBJECT_TYPES.items()):
        if struct_module(name) is None:
            continue
        fields = struct_fields(d, name)
        expected = version in STRUCT_VERSIONS.get(name, janusd.VERSIONS)
        if (fields is not None) != expected:
            problems.append("struct %s: %s" % (name, "present" if fields else "missing"))
        if fields is None:
            continue
        for fid in spec["ids"]:
            field = fid.lstrip("*")
            if field not in fields:
                problems.append("%s.%s (id): missing" % (name, field))
            elif fid.startswith("*") and bare(fields[field]) not in ("char", "gchar"):
                problems.append("%s.%s (string id): is %s" % (name, field, fields[field]))
        for field, target in sorted(spec["links"].items()):
            if field not in fields:
                problems.append("%s.%s (link): missing" % (name, field))
                continue
            pointee = bare(fields[field])
            if pointee is None or (target is not None and pointee not in VOID_POINTERS
                                   and pointee != target):
                problems.append("%s.%s (link to %s): is %s" % (name, field, target,
                                                               fields[field]))
        if "parent" in spec:
            pstruct, pfield = spec["parent"]
            pfields = struct_fields(d, pstruct) or {}
            if pfield not in pfields:
                problems.append("%s (parent %s.%s): missing" % (name, pstruct, pfield))
    assert not problems, "Janus %s: %s" % (version, problems)


def test_tables_match_dwarf(dwarf):
    """GLOBAL_TABLES, TABLE_FIELDS and TABLE_BACK_LINKS: the hash tables
    janus-locks walks are GHashTable pointers, their values point back."""
    version, d, _prefix = dwarf
    problems = []
    for (filename, var) in sorted(janusdb.GLOBAL_TABLES, key=str):
        filename = table_file(filename, var)
        if filename is None:
            continue
        got = d[FILE_MODULES[filename]]["globals"].get("%s:%s" % (filename, var))
        if got != "GHashTable *":
            problems.append("%s: %s is %s" % (filename, var, got))
    for owner, tables in sorted(janusdb.TABLE_FIELDS.items()):
        if struct_module(owner) is None:
            continue
        fields = struct_fields(d, owner) or {}
        for field, value in sorted(tables.items()):
            if fields.get(field) != "GHashTable *":
                problems.append("%s.%s is %s" % (owner, field, fields.get(field)))
            back = janusdb.TABLE_BACK_LINKS.get((owner, field))
            if back:
                vfields = struct_fields(d, value) or {}
                if back not in vfields or bare(vfields[back]) not in (owner,) + VOID_POINTERS:
                    problems.append("%s.%s (back link to %s) is %s" % (
                        value, back, owner, vfields.get(back)))
    assert not problems, "Janus %s: %s" % (version, problems)


def test_enum_values_match_dwarf(dwarf):
    """PARTICIPANT_TYPES and STREAMING_SOURCES: the enum values janusdb
    maps to structs are the ones the plugins compile."""
    version, d, _prefix = dwarf
    for module, consts in sorted(ENUMS.items()):
        assert consts, module
        for const, value in sorted(consts.items()):
            assert d[module]["enums"].get(const) == value, (version, const, value,
                                                            d[module]["enums"])


def test_thread_functions_match_dwarf(dwarf):
    """ENTRY_ROLES and THREAD_OBJECTS: every entry function exists in this
    version (or is listed in ENTRY_VERSIONS as another version's); the
    variable that holds a thread's object is one of its locals or arguments."""
    version, d, _prefix = dwarf
    problems = []
    for fn in sorted(set(janusdb.ENTRY_ROLES) | set(janusdb.THREAD_OBJECTS)):
        if fn == "main" or function_module(fn) is None:
            continue
        scope = d[function_module(fn)]["functions"].get(fn)
        expected = version in ENTRY_VERSIONS.get(fn, janusd.VERSIONS)
        if (scope is not None) != expected:
            problems.append("%s: %s in %s" % (fn, "present" if scope is not None else "missing",
                                              function_module(fn)))
        if fn in janusdb.THREAD_OBJECTS and scope is not None:
            struct, names, link = janusdb.THREAD_OBJECTS[fn]
            if not set(names) & set(scope):
                problems.append("%s: none of %s among %s" % (fn, names, scope))
            if link and link not in (struct_fields(d, struct) or {}):
                problems.append("%s: %s.%s missing" % (fn, struct, link))
    assert not problems, "Janus %s: %s" % (version, problems)


THREAD_START = re.compile(r"g_thread_(?:try_)?new\s*\([^;]*?,\s*&?\s*([A-Za-z_]\w*)\s*,", re.S)


def test_every_thread_has_a_role(dwarf):
    """Every thread entry the sources of these modules start
    (g_thread_new/g_thread_try_new) has a role in ENTRY_ROLES."""
    import glob
    version, _d, prefix = dwarf
    src = os.path.join(prefix + ".src", "src")
    entries = {}
    for module, pattern in sorted(MODULE_SOURCES.items()):
        for path in sorted(glob.glob(os.path.join(src, pattern))):
            with open(path, errors="replace") as f:
                for fn in THREAD_START.findall(f.read()):
                    entries[fn] = os.path.relpath(path, src)
    assert len(entries) >= 15, entries
    lacking = sorted("%s (%s)" % (fn, where) for fn, where in entries.items()
                     if fn not in janusdb.ENTRY_ROLES)
    assert not lacking, "Janus %s threads without a role: %s" % (version, lacking)


def lock_inventory(d):
    """{(module, "struct.field" or "file:var"): lock type} of a version's dump:
    lock-typed fields of Janus's janus_* structs and global lock variables."""
    out = {}
    for module, facts in d.items():
        for name, fields in facts["structs"].items():
            for field, typ in (fields or {}).items():
                if typ in LOCK_TYPES:
                    out[(module, "%s.%s" % (name, field))] = typ
        for key, typ in facts["global_locks"].items():
            out[(module, key)] = typ
    return out


def test_lock_changes_between_versions(tmp_path_factory):
    """The locks of 1.1.2 and 1.4.1 differ by exactly LOCK_CHANGES."""
    old, _p = version_dump("1.1.2", tmp_path_factory)
    new, _p = version_dump("1.4.1", tmp_path_factory)
    a, b = lock_inventory(old), lock_inventory(new)
    # the inventory found the locks janus-gdb's own tests rely on, in both
    for inv in (a, b):
        for key in (("core", "janus.c:sessions_mutex"),
                    ("videoroom", "janus_videoroom.c:rooms_mutex"),
                    ("audiobridge", "janus_audiobridge.c:rooms_mutex"),
                    ("streaming", "janus_streaming.c:mountpoints_mutex"),
                    ("core", "janus_ice_handle.mutex"), ("videoroom", "janus_videoroom.mutex"),
                    ("audiobridge", "janus_audiobridge_participant.qmutex")):
            assert key in inv, (key, sorted(inv))
    changes = set()
    for key in set(a) | set(b):
        if key not in b:
            changes.add(("-",) + key + (a[key],))
        elif key not in a:
            changes.add(("+",) + key + (b[key],))
        elif a[key] != b[key]:
            changes.add(("-",) + key + (a[key],))
            changes.add(("+",) + key + (b[key],))
    print("locks: 1.1.2 %d, 1.4.1 %d; changes: %s" % (len(a), len(b), sorted(changes)))
    assert changes - LOCK_CHANGES == set(), "undocumented lock changes: %s" % sorted(
        changes - LOCK_CHANGES)
    assert LOCK_CHANGES - changes == set(), "documented changes not seen: %s" % sorted(
        LOCK_CHANGES - changes)


# --- what 1.4.1 adds, named on a running Janus ------------------------------------------

def test_videoroom_helper_label():
    room = ("janus_videoroom", {"room_id": 1234, "room_name": "demo"}, {})
    assert janusdb.label("janus_videoroom_helper", {"id": 2}, {"room": room}) == (
        'VideoRoom helper #2 of room 1234 "demo"')
    assert janusdb.label("janus_videoroom_helper", {"id": None}, {}) == "VideoRoom helper #?"
    assert janusdb.object_name("janus_videoroom_helper", "mutex", "VideoRoom helper #2",
                               0x10) == "helper->mutex of VideoRoom helper #2"
    assert janusdb.role_of(None, "vhelp 2-1234") == "videoroom helper"
    assert janusdb.role_of(None, "rtcpfwd") == "rtcp forwarder"


def test_videoroom_helper_threads_live(tmp_path_factory):
    """Janus 1.4.1: a room created with "threads": 2 runs two VideoRoom
    helper threads; janus-waitgraph (live) gives each its role and names it
    by its helper and room, as the thread names Janus gave them say."""
    prefix, problem = janusd.usable_prefix(("gdb",), need_pexpect=False, version="1.4.1")
    if problem:
        pytest.skip(problem)
    j = janusd.JanusServer(prefix, str(tmp_path_factory.mktemp("janus-helpers")))
    j.start()
    try:
        s = j.create_session()
        h = j.attach(s)
        room = 777001
        resp = j.message(s, h, {"request": "create", "room": room, "description": "helped",
                                "threads": 2})
        assert resp["plugindata"]["data"].get("videoroom") == "created", resp
        # ground truth: Janus names them "vhelp <helper id>-<room>" (each
        # thread names itself when it starts: wait for both)
        def helpers():
            return dict((lwp, n) for lwp, n in j.thread_names().items()
                        if n.startswith("vhelp "))
        janusd.wait_until(lambda: len(helpers()) >= 2, 10)
        truth = helpers()
        assert len(truth) == 2, j.thread_names()
        out = gdbrun.gdb(["janus-waitgraph --format json"], pid=j.pid)
        assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
        data = gdbrun.extract_json(out.stdout)
        assert j.info()["janus"] == "server_info"
        by_lwp = dict((t["lwp"], t) for t in data["threads"])
        for lwp, name in sorted(truth.items()):
            helper_id = re.match(r"^vhelp (\d+)-%d$" % room, name).group(1)
            t = by_lwp[lwp]
            assert t["entry"] == "janus_videoroom_helper_thread", t
            assert t["role"] == "videoroom helper", t
            assert t["role_detail"] == 'VideoRoom helper #%s of room %d "helped"' % (
                helper_id, room), t
        rtcp = [t for t in data["threads"] if t.get("entry") == "janus_rtp_forwarder_rtcp_thread"]
        assert [t["role"] for t in rtcp] == ["rtcp forwarder"], rtcp
    finally:
        j.stop()


def test_msid_leak_fixed_in_newer(tmp_path_factory):
    """Janus 1.4.1: the NoSIP "Invalid msid" answer that leaks handle->mutex
    in 1.1.2 (test_janus_real.py d) is rejected with the lock released
    (fixed upstream in 1.3.1): the handle's next request is served, and
    janus-locks on a core finds no lock held, leaked or otherwise."""
    prefix, problem = janusd.usable_prefix(("gdb",), need_pexpect=False, version="1.4.1")
    if problem:
        pytest.skip(problem)
    if not janusd.has_nosip(prefix):
        pytest.skip(janusd.LEAK_SKIP_REASON)
    workdir = str(tmp_path_factory.mktemp("janus-msid"))
    j = janusd.JanusServer(prefix, workdir, nosip=True)
    j.start()
    core = os.path.join(workdir, "core.msid")
    try:
        s = j.create_session()
        h = j.attach(s, "janus.plugin.nosip")
        addrs = janusd.handle_mutex_addresses(j)
        assert h in addrs, (h, addrs)
        assert janusd.trigger_handle_mutex_leak(j, s, h), j.log_tail()
        # the same handle's trickle needs handle->mutex: answered, nobody waits
        assert j.trickle(s, h, {"completed": True}, timeout=10)["janus"] == "ack"
        assert not j.futex_waiters(addrs[h])
        janusd.gcore_all_stop(j, core)
        out = gdbrun.gdb(["janus-locks --format json"], exe=j.exe, core=core)
        assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
        data = gdbrun.extract_json(out.stdout)
        assert [l["address"] for l in data["locks"]] == [], data["locks"]
        text = gdbrun.gdb(["janus-locks"], exe=j.exe, core=core).stdout
        assert "leaked" not in text, text
    finally:
        j.stop()
        if os.path.exists(core):
            os.unlink(core)


def kick_lock_line(source):
    """(function, line of janus_mutex_lock(&participant->mutex) in the VideoRoom
    function that removes a leaving publisher: a lock 1.1.2 does not have)."""
    func = "janus_videoroom_leave_or_unpublish"
    with open(source, errors="replace") as f:
        lines = f.read().split("\n")
    start = [i for i, l in enumerate(lines) if l.startswith("static void %s(" % func)]
    assert start, "%s not in %s" % (func, source)
    for i in range(start[0], min(start[0] + 120, len(lines))):
        if "janus_mutex_lock(&participant->mutex)" in lines[i]:
            return func, i + 1
    raise AssertionError("no janus_mutex_lock(&participant->mutex) in %s" % func)


class KickStall(object):
    """Janus 1.4.1: a "kick" of publisher "alice" frozen (non-stop gdb
    breakpoint) right after janus_videoroom_leave_or_unpublish locked the
    publisher's own mutex, with room->mutex held; N "listparticipants"
    requests of the same room pile up on room->mutex; then a core.  The
    ground truth is what gdb and /proc showed."""

    def __init__(self, j, workdir, n_waiters=3, timeout=60):
        src = os.path.join(j.srcdir, "src", "plugins", "janus_videoroom.c")
        self.function, self.lock_line = kick_lock_line(src)
        self.room = 777002
        s = j.create_session()
        h0 = j.attach(s)
        h1 = j.attach(s)
        others = [j.attach(s) for _ in range(n_waiters)]
        j.create_room(s, h0, self.room, "kickme")
        self.publisher = j.join_publisher(s, h1, self.room, "alice")["id"]
        self.core = os.path.join(workdir, "core.kick")
        gdb = janusd.GdbSession(self.core + ".gdb.log")
        bg = janusd.Background()
        try:
            for c in ("set pagination off", "set width 0", "set confirm off",
                      "set non-stop on"):
                gdb.cmd(c)
            out = gdb.cmd("attach %d" % j.pid, timeout=timeout)
            assert "not permitted" not in out, out
            out = gdb.cmd("break janus_videoroom.c:%d" % (self.lock_line + 1))
            assert "Breakpoint 1 at" in out, out
            gdb.cmd("continue -a &")
            bg.run(j.message, s, h0, {"request": "kick", "room": self.room,
                                      "id": self.publisher}, timeout=timeout + 60)
            m = gdb.expect(r'Thread (\d+) "[^"]*" hit Breakpoint 1(?:\.\d+)?, '
                           r'(\w+) [^\r\n]*?janus_videoroom\.c:(\d+)', timeout=timeout)
            thread, self.bp_function = int(m.group(1)), m.group(2)
            gdb.cmd("thread %d" % thread)
            self.frozen_lwp = int(re.search(r"\(LWP (\d+)\)", gdb.cmd("thread")).group(1))
            self.participant_mutex = self._address(gdb, "&participant->mutex")
            self.room_mutex = self._address(gdb, "&participant->room->mutex")
            for h in others:
                bg.run(j.message, s, h, {"request": "listparticipants", "room": self.room},
                       timeout=timeout + 60)
            janusd.wait_until(lambda: len(j.futex_waiters(self.room_mutex)) >= n_waiters,
                              timeout)
            time.sleep(0.3)
            self.waiters = j.futex_waiters(self.room_mutex)
            assert len(self.waiters) == n_waiters, self.waiters
            assert not j.futex_waiters(self.participant_mutex)
            gdb.cmd("interrupt -a")
            assert janusd.wait_until(lambda: "(running)" not in gdb.cmd("info threads"), 30,
                                     step=0.2)
            gdb.cmd("gcore %s" % self.core, timeout=180)
            assert os.path.exists(self.core), "gcore failed"
            gdb.cmd("delete")
            gdb.cmd("detach")
        finally:
            gdb.close()

    @staticmethod
    def _address(gdb, expr):
        out = gdb.cmd("print %s" % expr)
        m = re.search(r"\$\d+ = \([^)]*\) (0x[0-9a-f]+)", out)
        assert m, (expr, out)
        return int(m.group(1), 16)


def test_publisher_mutex_named_on_newer(tmp_path_factory):
    """Janus 1.4.1's new VideoRoom lock, found and named by its object on a
    real core: a kick frozen holding the publisher's own mutex (which 1.1.2
    does not have) and its room's mutex, requests piled up on the room."""
    prefix, problem = janusd.usable_prefix(("gdb",), version="1.4.1")
    if problem:
        pytest.skip(problem)
    workdir = str(tmp_path_factory.mktemp("janus-kick"))
    j = janusd.JanusServer(prefix, workdir)
    j.start()
    try:
        k = KickStall(j, workdir)
    finally:
        j.stop()
    try:
        assert k.bp_function == k.function
        out = gdbrun.gdb(["janus-waitgraph --format json"], exe=j.exe, core=k.core)
        assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
        r = gdbrun.Result(gdbrun.extract_json(out.stdout))
        assert r.data["verdict"].startswith("No deadlock found"), r.data["verdict"]
        room = r.locks[k.room_mutex]
        assert room["name"] == 'room->mutex of room %d "kickme"' % k.room, room
        assert r.waiter_lwps(k.room_mutex) == k.waiters
        assert room["owner"]["lwp"] == k.frozen_lwp, room["owner"]
        assert k.participant_mutex in r.locks, [hex(a) for a in r.locks]
        pub = r.locks[k.participant_mutex]
        assert pub["name"] == 'participant->mutex of publisher %d "alice" in room %d' % (
            k.publisher, k.room), pub
        owner = pub["owner"]
        assert owner["lwp"] == k.frozen_lwp and owner["evidence"] == "inferred", owner
        assert "locked at janus_videoroom.c:%d" % k.lock_line in owner["detail"], owner
        assert not pub.get("leaked") and pub["waiters"] == [], pub
        text = gdbrun.gdb(["janus-locks"], exe=j.exe, core=k.core).stdout
        assert 'participant->mutex of publisher %d "alice"' % k.publisher in text, text
    finally:
        if os.path.exists(k.core):
            os.unlink(k.core)
