"""Using the commands the way people do: interactive gdb, help, and bad input."""

import os
import re
import subprocess

import pytest

import gdbrun


def one_line_error(res, needle):
    err = res.stderr.strip().splitlines()
    assert "Traceback" not in res.stdout + res.stderr
    matching = [l for l in err if needle in l]
    assert len(matching) == 1, res.stderr
    return matching[0]


@pytest.mark.usefixtures("build_dir")
@pytest.mark.parametrize("command", ["janus-waitgraph", "janus-locks"])
def test_no_process_is_one_clear_line(command):
    res = gdbrun.gdb([command])
    one_line_error(res, "No process or core file")


def test_executable_without_process(binaries):
    res = gdbrun.gdb(["janus-waitgraph --format json"], exe=binaries.debug)
    one_line_error(res, "No process or core file")
    assert "{" not in res.stdout


@pytest.mark.usefixtures("build_dir")
@pytest.mark.parametrize("args,needle", [
    ("--format xml", "invalid choice: 'xml'"),
    ("--bogus", "unrecognized arguments: --bogus"),
    ("--depth 0", "--depth must be between"),
    ("--depth many", "invalid int value"),
])
def test_bad_arguments_are_one_line(args, needle):
    res = gdbrun.gdb(["janus-waitgraph " + args])
    line = one_line_error(res, needle)
    assert "help janus-waitgraph" in line


@pytest.mark.usefixtures("build_dir")
def test_help_texts():
    res = gdbrun.gdb(["help janus-waitgraph", "help janus-locks"])
    out = res.stdout
    assert "Usage: janus-waitgraph [--format text|json|dot] [--all] [--depth N]" in out
    assert "Usage: janus-locks [--format text|json|dot] [--all] [--depth N]" in out
    assert "Found 1 deadlock" in out and "Examples:" in out


@pytest.mark.parametrize("fraction", [0.02, 0.3, 0.7])
def test_truncated_core_gives_partial_result_or_one_line(scenarios, binaries, tmp_path, fraction):
    core = scenarios.core("pthread_cycle")
    size = os.path.getsize(core)
    cut = str(tmp_path / "cut.core")
    with open(core, "rb") as src, open(cut, "wb") as dst:
        dst.write(src.read(int(size * fraction)))
    res = gdbrun.gdb(["janus-waitgraph"], exe=binaries.debug, core=cut, timeout=120)
    both = res.stdout + res.stderr
    assert "Traceback" not in both
    report = gdbrun.extract_report(res.stdout)
    if report is None:
        # gdb could not even load it: one clear line from us or from gdb
        assert "No process or core file" in res.stderr or "The target has no threads" in \
            res.stderr or res.stderr.strip(), both
    else:
        assert report.startswith(("Found", "No deadlock found"))


def test_interactive_session(scenarios, binaries):
    pexpect = pytest.importorskip("pexpect")
    sc = scenarios.get("pthread_cycle")
    child = pexpect.spawn("gdb", ["-nx", "-q", "-p", str(sc.pid)], encoding="utf-8",
                          timeout=60, dimensions=(24, 100))
    prompt = r"\(gdb\) "

    def run(cmd):
        child.sendline(cmd)
        out = []
        while True:
            i = child.expect([prompt, r"--Type <RET> for more, q to quit, c to continue without paging--"])
            out.append(child.before)
            if i == 0:
                return "".join(out)
            child.send("\r")  # the pager works: page on
    try:
        child.expect(prompt)
        assert "Traceback" not in run("source %s" % gdbrun.GDBINIT)
        assert "Traceback" not in run("source %s" % gdbrun.GDBINIT)
        assert "Usage: janus-waitgraph" in run("help janus-waitgraph")
        out = run("janus-waitgraph")
        assert "Found 1 deadlock (2 threads)" in out
        assert "(LWP %d)" % sc.truth.lwp("cycle_a") in out
        out = run("janus-locks")
        assert "locks held or waited for" in out
        out = run("janus-waitgraph --format yaml")
        assert "invalid choice" in out and "Traceback" not in out
        # the user's selected thread is unchanged by the analysis
        run("thread 2")
        run("janus-waitgraph --format json")
        assert "Current thread is 2 " in run("thread")
        run("detach")
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert sc.proc.poll() is None and sc.proc_state() in ("S", "R")


def test_thread_and_frame_selection_restored(scenarios):
    sc = scenarios.get("pthread_cycle")
    res = gdbrun.gdb(["thread 3", "frame 1", "janus-waitgraph", "janus-locks",
                      "python print('SEL', gdb.selected_thread().num, "
                      "gdb.selected_frame().older() is not None and gdb.selected_frame().name())"],
                     pid=sc.pid)
    sel = [l for l in res.stdout.splitlines() if l.startswith("SEL")]
    before = gdbrun.gdb(["thread 3", "frame 1",
                         "python print('SEL', gdb.selected_thread().num, "
                         "gdb.selected_frame().older() is not None and gdb.selected_frame().name())"],
                        pid=sc.pid)
    assert sel and sel == [l for l in before.stdout.splitlines() if l.startswith("SEL")]
    assert sel[0].startswith("SEL 3 ")


SETTINGS_SHOWN = ["show may-write-memory", "show may-call-functions", "show may-write-registers",
                  "show dcache line-size", "show dcache size", "show trust-readonly-sections",
                  "info mem"]


def _shown(res):
    """The output of SETTINGS_SHOWN (after the last marker line)."""
    return res.stdout.split("=MARK=")[-1].strip()


@pytest.mark.parametrize("user_setup", [[], ["mem 0x1000 0x2000 rw nocache", "set dcache size 100",
                                             "set trust-readonly-sections on",
                                             "set mem inaccessible-by-default off"]])
def test_gdb_settings_restored(scenarios, user_setup):
    """While a command runs janus-gdb changes gdb's memory settings (writes
    and calls refused, a cached read-only region, a larger dcache line);
    afterwards the user's settings, memory regions included, are back."""
    sc = scenarios.get("pthread_cycle")
    marks = ["echo =MARK=\\n"] + SETTINGS_SHOWN
    before = gdbrun.gdb(user_setup + marks, pid=sc.pid, load=False)
    after = gdbrun.gdb(user_setup + ["janus-waitgraph", "janus-locks --format json"] + marks,
                       pid=sc.pid)
    assert "Found 1 deadlock" in after.stdout
    assert "Traceback" not in after.stderr
    assert _shown(before) and _shown(after) == _shown(before)
    if user_setup:
        assert "0x0000000000001000" in _shown(after) and "user-defined" in _shown(after)
    else:
        assert "no memory regions" in _shown(after)


def test_user_memory_regions_hiding_memory_are_named(scenarios):
    """The user's own memory regions stay in force: with gdb's default
    inaccessible-by-default, memory outside them cannot be read, and the
    report says why instead of only showing unreadable locks."""
    sc = scenarios.get("pthread_cycle")
    res = gdbrun.gdb(["mem 0x1000 0x2000 rw nocache", "janus-waitgraph", "info mem"], pid=sc.pid)
    assert "Traceback" not in res.stderr
    assert "cannot be read" in res.stdout
    assert "warning: gdb's user-defined memory regions (`info mem`) make memory" in res.stdout
    assert "0x0000000000001000 0x0000000000002000 rw nocache" in res.stdout


def test_writes_refused_while_a_command_runs(scenarios, tmp_path):
    """Inside the command's settings a write to the target's memory fails in
    gdb, before reaching the target (the may-write-memory and read-only
    region both refuse it)."""
    sc = scenarios.get("pthread_cycle")
    probe = ("python\n"
             "import gdb\n"
             "from janus_gdb.gdbui import commands\n"
             "sp = int(gdb.parse_and_eval('$sp'))\n"
             "with commands.Settings():\n"
             "    mem = gdb.execute('info mem', to_string=True)\n"
             "    try:\n"
             "        gdb.selected_inferior().write_memory(sp, b'\\0')\n"
             "        print('WRITE allowed')\n"
             "    except gdb.error as exc:\n"
             "        print('WRITE refused:', exc)\n"
             "print('REGION', 'ro cache' in mem)\n"
             "end")
    script = str(tmp_path / "write_probe.gdb")
    with open(script, "w") as f:
        f.write(probe + "\n")
    res = gdbrun.gdb(["source " + script], pid=sc.pid)
    assert "WRITE refused" in res.stdout, res.stdout + res.stderr
    assert "REGION True" in res.stdout
    assert sc.proc.poll() is None


def test_python_36_syntax():
    """The package must parse on gdb's embedded Python 3.6 (no walrus, etc.)."""
    import ast
    root = os.path.join(gdbrun.ROOT, "janus_gdb")
    files = [os.path.join(d, f) for d, _, names in os.walk(root) for f in names
             if f.endswith(".py")]
    assert len(files) > 30                       # the sub-packages are walked too
    files.append(gdbrun.GDBINIT)
    for path in files:
        with open(path) as f:
            tree = ast.parse(f.read(), path, feature_version=(3, 6))
        for node in ast.walk(tree):
            assert not isinstance(node, getattr(ast, "NamedExpr", ())), path
    assert subprocess.run(["python3", "-c", "import sys"]).returncode == 0


def hide_core_memory(src, dst, addrs):
    """Copy core SRC to DST with the PT_LOAD segments holding ADDRS emptied
    (p_filesz = 0): gdb can then not read that memory."""
    import struct
    with open(src, "rb") as f:
        data = bytearray(f.read())
    assert data[:4] == b"\x7fELF" and data[4] == 2  # ELF64
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    hidden = 0
    for i in range(phnum):
        off = phoff + i * phentsize
        p_type, = struct.unpack_from("<I", data, off)
        vaddr, = struct.unpack_from("<Q", data, off + 0x10)
        memsz, = struct.unpack_from("<Q", data, off + 0x28)
        if p_type == 1 and any(vaddr <= a < vaddr + memsz for a in addrs):
            struct.pack_into("<Q", data, off + 0x20, 0)  # p_filesz
            hidden += 1
    assert hidden
    with open(dst, "wb") as f:
        f.write(data)


def test_unreadable_lock_memory_gives_partial_report(scenarios, binaries, tmp_path):
    sc = scenarios.get("pthread_cycle")
    t = sc.truth
    core = str(tmp_path / "hidden.core")
    hide_core_memory(scenarios.core("pthread_cycle"), core, [t.lock("m1"), t.lock("m2")])
    res = gdbrun.gdb(["janus-waitgraph", "janus-locks --format json"], exe=binaries.debug,
                     core=core)
    assert "Traceback" not in res.stdout + res.stderr
    text = gdbrun.extract_report(res.stdout)
    # the waits are still known from the registers; the owners are not
    # (gdb may fall back to the executable's file contents: then the words
    # read are garbage, which must be recognised as such, not trusted)
    # the verdict names what they are blocked behind: a lock it cannot decode
    assert text.startswith("No deadlock found: "), text
    assert re.search(r"^No deadlock found: \d+ threads? blocked behind M\d+ .*\(owner unknown: "
                     r"its memory is (corrupt|unreadable)\)", text), text
    assert "could not be decoded (unreadable or corrupt memory)" in text
    assert "warning: M" in text and "its owner is unknown" in text
    assert "no longer exists" not in text
    data = gdbrun.extract_json(res.stdout)
    by_addr = dict((l["address"], l) for l in data["locks"])
    for name in ("m1", "m2"):
        lock = by_addr[t.lock(name)]
        assert lock["state"] in ("unreadable", "corrupt") and lock["owner"]["lwp"] is None
    waiters = set(n for l in data["locks"] for n in l["waiters"])
    lwps = dict((th["num"], th["lwp"]) for th in data["threads"])
    assert {t.lwp("cycle_a"), t.lwp("cycle_b")} | t.lwps("waiter") <= set(lwps[n] for n in waiters)


def test_an_internal_error_is_one_line(scenarios):
    """A bug in janus-gdb (simulated by breaking a renderer) gives one line
    naming the place, never a Python traceback."""
    sc = scenarios.get("pthread_cycle")
    res = gdbrun.gdb(["python import janus_gdb.report.text as r; "
                      "r.verdict = lambda report: 1 / 0",
                      "janus-waitgraph"], pid=sc.pid)
    line = one_line_error(res, "internal error ZeroDivisionError")
    assert "janus-waitgraph: internal error ZeroDivisionError at " in line
    # a failure inside the package is placed by its path in the package
    # (report/text.py, not text.py: basenames repeat across sub-packages)
    res = gdbrun.gdb(["python import janus_gdb.report.text as r; r.escape = None",
                      "janus-waitgraph"], pid=sc.pid)
    line = one_line_error(res, "internal error TypeError")
    assert "janus-waitgraph: internal error TypeError at report/text.py:" in line, line
    assert "Traceback" not in res.stdout + res.stderr
