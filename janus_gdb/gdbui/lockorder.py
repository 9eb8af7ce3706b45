"""gdb command ``janus-lockorder [--format text|json] [--no-cache] [PATH...]``:
the static lock analysis of C sources (csource/lockorder.py) from inside gdb.

Without PATH it analyses the C sources named by the loaded program's debug
information (gdb's ``info sources``: the symbol files only, never the
target's memory) that exist on this machine, system headers excluded.
"""

import os
import re

import gdb  # pylint: disable=import-error

from ..csource import lockorder
from ..report import lockorder as render_lockorder

PROG = "janus-lockorder"
SYSTEM_DIRS = ("/usr/include/", "/usr/lib/", "/usr/local/include/")
_SOURCE_RE = re.compile(r"[^\s,]+\.[ch]\b")


def debug_info_sources():
    """Existing .c/.h files the loaded program's debug info names (sorted)."""
    try:
        text = gdb.execute("info sources", to_string=True)
    except gdb.error as exc:
        raise gdb.GdbError("%s: cannot list the program's sources: %s" % (PROG, exc))
    out = set()
    for m in _SOURCE_RE.finditer(text):
        path = m.group(0)
        if path.startswith(SYSTEM_DIRS) or not path.startswith("/"):
            continue
        if os.path.isfile(path):
            out.add(path)
    return sorted(out)


class JanusLockorder(gdb.Command):
    """janus-lockorder [--format text|json] [--no-cache] [PATH...]
Static lock analysis of C sources: lock-order cycles (potential ABBA
deadlocks, also through three or more lock classes) with the call chains
and file.c:LINE of each acquisition, and missing unlocks (a return, goto,
break or continue that leaves a lock held).  PATH: C files or directories;
default: the sources named by the loaded program's debug info.  Reads only
source files, never the target.  See docs/static-analysis.md."""

    def __init__(self):
        super(JanusLockorder, self).__init__(PROG, gdb.COMMAND_STATUS, gdb.COMPLETE_FILENAME)

    def invoke(self, arg, from_tty):
        try:
            opts = render_lockorder.parser(prog=PROG, paths_required=False).parse_args(
                gdb.string_to_argv(arg))
        except render_lockorder.ArgError as exc:
            raise gdb.GdbError("%s: %s" % (PROG, exc))
        except SystemExit:  # --help
            return
        paths = opts.paths or debug_info_sources()
        if not paths:
            raise gdb.GdbError("%s: no PATH given and the loaded program names no C source "
                               "that exists here" % PROG)
        try:
            report = lockorder.analyze(paths, use_cache=not opts.no_cache)
        except OSError as exc:
            raise gdb.GdbError("%s: %s" % (PROG, exc))
        gdb.write(render_lockorder.render(report, opts.format))
