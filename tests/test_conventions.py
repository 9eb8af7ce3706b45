"""gdb's conventions for the commands: help, completion, styling, paging.

Help texts are the commands' docstrings; completion goes through
gdb.Command.complete; emphasis only through gdb's own style settings and
only on a terminal; long output through gdb's pager.
"""

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
        ("", ["--all", "--depth", "--format", "--lock-log"]),
        ("--all -", ["--all --depth", "--all --format", "--all --lock-log"]),
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
