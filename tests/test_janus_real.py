"""janus-waitgraph against a real Janus (built by scripts/build-janus).

a, b and c run on each Janus version of janusd.VERSIONS (Debian bookworm's
1.1.2 and sid's 1.4.1: test ids [1.1.2], [1.4.1]); d is 1.1.2's bug (fixed
upstream in 1.3.1) and runs on 1.1.2.

a/b: one request thread frozen inside VideoRoom's rooms_mutex by a non-stop
gdb breakpoint, N more request threads piled up behind it, a core written;
analysed with debug info, then with stripped binaries and no libc/glib debug
info.  c: a healthy live Janus with sessions, handles and rooms.  d: a lock
leaked by a real Janus 1.1.2 bug reached through the public API: NoSIP's
"process" forwards the peer's SDP as the plugin's answer, and an a=msid with
one token makes janus_plugin_handle_sdp return with handle->mutex locked.

Skipped (with the reason) when there is no Janus build: tests/run.sh runs
scripts/build-janus for each version and exports JANUS_PREFIX and
JANUS_PREFIX_NEWER (or JANUS_BUILD_ERROR, JANUS_BUILD_ERROR_NEWER).
"""

import os
import re
import subprocess
import time

import pytest

import gdbrun
import janusd

N_WAITERS = int(os.environ.get("JANUS_STALL_WAITERS", "8"))


TOOLS = ("gdb", "strip", "readelf", "objdump", "nm")


@pytest.fixture(scope="module", params=janusd.VERSIONS)
def prefix(request):
    """The build of each Janus version in turn (module scope: one stall and
    one healthy Janus per version)."""
    p, problem = janusd.usable_prefix(TOOLS, version=request.param)
    if problem:
        pytest.skip(problem)
    return p


@pytest.fixture(scope="module")
def prefix_112():
    """Janus 1.1.2 only (its msid leak)."""
    p, problem = janusd.usable_prefix(TOOLS, version="1.1.2")
    if problem:
        pytest.skip(problem)
    return p


def start_janus(prefix, tmp_path_factory, name):
    workdir = str(tmp_path_factory.mktemp(name))
    j = janusd.JanusServer(prefix, workdir)
    j.start()
    return j


@pytest.fixture(scope="module")
def stall(prefix, tmp_path_factory):
    j = start_janus(prefix, tmp_path_factory, "janus-stall")
    try:
        res = janusd.stall_rooms_mutex(j, os.path.join(j.workdir, "core.stall"), N_WAITERS)
    finally:
        j.stop()
    yield res, j
    if res.core and os.path.exists(res.core):
        os.unlink(res.core)


def analyze(res, janus, command, hide_debug=False, exe=None, extra=(), pre=()):
    out = gdbrun.gdb(list(pre) + [command], exe=exe or janus.exe, core=res.core,
                     hide_debug=hide_debug, extra=extra)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    return out


def blocked_behind(r, num):
    for b in r.data["blocked"]:
        if b["thread"] == num:
            return b["behind"]
    return None


def test_stall_ground_truth(stall):
    """The stall itself: frozen holder, N distinct waiters, a core."""
    res, j = stall
    assert res.frozen_lwp and res.frozen_lwp not in res.waiters
    assert len(res.waiters) == N_WAITERS
    assert res.rooms_mutex
    assert res.lock_line < res.bp_line < res.lock_line + 10
    assert os.path.getsize(res.core) > 0


def test_stall_core_with_debug_info(stall):
    res, j = stall
    out = analyze(res, j, "janus-waitgraph --format json")
    r = gdbrun.Result(gdbrun.extract_json(out.stdout))
    assert r.data["verdict"].startswith("No deadlock found"), r.data["verdict"]
    assert res.rooms_mutex in r.locks, "rooms_mutex 0x%x not reported: %s" % (
        res.rooms_mutex, [hex(a) for a in r.locks])
    lock = r.locks[res.rooms_mutex]
    assert lock["kind"] == "gmutex"
    assert r.waiter_lwps(res.rooms_mutex) == res.waiters
    # --- from here on the engine's owner inference and names (issue 3) ---
    assert "rooms_mutex" in (lock.get("name") or "") and "janus_videoroom.c" in lock["name"], lock
    owner = lock["owner"]
    assert owner["lwp"] == res.frozen_lwp, owner
    assert owner["evidence"] == "inferred", owner
    assert owner["source"] == "lockset", owner
    assert "locked at janus_videoroom.c:%d" % res.lock_line in owner["detail"], owner
    assert res.function in owner["detail"], owner
    holder = r.by_lwp[res.frozen_lwp]["num"]
    for lwp in res.waiters:
        behind = blocked_behind(r, r.by_lwp[lwp]["num"])
        assert behind is not None and behind["kind"] == "thread", (lwp, behind)
        assert behind["thread"] == holder, (lwp, behind)
    assert r.data["target"].get("mutex_impl") == "gmutex"
    assert r.data["target"].get("owners") == "inferred"


def test_stall_core_text_report(stall):
    res, j = stall
    out = analyze(res, j, "janus-waitgraph")
    text = gdbrun.extract_report(out.stdout)
    assert text is not None, out.stdout
    assert text.startswith("No deadlock found"), text
    assert "%d threads wait for" % N_WAITERS in text, text
    assert "rooms_mutex" in text, text
    assert "GMutex: owners inferred" in text, text
    assert "--enable-pthread-mutex" in text, text


def symbol_value(elf, name):
    out = subprocess.run(["readelf", "-sW", elf], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[7] == name and parts[3] == "OBJECT":
            return int(parts[1], 16)
    raise AssertionError("%s not in the symbol table of %s" % (name, elf))


@pytest.fixture(scope="module")
def stripped(stall, tmp_path_factory):
    """Stripped janus and plugin, and a sysroot farm that loads the stripped plugin."""
    res, j = stall
    d = str(tmp_path_factory.mktemp("stripped"))
    exe = os.path.join(d, "janus")
    plugin = os.path.join(d, "libjanus_videoroom.so")
    subprocess.run(["strip", "--strip-all", "-o", exe, j.exe], check=True)
    subprocess.run(["strip", "--strip-all", "-o", plugin, j.plugin], check=True)
    sysroot = sysroot_farm(os.path.join(d, "sysroot"),
                           set(res.link_names) | set(res.mapped_files),
                           {os.path.realpath(j.plugin): plugin})
    return exe, plugin, sysroot


def strip_loaded(j, d):
    """Stripped copies in D of janus J's executable and of every plugin it
    loaded: {real path: stripped copy}, for sysroot_farm."""
    replace = {}
    for path in j.mapped_files():
        real = os.path.realpath(path)
        if real == os.path.realpath(j.exe) or "/janus/plugins/" in path:
            copy = os.path.join(d, os.path.basename(real))
            subprocess.run(["strip", "--strip-all", "-o", copy, real], check=True)
            replace[real] = copy
    return replace


def sysroot_farm(root, paths, replace):
    """A tree of symlinks under ROOT to the files PATHS, except those whose real
    path is a key of REPLACE (linked to its value: a stripped copy), for
    ``set sysroot ROOT``."""
    for path in paths:
        if not os.path.isabs(path) or not os.path.exists(path):
            continue
        link = root + path
        if not os.path.isdir(os.path.dirname(link)):
            os.makedirs(os.path.dirname(link))
        if os.path.lexists(link):
            continue
        real = os.path.realpath(path)
        os.symlink(replace.get(real, real), link)
    return root


def test_stall_core_stripped(stall, stripped):
    res, j = stall
    exe, plugin, sysroot = stripped
    offset = symbol_value(j.plugin, "rooms_mutex")
    out = analyze(res, j, "janus-waitgraph --format json", hide_debug=True, exe=exe,
                  extra=["-iex", "set sysroot %s" % sysroot,
                         "-iex", "set auto-load python-scripts off"],
                  pre=["info sharedlibrary", "info files"])
    # the stripped plugin is the one gdb loaded
    libs = [l for l in out.stdout.splitlines()
            if re.match(r"^0x[0-9a-f]+\s+0x[0-9a-f]+\s", l) and "libjanus_videoroom" in l]
    assert libs and all(l.split()[-1].startswith(sysroot) for l in libs), libs
    assert "Traceback" not in out.stdout + out.stderr
    r = gdbrun.Result(gdbrun.extract_json(out.stdout))
    assert res.rooms_mutex in r.locks, [hex(a) for a in r.locks]
    lock = r.locks[res.rooms_mutex]
    assert lock["kind"] == "gmutex"
    assert r.waiter_lwps(res.rooms_mutex) == res.waiters
    assert lock.get("name") == "libjanus_videoroom.so+0x%x" % offset, lock
    # --- the holder, named from the stripped plugin's machine code (issue 11) ---
    assert not lock.get("leaked") and "leaked" not in r.data["verdict"], lock
    owner = lock["owner"]
    assert owner["lwp"] == res.frozen_lwp, owner
    assert owner["evidence"] == "inferred" and owner["source"] == "machine-code", owner
    m = re.match(r"^from machine code: libjanus_videoroom\.so\+0x([0-9a-f]+) \(frame #0\) "
                 r"calls g_mutex_lock\(0x%x\) at ((?:\+0x[0-9a-f]+(?:, )?)+), no unlock "
                 r"before the instruction at \+0x\1$" % res.rooms_mutex, owner["detail"])
    assert m, owner
    # the offsets are the lock line's calls and the breakpoint's line in the
    # unstripped plugin's line table
    lines = objdump_lines(j.plugin)
    assert lines.get(int(m.group(1), 16)) == res.bp_line, (m.group(1), res.bp_line)
    for call in re.findall(r"0x([0-9a-f]+)", m.group(2)):
        assert lines.get(int(call, 16)) == res.lock_line, (call, res.lock_line)
    assert any(s.startswith("No debug info for ") for s in r.data["next_steps"]), \
        r.data["next_steps"]
    for lwp in res.waiters:
        behind = blocked_behind(r, r.by_lwp[lwp]["num"])
        assert behind is not None and behind.get("thread") == r.by_lwp[res.frozen_lwp]["num"]
    # --- frames named from their functions' log strings (issue 11 point 6) ---
    # every name given is the unstripped file's symbol at that pc: no false name
    frozen = r.by_lwp[res.frozen_lwp]
    named = check_log_names(out.stdout, r, {exe: j.exe, plugin: j.plugin})
    # the frozen request's frame in the plugin's request handler is named
    in_plugin = [f for f in frozen["frames"] if f["lib"] == "libjanus_videoroom.so"]
    assert in_plugin and in_plugin[0].get("log_name") == res.function, in_plugin
    print("frames named from log strings: %d (%d in the frozen thread), none false: %s" % (
        len(named), len([n for n in named if n[0] == frozen["num"]]), sorted(set(
            n[2] for n in named))))
    text = gdbrun.extract_report(analyze(
        res, j, "janus-waitgraph", hide_debug=True, exe=exe,
        extra=["-iex", "set sysroot %s" % sysroot,
               "-iex", "set auto-load python-scripts off"]).stdout)
    assert text is not None and "leaked" not in text, text
    assert "[inferred: %s]" % owner["detail"] in text, text
    assert "%s? () from libjanus_videoroom.so [named from its log string]" % res.function \
        in text, text


def check_log_names(gdb_stdout, r, unstripped):
    """Check every frame name of report R read from log strings against the
    symbols of the unstripped files: UNSTRIPPED maps each stripped file gdb
    loaded (realpath) to its unstripped original; the load biases come from
    `info sharedlibrary` and `info files` in GDB_STDOUT.  Returns [(thread,
    frame level, name)]."""
    by_real = dict((os.path.realpath(k), v) for k, v in unstripped.items())
    loaded = {}                 # frame "lib" (None: the executable) -> (runtime .text, file)
    for m in re.finditer(r"^(0x[0-9a-f]+)\s+0x[0-9a-f]+\s+\S+\s+(?:\(\*\)\s+)?(/\S+)",
                         gdb_stdout, re.M):
        real = by_real.get(os.path.realpath(m.group(2)))
        if real:
            loaded[os.path.basename(m.group(2))] = (int(m.group(1), 16), real)
    m = re.search(r"^\s*0x([0-9a-f]+) - 0x[0-9a-f]+ is \.text\s*$", gdb_stdout, re.M)
    exe = [v for k, v in by_real.items() if not k.endswith(".so") and ".so." not in k]
    if m and len(exe) == 1:
        loaded[None] = (int(m.group(1), 16), exe[0])
    truth = {}
    named = []
    for t in r.data["threads"]:
        for f in t["frames"]:
            assert f["function"] is None or "log_name" not in f, f
            if "log_name" not in f:
                continue
            assert f["lib"] in loaded, ("cannot check", f, sorted(loaded, key=str))
            if f["lib"] not in truth:
                text, path = loaded[f["lib"]]
                truth[f["lib"]] = (function_ranges(path), text - text_address(path))
            ranges, bias = truth[f["lib"]]
            true = symbol_at(ranges, f["pc"] - bias - (1 if f["level"] else 0))
            assert true is not None and f["log_name"] == true.split(".")[0], (f, true)
            named.append((t["num"], f["level"], f["log_name"]))
    return named


def function_ranges(elf):
    """[(start, end, name)] of ELF's function symbols (nm -S), file addresses."""
    out = subprocess.run(["nm", "-S", "--defined-only", elf], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    ranges = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tTwW":
            start = int(parts[0], 16)
            ranges.append((start, start + int(parts[1], 16), parts[3]))
    return ranges


def symbol_at(ranges, addr):
    for start, end, name in ranges:
        if start <= addr < end:
            return name
    return None


def text_address(elf):
    """File address of ELF's .text (readelf -S)."""
    out = subprocess.run(["readelf", "-SW", elf], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    for line in out.splitlines():
        m = re.search(r"\]\s+\.text\s+\S+\s+([0-9a-f]+)\s", line)
        if m:
            return int(m.group(1), 16)
    raise AssertionError("no .text in %s" % elf)


def objdump_lines(elf):
    """{instruction address: source line} of janus_videoroom.c in ELF (objdump -dl)."""
    out = subprocess.run(["objdump", "-dl", "--no-show-raw-insn", elf], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    lines = {}
    cur = None
    for text in out.splitlines():
        m = re.match(r"^\S*janus_videoroom\.c:(\d+)", text)
        if m:
            cur = int(m.group(1))
            continue
        if re.match(r"^\S+:\d+", text):
            cur = None
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s", text)
        if m and cur is not None:
            lines[int(m.group(1), 16)] = cur
    return lines


# --- c: a healthy live Janus ----------------------------------------------------------

class Healthy(object):
    def __init__(self, j):
        self.j = j
        self.sessions = []
        self.handles = {}   # handle id -> session id
        self.rooms = []
        for i in range(3):
            s = j.create_session()
            self.sessions.append(s)
            for k in range(2):
                self.handles[j.attach(s)] = s
        hs = sorted(self.handles, key=lambda h: (self.sessions.index(self.handles[h]), h))
        s0 = self.handles[hs[0]]
        for n in range(2):
            self.rooms.append(j.create_room(s0, hs[0], 424200 + n, "janus-gdb room %d" % n))
        for i, room in enumerate([1234] + self.rooms):
            h = hs[i + 1]
            j.join_publisher(self.handles[h], h, room, "publisher-%d" % i)


@pytest.fixture(scope="module")
def healthy(prefix, tmp_path_factory):
    j = start_janus(prefix, tmp_path_factory, "janus-healthy")
    try:
        yield Healthy(j)
    finally:
        j.stop()


def test_healthy_live(healthy):
    j = healthy.j
    # the Janus that runs is the version its source tree says
    assert j.info()["version_string"] == janusd.source_version(j.prefix), j.info()
    out = gdbrun.gdb(["janus-waitgraph --format json"], pid=j.pid)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    r = gdbrun.Result(gdbrun.extract_json(out.stdout))
    # the live target is not disturbed
    assert j.info()["janus"] == "server_info"
    for s in healthy.sessions:
        assert j.keepalive(s)["janus"] == "ack"
    assert set(healthy.sessions) <= set(j.admin_sessions())
    assert r.data["verdict"].startswith("No deadlock found"), r.data["verdict"]
    # --- roles (issue 3) ---
    lacking = [(t["lwp"], t.get("name"), t.get("entry")) for t in r.data["threads"]
               if not t.get("role")]
    assert not lacking, "threads without a role: %s" % lacking
    hloops = [t for t in r.data["threads"] if t.get("entry") == "janus_ice_handle_thread"]
    assert len(hloops) == len(healthy.handles), [t["lwp"] for t in hloops]
    for t in hloops:
        assert t["role"] == "hloop", t
    details = [t.get("role_detail") or "" for t in hloops]
    for h in healthy.handles:
        assert [d for d in details if str(h) in d], "no hloop for handle %d: %s" % (h, details)
    roles = [t["role"] for t in r.data["threads"]]
    for role in ("sessions requests", "videoroom handler", "session watchdog"):
        assert roles.count(role) == 1, (role, roles)
    # --- which queue an idle thread waits on: VideoRoom's handler on its
    # global messages (the value gdb itself prints for the variable) ---
    got = gdbrun.gdb(["p/x 'janus_videoroom.c'::messages"], pid=j.pid, load=False).stdout
    m = re.search(r"^\$1 = (0x[0-9a-f]+)\s*$", got, re.M)
    assert m, got
    (handler,) = [t for t in r.data["threads"] if t["role"] == "videoroom handler"]
    q = handler["wait"]["queue"]
    assert handler["state"] == "idle" and q is not None, handler
    assert q["address"] == int(m.group(1), 16) and q["name"] == "janus_videoroom.c: messages", q


# --- d: a lock leaked by a real Janus 1.1.2 bug ---------------------------------------

def leak_lock_line(source):
    """Line of the janus_mutex_lock(&ice_handle->mutex) the "Invalid msid" return leaks."""
    with open(source, errors="replace") as f:
        lines = f.read().split("\n")
    bad = [i for i, l in enumerate(lines) if "Invalid msid on m-line" in l][0]
    for i in range(bad, 0, -1):
        if "janus_mutex_lock(&ice_handle->mutex)" in lines[i]:
            return i + 1
    raise AssertionError("no janus_mutex_lock(&ice_handle->mutex) before the msid check")


@pytest.fixture(scope="module")
def leaked(prefix_112, tmp_path_factory):
    if not janusd.has_nosip(prefix_112):
        pytest.skip(janusd.LEAK_SKIP_REASON)
    workdir = str(tmp_path_factory.mktemp("janus-leak"))
    j = janusd.JanusServer(prefix_112, workdir, nosip=True)
    j.start()
    core = os.path.join(workdir, "core.leak")
    quiet = os.path.join(workdir, "core.leak-quiet")
    try:
        s = j.create_session()
        h = j.attach(s, "janus.plugin.nosip")
        addrs = janusd.handle_mutex_addresses(j)
        assert h in addrs, (h, addrs)
        assert janusd.trigger_handle_mutex_leak(j, s, h), j.log_tail()
        # a core of the quiet moment before anyone needs the lock
        janusd.gcore_all_stop(j, quiet)
        # a trickle needs the same handle's mutex: the "sessions requests" thread
        # that serves it piles up on the leaked lock (and with it the whole API)
        bg = janusd.Background()
        bg.run(j.trickle, s, h, {"completed": True}, timeout=120)
        if not janusd.wait_until(lambda: j.futex_waiters(addrs[h]), 20):
            pytest.fail("nobody waits for handle->mutex 0x%x after the trigger" % addrs[h])
        time.sleep(0.3)
        waiters = j.futex_waiters(addrs[h])
        janusd.gcore_all_stop(j, core)
        # stripped copies of janus and of every plugin it loaded, and a sysroot
        # that loads them (production: no debug info anywhere)
        d = os.path.join(workdir, "stripped")
        os.makedirs(d)
        replace = strip_loaded(j, d)
        # the names the dynamic linker recorded (e.g. /lib/... for /usr/lib/...)
        info = gdbrun.gdb(["info sharedlibrary"], exe=j.exe, core=core).stdout
        names = re.findall(r"^0x[0-9a-f]+\s+0x[0-9a-f]+\s+\S+\s+(?:\(\*\)\s+)?(/\S+)", info,
                           re.M)
        sysroot = sysroot_farm(os.path.join(d, "sysroot"), set(names) | set(j.mapped_files()),
                               replace)
        stripped_exe = replace[os.path.realpath(j.exe)]
        j.stripped = (stripped_exe, sysroot, sorted(replace.values()))
        yield j, s, h, addrs[h], core, waiters, quiet
    finally:
        j.stop()
        for path in (core, quiet):
            if os.path.exists(path):
                os.unlink(path)


def test_leaked_handle_mutex(leaked):
    j, s, h, addr, core, waiters, _quiet = leaked
    site = "janus.c:%d" % leak_lock_line(os.path.join(j.srcdir, "src", "janus.c"))
    out = gdbrun.gdb(["janus-waitgraph --format json"], exe=j.exe, core=core)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    r = gdbrun.Result(gdbrun.extract_json(out.stdout))
    assert addr in r.locks, "handle->mutex 0x%x not reported: %s" % (addr, [hex(a) for a in r.locks])
    lock = r.locks[addr]
    assert lock["kind"] == "gmutex"
    assert r.waiter_lwps(addr) == waiters
    # --- names and leak detection (issue 3) ---
    assert "handle->mutex" in (lock.get("name") or "") and str(h) in lock["name"], lock
    assert lock.get("leaked") is True, (site, lock)
    assert lock["owner"]["evidence"] == "unknown", lock
    text = gdbrun.extract_report(gdbrun.gdb(["janus-waitgraph"], exe=j.exe, core=core).stdout)
    assert text and "leaked" in text, text


def msid_return_line(source):
    """Line of the ``return`` after the "Invalid msid" log (the leaking exit of #3513)."""
    with open(source, errors="replace") as f:
        lines = f.read().split("\n")
    bad = [i for i, l in enumerate(lines) if "Invalid msid on m-line" in l][0]
    for i in range(bad, min(bad + 8, len(lines))):
        if lines[i].strip().startswith("return"):
            return i + 1
    raise AssertionError("no return after the msid check")


def test_leaked_handle_mutex_cites_the_msid_return(leaked):
    """The static analysis of the sources the debug info names lists the
    "Invalid msid" return as a possible missing unlock of the leaked
    handle->mutex (issue 12 point 4), first, in JSON, text and next steps."""
    from test_json_schema import check_document   # (it imports this module)
    j, s, h, addr, core, waiters, _quiet = leaked
    src = os.path.join(j.srcdir, "src", "janus.c")
    lock_line = leak_lock_line(src)
    ret_line = msid_return_line(src)
    t0 = time.time()
    out = gdbrun.gdb(["janus-waitgraph --format json"], exe=j.exe, core=core)
    took = time.time() - t0
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    data = gdbrun.extract_json(out.stdout)
    check_document(data, "janus-waitgraph")
    lock = [l for l in data["locks"] if l["address"] == addr][0]
    assert lock["leaked"] is True
    cites = lock["possible_missing_unlocks"]
    assert cites, (lock, data["warnings"])
    first = cites[0]
    assert os.path.basename(first["file"]) == "janus.c"
    assert first["lock"]["class"] == "janus_ice_handle.mutex"
    assert (first["lock"]["line"], first["exit"]["line"]) == (lock_line, ret_line), first
    assert all(c["lock"]["class"] == "janus_ice_handle.mutex" for c in cites)
    want = "janus.c:%d returns (in %s) while holding ice_handle->mutex taken at janus.c:%d" % (
        ret_line, first["function"], lock_line)
    assert any(want in x for x in data["next_steps"]), data["next_steps"]
    text = gdbrun.gdb(["janus-waitgraph"], exe=j.exe, core=core).stdout
    assert "possible missing unlock: " + want in text, text
    # a lock that is not leaked cites nothing
    assert all(not l["possible_missing_unlocks"] for l in data["locks"] if not l["leaked"])
    print("janus-waitgraph with the source check: %.1f s" % took)


def msid_entries():
    """Catalogue entries of the 1.1.2 "Invalid msid" leak: a leak of
    janus_ice_handle.mutex by janus_plugin_handle_sdp."""
    from janus_gdb.janus import knownhangs
    entries, problems = knownhangs.load()
    assert not problems, problems
    return [e for e in entries if e["kind"] == "leak"
            and e["locks"] == ["janus_ice_handle.mutex"]
            and "janus_plugin_handle_sdp" in e["taken_in"].get("janus_ice_handle.mutex", [])]


def test_leaked_handle_mutex_is_the_msid_bug(leaked):
    """Issue 15: the real 1.1.2 leak is recognised as the known "Invalid msid"
    early return of janus_plugin_handle_sdp (fixed in 1.3.1): an exact match
    (the source check names the leaking function), and "This is" because the
    Janus version read from the core is among the affected releases."""
    j, s, h, addr, core, waiters, _quiet = leaked
    entries = msid_entries()
    assert len(entries) == 1, entries
    entry = entries[0]
    out = gdbrun.gdb(["janus-waitgraph --format json", "echo @@SPLIT@@\\n", "janus-waitgraph"],
                     exe=j.exe, core=core)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    js, text = out.stdout.split("@@SPLIT@@\n", 1)
    data = gdbrun.extract_json(js)
    version = janusd.source_version(j.prefix)
    assert (data["target"].get("janus_version") or {}).get("text") == version, data["target"]
    lock = [l for l in data["locks"] if l["address"] == addr][0]
    leaks = [f for f in data["findings"] if f["kind"] == "leak" and lock["id"] in f["locks"]]
    assert len(leaks) == 1, data["findings"]
    f = leaks[0]
    assert f["parts"] == ["leak janus_ice_handle.mutex in janus_plugin_handle_sdp"], f
    known = f["known"]
    assert known is not None and known["id"] == entry["id"], f
    assert known["strength"] == "exact" and known["same_bug"] is True, known
    assert known["sentence"].startswith("This is janus-gateway %s (" % entry["ref"]), known
    assert "fixed in %s" % entry["fixed_in"] in known["sentence"], known
    text = gdbrun.extract_report(text)
    assert text.splitlines()[1] == known["sentence"], text
    assert "Fingerprint: %s" % f["fingerprint"] in text, text
    # the quiet core (nobody waits yet): the same leak, the same fingerprint
    quiet = gdbrun.extract_json(gdbrun.gdb(["janus-waitgraph --format json"], exe=j.exe,
                                           core=_quiet).stdout)
    assert [x["fingerprint"] for x in quiet["findings"]] == [f["fingerprint"]], quiet["findings"]


def test_msid_leak_fingerprint_is_the_models(leaked, tmp_path):
    """The same bug in another program gives the same fingerprint: the
    fixture's re-enactment of the msid leak (tests/fixtures/janus_scenarios.c
    leaked_lock: its own janus_plugin_handle_sdp leaks a janus_ice_handle's
    mutex) and the real 1.1.2 leak, where addresses, threads, the number of
    waiters, files and lines all differ."""
    j, s, h, addr, core, waiters, _quiet = leaked
    real = gdbrun.extract_json(gdbrun.gdb(["janus-waitgraph --format json"], exe=j.exe,
                                          core=core).stdout)
    src = os.path.join(gdbrun.FIXTURES, "janus_scenarios.c")
    exe = gdbrun.compile_c(src, str(tmp_path / "janus_scenarios"))
    sc = gdbrun.Scenario(exe, ["leaked_lock", str(tmp_path / "locklog")])
    try:
        model = gdbrun.extract_json(gdbrun.gdb(["janus-waitgraph --format json"],
                                               pid=sc.pid).stdout)
    finally:
        sc.kill()
    (mf,) = model["findings"]
    rf = [x for x in real["findings"] if x["kind"] == "leak"]
    assert mf["parts"] == ["leak janus_ice_handle.mutex in janus_plugin_handle_sdp"], mf
    assert [x["fingerprint"] for x in rf] == [mf["fingerprint"]], (rf, mf)


def test_leaked_handle_mutex_stripped_cites_nothing(leaked):
    """Stripped janus and plugins: no class, no source named: nothing cited."""
    j, s, h, addr, core, waiters, _quiet = leaked
    exe, sysroot, copies = j.stripped
    extra = ["-iex", "set sysroot %s" % sysroot, "-iex", "set auto-load python-scripts off"]
    out = gdbrun.gdb(["janus-waitgraph --format json"], exe=exe, core=core, hide_debug=True,
                     extra=extra)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    data = gdbrun.extract_json(out.stdout)
    assert all(l["possible_missing_unlocks"] == [] for l in data["locks"]), data["locks"]
    assert not any("missing unlock" in x for x in data["next_steps"]), data["next_steps"]
    # without lock classes no finding can be said to be a known bug (issue 15)
    assert all(f["known"] is None for f in data["findings"]), data["findings"]


def test_leaked_handle_mutex_found_before_anyone_waits(leaked):
    """Right after the leak nobody waits for the lock and no frame points to
    the handle: janus-locks still finds it held, through the core's
    sessions table, names it and calls it leaked (Janus #3478's situation)."""
    j, s, h, addr, _core, _waiters, quiet = leaked
    out = gdbrun.gdb(["janus-locks --format json"], exe=j.exe, core=quiet)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    r = gdbrun.Result(gdbrun.extract_json(out.stdout))
    assert addr in r.locks, "handle->mutex 0x%x not reported: %s" % (addr, r.data["locks"])
    lock = r.locks[addr]
    assert lock["waiters"] == [] and lock["state"] == "locked"
    assert lock["object"]["type"] == "janus_ice_handle"
    assert lock["name"].startswith("handle->mutex of handle %d" % h), lock["name"]
    assert lock["leaked"] is True and lock["owner"]["lwp"] is None
    # nothing else is held in a quiet Janus
    assert [l["address"] for l in r.data["locks"]] == [addr]
    text = gdbrun.gdb(["janus-locks"], exe=j.exe, core=quiet).stdout
    assert "handle->mutex of handle %d" % h in text and "probably leaked" in text


def test_leaked_handle_mutex_stripped(leaked):
    """1.1.2's msid leak on a stripped janus and plugins, libc/glib debug info
    hidden: the lock and its waiter are found; nothing is claimed that the
    machine code does not show (issue 11)."""
    j, s, h, addr, core, waiters, _quiet = leaked
    exe, sysroot, copies = j.stripped
    with open(exe, "rb") as f:
        assert b".debug_info" not in f.read()
    extra = ["-iex", "set sysroot %s" % sysroot, "-iex", "set auto-load python-scripts off"]
    out = gdbrun.gdb(["info sharedlibrary", "info files", "janus-waitgraph --format json"],
                     exe=exe, core=core, hide_debug=True, extra=extra)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    # the stripped plugins are the ones gdb loaded
    libs = [l.split()[-1] for l in out.stdout.splitlines()
            if re.match(r"^0x[0-9a-f]+\s+0x[0-9a-f]+\s", l) and "/plugins/" in l]
    assert libs and all(l.startswith(sysroot) for l in libs), out.stdout
    r = gdbrun.Result(gdbrun.extract_json(out.stdout))
    assert addr in r.locks, "handle->mutex 0x%x not reported: %s" % (addr, [hex(a) for a in r.locks])
    lock = r.locks[addr]
    assert lock["kind"] == "gmutex" and lock["state"].startswith("locked"), lock
    assert r.waiter_lwps(addr) == waiters
    # no thread holds it: nobody may be named its owner
    assert lock["owner"]["lwp"] is None, lock
    assert [t["lwp"] for t in r.data["threads"] if lock["id"] in t["holds"]] == []
    text = gdbrun.extract_report(gdbrun.gdb(["janus-waitgraph"], exe=exe, core=core,
                                            hide_debug=True, extra=extra).stdout)
    assert text is not None
    if lock.get("leaked"):
        # only with positive evidence: every frame that could take it was read
        assert "every frame that could take it was analysed" in lock["owner"]["detail"], lock
    else:
        assert "leaked" not in text, text
        assert lock["owner"]["evidence"] == "unknown", lock
        # the threads that could hold it are listed, its waiter is not one of them
        assert lock["possible_owners"] and not set(lock["possible_owners"]) & set(lock["waiters"])
        assert any("--lock-log" in x for x in r.data["next_steps"]), r.data["next_steps"]
    assert "Found" not in text.splitlines()[0], text
    assert r.data["verdict_kind"] in ("hang", "undetermined"), r.data["verdict"]
    # no false role: "main" only for the first thread
    assert [t["lwp"] for t in r.data["threads"] if t["role"] == "main"] == [r.data["target"]["pid"]]
    assert any(x.startswith("No debug info for janus") for x in r.data["next_steps"]), \
        r.data["next_steps"]
    # frames named from log strings: each is the unstripped file's symbol there
    originals = {}
    for path in j.mapped_files():
        real = os.path.realpath(path)
        for c in copies:
            if os.path.basename(c) == os.path.basename(real):
                originals[c] = real
    named = check_log_names(out.stdout, r, originals)
    print("frames named from log strings: %d, none false: %s" % (
        len(named), sorted(set(n[2] for n in named))))
