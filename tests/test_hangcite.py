"""The hang reports cite the static lock analysis (issue 12 point 4):
a leaked lock lists the exits of the source that can leak its class
("possible missing unlock"), a deadlock cites where the source takes its
locks in each order.  tests/fixtures/hangcite.c, live and from a gcore
core, text and JSON; the lines come from the fixture's SITE markers.
Stripped: nothing is cited (no class without debug info).
"""

import os
import time

import pytest

import gdbrun
from test_json_schema import check_document

SRC = os.path.join(gdbrun.FIXTURES, "hangcite.c")
SITES = gdbrun.site_lines(SRC)
MODES = ["live", "core"]


class Hangs(object):
    def __init__(self, build_dir):
        self.dir = build_dir
        out = os.path.join(build_dir, "hangcite")
        self.stripped = gdbrun.compile_c(SRC, out, strip=True)
        self.debug = out
        self.running = {}
        self.cores = {}

    def exe(self, stripped):
        return self.stripped if stripped else self.debug

    def get(self, name, stripped=False):
        key = (name, stripped)
        if key not in self.running:
            self.running[key] = gdbrun.Scenario(self.exe(stripped), [name])
        return self.running[key]

    def core(self, name, stripped=False):
        key = (name, stripped)
        if key not in self.cores:
            path = os.path.join(self.dir, "core.hangcite.%s.%d" % (name, stripped))
            self.cores[key] = self.get(name, stripped).gcore(path)
        return self.cores[key]

    def run(self, name, mode, command, stripped=False):
        sc = self.get(name, stripped)
        if mode == "live":
            out = gdbrun.gdb([command], pid=sc.pid, hide_debug=stripped)
        else:
            out = gdbrun.gdb([command], exe=self.exe(stripped), core=self.core(name, stripped),
                             hide_debug=stripped)
        assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
        return sc, out.stdout

    def close(self):
        gdbrun.close_fixtures(self.running.values(), self.cores.values())


@pytest.fixture(scope="module")
def hangs(build_dir):
    h = Hangs(build_dir)
    yield h
    h.close()


def lock_json(data, addr):
    got = [l for l in data["locks"] if l["address"] == addr]
    assert len(got) == 1, (hex(addr), data["locks"])
    return got[0]


@pytest.mark.parametrize("mode", MODES)
def test_leak_cites_the_early_return(hangs, mode):
    sc, out = hangs.run("leak", mode, "janus-waitgraph --format json")
    data = check_document(gdbrun.extract_json(out), "janus-waitgraph")
    lock = lock_json(data, sc.truth.lock("registry_mutex"))
    assert lock["leaked"] is True, lock
    assert lock["owner"]["lwp"] == sc.truth.lwp("leaker")
    cites = lock["possible_missing_unlocks"]
    assert cites, lock
    first = cites[0]
    assert first["kind"] == "missing-unlock" and first["function"] == "registry_update"
    assert os.path.basename(first["file"]) == "hangcite.c"
    assert first["exit"] == dict(first["exit"], line=SITES["leak_return"], how="return")
    assert first["lock"]["line"] == SITES["leak_lock"]
    assert first["lock"]["class"] == "hangcite.c: registry_mutex"
    # nothing cited for a lock that is not leaked (there is none other here)
    assert [l for l in data["locks"] if l["possible_missing_unlocks"] and not l["leaked"]] == []
    cite = ("hangcite.c:%d returns (in registry_update) while holding registry_mutex taken at "
            "hangcite.c:%d" % (SITES["leak_return"], SITES["leak_lock"]))
    want = "possible missing unlock: " + cite
    assert any(s.startswith("%s is probably leaked" % lock["id"]) and
               "source has an exit that can leave it locked: " + cite in s
               for s in data["next_steps"]), data["next_steps"]
    _sc, text = hangs.run("leak", mode, "janus-waitgraph")
    assert want in text, text
    _sc, text = hangs.run("leak", mode, "janus-locks")
    assert want in text, text


def test_leak_no_source_check(hangs):
    sc, out = hangs.run("leak", "core", "janus-waitgraph --format json --no-source-check")
    data = check_document(gdbrun.extract_json(out), "janus-waitgraph")
    lock = lock_json(data, sc.truth.lock("registry_mutex"))
    assert lock["leaked"] is True and lock["possible_missing_unlocks"] == []
    _sc, text = hangs.run("leak", "core", "janus-waitgraph --no-source-check")
    assert "possible missing unlock" not in text and "The source has" not in text, text


@pytest.mark.parametrize("mode", MODES)
def test_leak_stripped_cites_nothing(hangs, mode):
    """No debug info: the lock has no class and no source is named: no citation, no warning."""
    sc, out = hangs.run("leak", mode, "janus-waitgraph --format json", stripped=True)
    data = check_document(gdbrun.extract_json(out), "janus-waitgraph")
    lock = lock_json(data, sc.truth.lock("registry_mutex"))
    assert lock["possible_missing_unlocks"] == [], lock
    assert not any("source check" in w for w in data["warnings"]), data["warnings"]
    _sc, text = hangs.run("leak", mode, "janus-waitgraph", stripped=True)
    assert "possible missing unlock" not in text, text


@pytest.mark.parametrize("mode", MODES)
def test_abba_cites_both_orders(hangs, mode):
    sc, out = hangs.run("abba", mode, "janus-waitgraph --format json")
    data = check_document(gdbrun.extract_json(out), "janus-waitgraph")
    assert len(data["cycles"]) == 1, data["verdict"]
    cyc = data["cycles"][0]
    assert len(cyc["source_orders"]) == 1, cyc
    order = cyc["source_orders"][0]
    got = sorted((e["held"], e["taken"], e["line"], e["function"]) for e in order["edges"])
    assert got == [("hangcite.c: accounts_mutex", "hangcite.c: audit_mutex", SITES["abba_first"],
                    "deposit"),
                   ("hangcite.c: audit_mutex", "hangcite.c: accounts_mutex",
                    SITES["abba_second"], "audit_all")], order
    _sc, text = hangs.run("abba", mode, "janus-waitgraph")
    line = [l for l in text.splitlines() if l.strip().startswith("source: the source takes")]
    assert len(line) == 1, text
    assert "hangcite.c:%d (in deposit)" % SITES["abba_first"] in line[0]
    assert "hangcite.c:%d (in audit_all)" % SITES["abba_second"] in line[0]


def test_abba_stripped_cites_nothing(hangs):
    _sc, out = hangs.run("abba", "core", "janus-waitgraph --format json", stripped=True)
    data = check_document(gdbrun.extract_json(out), "janus-waitgraph")
    assert all(c["source_orders"] == [] for c in data["cycles"]), data["cycles"]


def test_source_check_costs_little(hangs):
    """The check runs only when needed and is cached: a report with it takes
    at most a second more than one without."""
    sc = hangs.get("leak")
    t0 = time.time()
    gdbrun.gdb(["janus-waitgraph --no-source-check"], pid=sc.pid)
    without = time.time() - t0
    t0 = time.time()
    gdbrun.gdb(["janus-waitgraph"], pid=sc.pid)
    with_check = time.time() - t0
    assert with_check < without + 1.0, (with_check, without)


def test_cli_cites_and_no_source_check(hangs):
    """`janus-gdb CORE` cites the early return; `--no-source-check` passes through."""
    from test_cli_tool import run_cli
    core = hangs.core("leak")
    want = "possible missing unlock: hangcite.c:%d returns (in registry_update)" % (
        SITES["leak_return"])
    res = run_cli([core, "--exe", hangs.debug])
    assert res.returncode == 3 and want in res.stdout, res.stdout + res.stderr
    res = run_cli([core, "--exe", hangs.debug, "--no-source-check"])
    assert res.returncode == 3 and "possible missing unlock" not in res.stdout, res.stdout


def test_sources_gone_cites_nothing(tmp_path):
    """Debug info, but the source files are gone: nothing is cited, the
    report says the sources could not be read (as without the check)."""
    import shutil
    d = tmp_path / "src"
    d.mkdir()
    for name in ("hangcite.c", "fixture_io.h", "fixture_sync.h"):
        shutil.copy(os.path.join(gdbrun.FIXTURES, name), str(d / name))
    exe = gdbrun.compile_c(str(d / "hangcite.c"), str(tmp_path / "hangcite_gone"))
    shutil.rmtree(str(d))
    sc = gdbrun.Scenario(exe, ["leak"])
    try:
        out = gdbrun.gdb(["janus-waitgraph --format json"], pid=sc.pid)
        assert "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
        data = check_document(gdbrun.extract_json(out.stdout), "janus-waitgraph")
        lock = lock_json(data, sc.truth.lock("registry_mutex"))
        assert lock["possible_missing_unlocks"] == [], lock
        assert not any("missing unlock" in s for s in data["next_steps"]), data["next_steps"]
        assert any("could not be read" in s for s in data["next_steps"]), data["next_steps"]
    finally:
        sc.kill()
