"""Frames of a stripped program named from their functions' own log calls:
tests/fixtures/lognames.c compiled -O2 (plain, and with _FORTIFY_SOURCE:
__snprintf_chk with stack arguments) and stripped, libc debug info hidden,
live and on a core, JSON and text.

The truth: the fixture prints its functions' runtime addresses; ``nm`` of
the unstripped build gives every function's range, so each frame's true
function is known.  Every name given must be that function (no false
name); the function that logs as itself is named, the one with an inlined
logging helper and the one whose helper is inlined twice are not (their log
strings are listed), and functions that do not log get nothing.
"""

import os
import subprocess

import pytest

import gdbrun
from test_json_schema import check_document


# fortified: snprintf becomes __snprintf_chk, __FUNCTION__ and __LINE__ go on the stack
VARIANTS = {"plain": [], "fortify": ["-D_FORTIFY_SOURCE=2"]}


class Build(object):
    def __init__(self, build_dir, variant):
        src = os.path.join(gdbrun.FIXTURES, "lognames.c")
        out = os.path.join(build_dir, "lognames_%s" % variant)
        self.debug = gdbrun.compile_c(src, out, defines=VARIANTS[variant])
        self.stripped = gdbrun.compile_c(src, out, defines=VARIANTS[variant], strip=True)
        self.variant = variant
        if not gdbrun.have("nm"):
            pytest.skip("nm is not installed")
        text = subprocess.run(["nm", "-S", "--defined-only", self.debug],
                              stdout=subprocess.PIPE, universal_newlines=True,
                              check=True).stdout
        self.functions = []     # (start, end, name), file addresses
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 4 and parts[2] in "tT":
                start = int(parts[0], 16)
                self.functions.append((start, start + int(parts[1], 16), parts[3]))
        self.by_name = dict((f[2], f) for f in self.functions)


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def hung(request, build_dir):
    b = Build(build_dir, request.param)
    if request.param == "fortify" and gdbrun.have("objdump"):
        text = subprocess.run(["objdump", "-d", b.debug], stdout=subprocess.PIPE,
                              universal_newlines=True, check=True).stdout
        assert "<__snprintf_chk@plt>" in text
    sc = gdbrun.Scenario(b.stripped, [])
    core = sc.gcore(os.path.join(build_dir, "core.lognames_%s" % request.param))
    printed = dict((f[1], int(f[2], 16)) for f in sc.truth.facts
                   if f[0] == "fn" and len(f) == 3)
    assert "named_worker" in printed, sc.truth.facts
    bias = printed["named_worker"] - b.by_name["named_worker"][0]
    for name, addr in printed.items():       # the nm ranges agree with the fixture
        assert b.by_name[name][0] + bias == addr, name
    yield b, sc, core, bias
    sc.kill()
    if os.path.exists(core):
        os.unlink(core)


def run(hung, mode, command):
    b, sc, core, _ = hung
    if mode == "live":
        out = gdbrun.gdb([command], pid=sc.pid, hide_debug=True)
    else:
        out = gdbrun.gdb([command], exe=b.stripped, core=core, hide_debug=True)
    assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    return out


def true_function(hung, frame):
    """The function of the executable FRAME is in (a caller's pc is its return
    address: the call is the byte before), or None."""
    b, _, _, bias = hung
    if frame["lib"] is not None:
        return None
    pc = frame["pc"] - bias - (1 if frame["level"] > 0 else 0)
    for start, end, name in b.functions:
        if start <= pc < end:
            return name
    return None


def frames_by_function(hung, thread):
    return dict((true_function(hung, f), f) for f in thread["frames"]
                if true_function(hung, f))


@pytest.mark.parametrize("mode", ["live", "core"])
def test_names_from_log_strings_json(hung, mode):
    b, sc, core, bias = hung
    out = run(hung, mode, "janus-waitgraph --all --format json")
    r = gdbrun.Result(check_document(gdbrun.extract_json(out.stdout), "janus-waitgraph"))
    named = 0
    for t in r.data["threads"]:
        for f in t["frames"]:
            if f.get("log_name"):
                # no false name: every name given is the frame's true function
                assert f["function"] is None, f
                assert f["log_name"] == true_function(hung, f), (f, true_function(hung, f))
                named += 1
            assert not (f.get("log_name") and f.get("log_names")), f
    assert named == 1, named
    fr = frames_by_function(hung, r.by_lwp[sc.truth.lwp("named")])
    assert fr["named_worker"].get("log_name") == "named_worker", fr
    for fn in ("park", "named_main"):       # no log call: nothing
        assert "log_name" not in fr[fn] and "log_names" not in fr[fn], fr[fn]
    # logs as itself and as the helper inlined into it: no name, both listed
    fr = frames_by_function(hung, r.by_lwp[sc.truth.lwp("mixed")])
    assert "log_name" not in fr["mixed_worker"], fr
    assert fr["mixed_worker"].get("log_names") == ["helper_logs", "mixed_worker"], fr
    # logs only through a helper also inlined into twice_b: not named after it
    fr = frames_by_function(hung, r.by_lwp[sc.truth.lwp("twice")])
    assert "log_name" not in fr["twice_a"], fr
    assert fr["twice_a"].get("log_names") == ["helper_twice"], fr
    # the role never comes from a log string
    assert r.by_lwp[sc.truth.lwp("named")]["role"] != "named_worker"


@pytest.mark.parametrize("mode", ["live", "core"])
def test_names_from_log_strings_text(hung, mode):
    b, sc, core, bias = hung
    out = run(hung, mode, "janus-waitgraph --all")
    text = gdbrun.extract_report(out.stdout)
    assert text is not None, out.stdout
    r = gdbrun.Result(gdbrun.extract_json(run(hung, mode,
                                              "janus-waitgraph --all --format json").stdout))
    fr = frames_by_function(hung, r.by_lwp[sc.truth.lwp("named")])
    assert "named_worker? (0x%x) [named from its log string]" % fr["named_worker"]["pc"] \
        in text, text
    fr = frames_by_function(hung, r.by_lwp[sc.truth.lwp("mixed")])
    assert "?? (0x%x) [its log strings name helper_logs or mixed_worker]" % \
        fr["mixed_worker"]["pc"] in text, text
    assert "?? (0x%x) [its log strings name helper_twice]" % \
        frames_by_function(hung, r.by_lwp[sc.truth.lwp("twice")])["twice_a"]["pc"] in text
    assert "park?" not in text and "twice_a" not in text, text


# --- the rule on every function of real Janus builds -----------------------------------

def survey(paths):
    """{(path, function start): (name or None, [candidates])} of logname_survey.py."""
    env = dict(os.environ, LOGNAME_FILES=":".join(paths))
    out = subprocess.run(["gdb", "-nx", "-batch", "-ex", "source %s" % os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "logname_survey.py")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, env=env,
        timeout=300)
    assert "Traceback" not in out.stdout + out.stderr, out.stderr
    assert "logname-done" in out.stdout, out.stdout + out.stderr
    got = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0] == "logname":
            got[(parts[1], int(parts[2], 16))] = (
                None if parts[3] == "-" else parts[3],
                [] if parts[4] == "-" else parts[4].split(","))
    return got


def symbols(elf, dynamic=False):
    """{address: [names]} of ELF's function symbols (nm), and the set of names."""
    cmd = ["nm", "--defined-only"] + (["-D"] if dynamic else []) + [elf]
    text = subprocess.run(cmd, stdout=subprocess.PIPE, universal_newlines=True,
                          check=True).stdout
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwWi":
            out.setdefault(int(parts[0], 16), []).append(parts[2])
    return out


def test_every_name_true_on_a_janus_build(tmp_path):
    """Every function of Janus 1.1.2 (built here), stripped: each name the rule
    gives is the unstripped file's symbol there.  janus and VideoRoom: no
    false name.  NoSIP: a false name only of the documented kind (a
    function that exists only inlined, into a function that logs nothing of
    its own: evidence.md, Names from log strings)."""
    prefix = os.environ.get("JANUS_PREFIX")
    files = {"janus": "bin/janus",
             "videoroom": "lib/janus/plugins/libjanus_videoroom.so",
             "nosip": "lib/janus/plugins/libjanus_nosip.so"}
    if not prefix or not all(os.path.exists(os.path.join(prefix, f)) for f in files.values()):
        pytest.skip("no Janus build (JANUS_PREFIX)")
    if not gdbrun.have("nm") or not gdbrun.have("strip"):
        pytest.skip("nm or strip is not installed")
    stripped = {}
    for key, rel in files.items():
        stripped[key] = str(tmp_path / key)
        subprocess.run(["strip", "--strip-all", "-o", stripped[key],
                        os.path.join(prefix, rel)], check=True)
    got = survey(sorted(stripped.values()))
    report = {}
    for key, rel in files.items():
        syms = symbols(os.path.join(prefix, rel))
        all_names = set(n.split(".")[0] for names in syms.values() for n in names)
        named = false = 0
        for (path, start), (name, cands) in got.items():
            if path != stripped[key] or name is None:
                continue
            named += 1
            true = set(n.split(".")[0] for n in syms.get(start, []))
            if name in true:
                continue
            false += 1
            assert key == "nosip" and name not in all_names, (key, hex(start), true, name)
        report[key] = (named, false)
    print("named (false) per module: %s" % report)
    assert report["videoroom"][0] >= 20 and report["janus"][0] >= 50, report


def test_exported_names_agree_on_debian_janus():
    """Debian's packaged (stripped) Janus: wherever the rule names a function
    that has an exported symbol, the name is that symbol."""
    base = "/usr/lib/x86_64-linux-gnu/janus"
    paths = ["/usr/bin/janus"] + [os.path.join(base, d, f) for d, f in (
        ("plugins", "libjanus_videoroom.so"), ("plugins", "libjanus_audiobridge.so"),
        ("plugins", "libjanus_streaming.so"), ("transports", "libjanus_http.so"))]
    paths = [p for p in paths if os.path.exists(p)]
    if not paths or not gdbrun.have("nm"):
        pytest.skip("Debian's janus package is not installed")
    got = survey([os.path.realpath(p) for p in paths])
    checked = 0
    for p in paths:
        exported = symbols(os.path.realpath(p), dynamic=True)
        for (path, start), (name, cands) in got.items():
            if path == os.path.realpath(p) and name is not None and start in exported:
                assert name in exported[start], (p, hex(start), name, exported[start])
                checked += 1
    print("exported functions named from log strings, all agreeing: %d" % checked)
    assert checked >= 10, checked
