"""Owners read from machine code: tests/fixtures/machinecode.c compiled -O2
(with the PLT and with -fno-plt), stripped, libc/glib debug info hidden.

The holders' frames have no line info, so the only evidence is their
machine code.  The expected offsets (the lock calls, the blocking call)
come from ``objdump -d`` of the unstripped binary; the lock addresses and
the threads' LWPs from what the fixture prints.  Live and on a core, JSON
and text.
"""

import os
import re
import subprocess

import pytest

import gdbrun
from test_json_schema import check_document

VARIANTS = {"plt": [], "noplt": ["-fno-plt"]}


class Build(object):
    def __init__(self, build_dir, variant):
        src = os.path.join(gdbrun.FIXTURES, "machinecode.c")
        out = os.path.join(build_dir, "machinecode_%s" % variant)
        self.debug = gdbrun.compile_c(src, out, defines=VARIANTS[variant])
        self.stripped = gdbrun.compile_c(src, out, defines=VARIANTS[variant], strip=True)
        self.module = os.path.basename(self.stripped)
        self.calls = function_calls(self.debug)


def function_calls(exe):
    """{function: [(address, callee text)]} of the calls in EXE's functions, from objdump."""
    if not gdbrun.have("objdump"):
        pytest.skip("objdump is not installed")
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", exe], stdout=subprocess.PIPE,
                          universal_newlines=True, check=True).stdout
    out = {}
    func = None
    for line in text.splitlines():
        m = re.match(r"^[0-9a-f]+ <([^>]+)>:$", line)
        if m:
            func = m.group(1)
            out[func] = []
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+call\S*\s+(.*)$", line)
        if m and func:
            out[func].append((int(m.group(1), 16), m.group(2)))
    return out


def call_at(build, func, callee):
    """Addresses of FUNC's calls of CALLEE (through the PLT, the GOT or direct)."""
    return [a for a, text in build.calls[func]
            if re.search(r"<%s(@plt|@Base)?>" % re.escape(callee), text)]


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def hung(request, build_dir):
    b = Build(build_dir, request.param)
    sc = gdbrun.Scenario(b.stripped, [])
    core = sc.gcore(os.path.join(build_dir, "core.machinecode_%s" % request.param))
    yield b, sc, core
    sc.kill()
    if os.path.exists(core):
        os.unlink(core)


def analyze(hung, mode, command):
    b, sc, core = hung
    if mode == "live":
        out = gdbrun.gdb([command], pid=sc.pid, hide_debug=True)
    else:
        out = gdbrun.gdb([command], exe=b.stripped, core=core, hide_debug=True)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    return out


def expected_detail(b, func, lock_call, addr):
    """The evidence the holder's frame in FUNC must give for the lock at ADDR."""
    (park,) = call_at(b, func, "park")
    (lock,) = call_at(b, func, lock_call)
    assert lock < park
    return re.compile(
        r"^from machine code: %s\+0x%x \(frame #\d+\) calls %s\(0x%x\) at \+0x%x, " % (
            re.escape(b.module), park, lock_call, addr, lock))


@pytest.mark.parametrize("mode", ["live", "core"])
def test_owners_from_machine_code_json(hung, mode):
    b, sc, core = hung
    t = sc.truth
    out = analyze(hung, mode, "janus-waitgraph --format json")
    r = gdbrun.Result(check_document(gdbrun.extract_json(out.stdout), "janus-waitgraph"))
    assert r.data["verdict"].startswith("No deadlock found"), r.data["verdict"]
    # the global GMutex (RIP-relative) and the heap object's (callee-saved base)
    for name, func, call, holder in (("g_lock", "hold_both", "g_mutex_lock", "holder"),
                                     ("obj_m", "hold_both", "g_mutex_lock", "holder"),
                                     ("try_lock", "hold_try", "g_mutex_trylock", "tryholder"),
                                     ("br_lock", "hold_branch", "g_mutex_lock", "brancher")):
        addr = t.lock(name)
        assert addr in r.locks, (name, [hex(a) for a in r.locks])
        lock = r.locks[addr]
        assert lock["kind"] == "gmutex"
        assert not lock.get("leaked"), lock
        assert r.waiter_lwps(addr) == t.lwps("w_" + {"g_lock": "global", "obj_m": "obj",
                                                      "try_lock": "try",
                                                      "br_lock": "branch"}[name])
        owner = lock["owner"]
        assert owner["lwp"] == t.lwp(holder), (name, owner)
        assert owner["evidence"] == "inferred", owner
        assert owner["source"] == "machine-code", owner
        detail = owner["detail"]
        if name == "obj_m":
            # the second g_mutex_lock call of hold_both
            (park,) = call_at(b, func, "park")
            locks = call_at(b, func, call)
            assert len(locks) == 2, locks
            assert re.match(r"^from machine code: %s\+0x%x \(frame #\d+\) calls "
                            r"g_mutex_lock\(0x%x\) at \+0x%x, no unlock before the call at "
                            r"\+0x%x$" % (re.escape(b.module), park, addr, locks[1], park),
                            detail), detail
            continue
        if name == "g_lock":
            (park,) = call_at(b, func, "park")
            locks = call_at(b, func, call)
            assert re.match(r"^from machine code: %s\+0x%x \(frame #\d+\) calls "
                            r"g_mutex_lock\(0x%x\) at \+0x%x, no unlock before the call at "
                            r"\+0x%x$" % (re.escape(b.module), park, addr, locks[0], park),
                            detail), detail
            continue
        assert expected_detail(b, func, call, addr).match(detail), detail
        if name == "try_lock":
            assert "by a trylock" in detail, detail
        else:
            # unlocked on one branch that joins the other before park()
            assert "held only on some paths" in detail and "no unlock" not in detail, detail


@pytest.mark.parametrize("mode", ["live", "core"])
def test_owners_from_machine_code_text(hung, mode):
    b, sc, core = hung
    out = analyze(hung, mode, "janus-waitgraph")
    text = gdbrun.extract_report(out.stdout)
    assert text is not None, out.stdout
    assert "leaked" not in text, text
    (park,) = call_at(b, "hold_both", "park")
    holder = re.search(r"^Blocked behind (T\d+) \(LWP %d\)" % sc.truth.lwp("holder"), text,
                       re.M)
    assert holder, text
    line = "[inferred: from machine code: %s+0x%x (frame #" % (b.module, park)
    assert text.count(line) == 2, text   # g_lock and obj_m
    assert "no unlock before the call at +0x%x]" % park in text, text


def test_eh_frame_bounds_match_the_symbol_table(build_dir, tmp_path):
    """elffile's .eh_frame function ranges of the stripped file start where the
    unstripped file's symbols say the functions start."""
    import sys
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(gdbrun.FIXTURES))))
    from janus_gdb.target import elffile
    b = Build(str(tmp_path), "noplt")
    syms = subprocess.run(["readelf", "-sW", b.debug], stdout=subprocess.PIPE,
                          universal_newlines=True, check=True).stdout
    elf = elffile.load(b.stripped)
    assert elf is not None
    starts = {}
    for line in syms.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[3] == "FUNC" and parts[7] in (
                "hold_both", "hold_try", "hold_branch", "park", "wait_on"):
            starts[parts[7]] = (int(parts[1], 16), int(parts[2], 0))
    assert len(starts) == 5, starts
    for name, (start, size) in starts.items():
        fde = elf.fde_at(start + size - 1)
        assert fde is not None and fde.start == start and fde.entry, (name, fde)
    # the GOT slot of every lock function is known without symbols
    assert set(["g_mutex_lock", "g_mutex_unlock", "g_mutex_trylock"]) <= set(elf.got.values())


def test_debug_info_without_the_source_file(tmp_path):
    """Line info but the C file is gone (a dbgsym package without sources):
    the frames are read from their machine code instead."""
    import shutil
    for name in ("machinecode.c", "fixture_io.h"):
        shutil.copy(os.path.join(gdbrun.FIXTURES, name), str(tmp_path))
    src = os.path.join(str(tmp_path), "machinecode.c")
    exe = gdbrun.compile_c(src, os.path.join(str(tmp_path), "machinecode_nosrc"))
    os.unlink(src)
    sc = gdbrun.Scenario(exe, [])
    try:
        out = gdbrun.gdb(["janus-waitgraph --format json"], pid=sc.pid, hide_debug=True)
    finally:
        sc.kill()
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    r = gdbrun.Result(gdbrun.extract_json(out.stdout))
    calls = function_calls(exe)
    (park,) = [a for a, text in calls["hold_both"] if "<park>" in text]
    for name in ("g_lock", "obj_m"):
        owner = r.locks[sc.truth.lock(name)]["owner"]
        assert owner["lwp"] == sc.truth.lwp("holder"), owner
        assert owner["source"] == "machine-code", owner
        assert owner["detail"].startswith("from machine code: machinecode_nosrc+0x%x (frame #"
                                          % park), owner
        assert "in hold_both" in owner["detail"], owner
        if name == "g_lock":   # with symbols the lock is named
            assert "calls g_mutex_lock(&g_lock) at +0x" in owner["detail"], owner


@pytest.fixture(scope="module")
def leak_build(build_dir):
    d = os.path.join(build_dir, "mc-leak")
    if not os.path.isdir(d):
        os.makedirs(d)
    return Build(d, "plt")


@pytest.mark.parametrize("mode", ["live", "core"])
def test_leak_proven_from_machine_code(leak_build, mode, tmp_path):
    """leak_it() returned holding leak_lock and its thread ended; every frame
    of every live thread was read from its machine code (the local functions
    they called take no lock): the lock is probably leaked."""
    sc = gdbrun.Scenario(leak_build.stripped, ["leak"])
    try:
        core = sc.gcore(str(tmp_path / "core")) if mode == "core" else None
        out = analyze((leak_build, sc, core), mode, "janus-waitgraph --format json")
    finally:
        sc.kill()
    r = gdbrun.Result(check_document(gdbrun.extract_json(out.stdout), "janus-waitgraph"))
    lock = r.locks[sc.truth.lock("leak_lock")]
    assert sc.truth.lwp("leaker") not in r.by_lwp
    assert r.waiter_lwps(sc.truth.lock("leak_lock")) == sc.truth.lwps("w_leak")
    assert lock["leaked"] is True and lock["owner"]["lwp"] is None, lock


@pytest.mark.parametrize("mode", ["live", "core"])
def test_lock_wrapper_is_no_leak(leak_build, mode, tmp_path):
    """take_lock() returned holding wrap_lock to a caller that still runs:
    the caller's machine code cannot show what take_lock did, so nothing is
    called leaked and the owner stays unknown."""
    sc = gdbrun.Scenario(leak_build.stripped, ["wrap"])
    try:
        core = sc.gcore(str(tmp_path / "core")) if mode == "core" else None
        out = analyze((leak_build, sc, core), mode, "janus-waitgraph --format json")
    finally:
        sc.kill()
    r = gdbrun.Result(check_document(gdbrun.extract_json(out.stdout), "janus-waitgraph"))
    lock = r.locks[sc.truth.lock("wrap_lock")]
    assert not lock["leaked"], lock
    assert lock["owner"]["lwp"] in (None, sc.truth.lwp("wrapped")), lock
    assert lock["owner"]["evidence"] != "exact"
    if lock["owner"]["lwp"] is None:
        # owner unknown: the thread that holds it is among the candidates
        assert lock["owner"]["evidence"] == "unknown", lock
        assert r.by_lwp[sc.truth.lwp("wrapped")]["num"] in lock["possible_owners"], lock
        assert "candidates: " in lock["owner"]["detail"], lock


def test_intel_disassembly_is_not_read_and_says_so(hung):
    b, sc, core = hung
    out = gdbrun.gdb(["set disassembly-flavor intel", "janus-waitgraph --format json"],
                     exe=b.stripped, core=core, hide_debug=True)
    assert "Traceback" not in out.stdout + out.stderr
    r = gdbrun.Result(gdbrun.extract_json(out.stdout))
    lock = r.locks[sc.truth.lock("g_lock")]
    assert lock["owner"]["lwp"] is None and not lock["leaked"], lock
    # owner unknown, the holder among the candidates, its waiters not
    assert r.by_lwp[sc.truth.lwp("holder")]["num"] in lock["possible_owners"], lock
    assert not set(lock["possible_owners"]) & set(lock["waiters"]), lock
    assert any("not analysed" in w and "intel" in w for w in r.data["warnings"]), \
        r.data["warnings"]
