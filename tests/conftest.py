import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gdbrun  # noqa: E402


def pytest_report_header(config):
    import subprocess
    try:
        out = subprocess.run(gdbrun.in_root(["gdb", "--version"]), stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True).stdout
    except OSError:
        out = ""
    where = " (in %s)" % gdbrun.TEST_ROOT if gdbrun.TEST_ROOT else ""
    return "gdb: %s%s" % ((out.splitlines() or ["missing"])[0], where)


# The paths the tests use, mounted at the same paths inside the old Debian
# root when there is one (gdbrun.TEST_ROOT): the repository (fixture sources,
# janus-gdb itself), /tmp (builds, cores) and /proc (gdb attaches).
ROOT_MOUNTS = [gdbrun.ROOT, "/tmp", "/proc"]
_mounted = []


def pytest_sessionstart(session):
    if not gdbrun.TEST_ROOT:
        return
    import subprocess
    if os.path.realpath(gdbrun.TEST_ROOT) == "/" or not os.path.isdir(gdbrun.TEST_ROOT):
        pytest.exit("JANUS_GDB_TEST_ROOT=%s is not a root directory to chroot into"
                    % gdbrun.TEST_ROOT, returncode=4)
    for path in ROOT_MOUNTS:
        inside = gdbrun.TEST_ROOT.rstrip("/") + path
        if os.path.ismount(inside):
            continue
        os.makedirs(inside, exist_ok=True)
        subprocess.run(["mount", "--bind", path, inside], check=True)
        _mounted.append(inside)


# Every analysis of a core that the fast path (issue 14) sped up is done
# again reading every thread through gdb, and the two reports compared
# (janus_gdb/gdbui/fastcheck.py): each gdb the tests start inherits this.
FAST_CHECK_LOG = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                              "janus-gdb-fastcheck.%d.log" % os.getpid())
os.environ["JANUS_GDB_FAST_CHECK"] = FAST_CHECK_LOG


def fast_check_lines(start=0):
    """The fast-path check's log lines (dicts) from byte START, and the end offset."""
    import json
    try:
        with open(FAST_CHECK_LOG) as f:
            f.seek(start)
            text = f.read()
            end = f.tell()
    except OSError:
        return [], start
    return [json.loads(l) for l in text.splitlines() if l.strip()], end


@pytest.fixture(autouse=True)
def fast_path_same_as_gdb():
    """Fail a test in which a fast-path report differed from the gdb-only one."""
    _, start = fast_check_lines(0)
    yield
    lines, _ = fast_check_lines(start)
    bad = [l for l in lines if l.get("difference")]
    assert not bad, ("the fast path's report differs from the gdb-only report: %s"
                     % "; ".join("%s: %s" % (l.get("core"), l["difference"]) for l in bad))


def pytest_sessionfinish(session, exitstatus):
    import subprocess
    while _mounted:
        subprocess.run(["umount", "-l", _mounted.pop()])
    lines, _ = fast_check_lines(0)
    if lines:
        session.config._fast_check_summary = lines
    try:
        os.unlink(FAST_CHECK_LOG)
    except OSError:
        pass


def pytest_terminal_summary(terminalreporter):
    lines = getattr(terminalreporter.config, "_fast_check_summary", None)
    if lines:
        terminalreporter.write_line(
            "fast path checked against gdb: %d analyses, %d threads copied, %d differed, "
            "%d not compared (the process ended between the two)"
            % (len(lines), sum(l.get("copied") or 0 for l in lines),
               sum(1 for l in lines if l.get("difference")),
               sum(1 for l in lines if l.get("skipped"))))


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory):
    for tool in ("gdb", "gcc", "pkg-config", "strip"):
        if not gdbrun.have(tool):
            pytest.skip("%s is not installed (run tests/run.sh to install prerequisites)" % tool)
    out = gdbrun.subprocess.run(gdbrun.in_root(["gdb", "-nx", "-batch", "-ex", "python print(1)"]),
                                stdout=gdbrun.subprocess.PIPE, universal_newlines=True)
    if out.stdout.strip() != "1":
        pytest.skip("this gdb has no Python support")
    return str(tmp_path_factory.mktemp("build"))


class Binaries(object):
    def __init__(self, build_dir):
        self.dir = build_dir
        src = os.path.join(gdbrun.FIXTURES, "scenarios.c")
        self.debug = gdbrun.compile_c(src, os.path.join(build_dir, "scenarios"), strip=False)
        self.stripped = gdbrun.compile_c(src, os.path.join(build_dir, "scenarios"), strip=True)

    def exe(self, variant):
        return self.stripped if variant == "stripped" else self.debug


@pytest.fixture(scope="session")
def binaries(build_dir):
    return Binaries(build_dir)


class Scenarios(object):
    """Hung fixture processes and their cores, started once per session."""

    def __init__(self, binaries):
        self.binaries = binaries
        self.running = {}
        self.cores = {}

    def get(self, name, variant="debug"):
        key = (name, variant)
        if key not in self.running:
            self.running[key] = gdbrun.Scenario(self.binaries.exe(variant), [name])
        return self.running[key]

    def core(self, name, variant="debug"):
        key = (name, variant)
        if key not in self.cores:
            sc = self.get(name, variant)
            path = os.path.join(self.binaries.dir, "core.%s.%s" % (name, variant))
            self.cores[key] = sc.gcore(path)
        return self.cores[key]

    def analyze(self, name, mode, variant="debug", command="janus-waitgraph --format json"):
        """Run COMMAND live or on the core; returns (CompletedProcess, Scenario)."""
        sc = self.get(name, variant)
        hide = variant == "stripped"
        exe = self.binaries.exe(variant)
        if mode == "live":
            res = gdbrun.gdb([command], pid=sc.pid, hide_debug=hide)
        else:
            res = gdbrun.gdb([command], exe=exe, core=self.core(name, variant), hide_debug=hide)
        assert "Traceback" not in res.stdout + res.stderr, res.stdout + res.stderr
        return res, sc

    def result(self, name, mode, variant="debug"):
        res, sc = self.analyze(name, mode, variant)
        return gdbrun.Result(gdbrun.extract_json(res.stdout)), sc.truth

    def close(self):
        gdbrun.close_fixtures(self.running.values(), self.cores.values())


@pytest.fixture(scope="session")
def scenarios(binaries):
    sc = Scenarios(binaries)
    yield sc
    sc.close()


@pytest.fixture(scope="session")
def janus(build_dir):
    """The Janus-shaped fixtures (tests/fixtures/janus_scenarios.c), built and
    started once for every module that uses them."""
    from test_janus_fixtures import JanusScenarios
    js = JanusScenarios(build_dir)
    yield js
    js.close()
