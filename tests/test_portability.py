"""janus-gdb must run on gdb 8.2+ with Python 3.6+ (docs/portability.md).

- vermin (PyPI; scripts/install-prereqs --tests installs it) finds the
  oldest Python each construct and library call needs: nothing may need
  more than 3.6.  A control file shows it does report a violation.
- The gdb Python APIs newer than gdb 8.2 are used only behind feature
  tests: the commands run in a gdb whose newer APIs are hidden (deleted,
  or behind a wrapper that raises AttributeError as an old gdb would) and
  must give the same answer.
"""

import os
import subprocess
import sys

import pytest

import gdbrun
import test_cli

SOURCES = [os.path.join(gdbrun.ROOT, "janus_gdb"), gdbrun.GDBINIT]


def vermin_command():
    """How to run vermin here, or None: the `vermin` script, else the module
    (a --user install puts the script in ~/.local/bin, maybe not on PATH)."""
    for python in (sys.executable, "python3"):
        try:
            ok = subprocess.run([python, "-c", "import vermin"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL).returncode == 0
        except OSError:
            continue
        if ok:
            return [python, "-c", "import sys; from vermin import main; sys.argv[0] = 'vermin';"
                    " sys.exit(main())"]
    return None


def run_vermin(paths):
    cmd = vermin_command()
    if cmd is None:
        pytest.skip("vermin is not installed (scripts/install-prereqs --tests installs it)")
    return subprocess.run(cmd + ["--target=3.6-", "--no-tips", "--violations"] + list(paths),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=300)


def test_vermin_python_36():
    res = run_vermin(SOURCES)
    assert res.returncode == 0, res.stdout


def test_vermin_reports_a_violation(tmp_path):
    """The check can fail: a walrus (3.8) and an f-string (3.6 is fine)."""
    bad = tmp_path / "bad.py"
    bad.write_text("import sys\nif (n := len(sys.argv)) > 1:\n    print(f'{n}')\n")
    res = run_vermin([str(bad)])
    assert res.returncode != 0, res.stdout
    assert "3.8" in res.stdout


def test_python_36_ast():
    """The parse check of test_cli (ast with feature_version 3.6)."""
    test_cli.test_python_36_syntax()


# --- gdb APIs newer than 8.2, hidden -------------------------------------------------

# Sourced before gdbinit.py: the gdb module as an old gdb would have it.
OLD_GDB = r'''
import gdb

# gdb 9: may-call-functions; gdb 8.3: style settings
_parameter = gdb.parameter
def _old_parameter(name):
    if name == "may-call-functions" or name.startswith("style "):
        raise RuntimeError("Could not find parameter `%s'." % name)
    return _parameter(name)
gdb.parameter = _old_parameter

# gdb 9/10: lookup_static_symbols (and lookup_static_symbol); gdb 12: host_charset
for _name in ("lookup_static_symbols", "lookup_static_symbol", "host_charset"):
    if hasattr(gdb, _name):
        delattr(gdb, _name)


class _Old(object):
    """A gdb object without the attributes in HIDE."""
    HIDE = ()

    def __init__(self, obj):
        object.__setattr__(self, "_obj", obj)

    def __getattr__(self, name):
        if name in self.HIDE:
            raise AttributeError(name)
        return getattr(self._obj, name)


class _OldThread(_Old):
    HIDE = ("global_num",)          # gdb 7.11


class _OldInferior(_Old):
    # gdb 12: connection; gdb 11: connection_num; gdb 8.3: progspace
    HIDE = ("connection", "connection_num", "progspace")

    def threads(self):
        return tuple(_OldThread(t) for t in self._obj.threads())


_selected_inferior = gdb.selected_inferior
gdb.selected_inferior = lambda: _OldInferior(_selected_inferior())
# gdb 13's own current_progspace() is selected_inferior().progspace: keep it
# working (older gdbs have it built in)
gdb.current_progspace = lambda: _selected_inferior().progspace
'''

CHECK_HIDDEN = ("python print('HIDDEN', hasattr(gdb, 'lookup_static_symbols'), "
                "hasattr(gdb.selected_inferior(), 'connection'), "
                "hasattr(gdb.selected_inferior(), 'progspace'))")


def _gdb(commands, old, **where):
    extra = []
    if old:
        script = os.path.join(where.pop("tmp"), "old_gdb.py")
        with open(script, "w") as f:
            f.write(OLD_GDB)
        extra = ["-iex", "source " + script]
    else:
        where.pop("tmp")
    res = gdbrun.gdb(commands + [CHECK_HIDDEN], extra=extra, **where)
    both = res.stdout + res.stderr
    assert "Traceback" not in both and "Python Exception" not in both, both
    assert "internal error" not in both, both
    assert ("HIDDEN False False False" in res.stdout) == old, res.stdout[-2000:]
    return res


def _json(stdout):
    """The first JSON document in STDOUT (a dot graph may follow it)."""
    import json
    start = stdout.index("\n{\n") + 1
    return json.JSONDecoder().raw_decode(stdout[start:])[0]


def _essence(data):
    """What must not depend on the gdb version: verdict, cycles, owners."""
    by_num = dict((t["num"], t["lwp"]) for t in data["threads"])
    cycles = sorted(sorted(by_num[n] for n in c["threads"]) for c in data["cycles"])
    owners = sorted((l["address"], l["owner"]["lwp"], l["owner"]["evidence"], l["state"])
                    for l in data["locks"])
    states = sorted((t["lwp"], t["state"]) for t in data["threads"])
    return data["verdict"], data["target"]["kind"], cycles, owners, states


@pytest.mark.parametrize("mode", ["live", "core"])
def test_commands_without_newer_gdb_apis(scenarios, binaries, tmp_path, mode):
    sc = scenarios.get("pthread_cycle")
    if mode == "live":
        where = {"pid": sc.pid}
    else:
        where = {"exe": binaries.debug, "core": scenarios.core("pthread_cycle")}
    commands = ["janus-waitgraph --format json", "janus-locks", "janus-waitgraph --format dot",
                "print m1", "thread apply all bt"]
    new = _gdb(commands, False, tmp=str(tmp_path), **where)
    old = _gdb(commands, True, tmp=str(tmp_path), **where)
    new_data, old_data = _json(new.stdout), _json(old.stdout)
    assert old_data["target"]["kind"] == mode
    assert old_data["deadlocks"] == 1
    assert _essence(old_data) == _essence(new_data)
    assert "locks held or waited for" in old.stdout and "digraph" in old.stdout
    # the pretty-printer and the bt annotation still work
    assert "owner" in old.stdout.split("$1 = ", 1)[1].split("\n", 1)[0]
    assert "[waits for M" in old.stdout and "deadlock #1]" in old.stdout


def test_janus_fixture_without_newer_gdb_apis(janus, tmp_path):
    """GMutex owners inferred from the source and Janus's lock names (globals
    by symbol, without gdb.lookup_static_symbols)."""
    sc = janus.get("pli_inversion", "gmutex")
    commands = ["janus-waitgraph --format json"]
    new = _gdb(commands, False, tmp=str(tmp_path), pid=sc.pid)
    old = _gdb(commands, True, tmp=str(tmp_path), pid=sc.pid)
    new_data, old_data = _json(new.stdout), _json(old.stdout)
    assert old_data["deadlocks"] >= 1
    assert _essence(old_data) == _essence(new_data)
    names = dict((l["address"], l["name"]) for l in old_data["locks"])
    assert names.get(sc.truth.lock("rooms_mutex"), "").endswith("rooms_mutex"), names


def test_frame_level_fallback(scenarios, tmp_path):
    """gdb.Frame.level() is gdb 11: annotate._level counts newer frames
    without it, and gets the same levels."""
    sc = scenarios.get("pthread_cycle")
    probe = ("python\n"
             "import gdb\n"
             "from janus_gdb.gdbui import annotate\n"
             "class NoLevel(object):\n"
             "    def __init__(self, f):\n"
             "        self.f = f\n"
             "    def newer(self):\n"
             "        n = self.f.newer()\n"
             "        return NoLevel(n) if n is not None else None\n"
             "ok = []\n"
             "for th in gdb.selected_inferior().threads():\n"
             "    th.switch()\n"
             "    f = gdb.newest_frame()\n"
             "    while f is not None:\n"
             "        ok.append(annotate._level(NoLevel(f)) == f.level())\n"
             "        f = f.older()\n"
             "print('LEVELS', len(ok), all(ok))\n"
             "end\n")
    script = str(tmp_path / "level_probe.gdb")
    with open(script, "w") as f:
        f.write(probe)
    res = gdbrun.gdb(["source " + script], pid=sc.pid)
    line = [l for l in res.stdout.splitlines() if l.startswith("LEVELS")]
    assert line and line[0].endswith(" True") and int(line[0].split()[1]) > 9, res.stdout[-2000:]
