"""Bad input, part 2: targets that are wrong, missing, vanishing or hostile.

Each case must end, within a stated time, in either one clear line or a
(partial) report with warnings, never a Python traceback:

- a core opened with the wrong executable (another fixture, /bin/sleep);
- a core opened without any executable (``gdb -c CORE``);
- a program that is not Janus at all (``sleep``), live and from its core:
  no deadlock, no Janus names made up;
- a PID that does not exist, in gdb and through the command-line tool;
- a target SIGKILLed while the commands run on it;
- tests/fixtures/hostile.c: a Janus-shaped hang whose memory is corrupted
  while its threads wait (garbage lock words, objects pointing at
  themselves, unmapped and kernel memory, looping and garbage-sized hash
  tables, a looping GList, a 1 MB display name, names full of terminal
  escapes, BEL, NUL, C1 controls, bidi overrides and invalid UTF-8, a
  thread name that is not UTF-8), built
  with GMutex and with pthread mutexes, analysed live and from a core, in
  text, JSON and DOT;
- its one legitimate non-ASCII name ("Zoë Û", whose UTF-8 holds the byte
  0x9b, CSI to an 8-bit terminal): printed as it is when gdb's host charset
  is UTF-8, escaped (and no byte >= 0x80 at all) when it is not, in gdb and
  through the command-line tool started in the C locale.

Already covered elsewhere: a truncated core, no process, unreadable lock
memory and an internal error (tests/test_cli.py); a lock wait 10,000 frames
deep (tests/test_engine.py::test_deep_recursion_is_bounded_by_depth).
"""

import json
import os
import re
import signal
import subprocess
import time
import unicodedata

import pytest

import gdbrun
import schema_check

BOUND = 90            # seconds any one gdb run may take here (2 shared CPUs)
HOSTILE_SRC = os.path.join(gdbrun.FIXTURES, "hostile.c")
VARIANTS = ["gmutex", "pthread"]
MODES = ["live", "core"]
SCHEMA_PATH = os.path.join(gdbrun.ROOT, "docs", "janus-gdb.schema.json")
# bytes that must never reach a terminal from the text report (a lone 0x9b
# is not valid UTF-8: decoding strictly catches it, see terminal_text)
RAW_CONTROLS = [b"\x1b", b"\x07", b"\x00", b"\xc2\x9b",
                b"\xe2\x80\xae", b"\xe2\x81\xa6"]   # C1 CSI, U+202E, U+2066
JANUS_WORDS = ["participant->", "handle->", "room->", "session->", "rooms_mutex",
               "sessions_mutex", "publisher ", "videoroom", "hloop"]


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

def gdb_bytes(commands, pid=None, exe=None, core=None, timeout=BOUND, env=None, extra=()):
    """gdb in batch with janus-gdb loaded, stdout and stderr as bytes:
    (CompletedProcess, seconds taken)."""
    cmd = gdbrun.gdb_argv(commands, pid=pid, exe=exe, core=core, extra=extra)
    start = time.time()
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                         stdin=subprocess.DEVNULL, env=env)
    return res, time.time() - start


def locale_env(**set_vars):
    """This environment without any locale variable, plus SET_VARS."""
    env = dict((k, v) for k, v in os.environ.items()
               if not k.startswith("LC_") and k not in ("LANG", "LANGUAGE", "PYTHONUTF8",
                                                        "PYTHONCOERCECLOCALE"))
    env.update(set_vars)
    return env


def terminal_text(raw):
    """RAW stdout decoded strictly as UTF-8 (in any host charset our output
    is valid UTF-8), after checking it holds no code point a terminal would
    act on: C0 controls but newline and tab, DEL, C1 controls (U+009B is
    CSI), Unicode format characters (bidi overrides U+202E, U+2066) and line
    or paragraph separators."""
    text = raw.decode("utf-8")      # strict: a lone 0x9b fails here
    for i, ch in enumerate(text):
        bad = ((ord(ch) < 0x20 and ch not in "\n\t") or 0x7F <= ord(ch) < 0xA0
               or unicodedata.category(ch) in ("Cf", "Zl", "Zp"))
        assert not bad, (hex(ord(ch)), text[max(0, i - 200):i + 50])
    return text


def text_of(res):
    out = res.stdout.decode("utf-8", "replace")
    err = res.stderr.decode("utf-8", "replace")
    return out, err


def no_traceback(out, err):
    both = out + err
    assert "Traceback" not in both, both[-4000:]
    assert "Python Exception" not in both, both[-4000:]


def report_or_one_line(out, err):
    """The verdict of a report, or None after checking the failure was said in
    one clear line."""
    no_traceback(out, err)
    report = gdbrun.extract_report(out)
    if report is not None:
        return report
    m = re.search(r"^(\d+ locks?|No lock is) held or waited for.*", out, re.M | re.S)  # janus-locks
    if m:
        return m.group(0)
    lines = [l for l in err.splitlines() if l.strip() and not l.startswith("warning:")]
    assert lines, (out, err)
    ours = [l for l in lines if "janus-waitgraph" in l or "No process or core file" in l
            or "janus-gdb" in l]
    assert len(ours) <= 1, err
    return None


def check_json(out):
    data = gdbrun.extract_json(out)
    with open(SCHEMA_PATH) as f:
        errors = schema_check.validate(data, json.load(f))
    assert errors == [], errors
    return data


def check_dot(out):
    lines = out.splitlines()
    starts = [i for i, l in enumerate(lines) if l.startswith("digraph ")]
    assert len(starts) == 1, out[-3000:]
    end = starts[0] + lines[starts[0]:].index("}")
    dot_text = "\n".join(lines[starts[0]:end + 1]) + "\n"
    for bad in ("\x1b", "\x07", "\x00"):
        assert bad not in dot_text
    if gdbrun.have("dot"):
        res = subprocess.run(["dot", "-Tsvg"], input=dot_text.encode("utf-8"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        assert res.returncode == 0, res.stderr.decode("utf-8", "replace")
        assert b"syntax error" not in res.stderr
    return dot_text


def make_core(pid, path):
    out = subprocess.run(gdbrun.in_root(["gdb", "-nx", "-batch", "-p", str(pid), "-ex", "gcore %s" % path]),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    if not os.path.exists(path):
        raise RuntimeError("gcore failed: %s" % out.stdout[-2000:])
    return path


# ---------------------------------------------------------------------------
# 1, 2: a core with the wrong executable, or none
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("which", ["other-fixture", "bin-sleep", "none"])
def test_core_with_wrong_or_no_executable(janus, binaries, which):
    """A Janus fixture's core opened with scenarios.c's binary, with /bin/sleep,
    or with no executable at all: a report (the waits still come from the
    registers) or one clear line, quickly."""
    core = janus.core("pli_inversion", "gmutex")
    exe = {"other-fixture": binaries.debug, "bin-sleep": "/bin/sleep", "none": None}[which]
    if exe is not None and not os.path.exists(exe):
        pytest.skip("%s is missing" % exe)
    for cmd in ("janus-waitgraph", "janus-waitgraph --format json", "janus-locks"):
        res, took = gdb_bytes([cmd], exe=exe, core=core)
        assert took < BOUND
        out, err = text_of(res)
        if cmd.endswith("json") and "{" in out.splitlines():
            no_traceback(out, err)
            check_json(out)
            continue
        report = report_or_one_line(out, err)
        if report is not None:
            assert report.startswith(("Found", "No deadlock found")) or " held or " in report
            # the report says the executable is wrong or missing, naming the
            # program the core records
            if exe is None:
                assert "warning: no executable is loaded (the core was made from" in out, out
            else:
                assert ("warning: the executable %s is not the program the core was made "
                        "from" % os.path.basename(exe)) in out, out
            assert "janus_scenarios" in out


# ---------------------------------------------------------------------------
# 3: not Janus at all
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sleeper(build_dir):
    proc = subprocess.Popen(["sleep", "100"], start_new_session=True)
    time.sleep(0.3)
    core = os.path.join(build_dir, "core.sleep")
    try:
        make_core(proc.pid, core)
        yield proc, core
    finally:
        proc.kill()
        proc.wait()
        if os.path.exists(core):
            os.unlink(core)


@pytest.mark.parametrize("mode", MODES)
def test_not_janus_says_no_deadlock_and_invents_nothing(sleeper, mode):
    proc, core = sleeper
    sleep_exe = os.path.realpath("/proc/%d/exe" % proc.pid)
    kw = {"pid": proc.pid} if mode == "live" else {"exe": sleep_exe, "core": core}
    res, took = gdb_bytes(["janus-waitgraph", "janus-locks", "janus-waitgraph --format json"],
                          **kw)
    assert took < BOUND
    out, err = text_of(res)
    no_traceback(out, err)
    report = gdbrun.extract_report(out)
    assert report is not None and report.startswith("No deadlock found"), out + err
    assert "Found" not in out
    for word in JANUS_WORDS:
        assert word not in out, word
    data = check_json(out)
    assert data["cycles"] == [] and data["locks"] == []
    assert proc.poll() is None   # left running


# ---------------------------------------------------------------------------
# 4: no such process
# ---------------------------------------------------------------------------

NO_PID = 999999


@pytest.mark.usefixtures("build_dir")
def test_nonexistent_pid_in_gdb():
    if os.path.exists("/proc/%d" % NO_PID):
        pytest.skip("PID %d exists here" % NO_PID)
    res, took = gdb_bytes(["janus-waitgraph"], pid=NO_PID, timeout=60)
    assert took < 60
    out, err = text_of(res)
    no_traceback(out, err)
    assert gdbrun.extract_report(out) is None
    ours = [l for l in err.splitlines() if "No process or core file" in l]
    assert len(ours) == 1, err


@pytest.mark.usefixtures("build_dir")
def test_nonexistent_pid_in_the_cli():
    if os.path.exists("/proc/%d" % NO_PID):
        pytest.skip("PID %d exists here" % NO_PID)
    start = time.time()
    res = subprocess.run(gdbrun.cli_argv(["--pid", str(NO_PID)], gdbrun.ROOT),
                         cwd=gdbrun.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, timeout=60)
    assert time.time() - start < 60
    assert res.returncode == 2
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert lines == ["janus-gdb: no process with PID %d" % NO_PID], res.stderr


# ---------------------------------------------------------------------------
# 5: the target dies while we look at it
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("trigger", ["attaching", "first-report", "0.5s"])
def test_target_killed_during_analysis(janus, tmp_path, trigger):
    """A many-threaded fixture SIGKILLed while gdb attaches to it, while the
    first of 40 janus-waitgraph commands prints its report, or after 0.5 s:
    every command gives a report or one clear line, gdb ends in bounded
    time, no traceback."""
    sc = gdbrun.Scenario(janus.exes["gmutex"], ["rooms_pileup"])
    marker = {"attaching": b"[New LWP", "first-report": b"{", "0.5s": None}[trigger]
    errpath = str(tmp_path / "gdb.stderr")
    try:
        cmd = ["gdb", "-nx", "-batch", "-iex", "set pagination off", "-p", str(sc.pid),
               "-x", gdbrun.GDBINIT]
        for i in range(40):
            cmd += ["-ex", "janus-waitgraph --all --depth 256" if i % 2 else
                    "janus-waitgraph --format json"]
        start = time.time()
        with open(errpath, "wb") as errf:
            gdb = subprocess.Popen(gdbrun.in_root(cmd), stdout=subprocess.PIPE, stderr=errf,
                                   stdin=subprocess.DEVNULL)
            try:
                lines = []
                if marker is None:
                    time.sleep(0.5)
                    os.killpg(sc.pid, signal.SIGKILL)
                for line in gdb.stdout:      # ends when gdb does (bounded below)
                    lines.append(line)
                    if marker is not None and line.startswith(marker) and sc.proc.poll() is None:
                        os.killpg(sc.pid, signal.SIGKILL)
                    if time.time() - start > BOUND:
                        raise AssertionError("gdb still running after %ds" % BOUND)
                gdb.wait(timeout=BOUND)
            finally:
                if gdb.poll() is None:
                    gdb.kill()
                    gdb.wait()
        assert time.time() - start < BOUND
        assert sc.proc.poll() is not None, "the target was not killed"
    finally:
        sc.kill()
    out = b"".join(lines).decode("utf-8", "replace")
    with open(errpath, "rb") as f:
        err = f.read().decode("utf-8", "replace")
    no_traceback(out, err)
    # after the kill: at most one line per command, never a cascade of errors
    assert len([l for l in err.splitlines() if l.strip()]) <= 3 * 40 + 10, err[-3000:]
    for l in err.splitlines():
        assert len(l) < 500, l
    if trigger != "0.5s":
        # killed before the last of the 40 commands ran: the reports after
        # the kill say so instead of passing gdb's stale view off as the state
        assert "stopped existing during the analysis" in out, out[-3000:] + err[-3000:]


# ---------------------------------------------------------------------------
# 6: hostile.c
# ---------------------------------------------------------------------------

class Hostile(object):
    """Both builds of hostile.c, running and cored, once per module."""

    def __init__(self, build_dir):
        self.dir = build_dir
        self.exes = {}
        self.running = {}
        self.cores = {}
        for variant in VARIANTS:
            out = os.path.join(build_dir, "hostile_%s" % variant)
            defines = ["-fno-omit-frame-pointer"]
            if variant == "pthread":
                defines.append("-DUSE_PTHREAD_MUTEX")
            self.exes[variant] = gdbrun.compile_c(HOSTILE_SRC, out, defines=defines)

    def get(self, variant):
        if variant not in self.running:
            self.running[variant] = gdbrun.Scenario(self.exes[variant], [])
        return self.running[variant]

    def core(self, variant):
        if variant not in self.cores:
            self.cores[variant] = self.get(variant).gcore(
                os.path.join(self.dir, "core.hostile.%s" % variant))
        return self.cores[variant]

    def run(self, variant, mode, commands):
        sc = self.get(variant)
        if mode == "live":
            return gdb_bytes(commands, pid=sc.pid)
        return gdb_bytes(commands, exe=self.exes[variant], core=self.core(variant))

    def close(self):
        gdbrun.close_fixtures(self.running.values(), self.cores.values())


@pytest.fixture(scope="module")
def hostile(build_dir):
    h = Hostile(build_dir)
    yield h
    h.close()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_hostile_text_is_escaped_and_cut(hostile, variant, mode):
    res, took = hostile.run(variant, mode, ["janus-waitgraph", "janus-locks",
                                            "janus-waitgraph --all"])
    assert took < BOUND
    out, err = text_of(res)
    no_traceback(out, err)
    for raw in RAW_CONTROLS:
        assert raw not in res.stdout, (raw, out[-3000:])
    terminal_text(res.stdout)
    report = gdbrun.extract_report(out)
    assert report is not None and report.startswith("Found 1 deadlock (2 threads)"), out
    # the names are there, escaped and cut
    assert '"\\x1b[31m\\x1b]0;pwned\\x07\\u202eevil\\u2066' in out
    assert "after-nul" not in out                 # a C string ends at its NUL
    if mode == "live":      # a thread name that is not UTF-8 (cores carry no names)
        assert '"corrupt\\x9b\\xff" corrupter_thread' in out, out[-3000:]
    assert "A" * 64 + "..." in out and "A" * 200 not in out
    assert max(len(l) for l in out.splitlines()) < 2000
    # the garbage lock word is seen as such, with a warning
    truth = hostile.get(variant).truth
    assert "0x%x" % truth.lock("garbage_word") in out
    assert "corrupt" in out and "warning: M" in out
    # no lock made up from the type-confused tables
    assert "probably leaked" not in out


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_hostile_json_is_valid(hostile, variant, mode):
    res, took = hostile.run(variant, mode, ["janus-waitgraph --format json"])
    assert took < BOUND
    out, err = text_of(res)
    no_traceback(out, err)
    data = check_json(out)
    r = gdbrun.Result(data)
    t = hostile.get(variant).truth
    assert r.cycle_lwp_sets() == [{t.lwp("requests"), t.lwp("handler")}]
    garbage = r.locks[t.lock("garbage_word")]
    assert garbage["state"] == "corrupt" and garbage["owner"]["lwp"] is None, garbage
    for name in ("p_streams", "self_streams", "bad_handle", "big_streams"):
        assert r.owner_lwp(t.lock(name)) == t.lwp("handler"), r.locks[t.lock(name)]
    assert "publisher 5678" in r.locks[t.lock("p_streams")]["name"]
    assert len(r.locks[t.lock("big_streams")]["name"]) < 5000
    for lock in data["locks"]:
        assert lock["address"] in t.locks.values(), lock   # nothing invented
    assert data["warnings"], data


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_hostile_dot_is_valid(hostile, variant, mode):
    res, took = hostile.run(variant, mode, ["janus-waitgraph --format dot",
                                            "janus-locks --format dot"])
    assert took < BOUND
    out, err = text_of(res)
    no_traceback(out, err)
    first, _, second = out.partition("\n}\n")
    check_dot(first + "\n}\n")
    check_dot(second)


# ---------------------------------------------------------------------------
# 7: a legitimate non-ASCII name, and the user's character set
# ---------------------------------------------------------------------------

def unicode_room(truth):
    """(room id, name) of hostile.c's room with a non-ASCII name."""
    room_id, hexname = truth.info["unicode_room"]
    return int(room_id), bytes.fromhex(hexname).decode("utf-8")


def ascii_escaped(name):
    """NAME as printed for a terminal that is not UTF-8 (every non-ASCII
    character as \\uXXXX; the name has no control character)."""
    return "".join(c if ord(c) < 0x80 else "\\u%04x" % ord(c) for c in name)


# (LC_ALL, variant, mode, gdb.host_charset hidden as in gdb < 12)
CHARSET_CASES = [("C.UTF-8", "pthread", "live", False),
                 ("C", "pthread", "live", False),
                 ("C", "gmutex", "core", True)]


@pytest.mark.parametrize("lc_all,variant,mode,old_gdb", CHARSET_CASES)
def test_non_ascii_name_follows_gdb_host_charset(hostile, lc_all, variant, mode, old_gdb):
    """Room 66 "Zoë Û": as it is in text, DOT and `bt` when gdb's host charset
    is UTF-8; escaped, and not one byte >= 0x80 in stdout, when it is ASCII
    (LC_ALL=C), whether gdb has gdb.host_charset() or only `show
    host-charset`.  JSON keeps the name (as \\u escapes: ASCII either way)."""
    t = hostile.get(variant).truth
    room_id, name = unicode_room(t)
    assert any(ord(c) >= 0x80 for c in name) and "\xdb" in name     # C3 9B: holds 0x9b
    # (gdb before 12 has none to hide)
    extra = ["-iex", "python gdb.__dict__.pop('host_charset', None)"] if old_gdb else []
    sc = hostile.get(variant)
    kw = ({"pid": sc.pid} if mode == "live"
          else {"exe": hostile.exes[variant], "core": hostile.core(variant)})
    res, took = gdb_bytes(["show host-charset", "python print('HAS', hasattr(gdb, 'host_charset'))",
                           "janus-waitgraph", "janus-locks", "janus-waitgraph --format dot",
                           "thread apply all -q bt", "janus-waitgraph --format json"],
                          env=locale_env(LC_ALL=lc_all), extra=extra, **kw)
    assert took < BOUND
    out = terminal_text(res.stdout)
    no_traceback(out, res.stderr.decode("utf-8", "replace"))
    assert ("HAS False" in out) if old_gdb else ("HAS " in out)
    utf8 = lc_all != "C"
    if utf8 and "currently UTF-8" not in out:
        pytest.skip("no %s locale on this machine" % lc_all)
    assert ("currently UTF-8" in out) == utf8, out[:2000]
    shown = name if utf8 else ascii_escaped(name)
    assert "\\u00eb \\u00db" in ascii_escaped(name)
    if not utf8:
        assert max(res.stdout) < 0x80
        assert name not in out
    # text: janus-waitgraph (the waiter's lock) and janus-locks (the lock entry)
    entry = 'room->mutex of room %d "%s"' % (room_id, shown)
    assert out.count(entry) >= 2, out[-4000:]
    # DOT: the label (wrapped at spaces, backslashes quoted)
    dot_label = 'of room %d \\"%s' % (room_id, shown.split(" ")[0].replace("\\", "\\\\"))
    assert dot_label in out, out
    # bt: the annotation of the thread that waits for the room's mutex
    assert re.search(r"^#\d+ .*janus_videoroom_room_destroy \[waits for M\d+ %s"
                     % re.escape(entry), out, re.M), out[-4000:]
    # JSON: the name as read, whatever the terminal
    data = check_json(out)
    lock = gdbrun.Result(data).locks[t.lock("garbage_word")]
    assert name in lock["name"], lock


@pytest.mark.parametrize("lang", ["C", "C.UTF-8"])
def test_cli_non_ascii_name_follows_the_users_locale(hostile, lang):
    """`python3 -m janus_gdb CORE` started with LANG=C (and no LC_*): the
    Python of the tool makes its own LC_CTYPE C.UTF-8 (PEP 538), but the gdb
    it starts must still see the user's C locale: the name is escaped and the
    report is ASCII.  With LANG=C.UTF-8 the name is printed as it is."""
    variant = "pthread"
    room_id, name = unicode_room(hostile.get(variant).truth)
    res = subprocess.run(gdbrun.cli_argv([hostile.core(variant), "--exe", hostile.exes[variant]],
                                         gdbrun.ROOT),
                         cwd=gdbrun.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=locale_env(LANG=lang), timeout=BOUND)
    assert res.returncode == 1, res.stderr
    out = terminal_text(res.stdout)
    assert out.startswith("Found 1 deadlock"), out[:2000]
    utf8 = lang != "C"
    if utf8 and name not in out and max(res.stdout) < 0x80:
        pytest.skip("no %s locale on this machine" % lang)
    shown = name if utf8 else ascii_escaped(name)
    assert 'room->mutex of room %d "%s"' % (room_id, shown) in out, out[-3000:]
    if not utf8:
        assert max(res.stdout) < 0x80
