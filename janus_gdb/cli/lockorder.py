"""``janus-gdb lockorder [--format text|json] [--no-cache] PATH...``: the
static lock analysis of C sources (csource/lockorder.py), no gdb needed.

Exit status: 0 nothing found, 1 findings reported, 2 error.
"""

import sys

from ..csource import lockorder
from ..report import lockorder as render_lockorder

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2


def main(argv, out=None, err=None):
    """Run ``lockorder`` with ARGV (the words after ``lockorder``)."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        opts = render_lockorder.parser().parse_args(argv)
    except render_lockorder.ArgError as exc:
        err.write("janus-gdb lockorder: %s\n" % exc)
        return EXIT_ERROR
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    try:
        report = lockorder.analyze(opts.paths, use_cache=not opts.no_cache)
    except OSError as exc:
        err.write("janus-gdb lockorder: %s\n" % exc)
        return EXIT_ERROR
    out.write(render_lockorder.render(report, opts.format))
    return EXIT_FINDINGS if report.findings else EXIT_OK
