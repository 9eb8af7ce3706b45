"""What the ``janus-gdb`` command-line tool runs inside gdb.

cli/main.py starts ``gdb -nx -batch`` on the core or process and has it run
``run(COMMAND, ARGS, OUT, STATUS)``: the analysis of ``janus-waitgraph`` or
``janus-locks`` with the same options, its report written to the file OUT
and a status to the file STATUS, one JSON object:

    {"ok": true, "cycles": N, "verdict": KIND}
                                   the report is in OUT; N wait cycles; KIND
                                   deadlock, hang, undetermined or none
                                   (verdict.kind)
    {"ok": false, "error": "..."}  one line for the user; OUT is not written

so that the report reaches the user without gdb's own messages, and the
exit status can say what was found.  Never raises.
"""

import json

import gdb  # pylint: disable=import-error

from . import charset
from . import commands
from ..analysis import verdict

def analyse(prog, args):
    """(report text, number of wait cycles, verdict kind) for command PROG
    with the argument string ARGS; gdb.GdbError with one line on failure."""
    if prog not in commands.COMMAND_RENDERERS:
        raise gdb.GdbError("janus-gdb: unknown command %r" % prog)
    opts = commands.parse(prog, args)
    charset.apply()     # the gdb child's host charset: the user's (cli/userlocale.py)
    try:
        report = commands.analyze_target(opts)
        text = commands.render(prog, opts, report)
        kind = verdict.kind(report)
    except gdb.GdbError:
        raise
    except KeyboardInterrupt:
        raise gdb.GdbError("%s: interrupted" % prog)
    except Exception as exc:  # a bug of ours: one line, never a traceback
        raise gdb.GdbError(commands.internal_error(prog, exc))
    if text and not text.endswith("\n"):
        text += "\n"
    return text, len(report.cycles), kind


def run(prog, args, out_path, status_path):
    """Analyse, write the report to OUT_PATH and the status to STATUS_PATH."""
    try:
        text, cycles, kind = analyse(prog, args)
        with open(out_path, "w", encoding="utf-8", errors="replace") as f:
            f.write(text)
        status = {"ok": True, "cycles": cycles, "verdict": kind}
    except gdb.GdbError as exc:
        status = {"ok": False, "error": str(exc)}
    except KeyboardInterrupt:
        status = {"ok": False, "error": "%s: interrupted" % prog}
    except Exception as exc:  # pylint: disable=broad-except
        status = {"ok": False, "error": commands.internal_error(prog, exc)}
    try:
        with open(status_path, "w") as f:
            json.dump(status, f)
    except OSError as exc:
        gdb.write("janus-gdb: cannot write %s: %s\n" % (status_path, exc), gdb.STDERR)
