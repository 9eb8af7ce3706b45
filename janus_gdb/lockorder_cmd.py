"""``janus-gdb lockorder [--format text|json] [--no-cache] PATH...``: the
static lock analysis of C sources (csource/lockorder.py), no gdb needed.
Also the argument parsing and output of the gdb command ``janus-lockorder``.

Exit status: 0 nothing found, 1 findings reported, 2 error.
"""

import argparse
import sys

from .csource import lockorder

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2


class ArgError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ArgError(message)


def parser(prog="janus-gdb lockorder", paths_required=True):
    p = _Parser(prog=prog, description="Static lock analysis of C sources: lock-order "
                "cycles (potential ABBA deadlocks) and missing unlocks.")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--no-cache", action="store_true",
                   help="read every file again (default: per-file cache under "
                   "$XDG_CACHE_HOME/janus-gdb/lockorder)")
    p.add_argument("paths", nargs="+" if paths_required else "*", metavar="PATH",
                   help="C source files or directories (such as a Janus src/)")
    return p


def render(report, fmt):
    if fmt == "json":
        return lockorder.render_json(report)
    return lockorder.render_text(report)


def main(argv, out=None, err=None):
    """Run ``lockorder`` with ARGV (the words after ``lockorder``)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        opts = parser().parse_args(argv)
    except ArgError as exc:
        err.write("janus-gdb lockorder: %s\n" % exc)
        return EXIT_ERROR
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    try:
        report = lockorder.analyze(opts.paths, use_cache=not opts.no_cache)
    except OSError as exc:
        err.write("janus-gdb lockorder: %s\n" % exc)
        return EXIT_ERROR
    out.write(render(report, opts.format))
    return EXIT_FINDINGS if report.findings else EXIT_OK
