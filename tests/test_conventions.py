"""gdb's conventions for the commands: help, completion, styling, paging;
and the package's own: its layers, imports pointing down.

Help texts are the commands' docstrings; completion goes through
gdb.Command.complete; emphasis only through gdb's own style settings and
only on a terminal; long output through gdb's pager.  In the package, a
module never imports from a higher layer (docs/design.md, "Modules").
"""

import ast
import os

import pytest

import gdbrun

COMMANDS = ["janus-waitgraph", "janus-locks"]
PAGER = r"--Type <RET> for more, q to quit, c to continue without paging--"
PROMPT = r"\(gdb\) "


def completions(res, command):
    return [l for l in res.stdout.splitlines() if l.startswith(command + " ")]


@pytest.mark.usefixtures("build_dir")
@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_usage_options_and_examples(command):
    res = gdbrun.gdb(["help " + command])
    out = res.stdout
    assert res.returncode == 0 and "Traceback" not in out + res.stderr
    assert ("Usage: %s [--format text|json|dot] [--all] [--depth N] [--lock-log FILE]"
            % command) in out
    for option in ("--format text|json|dot", "--all", "--depth N", "--lock-log FILE"):
        assert "\n  " + option in out, option
    examples = out.split("Examples:", 1)[1]
    lines = [l.strip() for l in examples.splitlines() if l.strip()]
    assert any(l.startswith(command) for l in lines)                       # in gdb
    assert any(l.startswith("gdb -p ") for l in lines)                     # live
    assert any("-batch" in l and "core" in l for l in lines)               # core, batch
    assert all(command in l or l.startswith("gdb -p") for l in lines)


@pytest.mark.usefixtures("build_dir")
def test_help_options_match_the_parser():
    """The options completed and documented are the ones the parser takes."""
    res = gdbrun.gdb(["python from janus_gdb.gdbui import commands as c; "
                      "print('OPTS', sorted(o for a in c._parser('x')._actions "
                      "for o in a.option_strings) == sorted(c.OPTIONS), "
                      "c._parser('x').parse_args(['--format', 'dot']).format)"])
    assert "OPTS True dot" in res.stdout, res.stdout + res.stderr


@pytest.mark.usefixtures("build_dir")
@pytest.mark.parametrize("command", COMMANDS)
def test_completion(command, tmp_path):
    (tmp_path / "janus.log").write_text("")
    (tmp_path / "janus-old.log").write_text("")
    (tmp_path / "logs").mkdir()
    d = str(tmp_path)
    cases = [
        ("--f", ["--format"]),
        ("--format ", ["--format dot", "--format json", "--format text"]),
        ("--format j", ["--format json"]),
        ("--format=t", ["--format=text"]),
        ("", ["--all", "--depth", "--format", "--gdb-only", "--lock-log",
              "--no-source-check"]),
        ("--all -", ["--all --depth", "--all --format", "--all --gdb-only",
                     "--all --lock-log", "--all --no-source-check"]),
        ("--depth ", []),
        ("--lock-log %s/janus" % d, ["--lock-log %s/janus-old.log" % d,
                                     "--lock-log %s/janus.log" % d]),
        ("--lock-log %s/lo" % d, ["--lock-log %s/logs/" % d]),
        ("--all --lock-log=%s/janus." % d, ["--all --lock-log=%s/janus.log" % d]),
    ]
    res = gdbrun.gdb(["complete %s %s" % (command, typed) for typed, _ in cases])
    assert "Traceback" not in res.stdout + res.stderr, res.stderr
    got = completions(res, command)
    want = ["%s %s" % (command, w) for _, ws in cases for w in ws]
    assert got == want


@pytest.mark.parametrize("command", ["janus-waitgraph", "janus-locks",
                                     "janus-waitgraph --all", "janus-locks --format json"])
def test_batch_output_has_no_escape_codes(scenarios, command):
    """Batch output is never styled, even with styling forced on."""
    sc = scenarios.get("pthread_cycle")
    env_term = os.environ.get("TERM")
    os.environ["TERM"] = "xterm-256color"
    try:
        res = gdbrun.gdb(["set style enabled on", command], pid=sc.pid)
    finally:
        if env_term is None:
            del os.environ["TERM"]
        else:
            os.environ["TERM"] = env_term
    assert any(s in res.stdout for s in ("Found 1 deadlock", "locks held or waited for",
                                         '"cycles"')), res.stdout + res.stderr
    assert "\x1b" not in res.stdout and "\x1b" not in res.stderr


def terminal_gdb(pexpect, sc, tmp_path, height=0):
    """gdb on a pseudo-terminal attached to SC, janus-gdb loaded; readline's
    bracketed-paste escapes off so that only gdb's output is seen."""
    inputrc = tmp_path / "inputrc"
    inputrc.write_text("set enable-bracketed-paste off\n")
    env = dict(os.environ, TERM="xterm", INPUTRC=str(inputrc))
    child = pexpect.spawn("gdb", ["-nx", "-q", "-p", str(sc.pid)], encoding="utf-8",
                          timeout=60, dimensions=(24, 200), env=env)
    child.expect(PROMPT)
    for cmd in ("set height %d" % height, "set width 0", "source %s" % gdbrun.GDBINIT):
        child.sendline(cmd)
        child.expect(PROMPT)
    return child


def run(child, cmd):
    child.sendline(cmd)
    child.expect(PROMPT)
    return child.before


def test_styling_follows_gdb_style_settings(scenarios, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    sc = scenarios.get("pthread_cycle")
    child = terminal_gdb(pexpect, sc, tmp_path)
    try:
        # gdb's default title style is bold: the verdict line only
        out = run(child, "janus-waitgraph")
        assert "\x1b[1mFound 1 deadlock (2 threads)" in out, repr(out[:300])
        verdict = [l for l in out.splitlines() if "Found 1 deadlock" in l][0]
        assert verdict.rstrip().endswith("\x1b[m")
        assert out.count("\x1b[") == 2
        # the user's own style settings are the ones used
        run(child, "set style title foreground green")
        run(child, "set style title intensity normal")
        out = run(child, "janus-waitgraph")
        assert "\x1b[32mFound 1 deadlock" in out
        # styling off: plain text, not one escape byte
        run(child, "set style enabled off")
        for cmd in ("janus-waitgraph", "janus-locks", "janus-waitgraph --all"):
            out = run(child, cmd)
            assert "\x1b" not in out, (cmd, repr(out[:300]))
            assert "Traceback" not in out
        assert "Found 1 deadlock (2 threads)" in run(child, "janus-waitgraph")
        # a capture into a string is not a terminal
        run(child, "set style enabled on")
        out = run(child, "python s = gdb.execute('janus-waitgraph', to_string=True); "
                         "print('ESC', '\\x1b' in s, s.startswith('Found 1 deadlock'))")
        assert "ESC False True" in out
        run(child, "detach")
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert sc.proc.poll() is None


def test_pagination_and_quit(scenarios, tmp_path):
    """With `set height 10` the report stops at gdb's pager prompt; q ends
    the command like any gdb command (gdb's "Quit"), without a Python
    error, and gdb's settings are back to the user's."""
    pexpect = pytest.importorskip("pexpect")
    sc = scenarios.get("pthread_cycle")
    child = terminal_gdb(pexpect, sc, tmp_path, height=10)
    try:
        before_settings = run(child, "show may-write-memory")
        child.sendline("janus-waitgraph")
        child.expect(PAGER)
        first_page = child.before
        assert "Found 1 deadlock (2 threads)" in first_page
        assert "Other threads" not in first_page      # the rest is not printed yet
        child.send("q\r")
        child.expect(PROMPT)
        after = child.before
        assert "Quit" in after
        for bad in ("Traceback", "Python Exception", "internal error", "Error occurred"):
            assert bad not in first_page + after
        assert "Other threads" not in after
        # RET pages on to the end
        child.sendline("janus-locks")
        pages = 0
        while child.expect([PROMPT, PAGER]) == 1:
            pages += 1
            child.send("\r")
        assert pages >= 1
        assert run(child, "show may-write-memory") == before_settings
        assert "no memory regions" in run(child, "info mem")
        run(child, "set height 0")
        assert "Found 1 deadlock" in run(child, "janus-waitgraph")
        run(child, "detach")
        child.sendline("quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert sc.proc.poll() is None


# --- the package's layers ----------------------------------------------------------

# lowest first; a module may import from its own layer and lower ones only.
# The package root (__init__.py: register(), __version__; __main__.py) is an
# entry point like cli/.
LAYERS = ["model", "target", "csource", "janus", "analysis", "report", "gdbui", "cli"]
ROOT_RANK = LAYERS.index("cli")


def package_files(root):
    """{dotted module name: source} of every .py file under ROOT/janus_gdb."""
    out = {}
    pkg = os.path.join(root, "janus_gdb")
    for d, _, names in os.walk(pkg):
        for f in names:
            if f.endswith(".py"):
                path = os.path.join(d, f)
                parts = os.path.relpath(path, root)[:-3].split(os.sep)
                if parts[-1] == "__init__":
                    parts = parts[:-1] + ["__init__"]
                with open(path) as fh:
                    out[".".join(parts)] = fh.read()
    return out


def rank(module):
    """The layer rank of dotted MODULE (janus_gdb.x.y...), or None when it
    is not in a known layer."""
    parts = module.split(".")
    if parts[0] != "janus_gdb":
        return None
    if len(parts) == 1 or parts[1] in ("__init__", "__main__"):
        return ROOT_RANK
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else None


def layer_violations(files):
    """Lines 'MODULE:LINE: problem' for FILES ({dotted name: source}): an
    import pointing up, an absolute import of the package from inside it,
    a module outside every layer, a sub-package __init__ doing more than
    its docstring."""
    bad = []
    for name, text in sorted(files.items()):
        here = rank(name)
        parts = name.split(".")
        if here is None or (len(parts) == 2 and parts[1] not in ("model", "__init__", "__main__")):
            bad.append("%s: not in a layer (place it in a sub-package)" % name)
            continue
        package = parts[:-1]            # the package the module is in
        tree = ast.parse(text, name)
        if len(parts) == 3 and parts[2] == "__init__":
            body = [n for n in tree.body if not (isinstance(n, ast.Expr)
                                                 and isinstance(n.value, ast.Constant)
                                                 and isinstance(n.value.value, str))]
            if body:
                bad.append("%s: more than a docstring" % name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.split(".")[0] == "janus_gdb"]
                bad += ["%s:%d: absolute import of %s" % (name, node.lineno, t) for t in targets]
                continue
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level == 0:
                if (node.module or "").split(".")[0] == "janus_gdb":
                    bad.append("%s:%d: absolute import of %s" % (name, node.lineno, node.module))
                continue
            base = package[:len(package) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                sub = source + "." + alias.name
                target = sub if (sub in files or sub + ".__init__" in files) else source
                there = rank(target)
                if there is not None and there > here:
                    bad.append("%s:%d: imports %s from a higher layer" % (name, node.lineno, target))
    return bad


def test_imports_point_down():
    """Every module is in a layer and imports (relatively) only from its own
    layer or lower ones, at the top or inside functions alike."""
    files = package_files(gdbrun.ROOT)
    assert {name.split(".")[1] for name in files if name.count(".") >= 2} == set(LAYERS[1:])
    assert layer_violations(files) == []


def test_layer_check_finds_violations():
    """The check above can fail: an upward import (also a lazy one), an
    absolute one, a flat module and a busy sub-package __init__."""
    files = {
        "janus_gdb.__init__": '"""root"""\ndef register():\n    from .gdbui import commands\n',
        "janus_gdb.model": '"""m"""\n',
        "janus_gdb.gdbui.__init__": '"""g"""\n',
        "janus_gdb.gdbui.commands": '"""c"""\nfrom ..analysis import analyze\n',
        "janus_gdb.analysis.__init__": '"""a"""\nfrom . import analyze\n',
        "janus_gdb.analysis.analyze": ('"""a"""\nfrom ..model import X\nfrom . import graph\n'
                                       'def f():\n    from ..report import text\n'),
        "janus_gdb.report.text": '"""t"""\nimport janus_gdb.model\n',
        "janus_gdb.target.gdbtarget": '"""t"""\nfrom .. import __version__\n',
        "janus_gdb.flat": '"""f"""\n',
    }
    assert layer_violations(files) == [
        "janus_gdb.analysis.__init__: more than a docstring",
        "janus_gdb.analysis.analyze:5: imports janus_gdb.report.text from a higher layer",
        "janus_gdb.flat: not in a layer (place it in a sub-package)",
        "janus_gdb.report.text:2: absolute import of janus_gdb.model",
        "janus_gdb.target.gdbtarget:2: imports janus_gdb from a higher layer",
    ]
