"""gdb command ``janus-lockorder [--format text|json] [--no-cache] [PATH...]``:
the static lock analysis of C sources (csource/lockorder.py) from inside gdb.

Without PATH it analyses the C sources named by the loaded program's debug
information (gdb's ``info sources``: the symbol files only, never the
target's memory) that exist on this machine, system headers excluded.
"""

import gdb  # pylint: disable=import-error

from . import charset
from ..csource import lockorder
from ..report import lockorder as render_lockorder
from ..target import debugsources

PROG = "janus-lockorder"


def debug_info_sources():
    """Existing .c/.h files the loaded program's debug info names (sorted)."""
    try:
        return debugsources.debug_info_sources()
    except debugsources.NoSources as exc:
        raise gdb.GdbError("%s: cannot list the program's sources: %s" % (PROG, exc))


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
        charset.apply()
        try:
            report = lockorder.analyze(paths, use_cache=not opts.no_cache)
        except OSError as exc:
            raise gdb.GdbError("%s: %s" % (PROG, exc))
        gdb.write(render_lockorder.render(report, opts.format))
