"""Options and output of the static lock analysis (``csource/lockorder``),
shared by ``janus-gdb lockorder`` and the gdb command ``janus-lockorder``.

Text: one paragraph per finding, a blank line between them, then what was
not resolved and the statistics.  Strings from the source files (names,
expressions, paths) are escaped like strings from the target: a source
tree is not trusted to be free of terminal escapes.
"""

import argparse
import json
import os

from .textsafe import escape

MAX_UNRESOLVED_SHOWN = 50
MAX_PARAGRAPH = 4000


class ArgError(Exception):
    """A bad command line (the message says why)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ArgError(message)


def parser(prog="janus-gdb lockorder", paths_required=True):
    """The argument parser of both front ends (PATH optional in gdb: the
    sources named by the program's debug info)."""
    p = _Parser(prog=prog, description="Static lock analysis of C sources: lock-order "
                "cycles (potential ABBA deadlocks) and missing unlocks.")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--no-cache", action="store_true",
                   help="read every file again (default: per-file cache under "
                   "$XDG_CACHE_HOME/janus-gdb/lockorder)")
    p.add_argument("paths", nargs="+" if paths_required else "*", metavar="PATH",
                   help="C source files or directories (such as a Janus src/)")
    return p


def _para(text):
    return "\n".join(escape(line, MAX_PARAGRAPH) for line in text.split("\n"))


def text(report):
    """The text report of a ``lockorder.Report``."""
    paras = [_para(f.text) for f in report.findings]
    if not paras:
        paras.append("no lock-order cycle and no missing unlock found")
    if report.unresolved:
        lines = ["not resolved (%d):" % len(report.unresolved)]
        for u in report.unresolved[:MAX_UNRESOLVED_SHOWN]:
            lines.append(escape("%s:%d %s%s" % (
                os.path.basename(u["file"]), u["line"], u["what"],
                (" in %s()" % u["function"]) if u.get("function") else "")))
        if len(report.unresolved) > MAX_UNRESOLVED_SHOWN:
            lines.append("... %d more (see --format json)"
                         % (len(report.unresolved) - MAX_UNRESOLVED_SHOWN))
        paras.append("\n  ".join(lines))
    s = report.stats
    paras.append("%d files, %d lines, %d functions, %d lock acquisitions, %d classes, "
                 "%d order edges: %d missing unlocks, %d inversions%s (%.1f s, %d files from cache)"
                 % (s["files"], s["lines"], s["functions"], s["acquisitions"], s["classes"],
                    s["edges"], s["missing_unlocks"], s["inversions"],
                    (" (%d of them within one thread)" % s["single_thread_inversions"])
                    if s.get("single_thread_inversions") else "",
                    s["seconds"], s["files_cached"]))
    return "\n\n".join(paras) + "\n"


def json_text(report):
    """The JSON document (schema ``janus-gdb/lockorder/1``) of a report."""
    return json.dumps(report.as_dict(), indent=1, sort_keys=True) + "\n"


def render(report, fmt):
    return json_text(report) if fmt == "json" else text(report)
