"""The janus-gdb command-line tool (janus_gdb/cli/main.py): real gdb on real hung
fixtures, live and from cores; its exit status, its clean stdout, its one-line
errors, and `pip install .` giving a working `janus-gdb` script."""

import ast
import json
import os
import shutil
import subprocess
import sys
import types

import pytest

import gdbrun

sys.path.insert(0, gdbrun.ROOT)

from janus_gdb.cli import main as cli  # noqa: E402

OWN_FILES = ("janus_gdb/cli/main.py", "janus_gdb/__main__.py", "janus_gdb/gdbui/batch.py")


def run_cli(args, python=None, script=None, timeout=300):
    """Run the tool as `python3 -m janus_gdb ARGS` (from another directory,
    with the repository on PYTHONPATH), or as SCRIPT ARGS."""
    env = dict(os.environ)
    if script:
        cmd = [script]
    else:
        cmd = [python or sys.executable, "-m", "janus_gdb"]
        env["PYTHONPATH"] = gdbrun.ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run(cmd + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout,
                          env=env, cwd="/")


def assert_report_only(res, code):
    """Exit status CODE, stdout the report and nothing else, stderr empty."""
    assert "Traceback" not in res.stdout + res.stderr
    assert res.returncode == code, res.stdout + res.stderr
    assert res.stderr == ""
    first = res.stdout.splitlines()[0]
    assert first.startswith("Found " if code == 1 else "No deadlock found"), res.stdout
    assert gdbrun.extract_report(res.stdout) == res.stdout
    for chatter in ("[New LWP", "[Thread debugging", "warning:", "GNU gdb", "(gdb)"):
        assert chatter not in res.stdout


def assert_one_line_error(res, needle):
    assert "Traceback" not in res.stdout + res.stderr
    assert res.returncode == 2, res.stdout + res.stderr
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("janus-gdb: ") and needle in lines[0], lines[0]
    return lines[0]


# --- cores -------------------------------------------------------------------

def test_deadlock_core_text(scenarios, binaries):
    core = scenarios.core("pthread_cycle")
    truth = scenarios.get("pthread_cycle").truth
    res = run_cli([core, "--exe", binaries.debug])
    assert_report_only(res, 1)
    assert res.stdout.startswith("Found 1 deadlock (2 threads)")
    assert "(LWP %d)" % truth.lwp("cycle_a") in res.stdout
    assert "(LWP %d)" % truth.lwp("cycle_b") in res.stdout


def test_core_without_exe_finds_the_executable(scenarios, binaries):
    core = scenarios.core("pthread_cycle")
    res = run_cli([core])
    assert_report_only(res, 1)
    assert res.stdout == run_cli([core, "--exe", binaries.debug]).stdout
    # the executable named by the core's notes
    info = cli.read_core(core)
    assert binaries.debug in info.files
    assert info.fname == "scenarios"
    assert cli.find_executable(core, info) == binaries.debug


def test_core_whose_executable_is_gone(scenarios, binaries, tmp_path):
    """The core names an executable that does not exist here: one line, --exe hint."""
    core = scenarios.core("pthread_cycle")
    gone = binaries.debug[:-1] + "X"
    with open(core, "rb") as f:
        data = f.read()
    old = binaries.debug.encode() + b"\0"
    assert old in data
    moved = str(tmp_path / "moved.core")
    with open(moved, "wb") as f:
        f.write(data.replace(old, gone.encode() + b"\0"))
    line = assert_one_line_error(run_cli([moved]), "cannot find the executable")
    assert gone in line and "--exe" in line
    # --exe rescues it
    assert run_cli([moved, "--exe", binaries.debug]).returncode == 1


def test_healthy_core_exits_0(scenarios, binaries):
    res = run_cli([scenarios.core("healthy")])
    assert_report_only(res, 0)


def test_json_parses_as_is(scenarios, binaries):
    core = scenarios.core("pthread_cycle")
    res = run_cli([core, "--format", "json"])
    assert res.returncode == 1 and res.stderr == ""
    data = json.loads(res.stdout)
    assert data["schema"].startswith("janus-gdb/")
    assert len(data["cycles"]) == 1
    res = run_cli([core, "--format", "json", "--locks", "--all", "--depth", "32"])
    assert res.returncode == 1 and res.stderr == ""
    assert "schema" in json.loads(res.stdout)


def test_locks_text(scenarios):
    res = run_cli([scenarios.core("pthread_cycle"), "--locks"])
    assert res.returncode == 1 and res.stderr == ""
    assert res.stdout.splitlines()[0].startswith("2 locks held or waited for.")


def test_dot(scenarios):
    res = run_cli([scenarios.core("pthread_cycle"), "--format", "dot"])
    assert "Traceback" not in res.stdout + res.stderr
    assert res.returncode == 1, res.stderr
    assert res.stdout.startswith("digraph ") and res.stdout.rstrip().endswith("}")
    if gdbrun.have("dot"):
        out = subprocess.run(["dot", "-Tsvg"], input=res.stdout, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True)
        assert out.returncode == 0, out.stderr


def test_output_file(scenarios, tmp_path):
    out = tmp_path / "report.json"
    res = run_cli([scenarios.core("pthread_cycle"), "--format", "json", "--output", out])
    assert res.returncode == 1
    assert res.stdout == "" and res.stderr == ""
    with open(str(out)) as f:
        assert len(json.load(f)["cycles"]) == 1
    # "-" is stdout
    res = run_cli([scenarios.core("healthy"), "-o", "-"])
    assert_report_only(res, 0)


def test_lock_log_passes_through(scenarios, tmp_path):
    log = tmp_path / "janus log.txt"  # a space: quoting into gdb's argument string
    log.write_text("nothing of interest\n")
    res = run_cli([scenarios.core("pthread_cycle"), "--lock-log", log])
    assert_report_only(res, 1)


# --- live --------------------------------------------------------------------

def test_live_pid_leaves_the_process_running(scenarios):
    sc = scenarios.get("pthread_cycle")
    before = sc.syscall_state()
    res = run_cli(["--pid", sc.pid])
    assert_report_only(res, 1)
    assert "[live process %d" % sc.pid in res.stdout.splitlines()[0]
    assert "(LWP %d)" % sc.truth.lwp("cycle_a") in res.stdout
    assert sc.proc.poll() is None and sc.proc_state() in ("S", "R")
    with open("/proc/%d/status" % sc.pid) as f:
        assert "TracerPid:\t0\n" in f.read()
    # the same threads, the futex waits untouched (a sleep is restarted
    # as restart_syscall after the attach: that is ptrace, not us)
    after = sc.syscall_state()
    assert set(after) == set(before)
    for tid, call in before.items():
        if call.startswith("202 "):
            assert after[tid] == call


def test_live_healthy_json(scenarios):
    sc = scenarios.get("healthy")
    res = run_cli(["--pid", sc.pid, "--format", "json"])
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["cycles"] == []
    assert sc.proc.poll() is None


# --- errors ------------------------------------------------------------------

def _gone_pid():
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("args,needle", [
    (["/nonexistent/core"], "does not exist"),
    (["/"], "is a directory"),
    (["@TEXT"], "is not a core file: not an ELF file"),
    (["@SHORT"], "ELF header is truncated"),
    (["@EXE"], "is not a core file but"),
    (["@CORE", "--exe", "/nonexistent/janus"], "executable /nonexistent/janus does not exist"),
    (["@CORE", "--exe", "@TEXT"], "is not an ELF executable"),
    (["@CORE", "--exe", "@CORE"], "is a core file, not an executable"),
    (["--pid", "@GONE"], "no process with PID"),
    (["--pid", "abc"], "--pid wants a process id"),
    (["--pid", "0"], "--pid wants a process id"),
    (["--pid", "@THREAD"], "is a thread of process"),
    (["--pid", "1", "@CORE"], "not both"),
    ([], "nothing to analyse"),
    (["@CORE", "--format", "xml"], "invalid choice: 'xml'"),
    (["@CORE", "--bogus"], "unrecognized arguments: --bogus"),
    (["@CORE", "--depth", "0"], "--depth must be between"),
    (["@CORE", "--depth", "many"], "invalid int value"),
    (["a", "b"], "unrecognized arguments"),
    (["@CORE", "--gdb", "/nonexistent/gdb"], "gdb not found"),
    (["@CORE", "--gdb", "no-such-gdb-here"], "gdb not found"),
    (["@CORE", "--lock-log", "/nonexistent/log"], "--lock-log file /nonexistent/log does not"),
    (["@CORE", "--output", "/nonexistent/dir/out.txt"], "does not exist"),
])
def test_errors_are_one_line(scenarios, binaries, tmp_path, args, needle):
    text = tmp_path / "notes.txt"
    text.write_text("not a core\n")
    short = tmp_path / "short.core"
    short.write_bytes(b"\x7fELF\x02\x01\x01")
    subst = {"@TEXT": str(text), "@SHORT": str(short), "@EXE": binaries.debug,
             "@GONE": str(_gone_pid()),
             "@THREAD": str(scenarios.get("pthread_cycle").truth.lwp("cycle_a"))}
    if "@CORE" in args:
        subst["@CORE"] = scenarios.core("pthread_cycle")
    assert_one_line_error(run_cli([subst.get(a, a) for a in args]), needle)


def test_truncated_core_is_one_line_or_a_report(scenarios, tmp_path):
    core = scenarios.core("pthread_cycle")
    cut = str(tmp_path / "cut.core")
    with open(core, "rb") as src, open(cut, "wb") as dst:
        dst.write(src.read(os.path.getsize(core) // 50))
    res = run_cli([cut])
    assert "Traceback" not in res.stdout + res.stderr
    if res.returncode == 2:
        assert res.stdout == "" and len(res.stderr.splitlines()) == 1, res.stderr
    else:
        assert res.returncode in (0, 1) and gdbrun.extract_report(res.stdout) == res.stdout


def test_compressed_core_says_so(tmp_path):
    z = tmp_path / "core.zst"
    z.write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 100)
    assert "compressed" in assert_one_line_error(run_cli([z]), "not a core file")


def test_help_and_version():
    res = run_cli(["--help"])
    assert res.returncode == 0 and "exit status" in res.stdout and "--pid PID" in res.stdout
    res = run_cli(["--version"])
    assert res.returncode == 0 and res.stdout.startswith("janus-gdb ")


# --- watch dispatch ------------------------------------------------------------

def test_watch_dispatch(monkeypatch):
    import janus_gdb.cli
    seen = []
    fake = types.ModuleType("janus_gdb.cli.watch")
    fake.main = lambda argv: seen.append(argv) or 7
    monkeypatch.setitem(sys.modules, "janus_gdb.cli.watch", fake)
    monkeypatch.setattr(janus_gdb.cli, "watch", fake, raising=False)
    assert cli.main(["watch", "--pid", "12", "--once"]) == 7
    assert seen == [["--pid", "12", "--once"]]


def test_watch_missing_is_one_line(monkeypatch, capsys):
    import janus_gdb.cli
    monkeypatch.setitem(sys.modules, "janus_gdb.cli.watch", None)
    monkeypatch.delattr(janus_gdb.cli, "watch", raising=False)
    assert cli.main(["watch", "--pid", "12"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "watch.py is missing" in err[0]


# --- packaging ---------------------------------------------------------------

@pytest.mark.skipif(sys.version_info < (3, 8), reason="ast.parse(feature_version=) is 3.8+")
def test_python36_syntax():
    for rel in OWN_FILES:
        with open(os.path.join(gdbrun.ROOT, rel)) as f:
            ast.parse(f.read(), rel, feature_version=(3, 6))


def _python_that_builds():
    """A Python with venv, setuptools and wheel (Debian's python3 has them
    through python3-venv, python3-setuptools, python3-wheel)."""
    for python in ("/usr/bin/python3", sys.executable):
        if not os.path.exists(python):
            continue
        ok = subprocess.run([python, "-c", "import ensurepip, venv, setuptools, wheel"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if ok.returncode == 0:
            return python
    return None


def test_pip_install_gives_a_working_script(scenarios, tmp_path):
    python = _python_that_builds()
    if python is None:
        pytest.skip("no Python with venv, setuptools and wheel (apt-get install python3-venv "
                    "python3-setuptools python3-wheel)")
    # a copy of the source: pip builds in the tree and would leave build/ there
    src = tmp_path / "src"
    shutil.copytree(os.path.join(gdbrun.ROOT, "janus_gdb"), str(src / "janus_gdb"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(os.path.join(gdbrun.ROOT, name), str(src / name))
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-deps",
                          "--no-build-isolation", "--no-index", str(src)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True, timeout=300)
    assert pip.returncode == 0, pip.stdout
    script = str(venv / "bin" / "janus-gdb")
    assert os.path.exists(script)
    res = run_cli([scenarios.core("pthread_cycle")], script=script)
    assert_report_only(res, 1)
    # it runs the installed copy, not the repository's
    res = run_cli(["--version"], script=script)
    assert res.returncode == 0
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import janus_gdb.cli.main as c; print(c.PACKAGE_DIR)"],
        stdout=subprocess.PIPE, universal_newlines=True, cwd="/").stdout.strip()
    assert installed.startswith(str(venv))
