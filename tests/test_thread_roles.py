"""Roles and ids from facts, not from names (issue 11, point 6).

Before glib 2.86 a thread name of 16+ characters is not set at all: in
Janus "sessions requests", "timeout watchdog" and "videoroom handler" keep
the program's name, so a dozen threads are called "janus".  Only the
process's first thread (LWP == PID) is "main"; the others get their role
from their entry function or stack, or none.  An hloop thread's name keeps
15 characters ("hloop 371669259" for handle 3716692597610646): the handle
id comes from memory (the loop's argument, with debug info), else from the
name, marked as cut short when it may be.

The fixture is tests/fixtures/janus_scenarios.c's long_names scenario,
built as a program called "janus" (with debug info, and stripped and run
without libc/glib debug info), analysed live and from a gcore core.  Its
ground truth: the LWP of each role, handle->mutex, the long handle id.
Debian's packaged Janus is in tests/test_janus_debian.py.
"""

import os
import re
import shutil
import sys

import pytest

import gdbrun

sys.path.insert(0, gdbrun.ROOT)
from janus_gdb.janus import janusdb

SRC = os.path.join(gdbrun.FIXTURES, "janus_scenarios.c")
CFLAGS = ["-fno-omit-frame-pointer", "-fmacro-prefix-map=%s/=" % gdbrun.FIXTURES]
VARIANTS = ["debug", "stripped"]
MODES = ["live", "core"]
ELLIPSIS = "\u2026"


class LongNames(object):
    """The long_names scenario as "janus", with and without debug info."""

    def __init__(self, build_dir):
        self.exes = {}
        self.running = {}
        self.cores = {}
        self.outputs = {}
        base = os.path.join(build_dir, "long_names")
        os.makedirs(base)
        built = gdbrun.compile_c(SRC, os.path.join(base, "janus_scenarios"), defines=CFLAGS,
                                 strip=True)
        for variant, path in (("debug", built[:-len(".stripped")]), ("stripped", built)):
            d = os.path.join(base, variant)
            os.makedirs(d)
            self.exes[variant] = os.path.join(d, "janus")
            shutil.copy(path, self.exes[variant])
        self.dir = base

    def get(self, variant):
        if variant not in self.running:
            self.running[variant] = gdbrun.Scenario(self.exes[variant], ["long_names"])
        return self.running[variant]

    def core(self, variant):
        if variant not in self.cores:
            self.cores[variant] = self.get(variant).gcore(
                os.path.join(self.dir, "core.%s" % variant))
        return self.cores[variant]

    def run(self, variant, mode, command):
        key = (variant, mode, command)
        if key not in self.outputs:
            sc = self.get(variant)
            hide = variant == "stripped"
            if mode == "live":
                res = gdbrun.gdb([command], pid=sc.pid, hide_debug=hide)
            else:
                res = gdbrun.gdb([command], exe=self.exes[variant], core=self.core(variant),
                                 hide_debug=hide)
            both = res.stdout + res.stderr
            assert "Traceback" not in both and "Python Exception" not in both, both
            self.outputs[key] = res.stdout
        return self.outputs[key]

    def result(self, variant, mode):
        out = self.run(variant, mode, "janus-waitgraph --format json")
        return gdbrun.Result(gdbrun.extract_json(out)), self.get(variant).truth

    def text(self, variant, mode):
        out = self.run(variant, mode, "janus-waitgraph --all")
        text = gdbrun.extract_report(out)
        assert text is not None, out
        return text

    def close(self):
        gdbrun.close_fixtures(self.running.values(), self.cores.values())


@pytest.fixture(scope="module")
def long_names(build_dir):
    ln = LongNames(build_dir)
    yield ln
    ln.close()


def test_threads_are_named_like_the_program(long_names):
    """The premise, from /proc: glib left the long names unset."""
    sc = long_names.get("stripped")
    names = {}
    for tid in os.listdir("/proc/%d/task" % sc.pid):
        with open("/proc/%d/task/%s/comm" % (sc.pid, tid)) as f:
            names[int(tid)] = f.read().strip()
    for role in ("main", "requests", "handler", "watchdog"):
        assert names[sc.truth.lwp(role)] == "janus", (role, names)
    long_id = sc.truth.info["long_handle"][0]
    assert names[sc.truth.lwp("long_hloop")] == ("hloop " + long_id)[:15]
    assert names[sc.truth.lwp("hloop")] == "hloop 424242"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_only_the_first_thread_is_main(long_names, variant, mode):
    r, truth = long_names.result(variant, mode)
    main = truth.lwp("main")
    assert r.data["target"]["pid"] == main
    assert r.by_lwp[main]["role"] == "main", r.by_lwp[main]
    others = [t for t in r.data["threads"] if t["lwp"] != main]
    assert len(others) >= 5   # glib may add a pool-spawner
    assert [t for t in others if t["role"] == "main"] == [], others
    # the request thread, named "janus", waits for the leaked handle->mutex
    req = r.by_lwp[truth.lwp("requests")]
    assert r.waiter_lwps(truth.lock("handle_mutex")) == {truth.lwp("requests")}
    if variant == "debug":
        assert req["role"] == "sessions requests", req
        assert r.by_lwp[truth.lwp("watchdog")]["role"] == "session watchdog"
        assert r.by_lwp[truth.lwp("handler")]["role"] == "videoroom handler"
    else:
        # nothing names its static entry function: no role rather than a false one
        assert req["role"] is None, req
    text = long_names.text(variant, mode)
    assert len(re.findall(r"\(LWP \d+\) main ", text)) == 1, text
    assert "(LWP %d) main " % main in text, text


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_handle_ids_come_from_memory_or_are_marked(long_names, variant, mode):
    r, truth = long_names.result(variant, mode)
    long_id = truth.info["long_handle"][0]
    assert len(long_id) == 16
    prefix = long_id[:9]
    loop = r.by_lwp[truth.lwp("long_hloop")]
    short = r.by_lwp[truth.lwp("hloop")]
    if variant == "debug":
        assert loop["role"] == "hloop" and loop["role_detail"] == "handle %s" % long_id, loop
        assert short["role"] == "hloop" and short["role_detail"] == "handle 424242", short
    elif mode == "live":
        # the name only: the id cut at 15 characters is marked, a short one is whole
        assert loop["role"] == "hloop", loop
        assert loop["role_detail"] == ("handle %s%s (from the thread name, truncated)"
                                       % (prefix, ELLIPSIS)), loop
        assert short["role_detail"] == "handle 424242 (from the thread name)", short
    else:
        # a core has no thread names and the stripped loop no symbol: nothing to say
        assert loop["role_detail"] is None and short["role_detail"] is None, (loop, short)
    text = long_names.text(variant, mode)
    # the 9-digit prefix is never shown as if it were the id
    for m in re.finditer(r"handle %s" % prefix, text):
        after = text[m.end():m.end() + 1]
        assert after in ("\u2026",) or (variant == "debug" and text[m.end():].startswith(
            long_id[9:])), text[m.start():m.end() + 40]
    for t in r.data["threads"]:
        detail = t["role_detail"] or ""
        assert not re.search(r"\b%s\b(?!%s)" % (prefix, ELLIPSIS), detail), t


@pytest.mark.parametrize("mode", MODES)
def test_header_says_inferred_only_when_inferred(long_names, mode):
    """Stripped, nothing is inferred: the header does not claim it."""
    text = long_names.text("stripped", mode)
    head = text.splitlines()[0]
    assert "[inferred:" not in text
    assert "GMutex: no owner recorded" in head and "owners inferred" not in head, head


# ---------------------------------------------------------------------------
# pure rules
# ---------------------------------------------------------------------------

def test_role_rules():
    # the program's name is no role; the first thread is main whatever its name
    assert janusdb.role_of(None, "janus") is None
    assert janusdb.role_of(None, "janus", is_main=True) == "main"
    assert janusdb.role_of("?? (0x1234)", "janus") is None
    assert janusdb.role_of("janus_transport_requests", "janus") == "sessions requests"
    assert janusdb.role_of(None, "hloop 371669259") == "hloop"
    # the request path on a stripped stack
    assert janusdb.role_from_stack([("janus_process_incoming_request", None),
                                    (None, None)]) == ("sessions requests", "from its stack")
    assert janusdb.role_from_stack([(None, None), ("janus_process_incoming_admin_request", None),
                                    ("janus_transport_task", None)])[0] == "request worker"
    # called from a library, or deeper than the entry: no claim
    assert janusdb.role_from_stack([("janus_process_incoming_request", None),
                                    (None, "libjanus_http.so")]) == (None, None)
    assert janusdb.role_from_stack([("janus_process_incoming_request", None), (None, None),
                                    (None, None)]) == (None, None)
    assert janusdb.role_from_stack([(None, None)]) == (None, None)


def test_handle_from_name():
    assert janusdb.handle_from_name("hloop 371669259") == (
        "handle 371669259%s (from the thread name, truncated)" % ELLIPSIS)
    assert janusdb.handle_from_name("hloop 42") == "handle 42 (from the thread name)"
    assert janusdb.handle_from_name("hloop x") is None
    assert janusdb.handle_from_name("janus") is None
    assert janusdb.handle_from_name(None) is None


def test_main_is_the_first_thread_unless_its_stack_says_otherwise():
    """build_report: LWP == PID is main (whatever its name); a thread named
    like the program is not; a stack that starts in start_thread is never
    main (a core without NT_PRPSINFO takes the first thread's LWP for PID)."""
    from janus_gdb.analysis import analyze
    from janus_gdb.model import FrameInfo, Snapshot

    class NoMemory(object):
        failures = 0

        def read(self, addr, size):
            return None

        def u32(self, addr):
            return None

        def i32(self, addr):
            return None

    def poll_snap(num, lwp, name, frames):
        return Snapshot(num, lwp, name, regs={"sysno": 7}, frames=frames)

    stripped_main = [FrameInfo(0, 0x10, "poll", lib="libc.so.6", system=True),
                     FrameInfo(1, 0x20, None)]
    thread_stack = [FrameInfo(0, 0x10, "poll", lib="libc.so.6", system=True),
                    FrameInfo(1, 0x20, None),
                    FrameInfo(2, 0x30, "start_thread", lib="libc.so.6", system=True)]
    snaps = [poll_snap(1, 100, "janus", list(stripped_main)),
             poll_snap(2, 101, "janus", list(thread_stack)),
             poll_snap(3, 102, "hloop 371669259", list(thread_stack))]
    r = analyze.build_report(snaps, "i386:x86-64", NoMemory(), {"kind": "live", "pid": 100}, [])
    roles = dict((t.lwp, (t.role, t.role_detail)) for t in r.threads)
    assert roles[100] == ("main", None)
    assert roles[101] == (None, None)
    assert roles[102] == ("hloop", "handle 371669259%s (from the thread name, truncated)"
                          % ELLIPSIS)
    # the PID taken from a thread that a thread starter created: not main
    r = analyze.build_report(snaps, "i386:x86-64", NoMemory(), {"kind": "core", "pid": 101}, [])
    assert [t.lwp for t in r.threads if t.role == "main"] == []
