"""The static lock analysis (janus_gdb/csource/lockorder.py, ``janus-gdb
lockorder``) against C fixtures that state their own truth, and against the
real Janus 1.1.2 source tree.

Fixture markers (tests/fixtures/lockorder/*.c), read here, never restated:
- ``EXPECT: missing-unlock CLASS HOW`` on the line of the leaking exit;
- ``EXPECT: inversion CLASS CLASS...`` names the classes of one cycle
  (``file.c:name`` stands for the global class ``file.c: name``);
- ``EXPECT: single-thread FUNCTION CLASS CLASS...``: that cycle's orders all
  run only in the thread FUNCTION (started once): ranked last, and said so;
- ``EXPECT: none``: nothing may be reported.
Every finding on a fixture must match a marker and every marker a finding.
"""

import glob
import json
import os
import re
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from janus_gdb.csource import lockorder  # noqa: E402

FIXTURES = sorted(glob.glob(os.path.join(ROOT, "tests", "fixtures", "lockorder", "*.c")))
_EXPECT_RE = re.compile(r"EXPECT:\s*([\w-]+)((?:\s+[\w.:]+)*)")


def _cls(word):
    """Marker spelling of a class -> the analysis' spelling."""
    if ":" in word:
        f, name = word.split(":", 1)
        return "%s: %s" % (f, name)
    return word


def single_threads(path):
    """{frozenset(classes): thread function} of the single-thread markers."""
    out = {}
    with open(path) as f:
        for line in f:
            for m in _EXPECT_RE.finditer(line):
                if m.group(1) == "single-thread":
                    words = m.group(2).split()
                    out[frozenset(_cls(w) for w in words[1:])] = words[0]
    return out


def expectations(path):
    leaks, cycles, none = set(), set(), False
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            for m in _EXPECT_RE.finditer(line):
                kind, words = m.group(1), m.group(2).split()
                if kind == "missing-unlock":
                    leaks.add((lineno, _cls(words[0]), words[1]))
                elif kind == "inversion":
                    cycles.add(frozenset(_cls(w) for w in words))
                elif kind == "none":
                    none = True
                elif kind == "single-thread":
                    pass   # single_threads()
                else:
                    raise AssertionError("unknown marker %s in %s" % (kind, path))
    return leaks, cycles, none


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_fixtures_exist_and_state_truth():
    assert len(FIXTURES) >= 3
    kinds = set()
    for path in FIXTURES:
        leaks, cycles, none = expectations(path)
        assert leaks or cycles or none, "%s states no truth" % path
        kinds.update(h for _l, _c, h in leaks)
        if cycles:
            kinds.add("cycle%d" % max(len(c) for c in cycles))
    # leaks on every kind of exit, and a cycle through three classes
    assert {"return", "goto", "break", "continue", "cycle3"} <= kinds


@pytest.mark.parametrize("path", FIXTURES, ids=[os.path.basename(p) for p in FIXTURES])
def test_fixture_findings_match_markers(path, cache_home):
    leaks, cycles, none = expectations(path)
    report = lockorder.analyze([path])
    got_leaks = set()
    for f in report.findings:
        if f.kind == "missing-unlock":
            # other jumps leaking the same lock to the same label: one finding
            for line in [f.exit["line"]] + f.exit.get("also", []):
                got_leaks.add((line, f.lock["class"], f.exit["how"]))
    got_cycles = set(frozenset(f.classes) for f in report.findings if f.kind == "inversion")
    assert got_leaks == leaks
    assert got_cycles == cycles
    singles = dict((frozenset(f.classes), f) for f in report.findings
                   if f.kind == "inversion" and getattr(f, "single_thread", None))
    want = single_threads(path)
    assert dict((k, f.single_thread) for k, f in singles.items()) == want
    for f in singles.values():
        assert f.rank == 4 and "only in the thread %s()" % f.single_thread in f.text
    if none:
        assert report.findings == []
    for f in report.findings:
        # every paragraph names file.c:LINE of what it involves
        base = os.path.basename(path)
        if f.kind == "missing-unlock":
            for line in [f.exit["line"]] + f.exit.get("also", []):
                assert "%s:%d" % (base, line) in f.text
            assert "%s:%d" % (base, f.lock["line"]) in f.text
        else:
            for e in f.edges:
                assert "%s:%d" % (base, e["line"]) in f.text
                assert "%s:%d" % (base, e["held_line"]) in f.text


def test_inversion_edges_carry_chains(cache_home):
    path = [p for p in FIXTURES if p.endswith("inversions.c")][0]
    report = lockorder.analyze([path])
    by = dict((frozenset(f.classes), f) for f in report.findings)
    cb = by[frozenset(("handle.mutex", "session.mutex"))]
    chains = [e["chain"] for e in cb.edges]
    # the callback was resolved through the designated initializer
    assert ["handle_info", "query_impl"] in chains
    assert ["pli", "send_pli"] in chains
    direct = [f for f in report.findings if len(f.classes) == 2 and
              all(len(e["chain"]) == 1 for e in f.edges)]
    assert direct and direct[0].rank == 1
    assert report.findings[0].rank <= report.findings[-1].rank


def test_refcount_free_edges_ranked_weak(cache_home):
    """The free function's own object lock gives no edge (the markers say
    which cycles exist); its other locks do, ranked as needing the last
    reference to go."""
    path = [p for p in FIXTURES if p.endswith("refcount.c")][0]
    report = lockorder.analyze([path])
    _leaks, cycles, _none = expectations(path)
    for f in report.findings:
        assert frozenset(f.classes) in cycles
        free_edges = [e for e in f.edges if e["via_free"]]
        assert free_edges and f.rank == 3
        assert "through a refcount free function" in f.text
        # the free function's own object's lock is never an edge's target
        assert not any(e["taken"] == "obj.mutex" for e in free_edges)


def test_cli_json_and_exit_status(cache_home):
    env = dict(os.environ, XDG_CACHE_HOME=str(cache_home))
    leaky = [p for p in FIXTURES if p.endswith("leaks.c")][0]
    clean = [p for p in FIXTURES if p.endswith("clean.c")][0]
    p = subprocess.run([sys.executable, "-m", "janus_gdb", "lockorder", "--format", "json", leaky],
                       cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=120)
    assert p.returncode == 1, p.stderr
    doc = json.loads(p.stdout)
    assert doc["schema"] == "janus-gdb/lockorder/1"
    assert set(doc) >= {"findings", "unresolved", "stats"}
    for f in doc["findings"]:
        assert f["kind"] in ("missing-unlock", "inversion")
        assert isinstance(f["rank"], int) and f["text"]
        if f["kind"] == "missing-unlock":
            assert set(f) >= {"file", "function", "lock", "exit"}
            assert set(f["lock"]) >= {"class", "expr", "line"}
            assert f["exit"]["how"] in ("return", "goto", "break", "continue")
    p = subprocess.run([sys.executable, "-m", "janus_gdb", "lockorder", clean], cwd=ROOT, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=120)
    assert p.returncode == 0 and "no lock-order cycle" in p.stdout
    text = subprocess.run([sys.executable, "-m", "janus_gdb", "lockorder", leaky], cwd=ROOT,
                          env=env, stdout=subprocess.PIPE, universal_newlines=True,
                          timeout=120).stdout
    paras = text.strip().split("\n\n")
    assert sum(1 for x in paras if x.startswith("missing unlock")) == \
        len([f for f in doc["findings"] if f["kind"] == "missing-unlock"])
    p = subprocess.run([sys.executable, "-m", "janus_gdb", "lockorder", "/nonexistent/x.c"],
                       cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr


def test_cache_second_run(cache_home, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for p in FIXTURES:
        with open(p) as f:
            (src / os.path.basename(p)).write_text(f.read())
    first = lockorder.analyze([str(src)])
    assert first.stats["files_parsed"] == len(FIXTURES)
    second = lockorder.analyze([str(src)])
    assert second.stats["files_cached"] == len(FIXTURES)
    assert [f.as_dict() for f in first.findings] == [f.as_dict() for f in second.findings]
    # a changed file is read again
    leaky = src / "leaks.c"
    leaky.write_text(leaky.read_text() + "\n/* changed */\n")
    third = lockorder.analyze([str(src)])
    assert third.stats["files_parsed"] == 1


# -- the real Janus 1.1.2 source ---------------------------------------------

def _janus_src():
    cands = []
    if os.environ.get("JANUS_SRC"):
        cands.append(os.environ["JANUS_SRC"])
    if os.environ.get("JANUS_PREFIX"):
        cands.append(os.environ["JANUS_PREFIX"].rstrip("/") + ".src")
    cands.append(os.path.expanduser("~/.cache/janus-gdb/janus-1.1.2.src"))
    for c in cands:
        if os.path.isfile(os.path.join(c, "src", "janus.c")):
            return os.path.join(c, "src")
    return None


JANUS_SRC = _janus_src()


def _function_lines(path, name):
    """(first, last) line of function NAME in PATH: from its definition line
    to the next line that is a lone '}' (Janus style)."""
    with open(path, errors="replace") as f:
        lines = f.read().split("\n")
    start = None
    for n, line in enumerate(lines, 1):
        if start is None and re.match(r"^\w.*\b%s\(" % re.escape(name), line) and \
                not line.rstrip().endswith(";"):
            start = n
        elif start is not None and line == "}":
            return start, n, lines
    return None


@pytest.mark.skipif(JANUS_SRC is None, reason="no Janus source tree (~/.cache/janus-gdb/janus-*.src)")
def test_real_janus(cache_home):
    t0 = time.time()
    report = lockorder.analyze([JANUS_SRC])
    cold = time.time() - t0
    assert cold < 30, "whole src/ took %.1f s" % cold
    assert report.stats["files"] > 50 and report.stats["functions"] > 1000
    t0 = time.time()
    again = lockorder.analyze([JANUS_SRC])
    warm = time.time() - t0
    assert again.stats["files_cached"] == again.stats["files"]
    assert warm < cold

    # The "Invalid msid" early return of janus_plugin_handle_sdp: find it in
    # the source (the first return after the message, inside the function).
    janus_c = os.path.join(JANUS_SRC, "janus.c")
    first, last, lines = _function_lines(janus_c, "janus_plugin_handle_sdp")
    msg = [n for n in range(first, last) if "Invalid msid" in lines[n - 1]]
    if not msg:
        pytest.skip("this Janus has no 'Invalid msid' return in janus_plugin_handle_sdp")
    ret = next(n for n in range(msg[0], last) if re.search(r"\breturn\b", lines[n - 1]))
    # the lock it leaks: the last ice_handle->mutex lock before the message
    lock = max(n for n in range(first, msg[0])
               if "janus_mutex_lock(&ice_handle->mutex)" in lines[n - 1])
    leaks = [f for f in report.findings if f.kind == "missing-unlock"
             and f.function == "janus_plugin_handle_sdp" and f.exit["line"] == ret]
    assert leaks, "the msid leak at janus.c:%d was not reported" % ret
    assert leaks[0].lock["line"] == lock
    assert leaks[0].lock["class"] == "janus_ice_handle.mutex"
    assert leaks[0].rank == 1
    # precision: few missing unlocks on a whole release
    assert report.stats["missing_unlocks"] <= 20

    # #3510's shape: the admin handle_info path holds handle->mutex and calls
    # plugin->query_session, which takes a VideoRoom streams_mutex, while the
    # PLI path holds that streams_mutex and ends up taking handle->mutex.
    vr = os.path.join(JANUS_SRC, "plugins", "janus_videoroom.c")
    q = _function_lines(vr, "janus_videoroom_query_session")
    if q is None or not any("streams_mutex" in l and "janus_mutex_lock" in l
                            for l in q[2][q[0] - 1:q[1]]):
        pytest.skip("query_session takes no streams_mutex in this Janus")
    shaped = [f for f in report.findings if f.kind == "inversion"
              and "janus_ice_handle.mutex" in f.classes
              and any(c.startswith("janus_videoroom_") and c.endswith(".streams_mutex")
                      for c in f.classes)]
    assert shaped, "no handle->mutex / streams_mutex cycle"
    edges = [e for f in shaped for e in f.edges]
    assert any(e["function"] == "janus_videoroom_query_session" and
               e["held"] == "janus_ice_handle.mutex" for e in edges)
    assert any("janus_videoroom_reqpli" in e["chain"] and
               e["taken"] == "janus_ice_handle.mutex" for e in edges)


# -- the gdb command ---------------------------------------------------------

@pytest.mark.skipif(not __import__("shutil").which("gdb"), reason="no gdb")
def test_gdb_command_reads_debug_info_sources(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "tests"))
    import gdbrun
    src = [p for p in FIXTURES if p.endswith("inversions.c")][0]
    obj = str(tmp_path / "inversions.o")
    subprocess.run(["gcc", "-g", "-c", "-o", obj, src] + [
        f for f in gdbrun.glib_flags() if f.startswith("-I")], check=True)
    env_home = str(tmp_path / "cache")
    _leaks, cycles, _none = expectations(src)
    p = gdbrun.gdb(["janus-lockorder --format json"], exe=obj,
                   extra=["-iex", "python import os; os.environ['XDG_CACHE_HOME'] = %r" % env_home])
    doc = gdbrun.extract_json(p.stdout)
    assert doc["schema"] == "janus-gdb/lockorder/1"
    assert set(frozenset(f["classes"]) for f in doc["findings"]) == cycles
    leaky = [p for p in FIXTURES if p.endswith("leaks.c")][0]
    leaks, _c, _n = expectations(leaky)
    p = gdbrun.gdb(["janus-lockorder %s" % leaky, "janus-lockorder --bogus"], exe=obj)
    assert p.stdout.count("missing unlock:") == len(leaks)
    assert "janus-lockorder: unrecognized arguments: --bogus" in p.stderr
    assert "Traceback" not in p.stderr + p.stdout
